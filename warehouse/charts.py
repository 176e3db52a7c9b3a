"""Charts where officers would rather look than read, rendered offline to inline SVG.

altair builds the Vega-Lite spec, vl-convert renders it without a browser or network. Text
stays text in the SVG (the page's Thai font draws it); labels come from our own data and
vl-convert escapes them, and the report's Content-Security-Policy forbids scripts anyway.
Each function returns the SVG, or None when there is nothing to draw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

import altair as alt
import vl_convert as vlc

from warehouse.cells import be_month
from warehouse.labels import READINESS_TH

# Thai-capable fonts on phones (Android: Noto Sans Thai; iOS: Thonburi), Windows (Leelawadee UI,
# Tahoma) and Debian (Loma, Garuda from fonts-thai-tlwg).
FONT_STACK = (
    "Sarabun, 'Noto Sans Thai', 'Noto Sans Thai UI', Thonburi, 'Leelawadee UI', Tahoma, "
    "Loma, Garuda, sans-serif"
)
WIDTH = 300  # fits a 390 px phone screen with the page's margins
# A phone chart stays readable with this many areas; beyond it, the ones needing help most.
MAX_AREAS = 20
_READINESS_COLOURS = {"ready": "#2e7d32", "nearly_ready": "#f9a825", "not_ready": "#c62828"}


def _svg(chart: alt.TopLevelMixin) -> str:
    # validate=False: the specs are fixed by this module; schema validation costs more than
    # the rendering
    spec = chart.configure(font=FONT_STACK).configure_view(stroke=None).to_dict(validate=False)
    svg = vlc.vegalite_to_svg(spec)
    if "<script" in svg.lower():  # vl-convert escapes text; refuse anything that is not
        raise ValueError("chart SVG contains a script element")
    return svg


def attendance_chart(rows: Iterable[dict[str, Any]]) -> str | None:
    """Heat map: share of invited households present, per area (rows) and month (columns).

    rows: {"area": label, "order": sort key, "month": date, "invited": n, "present": n}
    """
    cells: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    order: dict[str, Any] = {}
    for r in rows:
        cell = cells[(r["area"], r["month"])]
        cell[0] += r["invited"]
        cell[1] += r["present"]
        order.setdefault(r["area"], r.get("order", r["area"]))
    if not cells:
        return None
    months = sorted({m for _, m in cells})
    areas = sorted(_worst(order, _attendance_rates(cells)), key=lambda a: order[a])
    cells = {k: v for k, v in cells.items() if k[0] in set(areas)}
    data = [
        {
            "area": area,
            "month": be_month(month),
            "rate": present / invited if invited else None,
            "text": f"{round(100 * present / invited)}" if invited else "",
        }
        for (area, month), (invited, present) in cells.items()
    ]
    x = alt.X("month:O", sort=[be_month(m) for m in months], title=None,
              axis=alt.Axis(labelAngle=-45, orient="top"))  # fmt: skip
    y = alt.Y("area:N", sort=areas, title=None, axis=alt.Axis(labelLimit=130))
    base = alt.Chart(alt.Data(values=data)).encode(x=x, y=y)
    heat = base.mark_rect().encode(
        color=alt.Color(
            "rate:Q",
            title="มาร่วม (%)",
            scale=alt.Scale(domain=[0.5, 1], scheme="redyellowgreen", clamp=True),
            legend=alt.Legend(format=".0%", orient="bottom"),
        )
    )
    text = base.mark_text(fontSize=10).encode(
        text="text:N",
        color=alt.condition(
            "datum.rate >= 0.9 || datum.rate < 0.6", alt.value("white"), alt.value("black")
        ),
    )
    width = min(WIDTH - 130, 34 * len(months))
    return _svg((heat + text).properties(width=max(width, 60), height=20 * len(areas)))


def _attendance_rates(cells: dict[tuple[str, date], list[int]]) -> dict[str, float]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (area, _), (invited, present) in cells.items():
        totals[area][0] += invited
        totals[area][1] += present
    return {a: (p / i if i else 1.0) for a, (i, p) in totals.items()}


def _worst(areas: Iterable[str], score: dict[str, float]) -> list[str]:
    """At most MAX_AREAS areas, lowest score first (the ones an officer should look at)."""
    return sorted(areas, key=lambda a: score.get(a, 0.0))[:MAX_AREAS]


def income_chart(rows: Iterable[dict[str, Any]]) -> str | None:
    """Dumbbell: average household income before training → at follow-up, per area.

    rows: household_outcomes rows with an "area" label (and an "order" sort key); only
    practising households with both incomes count (the department's income KPI).
    """
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    order: dict[str, Any] = {}
    for r in rows:
        if (
            r.get("practising")
            and (r.get("baseline_income") or 0) > 0
            and r.get("followup_income") is not None
        ):
            s = sums[r["area"]]
            order.setdefault(r["area"], r.get("order", r["area"]))
            s[0] += r["baseline_income"]
            s[1] += r["followup_income"]
            s[2] += 1
    if not sums:
        return None
    points, lines = [], []
    change_of = {a: (f / b if b else 0.0) for a, (b, f, _) in sums.items()}
    areas = sorted(_worst(order, change_of), key=lambda a: order[a])
    for area in areas:
        base, follow, n = sums[area]
        before, after = base / n, follow / n
        change = f"{100 * (after / before - 1):+.1f}%"
        lines.append({"area": area, "before": before, "after": after, "change": change})
        points += [
            {"area": area, "when": "ก่อนอบรม", "income": before},
            {"area": area, "when": "ติดตามผล", "income": after},
        ]
    y = alt.Y("area:N", sort=areas, title=None, axis=alt.Axis(labelLimit=130))
    rule = (
        alt.Chart(alt.Data(values=lines))
        .mark_rule(color="#999", strokeWidth=2)
        .encode(
            y=y,
            x=alt.X("before:Q", title="บาท/เดือน", scale=alt.Scale(zero=False)),
            x2="after:Q",
        )
    )
    dots = (
        alt.Chart(alt.Data(values=points))
        .mark_circle(size=90, opacity=1)
        .encode(
            y=y,
            x="income:Q",
            color=alt.Color(
                "when:N",
                title=None,
                sort=["ก่อนอบรม", "ติดตามผล"],
                scale=alt.Scale(range=["#9e9e9e", "#2e7d32"]),
                legend=alt.Legend(orient="bottom"),
            ),
        )
    )
    label = (
        alt.Chart(alt.Data(values=lines))
        .mark_text(align="left", dx=8, fontSize=10)
        .encode(y=y, x="after:Q", text="change:N")
    )
    return _svg((rule + dots + label).properties(width=WIDTH - 160, height=22 * len(lines)))


def readiness_chart(rows: Iterable[dict[str, Any]]) -> str | None:
    """Bars: occupational groups by OTOP readiness."""
    counts = dict.fromkeys(READINESS_TH, 0)
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if not any(counts.values()):
        return None
    data = [{"status": READINESS_TH[s], "n": n, "key": s} for s, n in counts.items()]
    order = list(READINESS_TH.values())
    bars = (
        alt.Chart(alt.Data(values=data))
        .mark_bar()
        .encode(
            y=alt.Y("status:N", sort=order, title=None),
            x=alt.X("n:Q", title="จำนวนกลุ่ม", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "key:N",
                legend=None,
                scale=alt.Scale(
                    domain=list(_READINESS_COLOURS), range=list(_READINESS_COLOURS.values())
                ),
            ),
        )
    )
    text = bars.mark_text(align="left", dx=4).encode(text="n:Q", color=alt.value("#000"))
    return _svg((bars + text).properties(width=WIDTH - 110, height=26 * len(data)))
