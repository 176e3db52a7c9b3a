"""Deterministic cleaning of answers as phones send them: Thai digits, Buddhist-Era dates,
IDs, phones and numbers. Each function takes the raw string and returns the clean value, or
raises `Unreadable` saying, in Thai and in English, what is wrong with the value typed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from stdnum.th import pin

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_BE_OFFSET = 543
# Python's int() and \d accept Thai digits silently; every pattern here is ASCII-only on purpose.
_INT = re.compile(r"[+-]?[0-9]+(?:\.0+)?", re.ASCII)
_DEC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", re.ASCII)
_DMY_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{2}|[0-9]{4})", re.ASCII)
_HOURS_ONLY_OFFSET = re.compile(r"[+-][0-9]{2}$")
_SPACES = re.compile(r"\s")
_SPACES_DASHES = re.compile(r"[\s\-]")
_NOT_DIALLED = re.compile(r"[^0-9+]")


class Unreadable(ValueError):
    """A value that was given but cannot be read: why, in Thai and in English (an officer's
    list shows both; the enumerator fixes the answer)."""

    def __init__(self, value: object, reason_th: str, reason_en: str) -> None:
        super().__init__(f"{_quoted(value)} {reason_en}")
        self.value, self.reason_th, self.reason_en = value, reason_th, reason_en

    def __reduce__(self) -> tuple[type[Unreadable], tuple[object, str, str]]:
        return type(self), (self.value, self.reason_th, self.reason_en)  # picklable (Dask)

    def reasons(self, key: str) -> tuple[str, str]:
        """What to tell the enumerator about answer `key`, in Thai and in English."""
        said = f"{key}: {_quoted(self.value)}"
        return f"{said} {self.reason_th}", f"{said} {self.reason_en}"

    @classmethod
    def of(cls, value: object, err: Exception) -> Unreadable:
        """`err` as an Unreadable: the parsers here raise one; anything else (a list where
        text was expected …) could not be read, for the reason Python gives."""
        if isinstance(err, cls):
            return err
        return cls(value, f"อ่านค่าไม่ได้ ({err})", f"could not be read ({err})")


def _quoted(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


# Why a value could not be read: (Thai, English), said after the value.
NOT_WHOLE = ("อ่านเป็นจำนวนเต็มไม่ได้", "could not be read as a whole number")
TOO_LARGE = ("มากเกินกว่าจะเป็นคำตอบจริง", "is too large to be a real answer")
NOT_NUMBER = ("อ่านเป็นตัวเลขไม่ได้", "could not be read as a number")
NOT_DATE = (
    "อ่านเป็นวันที่ไม่ได้ (ใช้ ปปปป-ดด-วว หรือ วว/ดด/ปปปป)",
    "could not be read as a date (YYYY-MM-DD or DD/MM/YYYY)",
)
NO_SUCH_DATE = ("ไม่มีวันที่นี้ในปฏิทิน", "is no such date")
NOT_TIME = ("อ่านเป็นวันและเวลาไม่ได้", "could not be read as a date and time")
NOT_YES_NO = ("ไม่ใช่คำตอบ ใช่/ไม่ใช่", "is not yes or no")
NOT_PLACE = ("อ่านเป็นพิกัดไม่ได้", "could not be read as a location (latitude longitude)")
OFF_EARTH = ("ไม่ใช่พิกัดบนโลก", "is not a place on Earth")
NOT_HOUSE_NO = ("ไม่ใช่บ้านเลขที่", "is not a house number")


def ascii_digits(text: str) -> str:
    """Thai digits ๐–๙ → 0–9; everything else unchanged."""
    if text.isascii():  # most answers: no Thai digit to map, and the check costs nothing
        return text
    return text.translate(_THAI_DIGITS)


# Control characters and bidi overrides: invisible, and dangerous in a terminal or a list
# (tab and line feed are ordinary text). Terminal escape sequences (colours, cursor moves, a
# window title) go whole: dropping only their ESC would leave "[31m" on show.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor, erase
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, links (ended by BEL or ST)
    r"|\x1b[ -/]*[0-~]"  # the other escapes (ESC c, ESC ( B, …)
)
_MAX_INT = 2**63 - 1  # what the warehouse's int64 columns hold


def strip_invisible(text: str) -> str:
    """`text` without control characters, escape sequences and bidi overrides."""
    if text.isprintable():  # no control or format character (ESC, C1, bidi marks) to drop
        return text
    return _INVISIBLE.sub("", _ESCAPE_SEQUENCE.sub("", text))


def clean_text(text: str | None) -> str | None:
    """Trim and collapse whitespace, drop control characters; an empty answer is none."""
    if text is None:
        return None
    cleaned = " ".join(strip_invisible(str(text)).split())
    return cleaned or None


def house_no(value: object) -> str | None:
    """A house number as written ("51", "๕๑/๓"); one sent as a JSON number is its text."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | dict | list):
        raise Unreadable(value, *NOT_HOUSE_NO)
    return clean_text(ascii_digits(str(value)))


