"""A push to a Central as its own process, for the kill trials (`test_push_kills.py`).

    python -m tests.phones.push_child URL WAREHOUSE

It pushes the warehouse's committed worklist to the follow-up list of project 1 at URL (the
test's ODK simulator), as a run's push does; SAMMACHIP_FAILPOINT (`warehouse.failpoints`)
makes it SIGKILL itself at a write of the push or just before the record is committed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from sammachip.connectors.odk import OdkForm, OdkSource
from sammachip.connectors.odk.client import OdkServer
from sammachip.phones.push import PhoneSettings, push_lists
from sammachip.schemas.followup_form import FORM_ID
from sammachip.warehouse.load import open_warehouse
from tests.phones.conftest import EMAIL, FAST, PASSWORD


def main(url: str, warehouse: str) -> int:
    source = OdkSource(OdkServer(url, EMAIL, PASSWORD, project_id=1, name="central"))
    form = OdkForm(source, f"1/{FORM_ID}", FORM_ID, FAST)
    wh = open_warehouse(warehouse)
    results = push_lists(
        wh, PhoneSettings(enabled=True), ["central"], [form], datetime.now(UTC), "child"
    )
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
