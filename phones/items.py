"""What goes to the phones: one list item per row of the `worklist` mart, as the follow-up
form reads it (`schemas.followup_form`: the ODK Entity List's properties, the Kobo media CSV's
columns), with the stable uuid of its `item_id`.

Only the columns named here leave the warehouse: no national ID is ever pushed (the mart has
none, and nothing else is copied). Phones are pushed as the mart writes them.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson
import pyarrow as pa

from sammachip.connectors.odk.entities import entity_uuid
from sammachip.schemas.followup_form import FIELD_OWNED, LIST_COLUMNS, OPEN, VISITED

# The worklist columns a list item is made of (the rest of the mart stays home).
WORKLIST_COLUMNS = (
    "officer_id",
    "officer_name",
    "item_id",
    "subject_type",
    "subject_id",
    "title_th",
    "village_name",
    "moo",
    "house_no",
    "phone",
    "priority",
    "due_date",
    "bucket",
    "visit_order",
    "reasons",
)
PUSHED = tuple(c for c in LIST_COLUMNS if c not in FIELD_OWNED)  # what the push keeps current
NBSP = "\u00a0"  # keeps a Thai rule name one word of the form's space-separated list


@dataclass(frozen=True)
class PhoneItem:
    uuid: str
    item_id: str
    officer_id: str
    officer_name: str
    label: str
    data: dict[str, str]  # every PUSHED property, as text (Central stores text only)

    @property
    def content_hash(self) -> str:
        """What the phone shows of the item: a changed hash is a changed item."""
        doc = orjson.dumps({"label": self.label, **self.data}, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(doc).hexdigest()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _label(row: Mapping[str, Any], reasons: str) -> str:
    """name · village หมู่ N · บ้านเลขที่ X · reasons — what the officer picks from."""
    place = " ".join(
        p
        for p in (
            _text(row.get("village_name")),
            f"หมู่ {row['moo']}" if row.get("moo") is not None else "",
        )
        if p
    )
    house = f"บ้านเลขที่ {row['house_no']}" if row.get("house_no") else ""
    parts = [_text(row.get("title_th")) or _text(row.get("subject_id")), place, house, reasons]
    return " · ".join(p for p in parts if p)


def item_of(row: Mapping[str, Any]) -> PhoneItem:
    reasons = list(row.get("reasons") or [])
    names = [_text(r.get("rule_th")) for r in reasons]
    data = {
        "officer_id": _text(row["officer_id"]),
        "item_id": _text(row["item_id"]),
        "subject_type": _text(row.get("subject_type")),
        "subject_id": _text(row.get("subject_id")),
        "village": _text(row.get("village_name")),
        "moo": _text(row.get("moo")),
        "house_no": _text(row.get("house_no")),
        "phone": _text(row.get("phone")),
        "priority": _text(row.get("priority")),
        "due": _text(row.get("due_date")),
        "reasons": ", ".join(names),
        "reason_ids": " ".join(_text(r.get("rule_id")) for r in reasons),
        "reason_names": " ".join(n.replace(" ", NBSP) or "-" for n in names),
        "n_reasons": str(len(reasons)),
    }
    assert tuple(data) == PUSHED, "the list's columns and the push disagree"
    return PhoneItem(
        entity_uuid(data["item_id"]),
        data["item_id"],
        data["officer_id"],
        _text(row.get("officer_name")),
        _label(row, data["reasons"]),
        data,
    )


def phone_items(worklist: pa.Table) -> list[PhoneItem]:
    """Every officer's items in list order (officer, today before later, visit order)."""
    missing = [c for c in WORKLIST_COLUMNS if c not in worklist.column_names]
    if missing:
        raise ValueError(f"the worklist mart lacks {missing}: rebuild the marts")
    rows = worklist.select(list(WORKLIST_COLUMNS)).to_pylist()
    rows.sort(key=lambda r: (r["officer_id"], r["bucket"] != "today", r["visit_order"] or 0))
    return [item_of(r) for r in rows]


def officers(items: Iterable[PhoneItem]) -> dict[str, str]:
    """officer_id → name, of everyone with items."""
    return {i.officer_id: i.officer_name for i in items}


@dataclass(frozen=True)
class VisitWindow:
    """A visit takes an item off the officer's list for `days` days; an item the data still
    show as open after that is back on the list (`[phones] reopen_after_days`)."""

    today: date
    days: int

    def holds(self, visited_on: date | str | None) -> bool:
        """True while a visit of that day still keeps the item off the list."""
        try:
            day = date.fromisoformat(str(visited_on)[:10]) if visited_on else None
        except ValueError:  # a phone's answer we cannot read keeps nothing off the list
            return False
        return day is not None and day + timedelta(days=self.days) > self.today


def media_csv(
    items: Sequence[PhoneItem], visited: Mapping[str, date], window: VisitWindow
) -> bytes:
    """The list as KoboCollect reads it (`followups.csv`): UTF-8 without a BOM (a BOM would
    become part of the first column's name), every officer's items (the form shows each
    officer only theirs). Kobo phones cannot mark an item themselves: an item is `visited`
    while its last visit that reached them (`visited`: item_id → day) is within the window."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "label", *LIST_COLUMNS])
    for i in items:
        day = visited.get(i.item_id)
        status = VISITED if window.holds(day) else OPEN
        fields = {**i.data, "status": status, "visited_on": _text(day) if status == VISITED else ""}
        writer.writerow([i.uuid, i.label, *(fields.get(c, "") for c in LIST_COLUMNS)])
    return out.getvalue().encode()
