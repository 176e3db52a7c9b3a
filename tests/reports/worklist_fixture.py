"""A small `worklist` mart (the mart's own schema) with the cases the writers must show.

The marts built from the test district hold a real worklist; the writers' specifications read
this one instead, so that each case is there whatever the rules make of the district: each
officer gets entries for today and later — an overdue household with two reasons, a household
without a location, a session's call list, a group, a sage, hostile text in a name and a
national ID in a reason. `test_deliverables` runs the real mart through the same writers.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from sammachip.schemas.admin_codes import tambon_label
from sammachip.schemas.tables import WORKLIST_SCHEMA

RULES = {
    "R01": ("R01_CONTACT_BEFORE_SESSION", "แจ้งครัวเรือนก่อนวันกิจกรรม", "Contact before session", 1),
    "R03": ("R03_LOW_ATTENDANCE", "เข้าร่วมอบรมน้อย", "Low attendance", 2),
    "R04": ("R04_TRAINED_NO_MATERIALS", "อบรมแล้วยังไม่ได้รับวัสดุ", "Trained, no materials", 2),
    "R05": ("R05_NO_FOLLOWUP_INCOME", "ยังไม่ติดตามรายได้", "No follow-up income survey", 2),
    "R09": ("R09_DATA_TO_FIX", "ข้อมูลต้องแก้ไข", "Data to fix", 1),
    "R10": ("R10_SESSION_NOT_HELD", "กิจกรรมเลยกำหนดแต่ยังไม่ได้จัด", "Planned session not held", 2),
}
VILLAGE_NAMES = {
    "34140101": "บ้านม่วงสามสิบ",
    "34140102": "บ้านหนองเหล่า",
    "34140103": "บ้านโนนสูง",
    "34140201": "บ้านเหล่าบก",
    "34140202": "บ้านดอนแดง",
    "34140301": "บ้านยางสักฯ",
    "34140401": "บ้านหนองฮาง",
}
OFFICERS = {
    "341401": ("off01", "นางสาวพรทิพย์ ศรีสุข"),
    "341402": ("off01", "นางสาวพรทิพย์ ศรีสุข"),
    "341403": ("off02", "นายสมชาย บุญมา"),
    "341404": ("district", "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"),
}


def reason(rule: str, subject: str, due: date, detail: str, first_seen: date) -> dict[str, Any]:
    rule_id, rule_th, rule_en, priority = RULES[rule]
    return {
        "alert_id": f"{rule_id}:{subject}",
        "rule_id": rule_id,
        "rule_th": rule_th,
        "rule_en": rule_en,
        "priority": priority,
        "due_date": due,
        "detail_th": detail,
        "detail_en": detail,
        "first_seen": first_seen,
    }


def entry(
    today: date,
    subject_type: str,
    subject_id: str,
    village: str,
    title: str,
    reasons: list[dict[str, Any]],
    *,
    bucket: str,
    order: int,
    house_no: str | None = None,
    phone: str | None = None,
    location: tuple[float, float] | None = None,
    call_list: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    officer_id, officer_name = OFFICERS[village[:6]]
    reasons = sorted(reasons, key=lambda r: r["priority"])
    due = min(r["due_date"] for r in reasons)
    lat, lon = location or (None, None)
    return {
        "officer_id": officer_id,
        "officer_name": officer_name,
        "item_id": f"{subject_type}:{subject_id}",
        "subject_type": subject_type,
        "subject_id": subject_id,
        "title_th": title,
        "title_en": title,
        "village_code": village,
        "village_name": VILLAGE_NAMES[village],
        "moo": int(village[6:]),
        "tambon_code": village[:6],
        "tambon_name": tambon_label(village[:6]),  # as the mart writes it: "ต.ม่วงสามสิบ"
        "house_no": house_no,
        "phone": phone,
        "lat": lat,
        "lon": lon,
        "geo_uri": None if location is None else f"geo:{lat},{lon}?q={lat},{lon}({title})",
        "priority": min(r["priority"] for r in reasons),
        "due_date": due,
        "overdue_days": max(0, (today - due).days),
        "bucket": bucket,
        "visit_order": order,
        "reasons": reasons,
        "call_list": list(call_list),
        "first_seen": min(r["first_seen"] for r in reasons),
    }


def worklist_rows(
    today: date, formula: str, script: str, national_id: str, pipe: str
) -> list[dict[str, Any]]:
    """off01: five entries today (an overdue household first), eight later; off02 and the
    district office: one each."""
    ago = today - timedelta(days=20)
    session_day = today + timedelta(days=3)
    calls = [
        {
            "hh_code": f"34140101-0{n}",
            "head_name": name,
            "phone": f"08{n}1234567",
            "house_no": f"{10 + n}",
            "village_name": VILLAGE_NAMES["34140101"],
            "moo": 1,
            "alert_id": f"R01_CONTACT_BEFORE_SESSION:TPLAN/34140101-0{n}",
        }
        for n, name in [(1, formula), (2, script), (4, "นางบุญมี ใจดี")]
    ]
    rows = [
        entry(
            today,
            "household",
            "34140101-01",
            "34140101",
            formula,
            [
                reason("R03", "34140101-01", today + timedelta(days=7), "เข้าร่วม 1 จาก 3 ครั้ง", ago),
                reason("R05", "34140101-01", today - timedelta(days=4), "อบรมครบ 90 วันแล้ว", ago),
            ],
            bucket="today",
            order=1,
            house_no="11",
            phone="0811234567",
            location=(15.51234, 104.71234),
        ),
        entry(
            today,
            "household",
            "34140101-02",
            "34140101",
            script,
            [
                reason(
                    "R09",
                    "34140101-02",
                    today,
                    f"แบบสำรวจครัวเรือน: เลขประจำตัวประชาชน {national_id} ไม่ถูกต้อง",
                    today,
                )
            ],
            bucket="today",
            order=2,
            house_no="12/1",
            phone="0821234567",
        ),
        entry(
            today,
            "session",
            "TPLAN",
            "34140101",
            f"โทรแจ้ง 3 ครัวเรือนก่อนวันที่ {session_day.day:02d}/{session_day.month:02d}/"
            f"{session_day.year + 543}",
            [reason("R01", "TPLAN", today, "อบรมวันที่ในอีก 3 วัน", today)],
            bucket="today",
            order=3,
            call_list=calls,
        ),
        entry(
            today,
            "group",
            "G34140102-1",
            "34140102",
            "กลุ่มทอผ้าไหม",
            [reason("R04", "G34140102-1", today + timedelta(days=5), "สมาชิก 2 คน", ago)],
            bucket="today",
            order=4,
        ),
        entry(
            today,
            "sage",
            "S34140103",
            "34140103",
            "นายทองดี ปราชญ์ดี",
            [reason("R09", "S34140103", today, "ปราชญ์ไม่อยู่ในทะเบียน", today)],
            bucket="today",
            order=5,
            phone="0891234567",
        ),
    ]
    for n in range(8):  # later: households in the second tambon
        village = "34140201" if n < 5 else "34140202"
        code = f"{village}-{n + 1:02d}"
        rule = "R05" if n < 5 else "R03"
        rows.append(
            entry(
                today,
                "household",
                code,
                village,
                pipe if n == 7 else f"นางสมศรี บ้าน{n + 1}",
                [reason(rule, code, today + timedelta(days=10 + n), "รอติดตาม", today)],
                bucket="later",
                order=n + 1,
                house_no=str(20 + n),
                phone=f"04531234{n:02d}",
                location=(15.6 + n / 100, 104.8),
            )
        )
    rows.append(
        entry(
            today,
            "household",
            "34140301-01",
            "34140301",
            "นางสมศรี บ้าน1",
            [reason("R05", "34140301-01", today + timedelta(days=2), "รอติดตาม", ago)],
            bucket="today",
            order=1,
            house_no="1",
            phone="0811234567",
        )
    )
    rows.append(
        entry(
            today,
            "household",
            "34140401-01",
            "34140401",
            "นางสมศรี บ้าน1",
            [reason("R04", "34140401-01", today + timedelta(days=30), "ยังไม่ได้รับวัสดุ", ago)],
            bucket="today",
            order=1,
            house_no="7",
        )
    )
    return rows


def worklist_table(today: date, formula: str, script: str, national_id: str, pipe: str) -> pa.Table:
    return pa.Table.from_pylist(
        worklist_rows(today, formula, script, national_id, pipe), schema=WORKLIST_SCHEMA
    )
