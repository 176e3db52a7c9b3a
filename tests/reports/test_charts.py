"""Chart rendering: the same chart is the same SVG, rendered once and kept by its spec's hash."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import date
from pathlib import Path

import pytest
import vl_convert as vlc

from sammachip.reports import charts
from sammachip.reports.charts import SvgCache

ATTENDANCE = [
    {"area": f"หมู่ {n}", "order": n, "month": date(2026, m, 1), "invited": 10, "present": 4 + n + m}
    for n in (1, 2)
    for m in (1, 2)
]


def test_the_same_chart_is_the_same_svg() -> None:
    # Vega numbers gradients per process: without renaming, the second was "gradient_1"
    first, second = charts.attendance_chart(ATTENDANCE), charts.attendance_chart(ATTENDANCE)
    assert first is not None and first == second
    assert "gradient_" not in first and 'fill="url(#c' in first


def test_a_chart_is_rendered_once_then_read_from_the_cache(tmp_path: Path) -> None:
    cache = SvgCache(tmp_path / ".charts")
    first = charts.attendance_chart(ATTENDANCE, cache)
    again = charts.attendance_chart(ATTENDANCE, SvgCache(tmp_path / ".charts"))
    assert first == again == charts.attendance_chart(ATTENDANCE)
    assert list((tmp_path / ".charts").iterdir()) == [
        entry(tmp_path / ".charts", charts.attendance_spec(ATTENDANCE))
    ]
    changed = [{**ATTENDANCE[0], "present": 1}, *ATTENDANCE[1:]]
    assert charts.attendance_chart(changed, cache) != first  # new data, new key
    assert (cache.misses, cache.hits) == (2, 0)
    assert len(list((tmp_path / ".charts").iterdir())) == 2


def test_a_spoilt_cache_entry_is_rendered_again(tmp_path: Path) -> None:
    cache, rows = SvgCache(tmp_path), [{"status": "ready"}]
    spoilt = entry(tmp_path, charts.readiness_spec(rows))
    spoilt.write_text("<svg><text>half a fi", encoding="utf-8")  # cut short by a crash
    svg = charts.readiness_chart(rows, cache)
    assert svg is not None and svg.endswith("</svg>") and cache.misses == 1
    assert spoilt.read_text(encoding="utf-8") == svg


def test_a_planted_cache_entry_with_a_script_is_refused(tmp_path: Path) -> None:
    rows = [{"status": "not_ready"}]
    planted = entry(tmp_path, charts.readiness_spec(rows))
    planted.write_text("<svg><script>alert(1)</script></svg>", encoding="utf-8")
    with pytest.raises(ValueError, match="script"):
        charts.readiness_chart(rows, SvgCache(tmp_path))


def entry(folder: Path, spec: charts.Spec | None) -> Path:
    assert spec is not None
    return folder / f"{charts.spec_key(spec)}.svg"


def test_entries_no_run_used_lately_are_pruned(tmp_path: Path) -> None:
    cache = SvgCache(tmp_path, keep_days=14)
    ready, nearly = [{"status": "ready"}], [{"status": "nearly_ready"}]
    charts.readiness_chart(ready, cache)
    charts.readiness_chart(nearly, cache)
    leftover = tmp_path / ".abc.svg.1-2.tmp"  # a writer killed half-way
    leftover.write_text("<svg", encoding="utf-8")
    month_ago = time.time() - 30 * 86400
    for path in tmp_path.iterdir():
        os.utime(path, (month_ago, month_ago))
    charts.readiness_chart(ready, cache)  # a run uses this one again: it is kept
    assert cache.hits == 1
    assert cache.prune() == 2
    assert list(tmp_path.iterdir()) == [entry(tmp_path, charts.readiness_spec(ready))]


def test_an_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    cache = SvgCache(blocked / ".charts")
    assert charts.readiness_chart([{"status": "ready"}], cache) is not None
    assert cache.misses == 1


def test_a_process_forked_after_rendering_still_renders() -> None:
    """vl-convert's engine thread is not inherited by a fork: without care the child's first
    render waits forever (it hung a test run that forks its trials)."""
    expected = charts.attendance_chart(ATTENDANCE)  # the engine is started in this process
    pid = os.fork()
    if pid == 0:  # the child: report by exit status, never return into pytest
        signal.alarm(60)  # a hang ends as SIGALRM, not as a stuck test run
        ok = charts.attendance_chart(ATTENDANCE) == expected
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_year_of_attendance_shows_its_latest_months_in_cells_a_phone_can_read() -> None:
    year = [
        {"area": "หมู่ 1", "order": 1, "month": date(2025, m, 1), "invited": 10, "present": 8}
        for m in range(1, 13)
    ]
    spec, svg = charts.attendance_spec(year), charts.attendance_chart(year)
    assert spec is not None and svg is not None
    months = re.findall(r">([^<>]+ 68)</text>", svg)  # the axis's labels, left to right
    assert months == ["ก.ค. 68", "ส.ค. 68", "ก.ย. 68", "ต.ค. 68", "พ.ย. 68", "ธ.ค. 68"]
    assert spec["width"] / len(months) >= 28  # a cell holds "100"


INCOME = [
    {
        "area": area,
        "order": n,
        "practising": True,
        "baseline_income": 3000 + 500 * n,
        "followup_income": 3600 + 700 * n,
    }
    for n, area in enumerate(["หมู่ 3 ต.หนองเมือง", "หมู่ 12 ต.ยางสักกระโพหลุ่ม", "หมู่ 7 ต.เตย"])
]
READINESS = [{"status": "ready"}, {"status": "nearly_ready"}, {"status": "nearly_ready"}]


def specs() -> list[charts.Spec]:
    made = [
        charts.attendance_spec(ATTENDANCE),
        charts.income_spec(INCOME),
        charts.readiness_spec(READINESS),
    ]
    return [s for s in made if s is not None]


def drawn_by_vega_lite(spec: charts.Spec, ids_of: charts.Spec | None = None) -> str:
    """The spec as vl-convert draws it straight from Vega-Lite, its ids named as ours are
    (after the spec `ids_of`, default `spec`)."""
    return charts._stable_ids(vlc.vegalite_to_svg(spec), charts.spec_key(ids_of or spec))


def test_a_chart_compiled_once_for_its_kind_is_drawn_as_vega_lite_draws_it() -> None:
    for spec in specs():
        assert charts.render(spec) == drawn_by_vega_lite(spec)
    # drawn twice, its areas are known to fit: the kind without the label limit is compiled too
    charts.render(charts.attendance_spec([{**r, "present": 0} for r in ATTENDANCE]))
    compiled = len(charts._compiled)
    other_month = [{**r, "present": 9 - r["present"] // 2} for r in ATTENDANCE]
    spec = charts.attendance_spec(other_month)
    assert spec is not None
    assert charts.render(spec) == drawn_by_vega_lite(spec)  # other data, the same kind
    assert len(charts._compiled) == compiled


def with_vegas_limits(spec: charts.Spec) -> charts.Spec:
    config = {k: v for k, v in spec["config"].items() if k not in ("axis", "legend")}
    return {**spec, "config": config}


def test_texts_are_drawn_as_with_vegas_own_limits() -> None:
    """The limits dropped to spare measuring never bound: the same picture."""
    for spec in specs():
        assert charts.render(spec) == drawn_by_vega_lite(with_vegas_limits(spec), spec)


def test_an_area_name_too_long_for_a_phone_still_ends_in_an_ellipsis() -> None:
    long_name = "หมู่ 14 ต.ยางสักกระโพหลุ่ม บ้านหนองแวงน้อยพัฒนาสามัคคี"
    svg = charts.income_chart([{**INCOME[0], "area": long_name}])
    assert svg is not None and f">{long_name}</text>" not in svg
    assert re.search(r">หมู่ 14 ต\.ยางสัก[^<]*…</text>", svg)


def test_a_chart_is_drawn_again_when_the_fonts_it_is_measured_with_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.fonts: one of the renderer's font folders
    charts.fonts_installed.cache_clear()
    cache = SvgCache(tmp_path / ".charts")
    try:
        charts.readiness_chart(READINESS, cache)
        (tmp_path / ".fonts").mkdir()
        (tmp_path / ".fonts" / "Sarabun-Regular.ttf").write_bytes(b"\0\1\0\0 a font")
        charts.fonts_installed.cache_clear()  # a new process, after the font was installed
        charts.readiness_chart(READINESS, cache)
        charts.readiness_chart(READINESS, cache)
    finally:
        charts.fonts_installed.cache_clear()
    assert (cache.misses, cache.hits) == (2, 1)


def test_areas_drawn_whole_once_are_drawn_the_same_without_their_limit() -> None:
    """An officer's second chart of the same villages measures each name once, not thrice."""
    long_name = "หมู่ 14 ต.ยางสักกระโพหลุ่ม บ้านหนองแวงน้อยพัฒนาสามัคคี"
    villages = [*INCOME, {**INCOME[0], "area": long_name, "order": 9}]
    first = charts.income_spec(villages)
    assert first is not None
    assert charts.render(first) == drawn_by_vega_lite(first)
    assert {r["area"] for r in INCOME} <= charts._fitting  # drawn whole: fit
    assert long_name not in charts._fitting  # cut short: the limit binds

    attendance = [{**r, "area": a["area"]} for r, a in zip(ATTENDANCE, INCOME, strict=False)]
    spec = charts.attendance_spec(attendance)
    assert spec is not None and charts._area_labels(spec) <= charts._fitting
    assert charts.render(spec) == drawn_by_vega_lite(spec)
    long_too = charts.attendance_spec([*attendance, {**ATTENDANCE[0], "area": long_name}])
    assert long_too is not None
    assert charts.render(long_too) == drawn_by_vega_lite(long_too)  # still with its "…"


def test_an_area_chart_drawn_without_its_axis_learns_and_drops_nothing() -> None:
    spec = charts.income_spec(INCOME)
    assert spec is not None
    charts.render(spec)  # its names drawn whole: learnt
    layers = [
        {**layer, "encoding": {**layer["encoding"], "y": {**layer["encoding"]["y"], "axis": None}}}
        for layer in spec["layer"]
    ]
    bare = {**spec, "layer": layers}
    assert charts._area_labels(bare) == set()
    assert charts.render(bare) == drawn_by_vega_lite(bare)
