"""Permanent errors. A form the server refuses for good (Kobo: permission removed between two
pages; ODK: no role on the project) is skipped with a message that says what to fix, and
nothing of it is committed: not the pages read before the refusal, not its cursor. The other
forms, on both servers, commit. Read from one real night through the `nightly` flow
(conftest.py's `night`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import HOUSEHOLD, SESSION
from sammachip.simulators.faults import Fault, FaultPlan
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from tests.reliability.helpers import TODAY, TOKEN, District, Night


def _rows(workdir: Path, sql: str) -> list[tuple]:
    return connect(open_warehouse(str(workdir / "data" / "warehouse"))).execute(sql).fetchall()


def test_a_form_refused_for_good_is_skipped_with_what_to_fix_and_nothing_of_it_committed(
    night: Night,
) -> None:
    refused = night.kobo_uids[HOUSEHOLD]
    kobo = next(f for f in night.summary.forms if f.form_uid == refused)
    assert kobo.error and "HTTP 403" in kobo.error and refused in kobo.error
    assert "share the project" in kobo.error  # what to fix
    odk = next(f for f in night.summary.forms if f.form_uid == f"1/{night.odk_forms[SESSION]}")
    assert odk.error and "HTTP 403" in odk.error and "Project Viewer" in odk.error
    # The household form's first page was staged before the 403 on its second: rolled back.
    for table in ("raw_submissions", "households", "quarantine"):
        assert _rows(
            night.workdir, f"select count(*) from {table} where submission_key like '%:{refused}:%'"
        ) == [(0,)]
    assert _rows(
        night.workdir,
        f"select count(*) from raw_submissions where source = 'odk' and form_id = '{odk.form_id}'",
    ) == [(0,)]
    cursors = open_warehouse(str(night.workdir / "data" / "warehouse")).snapshot().cursors
    assert not [k for k in cursors if refused in k or k.endswith(f"/{night.odk_forms[SESSION]}")]
    # The other forms, on both servers, committed (despite a reset and an expired session).
    assert _rows(night.workdir, "select source, count(*) > 0 from households group by 1") == [
        ("odk", True)
    ]
    assert _rows(night.workdir, "select source, count(*) > 0 from sessions group by 1") == [
        ("kobo", True)
    ]
    assert night.summary.reconciles


def test_a_server_down_past_the_retries_costs_only_its_own_form(
    prefect_harness: None,
    district: District,
    kobo_faults: FaultPlan,
    suite_runner: SuiteRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sammachip.flows import nightly as flow

    monkeypatch.setattr(flow, "SuiteRunner", lambda **_: suite_runner)  # GX loaded once per session
    monkeypatch.setenv("SAMMACHIP_KOBO_URL", district.url)
    monkeypatch.setenv("SAMMACHIP_KOBO_TOKEN", TOKEN)
    uid = district.uids[HOUSEHOLD]
    kobo_faults.add(Fault("status", 503, target=f"{uid}/data"), times=50)  # an outage
    summary = flow.nightly(workdir=str(tmp_path), today=TODAY)
    household = next(f for f in summary.forms if f.form_id == HOUSEHOLD)
    assert household.error and "503" in household.error and uid in household.error
    assert _rows(tmp_path, "select count(*) > 0 from sessions") == [(True,)]
