"""The follow-up visits' figures in the officers' files: the `followup_outcomes` mart on the
district's page and in each officer's workbook and phone page — the share closed by a visit
beside closed-by-a-visit of closed-in-all, the median days to close beside how many closings
it is the median of, the coverage beside visited of listed. Read back, they are the mart's."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from sammachip.marts.rules import AlertRules
from sammachip.reports.deliverables import write_deliverables
from sammachip.schemas.tables import FOLLOWUP_OUTCOMES_SCHEMA
from tests.reports.conftest import DATA_AS_OF, REPORT_DAY

SHEET = "ติดตามเยี่ยม (follow-ups)"
DISTRICT = ("district", "district", "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ")
OFF01 = ("officer", "off01", "นางสาวพรทิพย์ ศรีสุข")
R04 = ("R04_TRAINED_NO_MATERIALS", "อบรมแล้วยังไม่ได้รับวัสดุ")
R05 = ("R05_NO_FOLLOWUP_INCOME", "ยังไม่ติดตามรายได้")


def outcome(
    scope: tuple[str, str, str],
    rule: tuple[str, str] | None,
    by_visit: int,
    by_data: int,
    days: float | None,
    listed: int | None = None,
    visited: int | None = None,
) -> dict[str, Any]:
    return {
        "scope": scope[0],
        "scope_code": scope[1],
        "scope_name": scope[2],
        "rule_id": rule[0] if rule else None,
        "rule_th": rule[1] if rule else None,
        "closed_by_visit": by_visit,
        "closed_by_data": by_data,
        "days_to_close": days,
        "items_open": listed,
        "items_visited": visited,
        "coverage": visited / listed if listed else None,
        "as_of": REPORT_DAY,
    }


# Two nights of visits: off01 closed three items in the field, the data closed two more.
MART = [
    outcome(DISTRICT, None, 3, 2, 4.0, listed=12, visited=5),
    outcome(DISTRICT, R04, 1, 2, 3.0),
    outcome(DISTRICT, R05, 2, 0, 4.5),
    outcome(OFF01, None, 3, 2, 4.0, listed=7, visited=5),
    outcome(OFF01, R04, 1, 2, 3.0),
    outcome(OFF01, R05, 2, 0, 4.5),
    outcome(("officer", "off02", "นายสมชาย บุญมา"), None, 0, 0, None, listed=5, visited=0),
]


@pytest.fixture(scope="module")
def out(
    report_marts: dict[str, pa.Table],
    report_rules: AlertRules,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    marts = {
        **report_marts,
        "followup_outcomes": pa.Table.from_pylist(MART, FOLLOWUP_OUTCOMES_SCHEMA),
    }
    folder = tmp_path_factory.mktemp("followups") / REPORT_DAY.isoformat()
    write_deliverables(marts, folder, REPORT_DAY, report_rules, data_as_of=DATA_AS_OF)
    return folder


class _Table(HTMLParser):
    """The rows of the page's follow-up table, each a list of its cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._inside = self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._inside = ("class", "followups") in attrs
        elif self._inside and tag == "tr":
            self.rows.append([])
        elif self._inside and tag in ("td", "th"):
            self.rows[-1].append("")
            self._cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif tag in ("td", "th"):
            self._cell = False

    def handle_data(self, data: str) -> None:
        if self._inside and self._cell:
            self.rows[-1][-1] += data


def page_rows(path: Path) -> list[list[str]]:
    parser = _Table()
    parser.feed(path.read_text(encoding="utf-8"))
    return [[" ".join(c.split()) for c in row] for row in parser.rows[1:]]  # under the header


def shown(r: dict[str, Any]) -> list[str]:
    """A mart row as the page must show it: each figure with what it is made of."""
    closed = r["closed_by_visit"] + r["closed_by_data"]
    share = f"{100 * r['closed_by_visit'] / closed:.1f}% ({r['closed_by_visit']}/{closed})"
    days = r["days_to_close"]
    coverage = (
        f"{100 * r['coverage']:.1f}% ({r['items_visited']}/{r['items_open']})"
        if r["items_open"] is not None
        else "–"
    )
    return [
        r["rule_th"] or "ทุกเรื่อง (all issues)",
        share if closed else "– (0/0)",
        str(r["closed_by_data"]),
        f"{days:.1f} (จาก {r['closed_by_visit']})" if days is not None else "–",
        coverage,
    ]


def test_the_district_page_shows_the_districts_rows(out: Path) -> None:
    assert page_rows(out / "index.html") == [shown(r) for r in MART if r["scope"] == "district"]
    assert page_rows(out / "index.html")[0] == [
        "ทุกเรื่อง (all issues)",
        "60.0% (3/5)",
        "2",
        "4.0 (จาก 3)",
        "41.7% (5/12)",
    ]


def test_each_officers_phone_page_shows_their_rows(out: Path) -> None:
    assert page_rows(out / "off01.html") == [shown(r) for r in MART if r["scope_code"] == "off01"]
    assert page_rows(out / "off02.html") == [
        ["ทุกเรื่อง (all issues)", "– (0/0)", "0", "–", "0.0% (0/5)"]
    ]


def test_each_officers_workbook_has_their_rows_with_what_each_figure_is_made_of(
    out: Path,
) -> None:
    ws = load_workbook(out / "off01.xlsx")[SHEET]
    header = [str(c.value).split("\n")[0] for c in ws[2]]
    rows = [
        dict(zip(header, (c.value for c in row), strict=True)) for row in ws.iter_rows(min_row=3)
    ]
    mine = [r for r in MART if r["scope_code"] == "off01"]
    assert len(rows) == len(mine)
    for got, want in zip(rows, mine, strict=True):
        closed = want["closed_by_visit"] + want["closed_by_data"]
        assert got["เรื่อง"] == (want["rule_th"] or "ทุกเรื่อง (all issues)")
        assert (got["ปิดด้วยการเยี่ยม"], got["ปิดทั้งหมด"]) == (want["closed_by_visit"], closed)
        assert got["สัดส่วนปิดด้วยการเยี่ยม"] == pytest.approx(want["closed_by_visit"] / closed)
        assert got["ปิดเพราะข้อมูลเปลี่ยน"] == want["closed_by_data"]
        assert got["มัธยฐานวันที่ใช้ปิด"] == want["days_to_close"]
        assert (got["เยี่ยมแล้ว"], got["รายการวันนี้"]) == (want["items_visited"], want["items_open"])
        assert got["ความครอบคลุมการติดตาม"] == (
            pytest.approx(want["coverage"]) if want["coverage"] is not None else None
        )
    share, days = ws.cell(3, header.index("สัดส่วนปิดด้วยการเยี่ยม") + 1), ws.cell(3, 7)
    assert (share.number_format, days.number_format) == ("0.0%", "0.0")
    assert ws["A1"].value == "ข้อมูล ณ 01/03/2569 08:00 น. (data as of)"


def test_an_officer_with_no_visits_yet_gets_the_coverage_of_their_list(out: Path) -> None:
    ws = load_workbook(out / "off02.xlsx")[SHEET]
    assert [c.value for c in ws[3]][-3:] == [0, 0, 5]  # coverage 0 of 5 listed


def test_the_sheet_follows_the_kpis(out: Path) -> None:
    assert load_workbook(out / "off01.xlsx").sheetnames[-2:] == ["ตัวชี้วัด (KPI)", SHEET]
