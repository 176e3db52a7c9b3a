"""The data manager's page: what each enumerator must correct, from a real warehouse.

Household registrations from a Kobo server (one sent by an enumerator's account, one through
the anonymous link) and from ODK Central (an app user with a Thai display name) are validated
by the real suites and loaded; those held back are listed per enumerator, as the page and as
one CSV each the data manager can send."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sammachip.connectors.kobo import to_submission as kobo_submission
from sammachip.connectors.odk.client import to_submission as odk_submission
from sammachip.reports import fixes as fixes_module
from sammachip.reports.cells import be_date
from sammachip.reports.fixes import (
    ANONYMOUS,
    PAGE,
    Senders,
    enumerator_fixes,
    fixes_file,
    write_fixes,
)
from sammachip.schemas.batch import validate_form
from sammachip.schemas.records import Submission
from sammachip.schemas.validation import SuiteRunner
from sammachip.warehouse.housekeeping import compact
from sammachip.warehouse.load import FormLoader, open_warehouse
from sammachip.warehouse.store import Warehouse

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
FORM = "sammachip_household"
BAD_ID = "3341404166020"  # the checksum says ...7
GOOD_ID = "3341404166027"


def kobo(_id: int, by: str | None, national_id: str, name: str) -> Submission:
    raw = {
        "_id": _id,
        "_submission_time": "2026-11-20T03:00:00",
        "__version__": "v1",
        "meta/instanceID": f"uuid:{_id}",
        "_submitted_by": by,
        "hh/village_code": "34140101",
        "hh/hh_code": f"34140101-{_id:02d}",
        "hh/house_no": "51",
        "head/name": name,
        "head/national_id": national_id,
        "members": "3",
        "occupation": "mushroom",
        "baseline_income": "6000",
    }
    return kobo_submission(raw, server="kf", asset_uid="aHouseholds", form_id=FORM)


def odk(n: int, submitter: str) -> Submission:
    row = {
        "__id": f"uuid:odk-{n}",
        "__system": {
            "submissionDate": "2026-11-21T02:30:00.000Z",
            "updatedAt": None,
            "submitterId": "7",
            "submitterName": submitter,
            "reviewState": None,
            "deletedAt": None,
            "formVersion": "v1",
        },
        "meta": {"instanceID": f"uuid:odk-{n}"},
        "hh": {"village_code": "34140102", "hh_code": f"34140102-{n:02d}", "house_no": "9"},
        "head": {"name": "นางมาลี ศรีงาม", "national_id": BAD_ID},
        "members": 4,
        "occupation": "weaving",
        "baseline_income": 5000,
    }
    return odk_submission(row, server="central", project_id=1, xml_form_id=FORM, form_id=FORM)


def load(wh: Warehouse, runner: SuiteRunner, subs: list[Submission], now: datetime = NOW) -> None:
    """One run's deliveries validated and committed, as an ingest does."""
    result = validate_form(FORM, subs, runner, batch="b", now=now)
    with wh.transaction() as tx:
        loader = FormLoader(tx, FORM, "b", now)
        loader.add(result, subs, len(subs))
        loader.finish()


def district(wh: Warehouse, runner: SuiteRunner) -> None:
    load(
        wh,
        runner,
        [
            kobo(1, "enum_somchai", BAD_ID, "นายอุดม ทองแสง"),
            kobo(2, "enum_somchai", GOOD_ID, "นางสาย ใจดี"),  # clean: nothing to fix
            kobo(3, None, BAD_ID, "นายดำ ขำคม"),  # the anonymous link
        ],
    )
    load(wh, runner, [odk(1, "สมหญิง ใจงาม")])


