"""DOPA administrative codes (province 2 / amphoe 4 / tambon 6 / village 8 digits).

Names come from the `geothai` package (DOPA-coded, MIT code / CC-BY-4.0 data from GeoThai/data).
Village (moo) names are not in any open data set, so this module stops at tambon level;
`village_parts` only splits an 8-digit village code into its parent codes.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import geothai

Lang = Literal["th", "en"]

UBON_RATCHATHANI = "34"
MUANG_SAM_SIP = "3414"
PROVINCES_IN_USE: tuple[str, ...] = (UBON_RATCHATHANI,)


def _name(
    area: geothai.Province | geothai.District | geothai.Subdistrict | None, lang: Lang
) -> str | None:
    if area is None:
        return None
    return area.name_th if lang == "th" else area.name_en


def _is_code(code: object, length: int) -> bool:
    # ASCII digits only: str.isdigit() would also accept Thai digits ๐-๙.
    return isinstance(code, str) and len(code) == length and code.isascii() and code.isdigit()


def province_name(code: str, lang: Lang = "th") -> str | None:
    """Name of a 2-digit province code, or None if unknown."""
    return _name(geothai.province(code), lang) if _is_code(code, 2) else None


def amphoe_name(code: str, lang: Lang = "th") -> str | None:
    """Name of a 4-digit amphoe (district) code, or None if unknown."""
    return _name(geothai.district(code), lang) if _is_code(code, 4) else None


def tambon_name(code: str, lang: Lang = "th") -> str | None:
    """Name of a 6-digit tambon (subdistrict) code, or None if unknown."""
    return _name(geothai.subdistrict(code), lang) if _is_code(code, 6) else None


@cache
def _amphoes(province_code: str) -> tuple[str, ...]:
    return tuple(sorted(d.code for d in geothai.districts(province_code)))


@cache
def _tambons(amphoe_code: str) -> tuple[str, ...]:
    return tuple(sorted(s.code for s in geothai.subdistricts(amphoe_code)))


def amphoes_of(province_code: str) -> list[str]:
    """Amphoe codes of a province, sorted; empty for an unknown province."""
    return list(_amphoes(province_code)) if _is_code(province_code, 2) else []


def tambons_of(amphoe_code: str) -> list[str]:
    """Tambon codes of an amphoe, sorted; empty for an unknown amphoe."""
    return list(_tambons(amphoe_code)) if _is_code(amphoe_code, 4) else []


def village_parts(code8: str) -> tuple[str, str, str]:
    """Split an 8-digit village code into (province, amphoe, tambon) codes.

    Only checks the shape (8 ASCII digits); use `tambon_name` to check the tambon exists.
    """
    if not _is_code(code8, 8):
        raise ValueError(f"village code must be 8 ASCII digits, got {code8!r}")
    return code8[:2], code8[:4], code8[:6]


def is_known_tambon(code: str) -> bool:
    return tambon_name(code) is not None


def village_label(code: str | None) -> str | None:
    """'หมู่ 5 ต.ม่วงสามสิบ' for 34140105: how officers name a village."""
    if not code or len(code) != 8 or not code.isdigit():
        return code
    tambon = tambon_name(code[:6])
    return f"หมู่ {int(code[6:])}" + (f" ต.{tambon}" if tambon else f" ({code})")


def tambon_label(code: str | None) -> str | None:
    """'ต.ม่วงสามสิบ' for 341401 (the code itself when unknown)."""
    name = tambon_name(code) if code else None
    return f"ต.{name}" if name else code
