"""The workbook as a spreadsheet program shows it: LibreOffice (headless) opens off01.xlsx and
writes every sheet as the cells are displayed — so the Buddhist-Era date format, the Thai
priority words and the percentages are checked as an officer sees them, not as stored.

Needs LibreOffice Calc: apt-get install -y libreoffice-calc
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
# CSV export: comma, double quote, UTF-8 (76), from line 1, cells as shown, every sheet (-1).
AS_SHOWN = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SOFFICE is None, reason="apt-get install -y libreoffice-calc"),
]


@pytest.fixture(scope="module")
def shown(report_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    """Sheet title → its rows as LibreOffice displays them."""
    out = tmp_path_factory.mktemp("shown")
    profile = (out / "profile").as_uri()  # a private profile: no clash with another instance
    command = [str(SOFFICE), f"-env:UserInstallation={profile}", "--headless"]
    subprocess.run(
        [*command, "--convert-to", AS_SHOWN, str(report_dir / "off01.xlsx"), "--outdir", str(out)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    sheets = {}
    for path in out.glob("off01-*.csv"):
        with open(path, encoding="utf-8", newline="") as f:
            sheets[path.stem.removeprefix("off01-")] = list(csv.reader(f))
    return sheets


def test_every_sheet_opens(shown: dict[str, list[list[str]]]) -> None:
    assert set(shown) == {
        "วันนี้ (today)",
        "ภายหลัง (later)",
        "เลื่อนไว้ (snoozed)",
        "ความพร้อม OTOP (readiness)",
        "ตัวชี้วัด (KPI)",
        "ติดตามเยี่ยม (follow-ups)",
    }


def test_dates_show_in_the_buddhist_era_and_priorities_in_thai(
    shown: dict[str, list[list[str]]],
) -> None:
    header, first = shown["วันนี้ (today)"][1], shown["วันนี้ (today)"][2]
    row = dict(zip((h.split("\n")[0] for h in header), first, strict=True))
    assert row["ดำเนินการภายใน"] == "25/02/2569"  # overdue by 4 days on 01/03/2569
    assert row["พบครั้งแรก"] == "09/02/2569"
    assert row["ความสำคัญ"] == "สำคัญ"
    assert row["โทรศัพท์"] == "081-123-4567"
    priorities = {r[1] for r in shown["วันนี้ (today)"][2:]}
    assert priorities == {"ด่วน", "สำคัญ"}


def test_kpis_show_as_percentages(shown: dict[str, list[list[str]]]) -> None:
    practising = [r for r in shown["ตัวชี้วัด (KPI)"][2:] if r[1].startswith("ครัวเรือนที่ผ่านการอบรมนำไป")]
    assert practising and all(r[3] == "85.0%" and r[2].endswith("%") for r in practising)
