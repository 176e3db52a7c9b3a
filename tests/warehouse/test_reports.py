"""Officer CSV files: Excel-ready Thai, inert cells, one list per officer."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from warehouse.marts import ALERTS_SCHEMA, OTOP_SCHEMA
from warehouse.reports import safe_cell, write_officer_files


def alert(officer: str, name: str) -> dict[str, object]:
    return {
        "alert_id": f"R03:{name}",
        "rule_id": "R03_LOW_ATTENDANCE",
        "priority": 2,
        "rule_th": "เข้าร่วมอบรมน้อย",
        "subject_id": "34140105-02",
        "subject_name": name,
        "village_code": "34140105",
        "officer_id": officer,
        "reason_th": "เข้าร่วม 1 จาก 3 ครั้ง",
        "due_date": date(2026, 3, 8),
        "first_seen": date(2026, 3, 1),
        "status": "open",
    }


@pytest.mark.parametrize(
    "hostile", ['=HYPERLINK("http://x","click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1"]
)
def test_formula_like_text_is_made_inert(hostile: str) -> None:
    assert safe_cell(hostile).startswith("'")


def test_numbers_and_dates_are_written_as_officers_read_them() -> None:
    assert safe_cell(-250) == "-250"
    assert safe_cell(date(2025, 11, 20)) == "20/11/2568"  # Buddhist Era
    assert safe_cell(None) == ""


def test_each_officer_gets_a_bom_csv_with_thai_headers(tmp_path: Path) -> None:
    alerts = pa.Table.from_pylist(
        [alert("off01", "สมศรี"), alert("off02", "=cmd()")], schema=ALERTS_SCHEMA
    )
    files = write_officer_files(alerts, OTOP_SCHEMA.empty_table(), tmp_path)
    assert sorted(f.name for f in files) == [
        "off01_alerts.csv",
        "off01_otop.csv",
        "off02_alerts.csv",
        "off02_otop.csv",
    ]
    raw = (tmp_path / "off01_alerts.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    with open(tmp_path / "off02_alerts.csv", encoding="utf-8-sig", newline="") as f:
        header, row = list(csv.reader(f))
    assert header[1] == "เรื่อง (issue)"
    assert row[3] == "'=cmd()"
    assert row[-1] == "ยังไม่ดำเนินการ"
