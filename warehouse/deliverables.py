"""Everything officers receive from one run, written into one folder (the nightly flow's
last step and `sammachip report`):

    <officer>_new.csv, <officer>_alerts.csv, <officer>_otop.csv   lists as CSV (UTF-8 + BOM)
    <officer>.xlsx                                                  the same lists in Excel
    <officer>.html                                                  phone page with charts
    index.html, district_kpis.csv                                   the district's overview
and, when mail settings are given, each officer's XLSX and HTML by e-mail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pyarrow as pa

from warehouse.html_report import district_charts, index_page, officer_charts, officer_page
from warehouse.mailer import MailResult, MailSettings, send_reports
from warehouse.officer_lists import OfficerReport, district_kpis, officer_reports
from warehouse.reports import write_kpi_csv, write_report_csvs
from warehouse.rules import AlertRules
from warehouse.workbook import write_workbook

log = logging.getLogger(__name__)


def file_stem(officer_id: str) -> str:
    """An officer id as a safe file name (ids come from the config, but a file name is a path)."""
    return re.sub(r"[^0-9A-Za-z_.-]", "_", officer_id).lstrip(".") or "officer"


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _officer_files(report: OfficerReport, out_dir: Path) -> list[Path]:
    stem = file_stem(report.officer_id)
    csvs = write_report_csvs(report, out_dir, stem)
    xlsx = write_workbook(report, out_dir / f"{stem}.xlsx")
    page = _write_text(out_dir / f"{stem}.html", officer_page(report, officer_charts(report)))
    return [page, xlsx, *csvs]


def write_deliverables(
    marts: Mapping[str, pa.Table],
    out_dir: Path,
    today: date,
    rules: AlertRules | None = None,
    *,
    mail: MailSettings | None = None,
) -> list[Path]:
    """Write every officer's lists and the district index; mail them if `mail` is given.
    Returns the files written (index first)."""
    rules = rules or AlertRules()
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = officer_reports(marts, today, rules)
    files = {r.officer_id: _officer_files(r, out_dir) for r in reports}
    kpis = district_kpis(marts)
    kpi_csv = write_kpi_csv(kpis, out_dir / "district_kpis.csv")
    index = index_page(
        reports,
        kpis,
        district_charts(reports),
        today,
        rules.district_officer.name,
        {k: [p.name for p in v] for k, v in files.items()},
    )
    written = [_write_text(out_dir / "index.html", index), kpi_csv]
    written += [p for paths in files.values() for p in paths]
    if mail is not None:
        mail_deliverables(marts, out_dir, today, rules, mail)
    return written


def mail_deliverables(
    marts: Mapping[str, pa.Table],
    out_dir: Path,
    today: date,
    rules: AlertRules,
    mail: MailSettings,
) -> MailResult:
    """Mail each officer with an address their workbook and page from `out_dir` (written by
    `write_deliverables`); the district office also gets the index."""
    district = rules.district_officer.officer_id

    def attachments(report: OfficerReport) -> list[Path]:
        stem = file_stem(report.officer_id)
        mine = [out_dir / f"{stem}.xlsx", out_dir / f"{stem}.html"]
        if report.officer_id == district:
            mine.insert(0, out_dir / "index.html")
        return [p for p in mine if p.exists()]

    reports = officer_reports(marts, today, rules)
    result = send_reports(((r, attachments(r)) for r in reports), mail)
    log.info(
        "mail: sent %d, skipped %d (no address), failed %d",
        len(result.sent), len(result.skipped), len(result.failed),
    )  # fmt: skip
    return result
