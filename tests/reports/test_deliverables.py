"""Everything an officer receives from one run, in every format, agreeing with each other."""

from __future__ import annotations

import csv
import logging
import re
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from sammachip.marts import build_marts
from sammachip.marts.rules import AlertRules, Officer
from sammachip.reports import deliverables
from sammachip.reports.deliverables import mail_deliverables, write_deliverables
from sammachip.reports.files import file_stem
from sammachip.reports.officer_lists import SyncNotice
from sammachip.simulators.cohort import CohortSpec
from tests.marts.cohort import cohort_tables


def csv_rows(path: Path) -> int:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return len(list(csv.reader(f))) - 1


def test_each_officer_and_the_district_office_get_every_format(report_dir: Path) -> None:
    names = {p.name for p in report_dir.iterdir()}
    for officer in ("off01", "off02", "district"):
        assert {
            f"{officer}{s}" for s in (".html", ".xlsx", "_worklist.csv", "_alerts.csv", "_otop.csv")
        } <= names
    assert {"index.html", "district_kpis.csv"} <= names
    assert not [n for n in names if n.endswith(".tmp")]  # nothing half-written is left


def test_the_formats_agree(report_dir: Path) -> None:
    wb = load_workbook(report_dir / "off01.xlsx", read_only=True)
    today, later, snoozed, otop = [ws.max_row - 2 for ws in wb.worksheets[:4]]  # as-of, header
    assert [today + later, otop] == [
        csv_rows(report_dir / "off01_worklist.csv"),
        csv_rows(report_dir / "off01_otop.csv"),
    ]
    with open(report_dir / "off01_alerts.csv", encoding="utf-8-sig", newline="") as f:
        alerts = list(csv.reader(f))
    assert snoozed == sum(1 for r in alerts if "เลื่อนไว้" in r) == 1  # the snoozed alert
    page = (report_dir / "off01.html").read_text(encoding="utf-8")
    cards = page[page.index('id="today"') : page.index('id="otop"')]
    assert cards.count('class="card p') == today + later
    assert page[page.index('id="today"') : page.index('id="later"')].count('class="n"') == today


def test_a_second_run_the_same_day_writes_only_the_officers_whose_lists_changed(
    report_marts: dict[str, pa.Table], report_rules: AlertRules, tmp_path: Path
) -> None:
    """Every delivery runs the ingest, which must not rewrite every officer's files."""
    out, day = tmp_path / "2026-03-01", date(2026, 3, 1)

    def rewritten(paths: list[Path], before: dict[str, int]) -> set[str]:
        return {p.name for p in paths if p.stat().st_ino != before.get(p.name)}  # new file

    first = write_deliverables(report_marts, out, day, report_rules)
    inodes = {p.name: p.stat().st_ino for p in first}
    district_files = {"index.html", "district_kpis.csv"}
    again = write_deliverables(report_marts, out, day, report_rules)
    assert sorted(p.name for p in again) == sorted(inodes)
    assert rewritten(again, inodes) == district_files

    inodes = {p.name: p.stat().st_ino for p in again}
    alerts = report_marts["alerts"]
    gone = alerts["officer_id"].to_pylist().index("off01")  # one of off01's alerts cleared
    changed = {**report_marts, "alerts": alerts.filter([i != gone for i in range(len(alerts))])}
    (out / "off02_otop.csv").unlink()  # and someone deleted a file of off02's
    third = write_deliverables(changed, out, day, report_rules)
    off = {
        f"{o}{s}"
        for o in ("off01", "off02")
        for s in (".html", ".xlsx", "_worklist.csv", "_alerts.csv", "_otop.csv")
    }
    assert rewritten(third, inodes) == district_files | off


def test_officers_with_an_address_get_their_lists_by_mail(
    smtp: tuple[Any, Any],
    report_marts: dict[str, pa.Table],
    report_rules: AlertRules,
    report_dir: Path,
) -> None:
    inbox, settings = smtp
    result = mail_deliverables(report_marts, report_dir, date(2026, 3, 1), report_rules, settings)
    assert (sorted(result.sent), result.skipped) == (["district", "off01"], ["off02"])
    attachments = {
        tuple(to): sorted(a.get_filename() for a in msg.iter_attachments())
        for to, msg, _ in inbox.messages
    }
    assert attachments == {
        ("off01@example.org",): ["off01.html", "off01.xlsx"],
        ("d@x.org",): ["district.html", "district.xlsx", "index.html"],
    }


def test_an_officer_id_never_becomes_a_path() -> None:
    assert file_stem("../../etc/passwd") == "_.._etc_passwd"
    assert file_stem("off01") == "off01"


