"""One cell as an officer reads it, safe in every file we write.

- dates in the Buddhist Era (dd/mm/2568), booleans as ✓/✗ with Thai words;
- a whole 13-digit national ID never leaves: any such number is masked to its last four digits;
- control characters, terminal escape sequences and bidi overrides never reach a file (the
  warehouse keeps answers as they came; what an officer reads is cleaned here, for every writer);
- text a spreadsheet would run as a formula (=, +, -, @, tab, CR) is made inert.
HTML escaping is the HTML writer's job (`html.escape` on top of `display`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import Any, TypeVar

from sammachip.schemas.normalise import mask_national_id, strip_invisible

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# 13 digits in a row, or written the Thai way 1-2345-67890-12-3 (with dashes or spaces).
_NATIONAL_ID = re.compile(r"(?<!\d)\d(?:[- ]?\d){12}(?!\d)")
_THAI_MONTHS = (
    "ม.ค.",
    "ก.พ.",
    "มี.ค.",
    "เม.ย.",
    "พ.ค.",
    "มิ.ย.",
    "ก.ค.",
    "ส.ค.",
    "ก.ย.",
    "ต.ค.",
    "พ.ย.",
    "ธ.ค.",
)


def be_date(value: date) -> str:
    """dd/mm/yyyy in the Buddhist Era, as Thai offices write dates."""
    return f"{value.day:02d}/{value.month:02d}/{value.year + 543}"


def be_month(value: date) -> str:
    """Short Thai month and BE year, e.g. "ต.ค. 68" (chart axes)."""
    return f"{_THAI_MONTHS[value.month - 1]} {(value.year + 543) % 100:02d}"


def phone_text(phone: str | None) -> str | None:
    """A phone as Thais write it, 081-234-5678 (a Bangkok line 02-123-4567, others
    045-123-456): with its dashes no spreadsheet reads it as a number and drops the 0."""
    if not phone or not phone.isdigit() or not phone.startswith("0"):
        return phone
    if len(phone) == 10:
        return f"{phone[:3]}-{phone[3:6]}-{phone[6:]}"
    if len(phone) == 9:
        head = 2 if phone.startswith("02") else 3
        return f"{phone[:head]}-{phone[head : head + 3]}-{phone[head + 3 :]}"
    return phone


def redact_ids(text: str) -> str:
    """Mask any national ID inside free text (a reason, a note) to its last four digits."""
    return _NATIONAL_ID.sub(lambda m: mask_national_id(re.sub(r"\D", "", m.group())), text)


def display(value: Any) -> str:
    """The text an officer sees: BE dates, ✓/✗, IDs masked; no formula guard (see safe_cell)."""
    # Called for every cell of every file (millions at province scale): the common types by
    # a dict lookup, then the general rules (bool before int, datetime before date).
    convert = _DISPLAY_BY_TYPE.get(type(value))
    if convert is not None:
        return convert(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✓ ผ่าน" if value else "✗ ยังไม่ผ่าน"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return be_date(value)
    return _shown_text(str(value))


T = TypeVar("T")
_FORGET: list[Callable[[], None]] = []


def text_memo(convert: Callable[[str], T]) -> Callable[[str], T]:
    """`convert`, remembering its results for the latest texts (until `forget_texts`).

    The same texts recur across an officer's files (each alert is in the CSV, the workbook and
    the page; a rule's name is in every row), and converting one (the ID search) costs more
    than looking it up. Bounded: a province's run converts millions of cells.
    """
    memo = lru_cache(maxsize=1 << 15)(convert)
    _FORGET.append(memo.cache_clear)
    return memo


def forget_texts() -> None:
    """Drop the remembered texts: they are officers' data, and a long-lived process (the
    flow server) should not keep them after writing a run's files."""
    for forget in _FORGET:
        forget()


@text_memo
def _shown_text(text: str) -> str:
    return redact_ids(strip_invisible(text))


_DISPLAY_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: _shown_text,
    int: str,
    float: str,
    date: be_date,
}


def is_formula_like(text: str) -> bool:
    return text.startswith(_FORMULA_START)


@text_memo
def _safe_text(text: str) -> str:
    shown = _shown_text(text)
    return "'" + shown if is_formula_like(shown) else shown


def safe_cell(value: Any) -> str:
    """Text as a spreadsheet will show it, never as a formula (CSV/formula injection)."""
    if type(value) is str:  # most cells: no type tests, and the result is memoised
        return _safe_text(value)
    text = display(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return text  # a negative number is a number, not a formula
    return "'" + text if is_formula_like(text) else text
