"""One cell as an officer reads it, safe in every file we write.

- dates in the Buddhist Era (dd/mm/2568), booleans as ✓/✗ with Thai words;
- a whole 13-digit national ID never leaves: any such number is masked to its last four digits;
- text a spreadsheet would run as a formula (=, +, -, @, tab, CR) is made inert.
HTML escaping is the HTML writer's job (`html.escape` on top of `display`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from schemas.normalise import mask_national_id

_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
# 13 digits in a row, or written the Thai way 1-2345-67890-12-3 (with dashes or spaces).
_NATIONAL_ID = re.compile(r"(?<!\d)\d(?:[- ]?\d){12}(?!\d)")
_THAI_MONTHS = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
                "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.")  # fmt: skip


def be_date(value: date) -> str:
    """dd/mm/yyyy in the Buddhist Era, as Thai offices write dates."""
    return f"{value.day:02d}/{value.month:02d}/{value.year + 543}"


def be_month(value: date) -> str:
    """Short Thai month and BE year, e.g. "ต.ค. 68" (chart axes)."""
    return f"{_THAI_MONTHS[value.month - 1]} {(value.year + 543) % 100:02d}"


def redact_ids(text: str) -> str:
    """Mask any national ID inside free text (a reason, a note) to its last four digits."""
    return _NATIONAL_ID.sub(lambda m: mask_national_id(re.sub(r"\D", "", m.group())), text)


def display(value: Any) -> str:
    """The text an officer sees: BE dates, ✓/✗, IDs masked; no formula guard (see safe_cell)."""
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
    return redact_ids(str(value))


def is_formula_like(text: str) -> bool:
    return bool(_FORMULA_START.match(text))


def safe_cell(value: Any) -> str:
    """Text as a spreadsheet will show it, never as a formula (CSV/formula injection)."""
    text = display(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return text  # a negative number is a number, not a formula
    return "'" + text if is_formula_like(text) else text
