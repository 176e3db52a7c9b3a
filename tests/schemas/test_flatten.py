"""Flattening reads each distinct answer once per parser: every submission must still get its
own values and its own reasons, whatever another submission of the batch sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sammachip.connectors.kobo import to_submission
from sammachip.schemas.flatten import Row, flatten

NOW = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def household(sub_id: int, **answers: Any) -> Row:
    payload = {
        "_id": sub_id,
        "_submission_time": "2026-11-20T03:00:00",
        "hh/hh_code": f"34140105-{sub_id:02d}",
        "hh/village_code": "34140105",
        "members": "4",
        **answers,
    }
    sub = to_submission(payload, server="kf", asset_uid="aHh", form_id="sammachip_household")
    return flatten(sub, "b1", NOW).tables["households"][0]


def test_the_same_unreadable_answer_is_reported_in_every_submission_that_sent_it() -> None:
    first, second = household(1, members="สี่"), household(2, members="สี่")
    for row in (first, second):
        assert row["members"] is None
        assert row["parse_errors"] == "members: 'สี่' could not be read as a whole number"
    assert household(3)["parse_errors"] is None  # a good answer after them stays good


def test_one_text_read_by_two_parsers_gives_each_its_own_value() -> None:
    row = household(4, **{"hh/village_code": "๓๔๑๔ ๐๑๐๕", "hh/village_name": "๓๔๑๔ ๐๑๐๕"})
    assert row["village_code"] == "34140105"  # a code: ASCII digits, no spaces
    assert row["village_name"] == "๓๔๑๔ ๐๑๐๕"  # text: kept as typed


def test_thai_digits_and_buddhist_era_read_alike_in_every_submission() -> None:
    rows = [household(n, baseline_income="๓๕,๐๐๐", members="๔") for n in (5, 6)]
    assert [(r["baseline_income"], r["members"]) for r in rows] == [(35000, 4), (35000, 4)]


def test_an_answer_that_is_no_text_is_unreadable_with_the_reason_python_gives() -> None:
    row = household(7, members=["4"])
    assert row["members"] is None
    assert "members: ['4'] could not be read" in row["parse_errors"]
