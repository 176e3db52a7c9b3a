"""What each worklist entry is said to be about (the "type" column and the card's first line),
the same in the workbook, the worklist CSV and the phone page: a session is a call list only
when it has households to call; a planned session not held (R10) is the session itself."""

from __future__ import annotations

import csv
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from sammachip.marts.rules import AlertRules
from sammachip.reports.deliverables import write_deliverables
from sammachip.schemas.tables import WORKLIST_SCHEMA
from tests.reports.conftest import DATA_AS_OF, REPORT_DAY
from tests.reports.worklist_fixture import entry, reason

NOT_HELD = "อบรมอาชีพ T34140301-9 ยังไม่ได้จัด"  # off02's only entry today
CALLS = "โทรแจ้ง 3 ครัวเรือนก่อนวันที่"  # off01's session with a call list
SESSION, CALL_LIST = "กิจกรรม (session)", "โทรแจ้งก่อนกิจกรรม (call list)"


@pytest.fixture(scope="module")
def out(report_marts: dict[str, pa.Table], report_rules: AlertRules, tmp_path_factory: Any) -> Path:
    """The fixture's worklist, with off02's entry a session planned a week ago and not held."""
    ago = REPORT_DAY - timedelta(days=7)
    not_held = entry(
        REPORT_DAY,
        "session",
        "T34140301-9",
        "34140301",
        NOT_HELD,
        [reason("R10", "T34140301-9", REPORT_DAY, "กำหนดจัดเมื่อ 7 วันก่อน", ago)],
        bucket="today",
        order=1,
    )
    rows = [r for r in report_marts["worklist"].to_pylist() if r["officer_id"] != "off02"]
    marts = {
        **report_marts,
        "worklist": pa.Table.from_pylist([*rows, not_held], schema=WORKLIST_SCHEMA),
    }
    folder = tmp_path_factory.mktemp("types") / REPORT_DAY.isoformat()
    write_deliverables(marts, folder, REPORT_DAY, report_rules, data_as_of=DATA_AS_OF)
    return folder


def workbook_types(path: Path) -> dict[str, str]:
    """Title → type, from the workbook's "today" sheet as Excel opens it."""
    ws = load_workbook(path).worksheets[0]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    header = [str(h).split("\n")[0] for h in rows[0]]
    title, kind = header.index("ชื่อ/เรื่อง"), header.index("ประเภท")
    return {r[title]: r[kind] for r in rows[1:]}


def csv_types(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["ชื่อ/เรื่อง (who/what)"]: r["ประเภท (type)"] for r in rows}


class _Cards(HTMLParser):
    """Each worklist card's title (its h3 without the order and priority) and the first line
    under it (type · place)."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, str] = {}
        self._in: list[str] = []  # open tags of interest: "h3", "span", "meta"
        self._title = ""
        self._meta: str | None = None
        self._entry = False  # inside a worklist entry's card (class "card p<priority>")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag == "div" and cls.startswith("card p"):
            self._entry = True
        elif not self._entry:
            return
        if tag == "h3" or (tag == "span" and self._in[-1:] == ["h3"]):
            self._in.append(tag)
            self._title = "" if tag == "h3" else self._title
        elif tag == "div" and cls == "meta" and self._title and self._meta is None:
            self._in.append("meta")
            self._meta = ""

    def handle_endtag(self, tag: str) -> None:
        closes = {"h3": "h3", "span": "span", "div": "meta"}.get(tag)
        if not self._in or closes != self._in[-1]:
            return
        if self._in.pop() == "meta":
            self.cards[self._title.strip()] = self._meta or ""
            self._title, self._meta, self._entry = "", None, False

    def handle_data(self, data: str) -> None:
        if self._in[-1:] == ["h3"]:
            self._title += data
        elif self._in[-1:] == ["meta"]:
            self._meta = (self._meta or "") + data


def page_types(path: Path) -> dict[str, str]:
    parser = _Cards()
    parser.feed(path.read_text(encoding="utf-8"))
    return {title: meta.split(" · ")[0] for title, meta in parser.cards.items()}


def by_start(types: dict[str, str], start: str) -> str:
    (kind,) = [k for title, k in types.items() if title.startswith(start)]
    return kind


def test_a_session_not_held_is_labelled_a_session_in_every_file(out: Path) -> None:
    assert workbook_types(out / "off02.xlsx") == {NOT_HELD: SESSION}
    assert csv_types(out / "off02_worklist.csv") == {NOT_HELD: SESSION}
    assert page_types(out / "off02.html") == {NOT_HELD: SESSION}


def test_a_session_with_households_to_call_is_labelled_a_call_list_in_every_file(
    out: Path,
) -> None:
    assert by_start(workbook_types(out / "off01.xlsx"), CALLS) == CALL_LIST
    assert by_start(csv_types(out / "off01_worklist.csv"), CALLS) == CALL_LIST
    assert by_start(page_types(out / "off01.html"), CALLS) == CALL_LIST
