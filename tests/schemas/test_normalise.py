"""Normalisation rules on answers as Thai phones and enumerators really send them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sammachip.schemas import normalise as n


def test_thai_digits_become_ascii() -> None:
    assert n.ascii_digits("๓๔๑๔๐๑๐๕") == "34140105"
    assert n.ascii_digits("บ้านเลขที่ ๑๒/๓") == "บ้านเลขที่ 12/3"


@given(st.integers(min_value=0, max_value=10**9))
def test_numbers_read_the_same_in_thai_and_ascii_digits(value: int) -> None:
    thai = str(value).translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))
    assert n.parse_int(thai) == n.parse_int(str(value)) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("35000", 35000),
        ("35000.0", 35000),
        ("35,000", 35000),
        ("๓๕๐๐๐", 35000),
        ("", None),
        (None, None),
    ],
)
def test_whole_numbers_as_kobo_sends_them(raw: str | None, expected: int | None) -> None:
    assert n.parse_int(raw) == expected


@pytest.mark.parametrize("raw", ["สี่", "12a", "1.5", "--3"])
def test_a_word_or_fraction_is_not_a_whole_number(raw: str) -> None:
    with pytest.raises(n.Unreadable, match="could not be read as a whole number"):
        n.parse_int(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-11-20", date(2025, 11, 20)),  # Gregorian date widget
        ("2568-11-20", date(2025, 11, 20)),  # a phone set to the Buddhist calendar
        ("๒๕๖๘-๑๑-๒๐", date(2025, 11, 20)),  # ... with Thai digits
        ("20/11/2568", date(2025, 11, 20)),  # typed by hand, BE
        ("20/11/68", date(2025, 11, 20)),  # two-digit BE year
        ("20/11/2025", date(2025, 11, 20)),
        ("2025-11-20T00:00:00", date(2025, 11, 20)),
    ],
)
def test_dates_in_buddhist_or_common_era(raw: str, expected: date) -> None:
    assert n.parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["2568-02-30", "พรุ่งนี้", "11/2025"])
def test_impossible_or_unreadable_dates_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        n.parse_date(raw)


def test_device_time_is_converted_to_utc() -> None:
    assert n.parse_device_time("2025-11-20T09:12:31.123+07:00") == datetime(
        2025, 11, 20, 2, 12, 31, 123000, tzinfo=UTC
    )
    assert n.parse_device_time("2013-01-03T10:26:25.674+03") == datetime(
        2013, 1, 3, 7, 26, 25, 674000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("3100600445635", True),  # python-stdnum's example
        ("1112034563562", True),
        ("3-1006-00445-63-5", True),  # as printed on the card
        ("๓๑๐๐๖๐๐๔๔๕๖๓๕", True),  # Thai digits
        ("3100600445636", False),  # wrong check digit
        ("0100600445635", False),  # person type 0 is not a citizen ID
        ("310060044563", False),  # 12 digits
    ],
)
def test_national_id_checksum(raw: str, valid: bool) -> None:
    assert n.is_valid_national_id(n.national_id(raw)) is valid


def test_national_id_is_masked_to_the_last_four_digits() -> None:
    masked = n.mask_national_id("3100600445635")
    assert masked == "x-xxxx-xxxx5-63-5"
    assert "31006" not in masked


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+66812345678", "0812345678"),
        ("66812345678", "0812345678"),
        ("081-234-5678", "0812345678"),
        ("๐๘๑๒๓๔๕๖๗๘", "0812345678"),
        ("045 123 456", "045123456"),
    ],
)
def test_phones_get_the_leading_zero(raw: str, expected: str) -> None:
    assert n.phone(raw) == expected


def test_select_multiple_and_geopoint() -> None:
    assert n.select_multiple("lecture demonstration") == ["lecture", "demonstration"]
    assert n.geopoint("15.5123 104.7456 130 5") == (15.5123, 104.7456)


def test_codes_keep_their_dash_and_lose_spaces() -> None:
    assert n.code(" ๓๔๑๔๐๑๐๕-๐๗ ") == "34140105-07"
    assert n.village_code("3414 0105") == "34140105"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("51", "51"), (" ๕๑/๓ ", "51/3"), (51, "51"), ("", None), (None, None)],
)
def test_a_house_number_as_written_or_sent_as_a_number(raw: object, expected: str | None) -> None:
    assert n.house_no(raw) == expected


@pytest.mark.parametrize("raw", [True, {"no": 5}, [5]])
def test_a_house_number_that_is_no_text_is_a_parse_error(raw: object) -> None:
    with pytest.raises(n.Unreadable, match="is not a house number"):
        n.house_no(raw)