def test_a_generated_cohort_flows_through_to_the_officers_pages(tmp_path: Path) -> None:
    today = date(2026, 3, 1)
    rules = AlertRules(roster=(Officer("off01", "นางสาวพรทิพย์ ศรีสุข", ("341401", "341402")),))
    cohort = cohort_tables(CohortSpec(seed=2568, villages=4, today=today, dirty=False))
    marts = build_marts(cohort, {}, today, rules)
    rules_fired = set(marts["alerts"]["rule_id"].to_pylist())
    assert {
        "R03_LOW_ATTENDANCE",
        "R04_TRAINED_NO_MATERIALS",
        "R05_NO_FOLLOWUP_INCOME",
    } <= rules_fired
    kpis = {k["kpi_id"]: k for k in marts["kpis"].to_pylist() if k["scope"] == "district"}
    assert 0 < kpis["K1_PRACTISING"]["value"] <= 1  # over every trained household
    files = write_deliverables(marts, tmp_path, today, rules)
    assert [f.name for f in files[:2]] == ["index.html", "district_kpis.csv"]
    page = (tmp_path / "off01.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "ต.ม่วงสามสิบ" in page
    methods = page[page.index("ตามวิธีสอน (by teaching method)") :]  # in the KPIs, lecture first
    assert methods.index("บรรยาย") < methods.index("</table>")
    otop = page[page.index('id="otop"') : page.index('id="charts"')]
    assert "ตลาด: " in otop and "บาท" in otop  # the groups' market links, price and cost
    # the real worklist mart, as the officer gets it: a day's work, each household findable
    today_sheet = load_workbook(tmp_path / "off01.xlsx")["วันนี้ (today)"]
    header = [str(c.value).split("\n")[0] for c in today_sheet[1]]
    rows = [dict(zip(header, r, strict=True)) for r in today_sheet.iter_rows(2, values_only=True)]
    assert 0 < len(rows) <= rules.worklist.per_day
    households = [r for r in rows if str(r["ประเภท"]).startswith("ครัวเรือน")]
    assert households and all(r["หมู่บ้าน"] and r["บ้านเลขที่"] and r["โทรศัพท์"] for r in households)
    assert all(isinstance(r["ดำเนินการภายใน"], datetime) for r in rows)
    cards = page[page.index('id="today"') : page.index('id="later"')]
    assert cards.count('class="card p') == len(rows)


def contents(folder: Path) -> dict[str, bytes]:
    """The files officers get; a workbook by its parts, less its creation time."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                out |= {f"{path.name}/{n}": z.read(n) for n in z.namelist() if "core" not in n}
        else:
            out[path.name] = path.read_bytes()
    return out


@pytest.mark.slow  # starts the officer-file worker processes
def test_worker_processes_and_the_chart_cache_change_nothing_officers_get(
    report_marts: dict[str, pa.Table],
    report_rules: AlertRules,
    report_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    hostile: SimpleNamespace,
) -> None:
    day = date(2026, 3, 1)
    monkeypatch.setattr(deliverables, "PARALLEL_FROM", 2)  # three officers are "many" here
    caplog.set_level(logging.INFO, logger="sammachip.reports.deliverables")
    parallel = tmp_path / "reports" / "parallel"
    written = write_deliverables(
        report_marts, parallel, day, report_rules, workers=2, data_as_of=hostile.data_as_of
    )
    assert [p.name for p in written] == [
        p.name for p in write_deliverables(report_marts, tmp_path / "again", day, report_rules)
    ]
    assert contents(parallel) == contents(report_dir)  # the files written in one process
    assert (tmp_path / "reports" / ".charts").is_dir()  # next to the day folders
    # ten charts, nine different (one officer's readiness chart is the district's)
    rendered, kept = map(int, re.findall(r"charts: (\d+) rendered, (\d+) from", caplog.text)[0])
    assert rendered + kept == 10 and rendered >= 9
    # a later run with the same data renders nothing
    cached, cache_dir = tmp_path / "cached", parallel.parent / ".charts"
    write_deliverables(
        report_marts, cached, day, report_rules, cache_dir=cache_dir, data_as_of=hostile.data_as_of
    )
    assert "charts: 0 rendered, 10 from the cache" in caplog.messages[-1]
    assert contents(cached) == contents(report_dir)


def test_after_a_failed_sync_every_officer_file_says_so_and_how_old_its_data_are(
    report_marts: dict[str, pa.Table], report_rules: AlertRules, tmp_path: Path
) -> None:
    """Opened as an officer would: the workbook's first row and the pages' first lines."""
    notice = SyncNotice(
        attempted_at=datetime(2026, 2, 28, 19, 30, tzinfo=UTC),  # 02:30 in Bangkok
        data_as_of=datetime(2026, 2, 27, 19, 31, tzinfo=UTC),
        failed=("ทะเบียนครัวเรือนเป้าหมาย (Target household registration) · เซิร์ฟเวอร์ kf",),
        errors=("kf: form aXyZ: HTTP 403 — share the project with the token's user",),
    )
    day = date(2026, 3, 1)
    stale = write_deliverables(report_marts, tmp_path / "stale", day, report_rules, notice=notice)
    fresh = write_deliverables(report_marts, tmp_path / "fresh", day, report_rules)
    said = [
        "ดึงข้อมูลครั้งล่าสุด 01/03/2569 02:30 น. ไม่สำเร็จ (the last sync failed)",
        "ข้อมูล ณ 28/02/2569 02:31 น. (data as of)",
        "ทะเบียนครัวเรือนเป้าหมาย",
    ]

    stale_book = load_workbook(tmp_path / "stale" / "off01.xlsx")
    fresh_book = load_workbook(tmp_path / "fresh" / "off01.xlsx")
    for sheet, plain in zip(stale_book.worksheets, fresh_book.worksheets, strict=True):
        banner = sheet["A1"].value
        assert all(s in banner for s in said), sheet.title
        assert "A1" in str(sheet.merged_cells)  # across the sheet
        # The list itself is the same one row lower: headers, rows, filter and frozen pane.
        assert [[c.value for c in row] for row in sheet.iter_rows(min_row=2)] == [
            [c.value for c in row] for row in plain.iter_rows()
        ]
        assert (sheet.freeze_panes, plain.freeze_panes) == ("A3", "A2")
    for name in ("off01.html", "district.html", "index.html"):
        page = (tmp_path / "stale" / name).read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>", " ", page[page.index("<main>") :])
        assert all(s in text for s in said), name
        first_list = "(KPIs vs targets)" if name == "index.html" else "(today)"
        assert text.index("the last sync failed") < text.index(first_list)  # said first
        assert 'role="alert"' not in (tmp_path / "fresh" / name).read_text(encoding="utf-8")
    index = (tmp_path / "stale" / "index.html").read_text(encoding="utf-8")
    assert "share the project with the token&#x27;s user" in index  # for the data manager
    assert "HTTP 403" not in (tmp_path / "stale" / "off01.html").read_text(encoding="utf-8")
    # The CSVs stay plain tables (a banner line would break every program reading them).
    assert [p.read_bytes() for p in stale if p.suffix == ".csv"] == [
        p.read_bytes() for p in fresh if p.suffix == ".csv"
    ]


def test_a_delivery_rewrites_only_what_it_changed_and_kept_files_match_a_fresh_write(
    report_marts: dict[str, pa.Table], report_rules: AlertRules, tmp_path: Path
) -> None:
    """What an ingest run does after each delivery: the officer whose rows changed gets new
    files; every other officer's files are left as they were (same inode, same bytes) and
    are what a fresh write of the new marts gives; a change every file shows (a failed sync's
    banner) rewrites every file."""
    out, day = tmp_path / "2026-03-01", date(2026, 3, 1)
    first = write_deliverables(report_marts, out, day, report_rules)
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in first}

    work = report_marts["worklist"]
    mine = [o == "off01" for o in work["officer_id"].to_pylist()]
    gone = mine.index(True)  # one of off01's entries done
    changed = {**report_marts, "worklist": work.filter([i != gone for i in range(len(work))])}
    again = write_deliverables(changed, out, day, report_rules)
    fresh = {p.name: p for p in write_deliverables(changed, tmp_path / "fresh", day, report_rules)}

    rewritten = {p.name for p in again if p.stat().st_ino != before[p.name][0]}
    assert {n for n in rewritten if not n.startswith(("index", "district_kpis"))} == {
        f"off01{s}" for s in (".html", ".xlsx", "_worklist.csv", "_alerts.csv", "_otop.csv")
    }
    for p in again:
        if p.suffix in (".csv", ".html"):  # the workbooks' zips carry the time they were made
            assert p.read_bytes() == fresh[p.name].read_bytes(), p.name
        if p.name not in rewritten:
            assert p.read_bytes() == before[p.name][1], p.name
    was = before["off01_worklist.csv"][1].decode("utf-8-sig").splitlines(keepends=True)
    assert len(list(csv.reader(was))) - 1 == csv_rows(out / "off01_worklist.csv") + 1

    inodes = {p.name: p.stat().st_ino for p in again}
    notice = SyncNotice(
        attempted_at=datetime(2026, 3, 1, 1, 0, tzinfo=UTC), data_as_of=None, failed=("x",)
    )
    third = write_deliverables(changed, out, day, report_rules, notice=notice)
    assert all(p.stat().st_ino != inodes[p.name] for p in third)


def test_the_district_charts_need_only_the_columns_kept_officers_hand_them(
    report_marts: dict[str, pa.Table], report_rules: AlertRules
) -> None:
    """The district's charts are drawn from DISTRICT_CHART_COLUMNS of every officer's rows,
    taken at once (an officer whose files are kept is not laid out): the charts are the same
    as from their whole reports."""
    from sammachip.reports.html_report import district_charts
    from sammachip.reports.officer_lists import officer_cuts

    day = date(2026, 3, 1)
    whole = district_charts(deliverables.officer_reports(report_marts, day, report_rules))
    cuts = officer_cuts(report_marts, report_rules)
    assert district_charts([deliverables._charted(cuts, report_marts, day)]) == whole
    assert whole.attendance and whole.income and whole.readiness
