"""Officer deliverables from the marts: one CSV list per officer, Thai headers, Excel-ready.

CSV is written as UTF-8 with a BOM so Excel on Thai Windows shows Thai text, and every cell
that a spreadsheet would read as a formula is made inert.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

# Column → Thai header (English beside it, for the mixed offices that use both).
ALERT_COLUMNS: list[tuple[str, str]] = [
    ("priority", "ลำดับความสำคัญ (priority)"),
    ("rule_th", "เรื่อง (issue)"),
    ("subject_id", "รหัส (code)"),
    ("subject_name", "ชื่อ (name)"),
    ("phone", "โทรศัพท์ (phone)"),
    ("village_code", "รหัสหมู่บ้าน (village)"),
    ("reason_th", "รายละเอียด (details)"),
    ("due_date", "ดำเนินการภายใน (due)"),
    ("first_seen", "พบครั้งแรก (first seen)"),
    ("status", "สถานะ (status)"),
]

OTOP_COLUMNS: list[tuple[str, str]] = [
    ("group_code", "รหัสกลุ่ม (group)"),
    ("group_name", "ชื่อกลุ่ม (name)"),
    ("village_code", "รหัสหมู่บ้าน (village)"),
    ("product_name", "ผลิตภัณฑ์ (product)"),
    ("n_members", "จำนวนสมาชิก (members)"),
    ("score", "คะแนน (score)"),
    ("status_th", "ความพร้อม OTOP (readiness)"),
    ("missing_th", "สิ่งที่ยังขาด (missing)"),
]

_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_STATUS_TH = {"open": "ยังไม่ดำเนินการ", "resolved": "แก้ไขแล้ว", "snoozed": "เลื่อนไว้"}


def safe_cell(value: Any) -> str:
    """Text as a spreadsheet will show it, never as a formula (CSV/formula injection)."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)  # a negative number is a number, not a formula
    if isinstance(value, date):
        return f"{value.day:02d}/{value.month:02d}/{value.year + 543}"  # Thai offices read BE
    text = str(value)
    return "'" + text if _FORMULA_START.match(text) else text


def write_csv(
    path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([header for _, header in columns])
        for row in rows:
            writer.writerow([safe_cell(row.get(col)) for col, _ in columns])
            count += 1
    tmp.replace(path)  # a half-written list is never left under the final name
    return count


def _alert_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "status": _STATUS_TH.get(row["status"], row["status"])}


def write_officer_files(alerts: pa.Table, otop: pa.Table, out_dir: Path) -> list[Path]:
    """One alerts CSV and one OTOP-readiness CSV per officer (and the district's own)."""
    by_officer: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in alerts.to_pylist():
        by_officer.setdefault(row["officer_id"], {"alerts": [], "otop": []})["alerts"].append(
            _alert_row(row)
        )
    for row in otop.to_pylist():
        by_officer.setdefault(row["officer_id"], {"alerts": [], "otop": []})["otop"].append(row)
    written = []
    for officer, lists in sorted(by_officer.items()):
        alerts_path = out_dir / f"{officer}_alerts.csv"
        write_csv(alerts_path, lists["alerts"], ALERT_COLUMNS)
        otop_path = out_dir / f"{officer}_otop.csv"
        write_csv(otop_path, lists["otop"], OTOP_COLUMNS)
        written += [alerts_path, otop_path]
    return written
