"""Officer CSV files: Excel-ready Thai, inert cells, one set of lists per officer."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from sammachip.reports.cells import display, phone_text, redact_ids, safe_cell
from sammachip.reports.csv_files import write_csv
from sammachip.reports.files import replacing


def alert(officer: str, name: str, status: str = "open") -> dict[str, object]:
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
        "status": status,
    }


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize(
    "hostile", ['=HYPERLINK("http://x","click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1"]
)
def test_formula_like_text_is_made_inert(hostile: str) -> None:
    assert safe_cell(hostile).startswith("'")


def test_numbers_and_dates_are_written_as_officers_read_them() -> None:
    assert safe_cell(-250) == "-250"
    assert safe_cell(date(2025, 11, 20)) == "20/11/2568"  # Buddhist Era
    assert safe_cell(None) == ""
    assert safe_cell(True) == "✓ ผ่าน"


class Label(str):
    """A str subclass (as some libraries hand out): the same rules as plain text."""


@pytest.mark.parametrize(
    ("value", "shown", "safe"),
    [
        (False, "✗ ยังไม่ผ่าน", "✗ ยังไม่ผ่าน"),
        (1, "1", "1"),  # not ✓: a count that happens to be 1
        (-2.5, "-2.5", "-2.5"),
        (datetime(2026, 3, 1, 23, 59), "01/03/2569", "01/03/2569"),
        (Label("=1+1"), "=1+1", "'=1+1"),
        ("-3100600445635", "-x-xxxx-xxxx5-63-5", "'-x-xxxx-xxxx5-63-5"),  # masked, then guarded
        ("", "", ""),
    ],
)
def test_every_kind_of_value_is_shown_the_same_way(value: object, shown: str, safe: str) -> None:
    assert (display(value), safe_cell(value)) == (shown, safe)


@pytest.mark.parametrize("written", ["3100600445635", "3-1006-00445-63-5", "3 1006 00445 63 5"])
def test_a_national_id_never_appears_whole(written: str) -> None:
    assert redact_ids(f"เลขบัตร {written} ผิด") == "เลขบัตร x-xxxx-xxxx5-63-5 ผิด"
    assert redact_ids("โทร 0812345678, ครัวเรือน 34140105-07") == (
        "โทร 0812345678, ครัวเรือน 34140105-07"  # phones and codes are not IDs
    )


def test_the_deliverable_csvs_are_the_three_lists(report_dir: Path) -> None:
    work = read_csv(report_dir / "off01_worklist.csv")
    alerts = read_csv(report_dir / "off01_alerts.csv")
    otop = read_csv(report_dir / "off01_otop.csv")
    assert all(
        (report_dir / f).read_bytes().startswith(b"\xef\xbb\xbf")
        for f in ("off01_worklist.csv", "off01_alerts.csv", "off01_otop.csv")
    )
    assert [r[0] for r in work[1:]] == ["วันนี้ (today)"] * 5 + ["ภายหลัง (later)"] * 8
    assert alerts[0][0] == "ลำดับความสำคัญ (priority)"
    assert otop[0][:2] == ["รหัสกลุ่ม (group)", "ชื่อกลุ่ม (name)"]
    assert read_csv(report_dir / "district_kpis.csv")[0][1] == "ตัวชี้วัด (indicator)"


def test_phones_keep_their_zero_and_dates_are_buddhist_era_with_iso_beside(
    report_dir: Path,
) -> None:
    header, *rows = read_csv(report_dir / "off01_worklist.csv")
    first = dict(zip(header, rows[0], strict=True))
    # Excel reads 081-234-5678 as text: no formula, no lost zero
    assert first["โทรศัพท์ (phone)"] == "081-123-4567"
    phones = [r[header.index("โทรศัพท์ (phone)")] for r in rows if r[header.index("โทรศัพท์ (phone)")]]
    assert all(re.fullmatch(r"0\d{1,2}-\d{3}-\d{3,4}", p) for p in phones)
    assert header.index("ดำเนินการภายใน ISO (due, ISO)") == header.index("ดำเนินการภายใน (due)") + 1
    assert (first["ดำเนินการภายใน (due)"], first["ดำเนินการภายใน ISO (due, ISO)"]) == (
        "25/02/2569",
        "2026-02-25",
    )
    assert first["ความสำคัญ (priority)"] == "สำคัญ"  # in words
    assert first["พิกัด (lat, lon)"] == "15.51234, 104.71234"
    for row in rows:
        be, iso = (
            row[header.index("พบครั้งแรก (first seen)")],
            row[header.index("พบครั้งแรก ISO (first seen, ISO)")],
        )
        day, month, year = be.split("/")
        assert iso == f"{int(year) - 543}-{month}-{day}"


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("0812345678", "081-234-5678"),
        ("021234567", "02-123-4567"),
        ("045312345", "045-312-345"),
        ("+66812345678", "+66812345678"),  # not normalised: left as written
        (None, None),
    ],
)
def test_a_phone_is_written_the_thai_way(written: str | None, shown: str | None) -> None:
    assert phone_text(written) == shown


def test_hostile_text_comes_out_inert_in_every_csv(
    report_dir: Path, hostile: SimpleNamespace
) -> None:
    cells = [c for f in report_dir.glob("*.csv") for row in read_csv(f) for c in row]
    assert "'" + hostile.formula in cells and "'" + hostile.pipe in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t")]
    assert hostile.script in cells  # plain text in a CSV; the HTML writer escapes it
    assert not [c for c in cells if hostile.national_id in c]
    assert [c for c in cells if "x-xxxx-xxxx5-63-5" in c]  # the quarantine reason, masked


def test_a_list_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "off01_new.csv"
    write_csv(path, [{"n": 1}], [("n", "จำนวน")])

    def rows_until_the_disk_fails() -> Iterator[dict[str, object]]:
        yield {"n": 2}
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_csv(path, rows_until_the_disk_fails(), [("n", "จำนวน")])
    assert read_csv(path) == [["จำนวน"], ["1"]]  # yesterday's list, whole
    assert [p.name for p in tmp_path.iterdir()] == ["off01_new.csv"]  # no temporary file left


def test_two_runs_writing_one_file_at_once_do_not_mix(tmp_path: Path) -> None:
    path = tmp_path / "off01.html"
    with replacing(path) as nightly, replacing(path) as ingest:
        assert nightly != ingest  # each its own temporary file
        nightly.write_text("nightly", encoding="utf-8")
        ingest.write_text("ingest", encoding="utf-8")
    assert path.read_text(encoding="utf-8") == "nightly"  # the last to finish, whole
    assert [p.name for p in tmp_path.iterdir()] == ["off01.html"]