def parse_int(text: str | None) -> int | None:
    """Integers as Kobo sends them ("35000", "35000.0", "๓๕,๐๐๐")."""
    if text is None or str(text).strip() == "":
        return None
    value = ascii_digits(str(text)).replace(",", "").strip()
    if not _INT.fullmatch(value):
        raise Unreadable(text, *NOT_WHOLE)
    number = int(value.split(".")[0])
    if abs(number) > _MAX_INT:
        raise Unreadable(text, *TOO_LARGE)
    return number


def parse_decimal(text: str | None) -> float | None:
    if text is None or str(text).strip() == "":
        return None
    value = ascii_digits(str(text)).replace(",", "").strip()
    if not _DEC.fullmatch(value):
        raise Unreadable(text, *NOT_NUMBER)
    return float(value)


def ce_year(year: int, *, two_digit_century_be: int = 2500) -> int:
    """A year as typed → Common Era. 4-digit years ≥ 2400 are Buddhist Era (CE + 543);
    2-digit years are read as BE (Thai paperwork writes "67" for 2567)."""
    if year < 100:
        year += two_digit_century_be
    if year >= 2400:
        year -= _BE_OFFSET
    return year


def parse_date(text: str | None) -> date | None:
    """ISO dates from the date widget (a phone on the Buddhist calendar sends 2568-11-20),
    or dd/mm/yyyy typed by hand, in BE or CE, Thai digits allowed."""
    if text is None or str(text).strip() == "":
        return None
    value = ascii_digits(str(text)).strip()[:10]
    if m := _ISO_DATE.fullmatch(value):
        y, mo, d = (int(g) for g in m.groups())
    elif m := _DMY_DATE.fullmatch(value):
        d, mo, y = (int(g) for g in m.groups())
    else:
        raise Unreadable(text, *NOT_DATE)
    try:
        return date(ce_year(y), mo, d)
    except ValueError:  # 30 February, month 13, year 0
        raise Unreadable(text, *NO_SUCH_DATE) from None


def parse_device_time(text: str | None) -> datetime | None:
    """Device timestamps carry the phone's offset ("2025-11-20T09:12:31.123+07:00") → UTC."""
    if not text:
        return None
    if not isinstance(text, str):
        raise Unreadable(text, *NOT_TIME)
    value = ascii_digits(text).strip()
    if _HOURS_ONLY_OFFSET.search(value):  # old ODK Collect wrote "+07" without minutes
        value += ":00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Unreadable(text, *NOT_TIME) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-12:00 is past the last moment Python has
        raise Unreadable(text, *NOT_TIME) from None


def national_id(text: str | None) -> str | None:
    """Digits only (spaces and dashes as printed on the card are dropped)."""
    if text is None:
        return None
    digits = _SPACES_DASHES.sub("", ascii_digits(str(text)))
    return digits or None


def is_valid_national_id(value: str | None) -> bool:
    """13 digits, first digit 1–8 (person types), checksum right (weights 13..2)."""
    return bool(value) and value[0] in "12345678" and pin.is_valid(value)


def mask_national_id(value: str | None) -> str:
    """What an officer list may show: the last four digits only."""
    if not value:
        return ""
    if len(value) != 13:
        return "x" * len(value)
    return f"x-xxxx-xxxx{value[9]}-{value[10:12]}-{value[12]}"


def phone(text: str | None) -> str | None:
    """+66 / 66 → leading 0; spaces, dashes and brackets dropped."""
    if text is None:
        return None
    digits = _NOT_DIALLED.sub("", ascii_digits(str(text)))
    if digits.startswith("+66"):
        digits = "0" + digits[3:]
    elif digits.startswith("66") and len(digits) == 11:
        digits = "0" + digits[2:]
    return digits or None


def yes_no(text: str | None) -> bool | None:
    if text is None or str(text).strip() == "":
        return None
    value = str(text).strip().lower()
    if value in {"yes", "1", "true", "ใช่"}:
        return True
    if value in {"no", "0", "false", "ไม่ใช่"}:
        return False
    raise Unreadable(text, *NOT_YES_NO)


def select_multiple(text: str | None) -> list[str]:
    return str(text).split() if text else []


def geopoint(text: str | None) -> tuple[float | None, float | None]:
    """ "lat lon alt accuracy" → (lat, lon)."""
    if not text:
        return None, None
    parts = ascii_digits(str(text)).split()
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        raise Unreadable(text, *NOT_PLACE) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also refuses nan and inf
        raise Unreadable(text, *OFF_EARTH)
    return lat, lon


def village_code(text: str | None) -> str | None:
    return _SPACES_DASHES.sub("", ascii_digits(str(text))) if text else None


def code(text: str | None) -> str | None:
    """Programme codes (household, sage, session, group): ASCII digits, no spaces."""
    if not text:
        return None
    return _SPACES.sub("", ascii_digits(str(text))).upper() or None
