"""The officer-edited snooze file: Thai dates, CSV from Excel or TOML, bad lines skipped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sammachip.marts.snoozes import load_snoozes, parse_until


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("05/03/2569", date(2026, 3, 5)),  # Buddhist Era, as officers write
        ("5/3/2569", date(2026, 3, 5)),
        ("05/03/2026", date(2026, 3, 5)),  # a phone set to the Gregorian calendar
        ("2026-03-05", date(2026, 3, 5)),
    ],
)
def test_until_is_read_as_officers_type_it(typed: str, meant: date) -> None:
    assert parse_until(typed) == meant


def test_no_file_means_no_snoozes(tmp_path: Path) -> None:
    assert load_snoozes(tmp_path / "missing.csv").table.num_rows == 0
    assert load_snoozes(None).table.num_rows == 0


def test_a_bad_line_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "snoozes.csv"
    path.write_text(
        "alert_id,until,note\nR03:a,31/02/2569,no such day\nR03:b,15/03/2569,ok\n,01/04/2569,\n",
        encoding="utf-8-sig",
    )
    snoozes = load_snoozes(path)
    assert snoozes.table.to_pylist() == [
        {"alert_id": "R03:b", "until": date(2026, 3, 15), "note": "ok"}
    ]
    assert [p.split(":")[0] for p in snoozes.problems] == [
        "snoozes.csv line 2",
        "snoozes.csv line 4",
    ]


def test_toml_works_too(tmp_path: Path) -> None:
    path = tmp_path / "snoozes.toml"
    path.write_text(
        '[[snooze]]\nalert_id = "R05:x"\nuntil = 2026-04-01\nnote = "ไปต่างจังหวัด"\n',
        encoding="utf-8",
    )
    assert load_snoozes(path).table.to_pylist() == [
        {"alert_id": "R05:x", "until": date(2026, 4, 1), "note": "ไปต่างจังหวัด"}
    ]


def test_an_unreadable_file_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "snoozes.toml"
    path.write_text("[[snooze]\n", encoding="utf-8")
    snoozes = load_snoozes(path)
    assert snoozes.table.num_rows == 0 and snoozes.problems
