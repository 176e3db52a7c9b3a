"""DOPA code reference: names for Ubon Ratchathani and its district Muang Sam Sip."""

from __future__ import annotations

import pytest

from sammachip.schemas.admin_codes import (
    amphoe_name,
    amphoes_of,
    province_name,
    tambon_name,
    tambons_of,
    village_parts,
)


def test_every_tambon_of_muang_sam_sip_has_a_thai_and_english_name() -> None:
    tambons = tambons_of("3414")
    assert tambons == [f"3414{n:02d}" for n in range(1, 15)]
    for code in tambons:
        assert tambon_name(code) and tambon_name(code, "en")
    assert tambon_name("341401") == "ม่วงสามสิบ"
    assert tambon_name("341414", "en") == "Phon Phaeng"


def test_province_and_amphoe_names() -> None:
    assert province_name("34") == "อุบลราชธานี"
    assert province_name("34", "en") == "Ubon Ratchathani"
    assert amphoe_name("3414") == "ม่วงสามสิบ"
    assert "3414" in amphoes_of("34") and len(amphoes_of("34")) == 25


@pytest.mark.parametrize("code", ["341499", "999999", "๓๔๑๔๐๑", "34140", "", "abcdef"])
def test_unknown_or_malformed_tambon_is_none(code: str) -> None:
    assert tambon_name(code) is None


def test_unknown_codes_give_none_or_empty() -> None:
    assert province_name("99") is None
    assert amphoe_name("3499") is None
    assert tambons_of("3499") == []
    assert amphoes_of("๓๔") == []


def test_returned_lists_are_copies() -> None:
    tambons_of("3414").clear()
    assert len(tambons_of("3414")) == 14


def test_village_parts_splits_an_8_digit_code() -> None:
    assert village_parts("34140105") == ("34", "3414", "341401")
    for bad in ("3414010", "3414010a", "๓๔๑๔๐๑๐๕"):
        with pytest.raises(ValueError):
            village_parts(bad)
