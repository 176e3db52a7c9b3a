"""Answers with control characters, terminal escape sequences and bidi overrides: the warehouse
keeps them as they came; the officer's files — CSV, workbook, phone page, district page, the
e-mail — never carry them. Submissions are validated for real, the marts built, the files
written and read back as Excel, a CSV reader and a browser would."""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from sammachip.connectors.kobo import to_submission
from sammachip.marts import build_marts
from sammachip.marts.rules import AlertRules, Officer
from sammachip.reports.deliverables import write_deliverables
from sammachip.reports.mailer import MailSettings, compose
from sammachip.reports.officer_lists import officer_reports
from sammachip.schemas.batch import validate_form
from sammachip.schemas.records import Submission
from sammachip.schemas.tables import CLEAN_TABLES
from sammachip.schemas.validation import SuiteRunner

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
# What a phone keyboard, a paste from a terminal or a hostile enumerator can put in an answer.
HOSTILE = "\x00\x07\x08\x7f\x1b[31m\x1b]0;owned\x07\u202e\u2066"
SHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
RULES = AlertRules(roster=(Officer("off01", "นางสาวพรทิพย์ ศรีสุข", ("341401",), "o@x.org"),))
HOUSEHOLD = {
    "hh/village_code": "34140101",
    "hh/house_no": "51",
    "head/name": "นายอุดม ทองแสง",
    "head/national_id": "3341404166027",
    "members": "3",
    "occupation": "mushroom",
    "baseline_income": "6000",
}


HOUSEHOLD_FORM = "sammachip_household"


def household(_id: int, **answers: str) -> Submission:
    raw = {
        "_id": _id,
        "_submission_time": "2026-11-20T03:00:00",
        "__version__": "v1",
        "meta/instanceID": f"uuid:{_id}",
        **HOUSEHOLD,
        **answers,
    }
    return to_submission(raw, server="kf.test", asset_uid="aHouseholds", form_id=HOUSEHOLD_FORM)


@pytest.fixture(scope="module")
def written(suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    subs = [
        household(1, **{"hh/hh_code": f"34140101-07{HOSTILE}"}),  # a code to fix
        household(2, **{"hh/hh_code": "34140101-08", "members": f"4{HOSTILE}"}),
    ]
    result = validate_form(HOUSEHOLD_FORM, subs, suite_runner, batch="b", now=NOW)
    tables = {n: pa.Table.from_pylist([], schema=t.schema) for n, t in CLEAN_TABLES.items()}
    tables.update({**result.tables, "quarantine": result.quarantine})
    marts = build_marts(tables, {}, TODAY, RULES)
    out = tmp_path_factory.mktemp("reports") / TODAY.isoformat()
    files = write_deliverables(marts, out, TODAY, RULES)
    return subs, result, marts, files


def texts(files: list[Path]) -> dict[str, str]:
    """Each file as its reader sees it: CSV cells, workbook cells, the page's source."""
    seen = {}
    for path in files:
        if path.suffix == ".csv":
            with open(path, encoding="utf-8-sig", newline="") as f:
                seen[path.name] = "\n".join(" | ".join(row) for row in csv.reader(f))
        elif path.suffix == ".xlsx":
            wb = load_workbook(path, read_only=True)
            seen[path.name] = "\n".join(
                str(v)
                for ws in wb.worksheets
                for row in ws.iter_rows(values_only=True)
                for v in row
                if v is not None
            )
        elif path.suffix == ".html":
            seen[path.name] = path.read_text(encoding="utf-8")
    return seen


def test_the_warehouse_keeps_the_answers_as_they_came(written) -> None:  # type: ignore[no-untyped-def]
    subs, result, _, _ = written
    assert HOSTILE in subs[0].payload["hh/hh_code"]  # the raw payload, byte-exact
    values = result.quarantine.column("value").to_pylist()
    assert any(HOSTILE in (v or "") for v in values)  # what the enumerator typed, kept


def test_no_officer_file_carries_a_control_character(written) -> None:  # type: ignore[no-untyped-def]
    _, result, marts, files = written
    assert len(result.quarantined_keys) == 2
    shown = texts(files)
    assert {"off01_alerts.csv", "off01.xlsx", "off01.html", "index.html"} <= set(shown)
    lists = shown["off01_alerts.csv"] + shown["off01.xlsx"] + shown["off01.html"]
    assert "34140101-07" in lists and "34140101-08" in lists  # both submissions to fix
    for name, text in shown.items():
        assert not SHOWN.findall(text), name
        assert "[31m" not in text and "owned" not in text, name  # escape sequences, whole
    report = next(r for r in officer_reports(marts, TODAY, RULES) if r.officer_id == "off01")
    mail = MailSettings(host="127.0.0.1", port=25, sender="cdd@example.org", security="none")
    body = compose(report, [], mail).get_body().get_content()  # type: ignore[union-attr]
    assert body.count("นายอุดม ทองแสง: ข้อมูลต้องแก้ไข") == 2  # both households to fix
    assert not SHOWN.findall(body)
