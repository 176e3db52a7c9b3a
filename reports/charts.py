"""Charts where officers would rather look than read, rendered offline to inline SVG.

Each chart is a plain Vega-Lite spec (a dict written here, no chart library in between: at
province scale building the specs through a library cost as much as rendering them), and
vl-convert renders it without a browser or network. Text stays text in the SVG (the page's
Thai font draws it); labels come from our own data and vl-convert escapes them, and the
report's Content-Security-Policy forbids scripts anyway.

Rendering is the slow part (~0.07 s a chart, most of it measuring the Thai labels), so an
`SvgCache` keeps each SVG under the hash of its spec: a run renders only the charts whose
data changed since an earlier run.
Each `*_chart` function returns the SVG, or None when there is nothing to draw; `*_spec`
returns the spec it renders.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import vl_convert as vlc

from sammachip.marts import READINESS_TH
from sammachip.reports.cells import be_month
from sammachip.reports.files import replacing
from sammachip.reports.processes import spawn_pool

Spec = dict[str, Any]

# Thai-capable fonts on phones (Android: Noto Sans Thai; iOS: Thonburi), Windows (Leelawadee UI,
# Tahoma) and Debian (Loma, Garuda from fonts-thai-tlwg).
FONT_STACK = (
    "Sarabun, 'Noto Sans Thai', 'Noto Sans Thai UI', Thonburi, 'Leelawadee UI', Tahoma, "
    "Loma, Garuda, sans-serif"
)
WIDTH = 300  # fits a 390 px phone screen with the page's margins
# A phone chart stays readable with this many areas; beyond it, the ones needing help most.
MAX_AREAS = 20
# The heat map's months on a phone: the latest six keep each cell wide enough for its number.
MAX_MONTHS = 6
_READINESS_COLOURS = {"ready": "#2e7d32", "nearly_ready": "#f9a825", "not_ready": "#c62828"}
_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.4.1.json"
_CONFIG: Spec = {"view": {"stroke": None}, "font": FONT_STACK}  # no frame around the plot


# ---- specs ------------------------------------------------------------------------------------


def _chart(layers: list[Spec], width: int, height: int, values: list[Spec] | None = None) -> Spec:
    """A layered chart: `values` is the data all layers share (None: each layer has its own)."""
    spec: Spec = {"config": _CONFIG, "layer": layers}
    if values is not None:
        spec["data"] = {"values": values}
    return spec | {"height": height, "width": width, "$schema": _SCHEMA}


def _layer(mark: Spec, encoding: Spec, values: list[Spec] | None = None) -> Spec:
    data = {} if values is None else {"data": {"values": values}}
    return {**data, "mark": mark, "encoding": encoding}


def _area_axis(areas: list[str]) -> Spec:
    """Areas (villages or tambons) down the side, in the order given."""
    return {
        "axis": {"labelLimit": 130},
        "field": "area",
        "sort": areas,
        "title": None,
        "type": "nominal",
    }


def attendance_spec(rows: Iterable[dict[str, Any]]) -> Spec | None:
    """Heat map: share of invited households present, per area (rows) and month (columns),
    the latest MAX_MONTHS months.

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
    months = sorted({m for _, m in cells})[-MAX_MONTHS:]
    cells = {k: v for k, v in cells.items() if k[1] in set(months)}
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
    x = {
        "axis": {"labelAngle": -45, "orient": "top"},
        "field": "month",
        "sort": [be_month(m) for m in months],
        "title": None,
        "type": "ordinal",
    }
    y = _area_axis(areas)
    heat = {
        "color": {
            "field": "rate",
            "legend": {"format": ".0%", "orient": "bottom"},
            "scale": {"clamp": True, "domain": [0.5, 1], "scheme": "redyellowgreen"},
            "title": "มาร่วม (%)",
            "type": "quantitative",
        },
        "x": x,
        "y": y,
    }
    text = {  # white on the dark ends of the scale, black on the light middle
        "color": {
            "condition": {"test": "datum.rate >= 0.9 || datum.rate < 0.6", "value": "white"},
            "value": "black",
        },
        "text": {"field": "text", "type": "nominal"},
        "x": x,
        "y": y,
    }
    width = max(min(WIDTH - 130, 34 * len(months)), 60)
    layers = [_layer({"type": "rect"}, heat), _layer({"type": "text", "fontSize": 10}, text)]
    return _chart(layers, width, 20 * len(areas), data)


