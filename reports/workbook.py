"""One Excel workbook per officer: today's worklist first, then later, the alerts an officer
snoozed, OTOP readiness, KPIs.

Thai headers (English on a second line), a frozen header row that also repeats on every
printed page, an autofilter, columns wide enough for Thai text, and cells that can never run
as formulas: text is stored as text with Excel's quote prefix, so even editing a cell in Excel
does not turn it into a formula. Values keep their type so sort and filter work: dates are
date cells shown in the Buddhist Era (`BE_DATE`, which Excel and LibreOffice both honour),
priorities numbers shown as Thai words, KPIs numbers shown as percentages. Above each list, how
current the data are — or, when the last sync failed, a banner saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from sammachip.reports.cells import be_date, display, is_formula_like, text_memo
from sammachip.reports.files import replacing
from sammachip.reports.labels import (
    ALERT_COLUMNS,
    FOLLOWUP_COLUMNS,
    KPI_COLUMNS,
    OTOP_COLUMNS,
    PRIORITY_TH,
    WORKLIST_COLUMNS,
)
from sammachip.reports.officer_lists import (
    OfficerReport,
    office_time,
    phones_banner,
    sync_banner,
)

Columns = Sequence[tuple[str, str]]

FONT = "Tahoma"  # on every Windows PC and has Thai glyphs
MIN_WIDTH, MAX_WIDTH = 6, 60
# Thai Buddhist calendar (07) in the Thai locale (041E): Excel shows 01/03/2569 and so does
# LibreOffice (which ignores the `[$-th-TH,107]` spelling and, with no locale, the calendar).
BE_DATE = "[$-107041E]dd/mm/yyyy"
DATE_WIDTH = 10
# Priority stays a number (it sorts) and reads as a word: ด่วน, สำคัญ, ติดตาม.
PRIORITY_WORDS = '[=1]"{}";[=2]"{}";"{}"'.format(*PRIORITY_TH.values())
PERCENT = "0.0%"
DAYS = "0.0"
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
    """Text as stored (without what XML cannot carry) and the columns its longest line takes."""
    text = _ILLEGAL.sub("", shown.replace("\r\n", "\n"))
    return text, max(text_width(line) for line in text.split("\n"))


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
        self.date = wb.add_format({**base, "num_format": BE_DATE})
        self.percent = wb.add_format({**base, "num_format": PERCENT})
        self.days = wb.add_format({**base, "num_format": DAYS})
        self.priority = wb.add_format({**base, "num_format": PRIORITY_WORDS})
        self.note = wb.add_format({**base, "italic": True, "font_color": "#444444"})
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
    top_lines: Sequence[str] = (),
    number_formats: Mapping[str, Format] | None = None,
    *,
    stale: bool = False,
) -> None:
    """One list; `top_lines` (how current the data are, or the banner of a failed sync when
    `stale`) go above it, across the sheet. `number_formats`: a column's numbers shown as
    percentages or words."""
    top = 1 if top_lines else 0  # the header's row
    if top_lines:
        last = max(1, len(columns) - 1)
        ws.merge_range(0, 0, 0, last, "\n".join(top_lines), fmt.stale if stale else fmt.note)
        ws.set_row(0, 16 * (len(top_lines) + (1 if stale else 0)))
    widths = []
    for c, (_, header) in enumerate(columns):
        ws.write_string(top, c, _header(header), fmt.header)
        widths.append(max(text_width(line) for line in _header(header).split("\n")))
    formats = [(number_formats or {}).get(col, fmt.normal) for col, _ in columns]
    for r, row in enumerate(rows, start=top + 1):
        for c, (col, _) in enumerate(columns):
            widths[c] = max(widths[c], _cell(ws, fmt, r, c, row.get(col), formats[c]))
    for c, width in enumerate(widths):
        ws.set_column(c, c, min(MAX_WIDTH, max(MIN_WIDTH, round(width * 1.15) + 2)))
    ws.set_row(top, 32)
    ws.freeze_panes(top + 1, 0)
    ws.repeat_rows(top)  # the header on every printed page
    ws.autofilter(top, 0, top + max(1, len(rows)), len(columns) - 1)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)


def _cell(ws: Worksheet, fmt: _Formats, r: int, c: int, value: Any, number: Format) -> int:
    """Write one value with its type kept; returns the columns it takes."""
    if type(value) is not str:  # most cells are text: tested first, once
        if value is None:
            return 0  # an empty cell, not an empty text (a column of numbers stays one)
        if _is_number(value):
            ws.write_number(r, c, value, number)
            return len(str(value))
        if isinstance(value, date):  # a datetime too: a date cell, sorted as a date
            ws.write_number(r, c, _serial(value), fmt.date)
            return DATE_WIDTH
    # write_string: never a formula, whatever the text starts with
    text, width = _text_cell(display(value))
    if is_formula_like(text):
        cell_format = fmt.quoted
    elif width > MAX_WIDTH or "\n" in text:
        cell_format = fmt.wrapped
    else:
        cell_format = fmt.normal
    ws.write_string(r, c, text, cell_format)
    return width


_EPOCH = date(1899, 12, 30)  # Excel's day 0 (its 1900 leap-year bug included)


def _serial(value: date) -> int:
    """A date as Excel stores it: days since its epoch (a number with a date format is a date
    cell; cheaper than xlsxwriter's conversion, done for every date of every sheet)."""
    day = value.date() if isinstance(value, datetime) else value
    return (day - _EPOCH).days


def _top_lines(report: OfficerReport) -> tuple[list[str], bool]:
    """What each sheet says above its list, and whether it warns (the last sync or the last
    push to the phones failed)."""
    phones = phones_banner(report.phones) if report.phones else []
    if report.notice:
        return [*sync_banner(report.notice), *phones], True
    as_of = [f"ข้อมูล ณ {office_time(report.data_as_of)} (data as of)"] if report.data_as_of else []
    return [*as_of, *phones], bool(phones)


def _sheets(
    report: OfficerReport, fmt: _Formats
) -> list[tuple[str, list[dict[str, Any]], Columns, dict[str, Format]]]:
    """(title, rows, columns, number formats) of each sheet, "today" first."""
    priority = {"priority": fmt.priority}
    kpi = {"value": fmt.percent, "target": fmt.percent}
    followup = {"visit_share": fmt.percent, "coverage": fmt.percent, "days_to_close": fmt.days}
    return [
        ("วันนี้ (today)", report.today_rows, WORKLIST_COLUMNS, priority),
        ("ภายหลัง (later)", report.later_rows, WORKLIST_COLUMNS, priority),
        ("เลื่อนไว้ (snoozed)", report.snoozed, ALERT_COLUMNS, priority),
        ("ความพร้อม OTOP (readiness)", report.otop, OTOP_COLUMNS, {}),
        ("ตัวชี้วัด (KPI)", report.kpis, KPI_COLUMNS, kpi),
        ("ติดตามเยี่ยม (follow-ups)", report.followups, FOLLOWUP_COLUMNS, followup),
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
    top_lines, stale = _top_lines(report)
    for title, rows, columns, number_formats in _sheets(report, fmt):
        _sheet(wb.add_worksheet(title), fmt, rows, columns, top_lines, number_formats, stale=stale)
    wb.set_properties(
        {
            "title": f"รายการติดตามสัมมาชีพชุมชน {report.officer.name} {be_date(report.today)}",
            "author": "sammachip",
        }
    )
    wb.close()
