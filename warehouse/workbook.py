"""One Excel workbook per officer: new today, all open, OTOP readiness, KPIs.

Thai headers (English on a second line), a frozen header row, an autofilter, columns wide
enough for Thai text, and cells that can never run as formulas: text is stored as text with
Excel's quote prefix, so even editing a cell in Excel does not turn it into a formula.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from warehouse.cells import be_date, display, is_formula_like
from warehouse.labels import ALERT_COLUMNS, KPI_COLUMNS, OTOP_COLUMNS
from warehouse.officer_lists import OfficerReport

Columns = Sequence[tuple[str, str]]

FONT = "Tahoma"  # on every Windows PC and has Thai glyphs
MIN_WIDTH, MAX_WIDTH = 6, 60
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def text_width(text: str) -> int:
    """Columns a text takes: Thai vowel and tone marks above/below the line take none."""
    return sum(1 for ch in text if unicodedata.category(ch) != "Mn")


def _header(text: str) -> str:
    return text.replace(" (", "\n(", 1)  # Thai on the first line, English below


def _value(value: Any) -> tuple[Any, bool]:
    """The cell value and whether it is text that must stay text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value, False
    return ILLEGAL_CHARACTERS_RE.sub("", display(value)), True


def _write_cell(cell: Cell, value: Any) -> None:
    cell_value, is_text = _value(value)
    cell.value = cell_value
    if is_text:
        cell.data_type = "s"  # never "f": a leading "=" stays text
        if is_formula_like(cell_value):
            cell.quotePrefix = True


def _sheet(ws: Worksheet, rows: Sequence[dict[str, Any]], columns: Columns) -> None:
    bold = Font(name=FONT, bold=True)
    normal = Font(name=FONT)
    widths = []
    for c, (_, header) in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=c, value=_header(header))
        cell.font, cell.fill = bold, _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        widths.append(max(text_width(line) for line in _header(header).split("\n")))
    for r, row in enumerate(rows, start=2):
        for c, (col, _) in enumerate(columns, start=1):
            cell = ws.cell(row=r, column=c)
            _write_cell(cell, row.get(col))
            cell.font = normal
            width = text_width(str(cell.value or ""))
            if width > MAX_WIDTH:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            widths[c - 1] = max(widths[c - 1], width)
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(
            MAX_WIDTH, max(MIN_WIDTH, round(width * 1.15) + 2)
        )
    ws.row_dimensions[1].height = 32
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(1, len(rows) + 1)}"
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0


def _kpi_rows(report: OfficerReport) -> list[dict[str, Any]]:
    def pct(v: float | None) -> str | None:
        return None if v is None else f"{100 * v:.1f}%"

    return [{**k, "value": pct(k["value"]), "target": pct(k["target"])} for k in report.kpis]


SHEETS: list[tuple[str, str, Columns]] = [
    ("ใหม่วันนี้ (new today)", "new_today", ALERT_COLUMNS),
    ("ค้างทั้งหมด (all open)", "open", ALERT_COLUMNS),
    ("ความพร้อม OTOP (readiness)", "otop", OTOP_COLUMNS),
    ("ตัวชี้วัด (KPI)", "kpis", KPI_COLUMNS),
]


def write_workbook(report: OfficerReport, path: Path) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for title, attr, columns in SHEETS:
        rows = _kpi_rows(report) if attr == "kpis" else getattr(report, attr)
        _sheet(wb.create_sheet(title), rows, columns)
    wb.properties.title = f"รายการติดตามสัมมาชีพชุมชน {report.officer.name} {be_date(report.today)}"
    wb.properties.creator = "sammachip"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path
