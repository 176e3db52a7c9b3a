"""A worklist entry (one row of the `worklist` mart) as every file tells it: where to go, why,
who to call. The workbook and the CSV read the flat row (`entry_row`), the phone page the parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sammachip.reports.cells import be_date, phone_text
from sammachip.reports.labels import CALL_LIST_TH, PRIORITY_TH, SUBJECT_TH

Row = dict[str, Any]


def place_text(e: Row) -> str:
    """บ้านเลขที่ 11 · บ้านม่วงสามสิบ หมู่ 1 · ต.ม่วงสามสิบ (what the entry has of it; the mart
    names the tambon with its "ต.", as the workbook shows it)."""
    parts = []
    if e.get("house_no"):
        parts.append(f"บ้านเลขที่ {e['house_no']}")
    village = " ".join(
        p for p in (e.get("village_name"), f"หมู่ {e['moo']}" if e.get("moo") else None) if p
    )
    if village:
        parts.append(village)
    if e.get("tambon_name"):
        parts.append(e["tambon_name"])
    return " · ".join(parts)


def coordinates(e: Row) -> str | None:
    """ "lat, lon" beside the map link (a phone without a map app can still copy them)."""
    if e.get("lat") is None or e.get("lon") is None:
        return None
    return f"{e['lat']:.5f}, {e['lon']:.5f}"


def reason_line(r: Row) -> str:
    return f"{r['rule_th']}: {r.get('detail_th') or ''} (ภายใน {be_date(r['due_date'])})"


def call_line(c: Row) -> str:
    where = " ".join(
        p
        for p in (
            f"บ้านเลขที่ {c['house_no']}" if c.get("house_no") else None,
            c.get("village_name"),
            f"หมู่ {c['moo']}" if c.get("moo") else None,
        )
        if p
    )
    return " · ".join(p for p in (c.get("head_name"), phone_text(c.get("phone")), where) if p)


def subject_label(e: Row) -> str:
    """What the entry is about, in Thai: a session is a call list only when it has one (a
    session not held, R10, is the session itself)."""
    if e["subject_type"] == "session" and e.get("call_list"):
        return CALL_LIST_TH
    return SUBJECT_TH.get(e["subject_type"], e["subject_type"])


def entry_row(e: Row) -> Row:
    """The entry flattened for a spreadsheet: reasons and call list one per line, the phone
    written with dashes, priority and type in Thai words (the workbook keeps priority a
    number shown as words, so it still sorts)."""
    return {
        **e,
        "bucket_th": "วันนี้ (today)" if e["bucket"] == "today" else "ภายหลัง (later)",
        "priority_th": PRIORITY_TH.get(e["priority"], str(e["priority"])),
        "subject_type_th": subject_label(e),
        "phone": phone_text(e.get("phone")),
        "reasons_th": "\n".join(f"• {reason_line(r)}" for r in e.get("reasons") or []),
        "call_list_th": "\n".join(f"• {call_line(c)}" for c in e.get("call_list") or []) or None,
        "coordinates": coordinates(e),
        "alert_ids": ", ".join(snooze_ids(e)),
        "due_date_iso": e["due_date"].isoformat() if e.get("due_date") else None,
        "first_seen_iso": e["first_seen"].isoformat() if e.get("first_seen") else None,
    }


def snooze_ids(e: Row) -> list[str]:
    """The ids a snooze file may name for this entry: first a session's call list by its own
    id, which snoozes the whole list; then its other reasons'; then each household's on the
    call list, to snooze one call alone."""
    calls = [c["alert_id"] for c in e.get("call_list") or [] if c.get("alert_id")]
    listed = {c.split(":", 1)[0] for c in calls}  # the call list's rule
    reasons = e.get("reasons") or []
    whole = [r["alert_id"] for r in reasons if r["rule_id"] in listed]  # first, as files say
    return [*whole, *(r["alert_id"] for r in reasons if r["rule_id"] not in listed), *calls]


def by_top_reason(entries: Iterable[Row]) -> list[tuple[str, int, list[Row]]]:
    """Entries grouped by their first (most urgent) reason: (rule in Thai, its priority, the
    entries), most urgent rule first, each entry once."""
    groups: dict[str, list[Row]] = {}
    for e in entries:
        reasons: Sequence[Row] = e.get("reasons") or []
        key = reasons[0]["rule_th"] if reasons else "อื่น ๆ (other)"
        groups.setdefault(key, []).append(e)
    ranked = [(rule, min(e["priority"] for e in items), items) for rule, items in groups.items()]
    return sorted(ranked, key=lambda g: (g[1], -len(g[2]), g[0]))
