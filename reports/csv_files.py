"""Officer lists as CSV: Thai headers, Excel-ready.

CSV is written as UTF-8 with a BOM so Excel on Thai Windows shows Thai text, and every cell
that a spreadsheet would read as a formula is made inert (`cells.safe_cell`). Phones carry
their dashes (081-234-5678), so Excel keeps the leading 0 without any formula; dates are in
the Buddhist Era, and the worklist has each date in ISO beside it for sorting.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sammachip.reports.cells import safe_cell
from sammachip.reports.files import replacing
from sammachip.reports.labels import (
    ALERT_COLUMNS,
    KPI_COLUMNS,
    OTOP_COLUMNS,
    WORKLIST_CSV_COLUMNS,
)
from sammachip.reports.officer_lists import OfficerReport


def write_csv(
    path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([header for _, header in columns])
        for row in rows:
            writer.writerow([safe_cell(row.get(col)) for col, _ in columns])
            count += 1
    return count


def write_report_csvs(report: OfficerReport, out_dir: Path, stem: str | None = None) -> list[Path]:
    """The officer's three lists: the worklist (today, then later), all open alerts, OTOP
    readiness."""
    officer = stem or report.officer_id
    entries = [*report.today_rows, *report.later_rows]
    lists = [
        (out_dir / f"{officer}_worklist.csv", entries, WORKLIST_CSV_COLUMNS),
        (out_dir / f"{officer}_alerts.csv", report.open, ALERT_COLUMNS),
        (out_dir / f"{officer}_otop.csv", report.otop, OTOP_COLUMNS),
    ]
    for path, rows, columns in lists:
        write_csv(path, rows, columns)
    return [path for path, _, _ in lists]


def write_kpi_csv(kpis: Iterable[dict[str, Any]], path: Path) -> Path:
    rows = [{**k, "value": _percent(k["value"]), "target": _percent(k["target"])} for k in kpis]
    write_csv(path, rows, KPI_COLUMNS)
    return path


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"
