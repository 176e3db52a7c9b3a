"""The officer-edited snooze file: alerts to hide until a date, with a note.

CSV (edit it in Excel; header `alert_id,until,note`) or TOML (`[[snooze]]` tables with the same
keys). `until` is a date in the Buddhist Era as officers write it (15/03/2569) or ISO
(2026-03-15); the alert is hidden while today is before it and comes back on that day.
A bad line never stops the nightly run: it is skipped and reported.
"""

from __future__ import annotations

import csv
import logging
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

log = logging.getLogger(__name__)

SNOOZE_SCHEMA = pa.schema(
    [("alert_id", pa.string()), ("until", pa.date32()), ("note", pa.string())]
)
_DMY = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")


@dataclass(frozen=True)
class Snoozes:
    table: pa.Table
    problems: tuple[str, ...] = ()


def parse_until(text: Any) -> date:
    """A date as an officer types it: dd/mm/BE (or dd/mm/CE), or ISO yyyy-mm-dd."""
    if isinstance(text, date):
        return text
    raw = str(text).strip()
    if m := _DMY.match(raw):
        day, month, year = (int(g) for g in m.groups())
    else:
        parsed = date.fromisoformat(raw)
        day, month, year = parsed.day, parsed.month, parsed.year
    return date(year - 543 if year > 2400 else year, month, day)


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".toml":
        return list(tomllib.loads(path.read_text(encoding="utf-8")).get("snooze", []))
    with open(path, encoding="utf-8-sig", newline="") as f:  # Excel saves CSV with a BOM
        return list(csv.DictReader(f))


def load_snoozes(path: Path | None) -> Snoozes:
    """Snoozes from the file; none when there is no file."""
    if path is None or not path.exists():
        return Snoozes(SNOOZE_SCHEMA.empty_table())
    try:
        raw = _rows(path)
    except (OSError, ValueError, csv.Error) as err:  # tomllib.TOMLDecodeError is a ValueError
        log.warning("snooze file %s unreadable, ignored: %s", path, err)
        return Snoozes(SNOOZE_SCHEMA.empty_table(), (f"{path}: {err}",))
    rows, problems = [], []
    for n, row in enumerate(raw, start=2 if path.suffix.lower() != ".toml" else 1):
        alert_id = str(row.get("alert_id") or "").strip()
        try:
            until = parse_until(row.get("until"))
        except (TypeError, ValueError):
            until = None
        if not alert_id or until is None:
            problems.append(f"{path.name} line {n}: needs alert_id and a date in `until`")
            continue
        rows.append({"alert_id": alert_id, "until": until, "note": str(row.get("note") or "")})
    for problem in problems:
        log.warning("snooze entry skipped: %s", problem)
    return Snoozes(pa.Table.from_pylist(rows, schema=SNOOZE_SCHEMA), tuple(problems))