def _attendance_rates(cells: dict[tuple[str, date], list[int]]) -> dict[str, float]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (area, _), (invited, present) in cells.items():
        totals[area][0] += invited
        totals[area][1] += present
    return {a: (p / i if i else 1.0) for a, (i, p) in totals.items()}


def _worst(areas: Iterable[str], score: dict[str, float]) -> list[str]:
    """At most MAX_AREAS areas, lowest score first (the ones an officer should look at)."""
    return sorted(areas, key=lambda a: score.get(a, 0.0))[:MAX_AREAS]


def income_spec(rows: Iterable[dict[str, Any]]) -> Spec | None:
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
    y = _area_axis(areas)
    before_x = {
        "field": "before",
        "scale": {"zero": False},
        "title": "บาท/เดือน",
        "type": "quantitative",
    }
    rule = {"x": before_x, "x2": {"field": "after"}, "y": y}  # the bar from before to after
    dots = {
        "color": {
            "field": "when",
            "legend": {"orient": "bottom"},
            "scale": {"range": ["#9e9e9e", "#2e7d32"]},
            "sort": ["ก่อนอบรม", "ติดตามผล"],
            "title": None,
            "type": "nominal",
        },
        "x": {"field": "income", "type": "quantitative"},
        "y": y,
    }
    label = {  # the change in %, right of the follow-up dot
        "text": {"field": "change", "type": "nominal"},
        "x": {"field": "after", "type": "quantitative"},
        "y": y,
    }
    layers = [
        _layer({"type": "rule", "color": "#999", "strokeWidth": 2}, rule, lines),
        _layer({"type": "circle", "opacity": 1, "size": 90}, dots, points),
        _layer({"type": "text", "align": "left", "dx": 8, "fontSize": 10}, label, lines),
    ]
    return _chart(layers, WIDTH - 160, 22 * len(lines))


def readiness_spec(rows: Iterable[dict[str, Any]]) -> Spec | None:
    """Bars: occupational groups by OTOP readiness."""
    counts = dict.fromkeys(READINESS_TH, 0)
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if not any(counts.values()):
        return None
    data = [{"status": READINESS_TH[s], "n": n, "key": s} for s, n in counts.items()]
    x = {
        "axis": {"format": "d", "tickMinStep": 1},
        "field": "n",
        "title": "จำนวนกลุ่ม",
        "type": "quantitative",
    }
    y = {"field": "status", "sort": list(READINESS_TH.values()), "title": None, "type": "nominal"}
    colours = {"domain": list(_READINESS_COLOURS), "range": list(_READINESS_COLOURS.values())}
    bars = {
        "color": {"field": "key", "legend": None, "scale": colours, "type": "nominal"},
        "x": x,
        "y": y,
    }
    counts_text = {
        "color": {"value": "#000"},
        "text": {"field": "n", "type": "quantitative"},
        "x": x,
        "y": y,
    }
    layers = [
        _layer({"type": "bar"}, bars),
        _layer({"type": "text", "align": "left", "dx": 4}, counts_text),
    ]
    return _chart(layers, WIDTH - 110, 26 * len(data), data)


# ---- rendering --------------------------------------------------------------------------------


# Part of every cache key: change it when what `_render` makes of a spec changes.
_RENDERING = f"vl-convert {vlc.__version__}, stable ids"


def spec_key(spec: Spec) -> str:
    """The spec's identity: sha256 of its canonical JSON and of how it is rendered."""
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{_RENDERING}\n{text}".encode()).hexdigest()


# Vega names the SVG's gradients (the heat map's legend) from a counter in the renderer's
# process, so the same chart came out as gradient_0 or gradient_57 depending on what that
# process drew before; two charts from different processes on one page could then share an
# id and one draw with the other's gradient.
_SVG_ID = re.compile(r'(\bid="|url\(#|href="#)([A-Za-z][\w.-]*)(?=[")])')


def _stable_ids(svg: str, key: str) -> str:
    """The SVG with its ids named after the chart's key: the same in any process, and
    different in different charts."""
    names: dict[str, str] = {}

    def rename(m: re.Match[str]) -> str:
        new = names.setdefault(m.group(2), f"c{key[:12]}-{len(names)}")
        return m.group(1) + new

    return _SVG_ID.sub(rename, svg)