@pytest.fixture(scope="module")
def fixes(suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:  # type: ignore[type-arg]
    wh = open_warehouse(str(tmp_path_factory.mktemp("wh")))
    district(wh, suite_runner)
    return enumerator_fixes(wh)


def test_each_answer_to_fix_names_its_enumerator(fixes: list[dict]) -> None:  # type: ignore[type-arg]
    by = {(f["enumerator"], f["who"]) for f in fixes}
    assert by == {
        ("enum_somchai", "นายอุดม ทองแสง 34140101-01"),
        (ANONYMOUS, "นายดำ ขำคม 34140101-03"),
        ("สมหญิง ใจงาม", "นางมาลี ศรีงาม 34140102-01"),
    }
    first = next(f for f in fixes if f["enumerator"] == "enum_somchai")
    assert first["form_th"] == "ทะเบียนครัวเรือนเป้าหมาย"  # the form's Thai title, not its id
    assert first["sent"] == "20/11/2569 10:00 น."  # Bangkok time, Buddhist Era
    assert first["village"] == "หมู่ 1 ต.ม่วงสามสิบ"
    assert first["reason_th"]


def test_the_page_and_one_file_per_enumerator(fixes: list[dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    files = write_fixes(fixes, tmp_path, TODAY)
    assert files[0].name == PAGE
    assert {p.name for p in files[1:]} == {
        "fixes_enum_somchai.csv",
        fixes_file(ANONYMOUS),
        fixes_file("สมหญิง ใจงาม"),
    }
    assert fixes_file("สมหญิง ใจงาม") != fixes_file("สมหญิง ใจดี")  # Thai names never share
    with open(tmp_path / "fixes_enum_somchai.csv", encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[:2] == ["แบบฟอร์ม (form)", "ครัวเรือน/บุคคล/กลุ่ม (who)"]
    assert rows and all(r[1] == "นายอุดม ทองแสง 34140101-01" for r in rows)  # theirs only
    page = (tmp_path / PAGE).read_text(encoding="utf-8")
    for said in ("enum_somchai", "สมหญิง ใจงาม", ANONYMOUS, "ทะเบียนครัวเรือนเป้าหมาย"):
        assert said in page
    assert 'href="fixes_enum_somchai.csv"' in page
    every = page + "".join(p.read_text(encoding="utf-8-sig") for p in files[1:])
    assert BAD_ID not in every  # national IDs never whole


def test_nothing_to_fix_says_so(tmp_path: Path) -> None:
    [page] = write_fixes([], tmp_path, TODAY)
    assert "ไม่มีข้อมูลที่ต้องแก้ไข (nothing to fix)" in page.read_text(encoding="utf-8")


def test_what_a_process_remembers_of_the_senders_gives_what_a_fresh_read_gives(
    suite_runner: SuiteRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve's warm ingest keeps who sent what between deliveries; after each delivery its page
    is the one a process started afresh would write: a submission edited by someone else is
    theirs now, a new one held back is listed, one corrected leaves the list."""
    wh = open_warehouse(str(tmp_path / "wh"))
    district(wh, suite_runner)
    warm = Senders()
    monkeypatch.setattr(fixes_module, "SENDERS", warm)
    assert {f["enumerator"] for f in enumerator_fixes(wh)} == {
        "enum_somchai",
        ANONYMOUS,
        "สมหญิง ใจงาม",
    }
    later = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    deliveries = [
        [kobo(1, "enum_malee", BAD_ID, "นายอุดม ทองแสง")],  # edited on another phone
        [kobo(4, "enum_somchai", BAD_ID, "นางแก้ว ใสสะอาด")],  # a new one to fix
        [kobo(3, "enum_malee", GOOD_ID, "นายดำ ขำคม")],  # corrected: nothing left to fix
    ]

    def unchanged_from_a_fresh_read() -> list[dict]:  # type: ignore[type-arg]
        remembered = enumerator_fixes(wh)
        monkeypatch.setattr(fixes_module, "SENDERS", Senders())
        assert remembered == enumerator_fixes(wh)
        monkeypatch.setattr(fixes_module, "SENDERS", warm)
        return remembered

    for subs in deliveries:
        load(wh, suite_runner, subs, later)
        remembered = unchanged_from_a_fresh_read()
    raw_files = {f for f in wh.files("raw_submissions") if "/source=kobo/" in f}
    compact(wh, min_files=2)  # the day's small raw files merged: new names, the same rows
    assert raw_files.isdisjoint(wh.files("raw_submissions"))
    assert unchanged_from_a_fresh_read() == remembered
    assert raw_files.isdisjoint(warm._files)  # what it knew of the merged files is forgotten
    assert {(f["enumerator"], f["who"]) for f in remembered} == {
        ("enum_malee", "นายอุดม ทองแสง 34140101-01"),
        ("enum_somchai", "นางแก้ว ใสสะอาด 34140101-04"),
        ("สมหญิง ใจงาม", "นางมาลี ศรีงาม 34140102-01"),
    }


def test_a_delivery_rewrites_only_its_enumerators_file_and_kept_files_match_a_fresh_write(
    fixes: list[dict],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    """What an ingest run does after each delivery: the enumerator whose answers to fix changed
    gets a new file and the page is written again; every other enumerator's file is left as it
    was (same inode, same bytes); every file is what a fresh write gives. Nothing changed:
    nothing is written."""
    out = tmp_path / "day"
    first = write_fixes(fixes, out, TODAY)
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in first}

    def rewritten(paths: list[Path]) -> set[str]:
        return {p.name for p in paths if p.stat().st_ino != before[p.name][0]}

    assert rewritten(write_fixes(fixes, out, TODAY)) == set()

    # she sent her household again, with another wrong national ID
    changed = [
        {**f, "value": "3341404166011"} if f["enumerator"] == "สมหญิง ใจงาม" else f for f in fixes
    ]
    again = write_fixes(changed, out, TODAY)
    fresh = {p.name: p for p in write_fixes(changed, tmp_path / "fresh", TODAY)}
    assert rewritten(again) == {PAGE, fixes_file("สมหญิง ใจงาม")}
    for p in again:
        assert p.read_bytes() == fresh[p.name].read_bytes(), p.name
        if p.name not in rewritten(again):
            assert p.read_bytes() == before[p.name][1], p.name

    (out / fixes_file(ANONYMOUS)).unlink()  # someone deleted a file: it is written again
    assert (out / fixes_file(ANONYMOUS)) in write_fixes(changed, out, TODAY)
    assert (out / fixes_file(ANONYMOUS)).read_bytes() == before[fixes_file(ANONYMOUS)][1]
    tomorrow = write_fixes(changed, out, date(2026, 11, 25))  # the page says the day
    assert {p.name for p in tomorrow if p.stat().st_ino != (out / p.name).stat().st_ino} == set()
    assert be_date(date(2026, 11, 25)) in (out / PAGE).read_text(encoding="utf-8")
