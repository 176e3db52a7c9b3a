"""Charts where officers would rather look than read, rendered offline to inline SVG.

Each chart is a plain Vega-Lite spec (a dict written here, no chart library in between: at
province scale building the specs through a library cost as much as rendering them), and
vl-convert renders it without a browser or network. Text stays text in the SVG (the page's
Thai font draws it); labels come from our own data and vl-convert escapes them, and the
report's Content-Security-Policy forbids scripts anyway.

Rendering is the slow part (~0.02-0.07 s a chart, nearly all of it vl-convert measuring
text, a few ms per text item), so: the specs ask for no more measuring than the picture needs
(no text limits where none can bind); each kind of chart is compiled to Vega once per process,
its data swapped in (the specs name their data's order by fields, not by lists of values); and
an `SvgCache` keeps each SVG under the hash of its spec, the renderer and the fonts: a run
renders only the charts whose data changed since an earlier run.
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
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import vl_convert as vlc

from sammachip.marts.labels import READINESS_TH
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
# The area labels' limit: a longer village or tambon name ends in "…" (the one limit that binds).
AREA_LABEL_LIMIT = 130
# Vega measures a text with a limit three times (against its limit, for its bounds, and again as
# it writes the SVG) and one without once; each measuring is a few ms in vl-convert. Every other
# text here is a number of at most 7 characters or one of our short titles ("บาท/เดือน"), far
# below Vega's default limits (axis labels 180 px, legend 160 px): without the limits they are
# drawn the same, measured a third as often.
_NO_LIMITS: Spec = {"labelLimit": 0, "titleLimit": 0}
_CONFIG: Spec = {
    "axis": _NO_LIMITS,
    "font": FONT_STACK,
    "legend": _NO_LIMITS,
    "view": {"stroke": None},  # no frame around the plot
}


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


# Orders named by a field of the data rather than by a list of the values: the spec of a
# kind of chart is then the same whatever its areas and months, and compiles once (`_vega`).
_BY_ROW: Spec = {"field": "row", "op": "min"}
_BY_COLUMN: Spec = {"field": "column", "op": "min"}


def _area_axis() -> Spec:
    """Areas (villages or tambons) down the side, in the order of the data's "row" field."""
    return {
        "axis": {"labelLimit": AREA_LABEL_LIMIT},
        "field": "area",
        "sort": _BY_ROW,
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
    row, column = {a: i for i, a in enumerate(areas)}, {m: i for i, m in enumerate(months)}
    data = [
        {
            "area": area,
            "column": column[month],
            "month": be_month(month),
            "rate": present / invited if invited else None,
            "row": row[area],
            "text": f"{round(100 * present / invited)}" if invited else "",
        }
        for (area, month), (invited, present) in cells.items()
    ]
    x = {
        "axis": {"labelAngle": -45, "orient": "top"},
        "field": "month",
        "sort": _BY_COLUMN,
        "title": None,
        "type": "ordinal",
    }
    y = _area_axis()
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
    for row, area in enumerate(areas):
        base, follow, n = sums[area]
        before, after = base / n, follow / n
        change = f"{100 * (after / before - 1):+.1f}%"
        line = {"area": area, "before": before, "after": after, "change": change, "row": row}
        lines.append(line)
        points += [
            {"area": area, "when": "ก่อนอบรม", "income": before, "row": row},
            {"area": area, "when": "ติดตามผล", "income": after, "row": row},
        ]
    y = _area_axis()
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

# Where vl-convert finds the fonts it measures text with (fontdb's system folders on Linux,
# macOS and Windows): the same spec lays out differently with other fonts installed.
_FONT_FOLDERS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.fonts",
    "~/.local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "~/Library/Fonts",
    "%WINDIR%/Fonts",
    "%LOCALAPPDATA%/Microsoft/Windows/Fonts",
)
_FONT_SUFFIXES = {".ttf", ".otf", ".ttc", ".otc"}


@cache
def fonts_installed() -> str:
    """A digest of the font files the renderer can measure with (names, sizes, times)."""
    digest = hashlib.sha256()
    for folder in _FONT_FOLDERS:
        root = Path(os.path.expandvars(os.path.expanduser(folder)))
        for path in sorted(root.rglob("*")) if root.is_dir() else ():
            if path.suffix.lower() in _FONT_SUFFIXES:
                with contextlib.suppress(OSError):  # removed while we looked
                    st = path.stat()
                    digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def spec_key(spec: Spec) -> str:
    """The spec's identity: sha256 of its canonical JSON, of how it is rendered and of the
    fonts it is measured with."""
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{_RENDERING}\n{fonts_installed()}\n{text}".encode()).hexdigest()


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
        return _draw(spec)
    if _spawned is None:
        _spawned = spawn_pool(1)
    return _spawned.submit(_draw, spec).result()


