"""The worklist on the phone page: today's entries as cards in visit order, the rest folded
away by reason with counts.

A card says who and where (name, house number, village, หมู่, ตำบล), a tap-to-call link, a map
link the phone opens in its map app with the coordinates beside, the open reasons, and for a
session the households to call — never a raw id (the workbook carries the ids for snoozing).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from sammachip.reports.cells import be_date, phone_text, safe_cell
from sammachip.reports.entries import by_top_reason, coordinates, place_text, subject_label
from sammachip.reports.labels import PRIORITY_TH

Row = dict[str, Any]
_DIALABLE = re.compile(r"^\+?[0-9]{6,15}$")
# geo:lat,lon with an optional query; anything else is no map link (never a script URL).
_GEO = re.compile(r"^geo:-?\d+(\.\d+)?,-?\d+(\.\d+)?(\?.*)?$", re.DOTALL)


def esc(value: Any) -> str:
    """Escaped for HTML, after the same treatment as a spreadsheet cell."""
    return html.escape(safe_cell(value), quote=True)


def phone_link(phone: str | None) -> str:
    """A tap-to-call link (081-234-5678 shown, the digits dialled), or the text as written."""
    digits = re.sub(r"[-\s]", "", phone or "")
    if _DIALABLE.match(digits):
        return f'<a class="tel" href="tel:{digits}">☎ {esc(phone_text(digits))}</a>'
    return esc(phone)


def map_link(e: Row) -> str:
    uri, where = e.get("geo_uri"), coordinates(e)
    if not uri or not where or not _GEO.match(uri):
        return ""
    return (
        f'<div class="map"><a href="{html.escape(uri, quote=True)}">🗺 เปิดแผนที่ (map)</a> '
        f'<span class="meta">{esc(where)}</span></div>'
    )


def _reasons(e: Row) -> str:
    """Each open reason; its own due date where it is not the entry's (said below them)."""
    items = "".join(
        f"<li><b>{esc(r['rule_th'])}</b>: {esc(r.get('detail_th'))}"
        + (
            f' <span class="meta">ภายใน {esc(be_date(r["due_date"]))}</span>'
            if r["due_date"] != e["due_date"]
            else ""
        )
        + "</li>"
        for r in e.get("reasons") or []
    )
    return f'<ul class="reasons">{items}</ul>'


def _call_list(e: Row) -> str:
    calls = e.get("call_list") or []
    if not calls:
        return ""
    items = "".join(
        f"<li><b>{esc(c.get('head_name'))}</b> {phone_link(c.get('phone'))} "
        f'<span class="meta">{esc(place_text(c))}</span></li>'
        for c in calls
    )
    return f'<ol class="calls">{items}</ol>'


def _due(e: Row) -> str:
    late = e.get("overdue_days") or 0
    if late > 0:
        return (
            f'<div class="meta late">ภายใน {esc(be_date(e["due_date"]))} · '
            f"เลยกำหนด {late} วัน (overdue)</div>"
        )
    return f'<div class="meta">ภายใน {esc(be_date(e["due_date"]))}</div>'


def entry_card(e: Row, *, numbered: bool) -> str:
    priority = e.get("priority") or 3
    number = f'<span class="n">{e["visit_order"]}.</span> ' if numbered else ""
    kind = subject_label(e)
    phone = phone_link(e.get("phone")) if e.get("phone") else ""
    return (
        f'<div class="card p{priority}">'
        f"<h3>{number}"
        f'<span class="badge b{priority}">{esc(PRIORITY_TH.get(priority, priority))}</span>'
        f"{esc(e['title_th'])}</h3>"
        f'<div class="meta">{esc(kind)} · {esc(place_text(e))}</div>'
        f"{f'<div>{phone}</div>' if phone else ''}{map_link(e)}"
        f"{_reasons(e)}{_call_list(e)}{_due(e)}</div>"
    )


def today_section(entries: Sequence[Row]) -> str:
    if not entries:
        body = f'<p class="empty">{esc("ไม่มีรายการสำหรับวันนี้ (nothing for today)")}</p>'
    else:
        cards = "\n".join(entry_card(e, numbered=True) for e in entries)
        body = f'<div class="cards">{cards}</div>'
    return (
        f'<section id="today"><h2>วันนี้ (today) · {len(entries)}</h2>'
        f'<p class="meta">เรียงตามเส้นทาง: หมู่บ้าน หมู่ที่ บ้านเลขที่ (in visiting order)</p>'
        f"{body}</section>"
    )


def later_section(entries: Sequence[Row]) -> str:
    """Folded by each entry's most urgent reason, with counts; most urgent reason first."""
    groups = []
    for rule, priority, items in by_top_reason(entries):
        cards = "\n".join(entry_card(e, numbered=False) for e in items)
        groups.append(
            f'<details class="group"><summary><span class="badge b{priority}">'
            f"{esc(PRIORITY_TH.get(priority, priority))}</span>{esc(rule)} · {len(items)}"
            f'</summary><div class="cards">{cards}</div></details>'
        )
    body = "\n".join(groups) or f'<p class="empty">{esc("ไม่มีรายการค้าง (nothing later)")}</p>'
    return f'<section id="later"><h2>ภายหลัง (later) · {len(entries)}</h2>{body}</section>'
