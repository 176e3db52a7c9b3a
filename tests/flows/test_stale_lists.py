"""A failed sync never leaves officers a list that looks fine but is stale or empty. Five
nights of `sammachip nightly` on one small district (the Kobo simulator on loopback, real
Prefect, real GX), each read as a user would: the exit code, the terminal, the workbook
opened with openpyxl and the pages' text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from sammachip.flows import cli
from sammachip.reports.officer_lists import office_time
from sammachip.simulators.cohort import HOUSEHOLD
from sammachip.simulators.faults import Fault
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from sammachip.warehouse.freshness import STATUS_KEY
from sammachip.warehouse.load import open_warehouse
from tests.reliability.helpers import TOKEN, captured_output, tiny_cohort

DAY = "2026-11-24"
REPORTS = Path("data") / "reports" / DAY


@dataclass
class Night:
    code: int
    output: str  # the command's own output (the run summary)
    terminal: str  # everything else the process wrote, Prefect's log lines included
    lists: dict[str, str | list[list[object]]]  # what officer off01 and the district see
    synced_at: str | None  # the last complete sync, as the warehouse records it


def read_lists(workdir: Path) -> dict[str, str | list[list[object]]]:
    folder = workdir / REPORTS
    if not (folder / "off01.xlsx").exists():
        return {}
    sheet = load_workbook(folder / "off01.xlsx").worksheets[0]  # today
    pages = {
        name: re.sub(
            r"\s+", " ", re.sub(r"<[^>]+>", " ", (folder / name).read_text(encoding="utf-8"))
        )
        for name in ("off01.html", "index.html")
    }
    return {"xlsx": [[c.value for c in row] for row in sheet.iter_rows()], **pages}


@pytest.fixture(scope="module")
def nights(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Night]]:
    workdir = tmp_path_factory.mktemp("stale")
    store = KoboStore()
    uids = seed_from_cohort(store, tiny_cohort())
    assets, household = "/api/v2/assets/", f"{uids[HOUSEHOLD]}/data"
    faults = {
        "down, nothing held yet": [Fault("status", 401, target=assets)],
        "all well": [],
        "household form refused": [Fault("status", 403, target=household)],
        "down, lists held": [Fault("status", 401, target=assets)],
        "all well again": [],
    }
    out: dict[str, Night] = {}
    with serve_kobo(store, TOKEN) as url, pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        mp.setenv("SAMMACHIP_KOBO_URL", url)
        mp.setenv("SAMMACHIP_KOBO_TOKEN", TOKEN)
        mp.setenv("COLUMNS", "80")
        for night, plan in faults.items():
            store.faults.clear()
            for fault in plan:
                store.faults.add(fault, times=1000)
            with captured_output() as terminal:
                result = CliRunner().invoke(cli.app, ["nightly", "--today", "24/11/2569"])
            status = open_warehouse(str(workdir / "data" / "warehouse")).snapshot().cursors
            synced_at = status.get(STATUS_KEY, {}).get("servers", {}).get("kobo", {})
            out[night] = Night(
                result.exit_code,
                result.output,
                "".join(terminal),
                read_lists(workdir),
                synced_at.get("synced_at"),
            )
        store.faults.clear()
    yield out


def banner_of(night: Night) -> str:
    first = night.lists["xlsx"][0][0]  # type: ignore[index]
    return str(first) if "the last sync failed" in str(first) else ""


def test_a_sync_that_fetched_nothing_into_an_empty_warehouse_writes_no_empty_lists(
    nights: dict[str, Night],
) -> None:
    night = nights["down, nothing held yet"]
    assert night.code == 2
    assert night.lists == {}  # no officer file at all, rather than empty ones
    said = " ".join(night.output.split())
    assert (
        "Officer lists not written: the sync failed and the warehouse holds no submission" in said
    )
    assert "✗ 1 server kobo: " in said


def test_a_good_night_has_no_banner(nights: dict[str, Night]) -> None:
    for name in ("all well", "all well again"):
        night = nights[name]
        assert night.code == 0, night.output
        assert banner_of(night) == ""
        as_of = office_time(datetime.fromisoformat(str(night.synced_at)))
        assert night.lists["xlsx"][0][0] == f"ข้อมูล ณ {as_of} (data as of)"  # type: ignore[index]
        assert night.lists["xlsx"][1][0] == "ลำดับ\n(order)"  # type: ignore[index]
        assert "the last sync failed" not in night.lists["off01.html"]  # type: ignore[operator]


@pytest.mark.parametrize("name", ["household form refused", "down, lists held"])
def test_after_a_failed_sync_the_lists_keep_their_rows_under_a_banner_with_data_as_of(
    name: str, nights: dict[str, Night]
) -> None:
    good, night = nights["all well"], nights[name]
    assert night.code == 2
    as_of = office_time(datetime.fromisoformat(str(good.synced_at)))
    assert night.synced_at == good.synced_at  # the last complete sync is still that night's
    banner = banner_of(night)
    assert "the last sync failed" in banner and f"ข้อมูล ณ {as_of} (data as of)" in banner
    expected = "ทะเบียนครัวเรือนเป้าหมาย" if name == "household form refused" else "ทุกแบบฟอร์ม"
    assert f"{expected}" in banner and "เซิร์ฟเวอร์ kobo" in banner
    # the same list under the banner, where a good night says how current it is
    assert night.lists["xlsx"][1:] == good.lists["xlsx"][1:]
    assert len(good.lists["xlsx"]) > 2  # and not an empty one  # type: ignore[arg-type]
    for page in ("off01.html", "index.html"):
        assert f"ข้อมูล ณ {as_of} (data as of)" in night.lists[page]  # type: ignore[operator]


def test_a_failed_form_is_said_once_in_one_line_without_a_traceback(
    nights: dict[str, Night],
) -> None:
    night = nights["household form refused"]
    lines = night.output.splitlines()
    assert max(map(len, lines)) <= 80
    household = next(line for line in lines if "│ household" in line)
    assert household.rstrip().endswith("✗ 1 failed │")
    said = " ".join(night.output.split())
    assert said.count("HTTP 403") == 1 and "✗ 1 sammachip_household: form" in said
    assert "Traceback" not in night.terminal and "HTTP 403" not in night.terminal
    assert "skipped" not in night.terminal and "Finished in state" not in night.terminal