def _draw(spec: Spec) -> str:
    areas = _area_labels(spec)
    if areas and areas <= _fitting:  # drawn whole before: the limit cannot bind
        return vlc.vega_to_svg(_vega(_areas_unlimited(spec)))
    svg = vlc.vega_to_svg(_vega(spec))
    _fitting.update(a for a in areas if f">{xml_escape(a)}</text>" in _axis_labels(svg))
    return svg


# Area labels this process drew whole under AREA_LABEL_LIMIT (the same font and size in every
# chart). A chart whose labels are all here is drawn without the limit — the same picture,
# each label measured once instead of three times: an officer's two area charts show the
# same villages, the district's two the same tambons. At most every area's name (a province:
# ~3,000).
_fitting: set[str] = set()
_AXIS_LABELS = re.compile(r'<g class="mark-text role-axis-label"[^>]*>(.*?)</g>')


def _area_labels(spec: Spec) -> set[str]:
    """The areas named down the side of the chart (none: no area axis)."""
    layers = spec.get("layer", [])
    if not any(_is_area_axis(layer.get("encoding", {}).get("y")) for layer in layers):
        return set()
    datasets = [spec.get("data"), *(layer.get("data") for layer in layers)]
    return {str(r["area"]) for d in datasets if d for r in d.get("values", []) if "area" in r}


def _is_area_axis(channel: Any) -> bool:
    drawn = isinstance(channel, dict) and isinstance(channel.get("axis"), dict)
    return drawn and channel.get("field") == "area"


def _areas_unlimited(spec: Spec) -> Spec:
    def unlimited(layer: Spec) -> Spec:
        y = layer.get("encoding", {}).get("y")
        if not _is_area_axis(y):
            return layer
        y = {**y, "axis": {**y["axis"], "labelLimit": 0}}
        return {**layer, "encoding": {**layer["encoding"], "y": y}}

    return {**spec, "layer": [unlimited(layer) for layer in spec["layer"]]}


def _axis_labels(svg: str) -> str:
    return "".join(_AXIS_LABELS.findall(svg))


# Each kind of chart compiled to Vega once per process (~10-25 % of a render), by its spec
# without its data: a chart's spec differs from another of its kind only in its data's
# values (and its size). At most a few hundred kinds (sizes) in a run.
_compiled: dict[str, Spec] = {}
_SLOT = "__sammachip_data_slot"


def _vega(spec: Spec) -> Spec:
    """The spec compiled to Vega: its kind's compiled template with the spec's data in it."""
    values: list[list[Spec]] = []
    shape = _without_data(spec, values)
    key = json.dumps(shape, sort_keys=True, ensure_ascii=False)
    template = _compiled.get(key)
    if template is None:
        template = _compiled[key] = vlc.vegalite_to_vega(shape)
    data = [
        {**d, "values": values[d["values"][0][_SLOT]]} if _is_slot(d) else d
        for d in template.get("data", [])
    ]
    if sum(map(_is_slot, template.get("data", []))) != len(values):
        return vlc.vegalite_to_vega(spec)  # a dataset the compiler nested: compiled whole
    return {**template, "data": data}


def _without_data(node: Any, values: list[list[Spec]]) -> Any:
    """The spec with each inline dataset replaced by a numbered slot (collected into
    `values`): distinct slots, so the compiler keeps every layer's data apart."""
    if isinstance(node, list):
        return [_without_data(v, values) for v in node]
    if not isinstance(node, dict):
        return node
    shape = {k: _without_data(v, values) for k, v in node.items() if k != "data"}
    data = node.get("data")
    if isinstance(data, dict) and isinstance(data.get("values"), list):
        values.append(data["values"])
        shape["data"] = {**data, "values": [{_SLOT: len(values) - 1}]}
    elif "data" in node:
        shape["data"] = data
    return shape


def _is_slot(dataset: Spec) -> bool:
    rows = dataset.get("values")
    return isinstance(rows, list) and len(rows) == 1 and _SLOT in rows[0]


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
