"""The officer's workbook: Thai sheets and headers, frozen header, filter, widths, inert cells."""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from sammachip.reports.labels import ALERT_COLUMNS
from sammachip.reports.workbook import text_width


@pytest.fixture(scope="module")
def sheets(report_dir: Path) -> dict[str, Worksheet]:
    wb = load_workbook(report_dir / "off01.xlsx")
    return {ws.title: ws for ws in wb.worksheets}


def column(ws: Worksheet, header_start: str) -> list[object]:
    for cells in ws.iter_cols():
        if str(cells[0].value).startswith(header_start):
            return [c.value for c in cells[1:]]
    raise KeyError(header_start)


def test_sheets_are_named_in_thai(sheets: dict[str, Worksheet]) -> None:
    assert list(sheets) == [
        "ใหม่วันนี้ (new today)",
        "ค้างทั้งหมด (all open)",
        "ความพร้อม OTOP (readiness)",
        "ตัวชี้วัด (KPI)",
    ]


def test_thai_headers_frozen_and_filtered(sheets: dict[str, Worksheet]) -> None:
    ws = sheets["ค้างทั้งหมด (all open)"]
    headers = [c.value for c in ws[1]]
    assert headers[:2] == ["ลำดับความสำคัญ\n(priority)", "เรื่อง\n(issue)"]
    assert len(headers) == len(ALERT_COLUMNS)
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:L{ws.max_row}"
    assert ws.max_row > len(list(sheets["ใหม่วันนี้ (new today)"].rows))
    otop = sheets["ความพร้อม OTOP (readiness)"]
    assert otop["A1"].value == "รหัสกลุ่ม\n(group)" and otop.freeze_panes == "A2"


def test_columns_are_wide_enough_for_thai_text(sheets: dict[str, Worksheet]) -> None:
    ws = sheets["ค้างทั้งหมด (all open)"]
    for cells in ws.iter_cols():
        letter = cells[0].column_letter
        longest = max(text_width(str(c.value or "")) for c in cells[1:]) if ws.max_row > 1 else 0
        assert ws.column_dimensions[letter].width >= min(longest, 60), letter
    # tone marks and vowels above/below the line take no width
    assert text_width("ผ่านการอบรม") == 10 and text_width("ที่") == 1


def test_values_are_typed_for_sorting_and_dated_in_buddhist_era(
    sheets: dict[str, Worksheet],
) -> None:
    ws = sheets["ค้างทั้งหมด (all open)"]
    assert all(isinstance(v, int) for v in column(ws, "ลำดับความสำคัญ"))
    assert all(str(v).endswith("/2569") for v in column(ws, "ดำเนินการภายใน"))
    assert all(str(p).startswith("0") for p in column(ws, "โทรศัพท์") if p)  # kept as text
    assert "เลื่อนไว้" in column(ws, "สถานะ")


def test_hostile_text_stays_text(
    sheets: dict[str, Worksheet], report_dir: Path, hostile: SimpleNamespace
) -> None:
    cells = [c for ws in sheets.values() for row in ws.iter_rows() for c in row]
    formula = [c for c in cells if c.value == hostile.formula]
    assert formula and all(c.data_type == "s" and c.quotePrefix for c in formula)
    assert any(c.value == hostile.pipe and c.quotePrefix for c in cells)  # the snooze note
    assert not [c for c in cells if hostile.national_id in str(c.value)]
    with zipfile.ZipFile(report_dir / "off01.xlsx") as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    assert "<f>" not in xml and "<f " not in xml  # no formula anywhere in the workbook
