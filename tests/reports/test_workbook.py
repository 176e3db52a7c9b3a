"""The officer's workbook, opened as Excel would: today's worklist first, typed cells (dates
that sort as dates, shown in the Buddhist Era; priorities that sort as numbers, shown as Thai
words; percentages), a frozen header that repeats on printed pages, widths for Thai, inert
text."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from sammachip.reports.labels import ALERT_COLUMNS, WORKLIST_COLUMNS
from sammachip.reports.workbook import BE_DATE, PERCENT, PRIORITY_WORDS, text_width

HEADER_ROW = 2  # under the "data as of" line


@pytest.fixture(scope="module")
def sheets(report_dir: Path) -> dict[str, Worksheet]:
    wb = load_workbook(report_dir / "off01.xlsx")
    return {ws.title: ws for ws in wb.worksheets}


def cells(ws: Worksheet, header_start: str) -> list:  # type: ignore[type-arg]
    for col in ws.iter_cols(min_row=HEADER_ROW):
        if str(col[0].value).startswith(header_start):
            return list(col[1:])
    raise KeyError(header_start)


def column(ws: Worksheet, header_start: str) -> list[object]:
    return [c.value for c in cells(ws, header_start)]


def test_today_is_the_first_sheet(sheets: dict[str, Worksheet]) -> None:
    assert list(sheets) == [
        "วันนี้ (today)",
        "ภายหลัง (later)",
        "เลื่อนไว้ (snoozed)",
        "ความพร้อม OTOP (readiness)",
        "ตัวชี้วัด (KPI)",
        "ติดตามเยี่ยม (follow-ups)",
    ]


def test_each_sheet_says_how_current_its_data_are(sheets: dict[str, Worksheet]) -> None:
    for ws in sheets.values():
        assert ws["A1"].value == "ข้อมูล ณ 01/03/2569 08:00 น. (data as of)", ws.title


def test_one_row_per_entry_in_visiting_order_with_where_to_go(
    sheets: dict[str, Worksheet], hostile: SimpleNamespace
) -> None:
    ws = sheets["วันนี้ (today)"]
    assert column(ws, "ลำดับ") == [1, 2, 3, 4, 5]
    assert column(ws, "ชื่อ/เรื่อง")[:2] == [hostile.formula, hostile.script]
    households = [i for i, t in enumerate(column(ws, "ประเภท")) if str(t).startswith("ครัวเรือน")]
    for name in ("หมู่บ้าน", "หมู่ที่", "บ้านเลขที่", "โทรศัพท์"):
        assert all(column(ws, name)[i] for i in households), name
    assert column(ws, "โทรศัพท์")[0] == "081-123-4567"  # text: the leading 0 stays
    reasons = column(ws, "เหตุผล")[0]
    assert reasons.count("•") == 2 and "ยังไม่ติดตามรายได้" in reasons  # both reasons, one cell
    calls = column(ws, "รายชื่อที่ต้องโทร")[2]
    assert calls.count("\n") == 2 and "084-123-4567" in calls  # the session's call list
    assert len(list(sheets["ภายหลัง (later)"].rows)) - HEADER_ROW == 8


def test_dates_are_date_cells_shown_in_the_buddhist_era(sheets: dict[str, Worksheet]) -> None:
    for title, header in [
        ("วันนี้ (today)", "ดำเนินการภายใน"),
        ("ภายหลัง (later)", "พบครั้งแรก"),
        ("เลื่อนไว้ (snoozed)", "ดำเนินการภายใน"),
    ]:
        due = cells(sheets[title], header)
        assert due and all(c.is_date and c.number_format == BE_DATE for c in due), title
        assert all(isinstance(c.value, datetime) for c in due)
    # so sorting by the column sorts by date, not by day of month
    due = column(sheets["ภายหลัง (later)"], "ดำเนินการภายใน")
    assert due == sorted(due) and due[0] < due[-1]
    assert column(sheets["วันนี้ (today)"], "เลยกำหนด")[0] == 4  # days overdue: a number


def test_priorities_sort_as_numbers_and_read_as_thai_words(sheets: dict[str, Worksheet]) -> None:
    for title in ("วันนี้ (today)", "เลื่อนไว้ (snoozed)"):
        priority = cells(sheets[title], "ความสำคัญ" if "today" in title else "ลำดับความสำคัญ")
        assert all(isinstance(c.value, int) for c in priority)
        assert all(c.number_format == PRIORITY_WORDS for c in priority)
    assert PRIORITY_WORDS == '[=1]"ด่วน";[=2]"สำคัญ";"ติดตาม"'


def test_kpis_are_numbers_shown_as_percentages(sheets: dict[str, Worksheet]) -> None:
    ws = sheets["ตัวชี้วัด (KPI)"]
    for header in ("ผล", "เป้าหมาย"):
        shares = [c for c in cells(ws, header) if c.value is not None]
        assert shares and all(isinstance(c.value, float) for c in shares)
        assert all(c.number_format == PERCENT for c in shares)
    assert 0.85 in column(ws, "เป้าหมาย")
    assert None in column(ws, "เป้าหมาย")  # followed up X of Y: a figure without a target
    for header in ("ตัวตั้ง", "ตัวหาร"):  # what each share is made of
        assert all(isinstance(n, int) for n in column(ws, header))


def test_thai_headers_frozen_filtered_and_printed_on_every_page(
    sheets: dict[str, Worksheet],
) -> None:
    ws = sheets["วันนี้ (today)"]
    headers = [c.value for c in ws[HEADER_ROW]]
    assert headers[:3] == ["ลำดับ\n(order)", "ความสำคัญ\n(priority)", "ชื่อ/เรื่อง\n(who/what)"]
    assert len(headers) == len(WORKLIST_COLUMNS)
    alerts = sheets["เลื่อนไว้ (snoozed)"]
    assert len(list(alerts[HEADER_ROW])) == len(ALERT_COLUMNS)
    for ws in sheets.values():
        assert ws.freeze_panes == "A3", ws.title
        assert ws.auto_filter.ref.startswith("A2:"), ws.title
        assert ws.print_title_rows == "$2:$2", ws.title
        assert ws.page_setup.orientation == "landscape"


def test_columns_are_wide_enough_for_thai_text(sheets: dict[str, Worksheet]) -> None:
    ws = sheets["วันนี้ (today)"]

    def width(index: int) -> float:  # columns of one width are stored as one range
        return next(d.width for d in ws.column_dimensions.values() if d.min <= index <= d.max)

    for col in ws.iter_cols(min_row=HEADER_ROW + 1):
        lines = [line for c in col if isinstance(c.value, str) for line in c.value.split("\n")]
        longest = max((text_width(line) for line in lines), default=0)
        assert width(col[0].column) >= min(longest, 60), col[0].column_letter
    # tone marks and vowels above/below the line take no width
    assert text_width("ผ่านการอบรม") == 10 and text_width("ที่") == 1


def test_hostile_text_stays_text(
    sheets: dict[str, Worksheet], report_dir: Path, hostile: SimpleNamespace
) -> None:
    every = [c for ws in sheets.values() for row in ws.iter_rows() for c in row]
    formula = [c for c in every if c.value == hostile.formula]
    assert formula and all(c.data_type == "s" and c.quotePrefix for c in formula)
    assert any(c.value == hostile.pipe and c.quotePrefix for c in every)
    assert not [c for c in every if hostile.national_id in str(c.value)]
    with zipfile.ZipFile(report_dir / "off01.xlsx") as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    assert "<f>" not in xml and "<f " not in xml  # no formula anywhere in the workbook
