"""Thai labels the marts write into their rows and the officer files show in the same words."""

from __future__ import annotations

# The OTOP readiness mart's statuses in Thai: written by its SQL, drawn in the charts' order.
READINESS_TH: dict[str, str] = {
    "ready": "พร้อมขึ้นทะเบียน",
    "nearly_ready": "เกือบพร้อม",
    "not_ready": "ยังไม่พร้อม",
}
