"""`sammachip demo --source odk` shows the loop: night 1 puts the lists on the phones, two
officers' phones send visits, night 2 closes what they resolved and the phones' lists are
shorter; the warehouse answers how many alerts a visit closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sammachip.flows import cli
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect

pytestmark = pytest.mark.slow  # real Prefect, two nights

# the demo points this process at its simulator (undone after the test)
QUICK_SET_UP = [f"SAMMACHIP_{k}" for k in ("KOBO_URL", "KOBO_TOKEN", "KOBO_NAME")] + [
    f"SAMMACHIP_ODK_{k}" for k in ("URL", "EMAIL", "PASSWORD", "PROJECT", "NAME")
]


def test_the_odk_demo_closes_the_loop_in_two_nights(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in QUICK_SET_UP:
        monkeypatch.setenv(key, "")
    monkeypatch.setenv("COLUMNS", "100")
    args = ["demo", "--source", "odk", "--villages", "4", "--today", "2026-11-24"]
    result = CliRunner().invoke(cli.app, [*args, "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "เยี่ยมติดตาม (visits sent from the phones)" in said
    assert "ปิดโดยการเยี่ยม (alerts closed by a visit)" in said
    shorter = said.split("Lists on the officers' phones / รายการบนโทรศัพท์: ")[1].split(" ผล")[0]
    for officer in shorter.split(", "):
        before, after = (int(n) for n in officer.split(": ")[1].split(" → "))
        assert after < before
    wh = open_warehouse(str(tmp_path / "data" / "warehouse"))
    ((closed,),) = (
        connect(wh)
        .execute("select count(*) from alerts where closed_by_visit is not null")
        .fetchall()
    )
    ((visits,),) = connect(wh).execute("select count(*) from followup_visits").fetchall()
    assert closed > 0 and visits > 0
    assert "SAMMACHIP_PHONES_ENABLED" not in os.environ  # the demo's own runs only
