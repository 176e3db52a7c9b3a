"""One Excel workbook per officer: new today, all open, OTOP readiness, KPIs.

Thai headers (English on a second line), a frozen header row, an autofilter, columns wide
enough for Thai text, and cells that can never run as formulas: text is stored as text with
Excel's quote prefix, so even editing a cell in Excel does not turn it into a formula. When
the last sync failed, a banner above each sheet's list says so and how old the data are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from sammachip.reports.cells import be_date, display, is_formula_like, text_memo
from sammachip.reports.files import replacing
from sammachip.reports.labels import ALERT_COLUMNS, KPI_COLUMNS, OTOP_COLUMNS
from sammachip.reports.officer_lists import OfficerReport, sync_banner

Columns = Sequence[tuple[str, str]]

FONT = "Tahoma"  # on every Windows PC and has Thai glyphs
MIN_WIDTH, MAX_WIDTH = 6, 60
# Characters XML 1.0 cannot carry: a cell holding one would make the file unreadable.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


# Thai vowel and tone marks written above or below the line (Unicode category Mn).
_THAI_MARKS = re.compile("[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e]")


def text_width(text: str) -> int:
    """Columns a text takes: Thai vowel and tone marks above/below the line take none."""
    return len(text) - len(_THAI_MARKS.findall(text))


def _header(text: str) -> str:
    return text.replace(" (", "\n(", 1)  # Thai on the first line, English below


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@text_memo  # per text cell: the same texts recur across an officer's sheets
def _text_cell(shown: str) -> tuple[str, int]:
    """Text as stored (without what XML cannot carry) and the columns it takes."""
    text = _ILLEGAL.sub("", shown)
    return text, text_width(text)


class _Formats:
    """The few cell formats a sheet uses (xlsxwriter shares them across the workbook)."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        base = {"font_name": FONT, "valign": "top"}
        self.header = wb.add_format(
            {**base, "bold": True, "bg_color": "#DDEBF7", "text_wrap": True, "valign": "vcenter"}
        )
        self.normal = wb.add_format(base)
        self.wrapped = wb.add_format({**base, "text_wrap": True})
        # Excel's quote prefix: a leading "=" stays text even when the cell is edited.
        self.quoted = wb.add_format({**base, "quote_prefix": True})
        self.stale = wb.add_format(
            {
                **base,
                "bold": True,
                "text_wrap": True,
                "valign": "vcenter",
                "font_color": "#7F1D1D",
                "bg_color": "#FDECEA",
            }
        )


def _sheet(
    ws: Worksheet,
    fmt: _Formats,
    rows: Sequence[dict[str, Any]],
    columns: Columns,
    banner: Sequence[str] = (),
) -> None:
    """One list; `banner` (the last sync failed) goes above it, across the sheet."""
    top = 1 if banner else 0  # the header's row
    if banner:
        ws.merge_range(0, 0, 0, max(1, len(columns) - 1), "\n".join(banner), fmt.stale)
        ws.set_row(0, 16 * (len(banner) + 1))
    widths = []
    for c, (_, header) in enumerate(columns):
        ws.write_string(top, c, _header(header), fmt.header)
        widths.append(max(text_width(line) for line in _header(header).split("\n")))
    for r, row in enumerate(rows, start=top + 1):
        for c, (col, _) in enumerate(columns):
            value = row.get(col)
            if _is_number(value):
                ws.write_number(r, c, value, fmt.normal)
                width = len(str(value))
            else:  # write_string: never a formula, whatever the text starts with
                text, width = _text_cell(display(value))
                cell_format = (
                    fmt.quoted
                    if is_formula_like(text)
                    else fmt.wrapped
                    if width > MAX_WIDTH
                    else fmt.normal
                )
                ws.write_string(r, c, text, cell_format)
            widths[c] = max(widths[c], width)
    for c, width in enumerate(widths):
        ws.set_column(c, c, min(MAX_WIDTH, max(MIN_WIDTH, round(width * 1.15) + 2)))
    ws.set_row(top, 32)
    ws.freeze_panes(top + 1, 0)
    ws.autofilter(top, 0, top + max(1, len(rows)), len(columns) - 1)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:  # never a half-written workbook under the final name
        _write(report, tmp)
    return path


def _write(report: OfficerReport, tmp: Path) -> None:
    # in_memory: the package is assembled in memory, not in temporary files per sheet part
    # (creating and removing those cost more than writing the workbook)
    wb = xlsxwriter.Workbook(
        str(tmp), {"strings_to_formulas": False, "strings_to_urls": False, "in_memory": True}
    )
    fmt = _Formats(wb)
    banner = sync_banner(report.notice) if report.notice else ()
    for title, attr, columns in SHEETS:
        rows = _kpi_rows(report) if attr == "kpis" else getattr(report, attr)
        _sheet(wb.add_worksheet(title), fmt, rows, columns, banner)
    wb.set_properties(
        {
            "title": f"รายการติดตามสัมมาชีพชุมชน {report.officer.name} {be_date(report.today)}",
            "author": "sammachip",
        }
    )
    wb.close()
