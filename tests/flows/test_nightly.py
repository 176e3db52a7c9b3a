"""The nightly flow end to end: the Kobo simulator over loopback HTTP, real Prefect, real GX,
real Parquet read back with DuckDB. One cohort, several runs sharing the same set-up."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest

from sammachip.flows.nightly import RunSummary, nightly, reconcile
from sammachip.flows.settings import DEFAULT_CONFIG
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.faults import Fault
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect

TODAY = date(2026, 11, 24)
TOKEN = "f" * 40


@dataclass
class Runs:
    workdir: Path
    store: KoboStore
    assets: dict[str, str]
    first: RunSummary
    second: RunSummary
    tables_after_first: dict[str, list[tuple]]
    tables_after_second: dict[str, list[tuple]]


def snapshot_tables(workdir: Path) -> dict[str, list[tuple]]:
    con = connect(open_warehouse(str(workdir / "data" / "warehouse")))
    names = [
        r[0]
        for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()
        if not r[0].startswith("_")
    ]
    volatile = {"valid_from", "ingest_batch", "ingested_at", "quarantined_at", "run_at"}
    out = {}
    for name in names:
        cols = [c for c in con.execute(f"describe {name}").fetchall() if c[0] not in volatile]
        select = ", ".join(f'"{c[0]}"::VARCHAR' for c in cols)
        out[name] = sorted(con.execute(f"select {select} from {name}").fetchall(), key=str)
    return out


@pytest.fixture(scope="module")
def runs(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    workdir = tmp_path_factory.mktemp("nightly")
    cohort = generate_cohort(CohortSpec(seed=7, villages=4, today=TODAY))
    store = KoboStore()
    assets = seed_from_cohort(store, cohort)
    with serve_kobo(store, TOKEN, max_page_size=50) as url:  # small cap: forces many pages
        os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"] = url, TOKEN
        try:
            first = nightly(workdir=str(workdir), today=TODAY)
            after_first = snapshot_tables(workdir)
            second = nightly(workdir=str(workdir), today=TODAY)
            after_second = snapshot_tables(workdir)
            yield Runs(workdir, store, assets, first, second, after_first, after_second)
        finally:
            del os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"]


def test_every_registered_form_is_synced(runs: Runs) -> None:
    assert {f.form_id for f in runs.first.forms} == set(runs.assets)
    assert not [f.error for f in runs.first.forms if f.error]


def test_counts_reconcile_fetched_equals_clean_plus_quarantined(runs: Runs) -> None:
    for form in runs.first.forms:
        assert form.fetched == form.new_versions == form.clean + form.quarantined, form
    assert sum(f.quarantined for f in runs.first.forms) > 0  # the cohort carries dirty data


def test_the_warehouse_agrees_with_the_server(runs: Runs) -> None:
    con = connect(open_warehouse(str(runs.workdir / "data" / "warehouse")))
    for form in runs.first.forms:
        on_server = runs.store.count(runs.assets[form.form_id])
        raw = con.execute(
            f"select count(distinct submission_key) from raw_submissions "
            f"where form_id = '{form.form_id}'"
        ).fetchone()[0]
        quarantined = con.execute(
            f"select count(distinct submission_key) from quarantine "
            f"where form_id = '{form.form_id}'"
        ).fetchone()[0]
        assert raw == on_server
        assert form.clean + quarantined == on_server


def test_clean_tables_hold_one_row_per_submission(runs: Runs) -> None:
    con = connect(open_warehouse(str(runs.workdir / "data" / "warehouse")))
    for table in ("households", "sages", "sessions", "materials", "income_surveys", "groups"):
        total, distinct = con.execute(
            f"select count(*), count(distinct submission_key) from {table}"
        ).fetchone()
        assert total == distinct > 0, table


def test_a_second_run_with_nothing_new_changes_nothing(runs: Runs) -> None:
    # The overlap and look-back passes re-read recent submissions: nothing new comes of it.
    assert all(f.new_versions == f.clean == f.quarantined == 0 for f in runs.second.forms)
    assert runs.tables_after_second == runs.tables_after_first


def test_each_first_cut_alert_rule_finds_households(runs: Runs) -> None:
    for rule in (
        "R03_LOW_ATTENDANCE",
        "R04_TRAINED_NO_MATERIALS",
        "R05_NO_FOLLOWUP_INCOME",
        "R09_DATA_TO_FIX",
    ):
        assert runs.first.alerts_by_rule.get(rule, 0) > 0, rule
    assert runs.first.otop_by_status


def test_gx_data_docs_are_built_beside_the_officer_files(runs: Runs) -> None:
    docs = runs.first.data_docs
    assert docs is not None and docs.name == "index.html" and docs.exists()
    assert list((docs.parent / "validations").rglob("*.html"))  # this run's validation results
    assert "<script" not in docs.read_text(encoding="utf-8")  # rewritten to render offline


def test_officers_get_thai_csv_lists_with_a_bom(runs: Runs) -> None:
    names = {p.name for p in runs.first.report_files}
    assert {"off01_alerts.csv", "off01_otop.csv"} <= names
    path = next(p for p in runs.first.report_files if p.name == "off01_alerts.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with open(path, encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[1] == "เรื่อง (issue)" and rows


def test_a_late_submission_is_picked_up_by_the_next_run(runs: Runs) -> None:
    answers = {
        "hh/village_code": "34140101",
        "hh/hh_code": "34140101-99",
        "hh/house_no": "๙๙",
        "head/name": "นายทดสอบ มาช้า",
        "head/national_id": "1112034563562",
        "head/phone": "+66812345678",
        "members": "3",
        "occupation": "cricket",
        "baseline_income": "6000",
        "end": "2026-11-20T10:00:00.000+07:00",
    }
    runs.store.submit(runs.assets["sammachip_household"], answers, datetime(2026, 11, 24, 1, 0))
    third = nightly(workdir=str(runs.workdir), today=TODAY)
    household = next(f for f in third.forms if f.form_id == "sammachip_household")
    assert (household.new_versions, household.clean, household.quarantined) == (1, 1, 0)
    con = connect(open_warehouse(str(runs.workdir / "data" / "warehouse")))
    row = con.execute(
        "select house_no, phone from households where hh_code = '34140101-99'"
    ).fetchone()
    assert row == ("99", "0812345678")


def warehouse_sql(runs: Runs, sql: str) -> list[tuple]:
    return connect(open_warehouse(str(runs.workdir / "data" / "warehouse"))).execute(sql).fetchall()


def test_a_review_rejection_keeps_the_row_but_leaves_the_marts(runs: Runs) -> None:
    hh, sid = warehouse_sql(
        runs,
        """
        select h.hh_code, h.submission_id from households h
        join alerts a on a.subject_id = h.hh_code
        where h.review_status is null order by h.hh_code limit 1""",
    )[0]
    uid = runs.assets["sammachip_household"]
    runs.store.set_validation_status(
        uid, int(sid), "validation_status_not_approved", "reviewer", int(datetime.now().timestamp())
    )
    nightly(workdir=str(runs.workdir), today=TODAY)
    assert warehouse_sql(runs, f"select review_status from households where hh_code = '{hh}'") == [
        ("not_approved",)
    ]
    open_alerts = f"select count(*) from alerts where subject_id = '{hh}' and status = 'open'"
    assert warehouse_sql(runs, open_alerts) == [(0,)]


def test_reconcile_catches_old_edits_and_tombstones_deletions(runs: Runs) -> None:
    uid = runs.assets["sammachip_household"]
    (edited, deleted) = warehouse_sql(
        runs,
        """
        select submission_id from households where deleted_at is null and review_status is null
        order by submitted_at limit 2""",
    )
    runs.store.edit(uid, int(edited[0]), {"members": "9"})  # months old: past the look-back
    runs.store.delete(uid, int(deleted[0]))
    nightly(workdir=str(runs.workdir), today=TODAY)
    members = f"select members from households where submission_id = '{edited[0]}'"
    assert warehouse_sql(runs, members) != [(9,)]  # the nightly look-back cannot see it

    summary = reconcile(workdir=str(runs.workdir), today=TODAY)
    household = next(f for f in summary.forms if f.form_id == "sammachip_household")
    assert (household.new_versions, household.deleted) == (1, 1)
    assert warehouse_sql(runs, members) == [(9,)]
    versions = f"""select count(*) from raw_submissions where form_id = 'sammachip_household'
                   and submission_id = '{edited[0]}'"""
    assert warehouse_sql(runs, versions) == [(2,)]  # raw keeps every version
    gone = warehouse_sql(
        runs,
        f"""select deleted_at is not null, (select bool_or(deleted)
        from raw_submissions r where r.submission_id = h.submission_id
        and r.form_id = 'sammachip_household') from households h
        where submission_id = '{deleted[0]}'""",
    )
    assert gone == [(True, True)]  # a tombstone, never a physical delete


def test_a_quarantined_submission_re_enters_when_an_edit_fixes_it(runs: Runs) -> None:
    uid = runs.assets["sammachip_household"]
    ((sid, hh),) = warehouse_sql(
        runs,
        """
        select submission_id, business_key from quarantine
        where form_id = 'sammachip_household' and column_name = 'national_id'
        and expectation like '%thai_national_id' order by 1 limit 1""",
    )
    runs.store.edit(uid, int(sid), {"head/national_id": "1112034563562"})  # a valid ID now
    reconcile(workdir=str(runs.workdir), today=TODAY)
    assert warehouse_sql(
        runs,
        f"select count(*) from quarantine where submission_id = '{sid}'"
        " and form_id = 'sammachip_household'",
    ) == [(0,)]
    assert warehouse_sql(runs, f"select hh_code from households where submission_id = '{sid}'") == [
        (hh,)
    ]


def test_a_form_that_fails_for_good_does_not_stop_the_others(runs: Runs) -> None:
    uid = runs.assets["sammachip_group"]
    runs.store.faults.add(Fault("status", 403, target=uid))
    summary = nightly(workdir=str(runs.workdir), today=TODAY)
    failed = [f for f in summary.forms if f.error]
    assert [f.form_id for f in failed] == ["sammachip_group"]
    assert "403" in failed[0].error and "share the project" in failed[0].error
    assert len([f for f in summary.forms if not f.error]) == len(runs.assets) - 1


def test_attachments_are_listed_and_downloaded_once(runs: Runs, tmp_path: Path) -> None:
    uid = runs.assets["sammachip_group"]
    (sid,) = warehouse_sql(runs, "select submission_id from groups order by 1 limit 1")[0]
    photo = "ผลิตภัณฑ์ กลุ่ม.jpg".encode()  # the bytes do not matter, their safe arrival does
    runs.store.attach(uid, int(sid), "product/photo", "ผลิตภัณฑ์ กลุ่ม.jpg", photo, "image/jpeg")
    runs.store.faults.add(Fault("reset", target="/attachments/"))  # the first try drops
    config = tmp_path / "office.toml"
    config.write_text(
        DEFAULT_CONFIG.read_text(encoding="utf-8").replace("download = false", "download = true"),
        encoding="utf-8",
    )
    first = reconcile(config=str(config), workdir=str(runs.workdir), today=TODAY)
    assert first.attachments == (1, 0)
    files = list((runs.workdir / "data" / "attachments").rglob("*.jpg"))
    assert [f.read_bytes() for f in files] == [photo]
    assert warehouse_sql(runs, "select basename, mimetype from attachments") == [
        ("ผลิตภัณฑ์ กลุ่ม.jpg", "image/jpeg")
    ]
    again = nightly(config=str(config), workdir=str(runs.workdir), today=TODAY)
    assert again.attachments == (0, 0)  # already on disk: skipped