def _render(spec: Spec, key: str) -> str:
    return _stable_ids(_to_svg(spec), key)


# vl-convert runs its JavaScript engine on a thread the first render starts. A process forked
# after that inherits the engine but not the thread, and its first render would wait forever;
# such a child renders through a freshly spawned process instead (forks with a started engine
# happen in tests and embedding code; the CLI and Prefect's flow runs start processes whole).
_engine_started = False
_inherited_engine = False
_spawned: ProcessPoolExecutor | None = None


def _forked() -> None:
    global _inherited_engine, _spawned
    _inherited_engine = _inherited_engine or _engine_started
    _spawned = None  # the parent's pool is not this process's


os.register_at_fork(after_in_child=_forked)


def _to_svg(spec: Spec) -> str:
    global _engine_started, _spawned
    if not _inherited_engine:
        _engine_started = True
        return vlc.vegalite_to_svg(spec)
    if _spawned is None:
        _spawned = spawn_pool(1)
    return _spawned.submit(vlc.vegalite_to_svg, spec).result()


def start_engine() -> None:
    """Start the chart engine (its JavaScript runtime and Vega: ~0.5 s) before the first chart
    needs it: a worker process does so as it starts, while its parent prepares the work."""
    _to_svg({"data": {"values": []}, "mark": "point"})


def _checked(svg: str) -> str:
    if "<script" in svg.lower():  # vl-convert escapes text; refuse anything that is not
        raise ValueError("chart SVG contains a script element")
    return svg


class SvgCache:
    """Rendered SVGs in a folder, each under the sha256 of its spec and the renderer's version.

    Content-addressed, so an entry never goes stale: changed data is a different key. Several
    processes (the nightly run, an event-driven ingest run) may share the folder: an entry is
    written to a temporary file and renamed into place, so a reader sees a whole SVG or none.
    A hit refreshes the entry's mtime; `prune` drops entries no run used for `keep_days`.
    """

    def __init__(self, folder: Path, keep_days: int = 14) -> None:
        self.folder = folder
        self.keep_days = keep_days
        self.hits = self.misses = 0

    def svg(self, spec: Spec, key: str) -> str:
        """The SVG of `spec` (whose `spec_key` is `key`), rendered only if not kept yet."""
        path = self.folder / f"{key}.svg"
        svg = self._read(path)
        if svg is not None:
            self.hits += 1
            return svg
        self.misses += 1
        svg = _render(spec, key)
        self._write(path, svg)
        return svg

    def _read(self, path: Path) -> str | None:
        try:
            svg = path.read_text(encoding="utf-8")
        except OSError:  # not there, or pruned by another run meanwhile: render it
            return None
        # a whole SVG, or render again (a file truncated by a crash, or not ours)
        if not (svg.startswith("<svg") and svg.rstrip().endswith("</svg>")):
            return None
        with contextlib.suppress(OSError):  # a read-only cache still serves
            os.utime(path)  # used today: `prune` keeps it
        return svg

    def _write(self, path: Path, svg: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp:  # another process writing the same key is harmless
                tmp.write_text(svg, encoding="utf-8")
        except OSError:
            pass  # a cache that cannot be written (disk full, read-only) only costs time

    def prune(self, now: float | None = None) -> int:
        """Delete entries (and leftover temporary files) unused for `keep_days`; returns how
        many were deleted."""
        cutoff = (time.time() if now is None else now) - self.keep_days * 86400
        deleted = 0
        for path in self.folder.glob("*"):
            if path.suffix not in (".svg", ".tmp"):
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:  # another run pruned it first
                pass
        return deleted


def render(spec: Spec | None, cache: SvgCache | None = None) -> str | None:
    """The spec as SVG (from `cache` when it was rendered before); None for no spec."""
    if spec is None:
        return None
    key = spec_key(spec)
    # hits are checked too: the cache folder is only as trustworthy as its permissions
    return _checked(_render(spec, key) if cache is None else cache.svg(spec, key))


def attendance_chart(rows: Iterable[dict[str, Any]], cache: SvgCache | None = None) -> str | None:
    return render(attendance_spec(rows), cache)


def income_chart(rows: Iterable[dict[str, Any]], cache: SvgCache | None = None) -> str | None:
    return render(income_spec(rows), cache)


def readiness_chart(rows: Iterable[dict[str, Any]], cache: SvgCache | None = None) -> str | None:
    return render(readiness_spec(rows), cache)
