"""Pipeline benchmarks: figures, never pass/fail. Every figure is printed as a ratio against a
baseline measured in the same run, with absolute times and peak RSS beside it.

    python bench/pipeline.py                 # small (Muang Sam Sip) — a couple of minutes
    python bench/pipeline.py --size province # + Ubon Ratchathani scale (~2,700 villages)

Each scenario runs in its own process so its peak RSS is its own. Results go to
bench/results/<date>-<size>.json and .md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
TOKEN = "b" * 40
SIZES = {"small": None, "province": 2700}


@contextmanager
def timed(out: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    out[name] = out.get(name, 0.0) + time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(villages: int | None, seed: int = 2568) -> tuple[Any, Any, dict[str, str]]:
    from connectors.simulators.cohort import CohortSpec, generate_cohort
    from connectors.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo

    store = KoboStore()
    assets = seed_from_cohort(store, generate_cohort(CohortSpec(seed, villages, today=TODAY)))
    gc.freeze()  # the seeded store is long-lived: keep the collector from rescanning it
    return store, serve_kobo(store, TOKEN), assets


def settings_for(url: str, workdir: Path) -> Any:
    from connectors.kobo import KoboServer
    from flows.settings import KoboSource, load_settings

    settings = load_settings(base_dir=workdir, require_sources=False)
    return replace(settings, kobo=(KoboSource(KoboServer(url, TOKEN)),))


# ---- scenarios (each runs in a child process) -------------------------------------------


def scenario_floor(villages: int | None) -> dict[str, Any]:
    """The floor: the same pages with bare httpx + orjson, written as Parquet — nothing else."""
    import httpx
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, server, assets = serve(villages)
    out: dict[str, Any] = {"stages": {}}
    with server as url, tempfile.TemporaryDirectory() as tmp, timed(out["stages"], "total"):
        client = httpx.Client(base_url=url, headers={"Authorization": f"Token {TOKEN}"})
        rows = 0
        for form, uid in assets.items():
            last, docs = 0, []
            while True:
                r = client.get(f"/api/v2/assets/{uid}/data/", params={
                    "format": "json", "limit": 1000, "sort": '{"_id":1}',
                    "query": json.dumps({"_id": {"$gt": last}})})  # fmt: skip
                page = orjson.loads(r.content)["results"]
                if not page:
                    break
                docs.extend(page)
                last = page[-1]["_id"]
            table = pa.table({"_id": [d["_id"] for d in docs],
                              "payload": [orjson.dumps(d).decode() for d in docs]})  # fmt: skip
            pq.write_table(table, f"{tmp}/{form}.parquet", compression="zstd")
            rows += len(docs)
    out["submissions"] = rows
    return out


def scenario_backfill(villages: int | None) -> dict[str, Any]:
    """The whole pipeline from an empty warehouse, stage by stage, with the flow's own code."""
    from flows.nightly import build_marts, discover_forms
    from schemas.batch import validate_stream
    from schemas.flatten import flatten
    from schemas.validation import SuiteRunner
    from warehouse.deliverables import write_deliverables
    from warehouse.load import FormLoader, cross_form_context, open_warehouse
    from warehouse.marts import MART_SCHEMAS

    stages: dict[str, float] = {}
    _, server, _ = serve(villages)
    with server as url, tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(url, Path(tmp))
        with timed(stages, "gx_start"):
            runner = SuiteRunner()
        total = 0
        start = time.perf_counter()
        forms, _ = discover_forms.fn(settings)
        wh = open_warehouse(str(settings.warehouse_path))
        with wh.transaction() as tx:
            for form in forms:
                loader = FormLoader(tx, form.form_id, batch=tx.run_id, now=NOW)
                cursor: dict[str, Any] = {}
                fetched: list[list[Any]] = []

                def batches(
                    cursor: dict[str, Any] = cursor, form: Any = form, fetched: Any = fetched
                ) -> Iterator[Any]:
                    source = form.batches(cursor, settings, NOW, False)
                    while True:
                        with timed(stages, "fetch"):
                            subs = next(source, (None, 0))[0]
                        if subs is None:
                            return
                        fetched.append(subs)
                        with timed(stages, "normalise"):  # measured apart, then again inside
                            for s in subs:
                                flatten(s, "b", NOW)
                        yield subs

                results = validate_stream(form.form_id, batches(), runner,
                                          state=loader.stream_state(), batch=tx.run_id, now=NOW,
                                          context=cross_form_context(tx))  # fmt: skip
                while True:
                    with timed(stages, "validate"):  # includes fetch + normalise: removed below
                        item = next(results, None)
                    if item is None:
                        break
                    with timed(stages, "load"):
                        loader.add(*item)
                total += sum(len(b) for b in fetched)
                with timed(stages, "load"):
                    loader.finish(cursor=(form.cursor_key, cursor))
            with timed(stages, "marts"):
                build_marts.fn(tx, settings, TODAY)
            with timed(stages, "load"):
                tx.commit()
        with timed(stages, "reports"):
            built = {name: wh.read(name) for name in MART_SCHEMAS}
            write_deliverables(built, Path(tmp) / "reports", TODAY, settings.rules)
        # The validate timer wraps the generator that fetches and normalises: take them out.
        # …and the flattening validate_form does inside is reported as the normalise stage.
        stages["validate"] -= stages["fetch"] + 2 * stages["normalise"]
        stages["total"] = time.perf_counter() - start - stages["normalise"]
    return {"stages": stages, "submissions": total}


def scenario_incremental(villages: int | None) -> dict[str, Any]:
    """Backfill a warehouse, then time a nightly run that brings 5k new submissions (with
    some edits): cost should follow the new data, not the history."""
    from connectors.simulators.cohort import CohortSpec, generate_cohort
    from flows.nightly import build_marts, discover_forms, sync_form
    from flows.progress import FetchProgress
    from schemas.validation import SuiteRunner
    from warehouse.load import open_warehouse

    store, server, assets = serve(villages)
    extra = generate_cohort(CohortSpec(seed=99, villages=25, today=TODAY))  # ~5k submissions
    new = extra.submissions[:5000]
    runner = SuiteRunner()
    with server as url, tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(url, Path(tmp))

        def run() -> float:
            start = time.perf_counter()
            forms, _ = discover_forms.fn(settings)
            wh = open_warehouse(str(settings.warehouse_path))
            with wh.transaction() as tx:
                for form in forms:
                    sync_form.fn(tx, form, runner, settings, NOW, FetchProgress.quiet())
                build_marts.fn(tx, settings, TODAY)
            return time.perf_counter() - start

        run()  # the history
        for s in new:
            store.submit(assets[s.form_id], s.answers, datetime(2026, 11, 24, 0, 30))
        for uid in list(assets.values())[:2]:  # a few edits of recent submissions
            for _id in range(1, 30):
                with suppress(KeyError):  # ids are shared across assets
                    store.edit(uid, _id, {"members": "6"})
        incremental = run()
    return {"stages": {"incremental": incremental}, "submissions": len(new)}


def scenario_validation(rows: int) -> dict[str, Any]:
    """GX throughput on household rows, and the cost of starting GX."""
    import pandas as pd

    stages: dict[str, float] = {}
    with timed(stages, "gx_import_and_context"):
        from schemas.validation import SuiteRunner

        runner = SuiteRunner()
    frame = pd.DataFrame({
        "_row": range(rows), "submission_key": [f"k{i}" for i in range(rows)],
        "hh_code": [f"34140101-{i % 100:02d}" for i in range(rows)], "village_code": "34140101",
        "tambon_code": "341401", "head_name": "สมศรี ใจดี", "national_id": "3100600445635",
        "phone": "0812345678", "members": 4, "occupation": "mushroom", "baseline_income": 8000,
        "parse_errors": None, "duplicate_of": None, "clock_ahead_minutes": 0.0,
    })  # fmt: skip
    with timed(stages, "validate"):
        runner.validate("households", frame)
    return {"stages": stages, "rows": rows, "rows_per_s": rows / stages["validate"]}


def scenario_workers(workers: int) -> dict[str, Any]:
    """The nightly backfill as a real Prefect flow (ephemeral API), forms fetched and validated
    on a local Dask cluster of `workers` processes (1 = no Dask: the flow's own process)."""
    from prefect import flow

    from flows.nightly import run_sync

    _, server, _ = serve(None)
    stages: dict[str, float] = {}
    with server as url, tempfile.TemporaryDirectory() as tmp:
        settings = replace(settings_for(url, Path(tmp)), workers=workers)
        body = flow(name=f"bench-{workers}-workers")(lambda: run_sync(settings, TODAY))
        if workers > 1:
            from prefect_dask import DaskTaskRunner

            cluster = {"n_workers": workers, "processes": True, "threads_per_worker": 1}
            body = body.with_options(task_runner=DaskTaskRunner(cluster_kwargs=cluster))
        with timed(stages, "total"):
            summary = body()
    return {"stages": stages, "submissions": sum(f.fetched for f in summary.forms)}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "workers": scenario_workers,
    "floor": scenario_floor,
    "backfill": scenario_backfill,
    "incremental": scenario_incremental,
    "validation": scenario_validation,
}


def child(name: str, arg: str) -> None:
    value = None if arg == "None" else int(arg)
    result = SCENARIOS[name](value)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def run_child(name: str, arg: object) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", name, str(arg)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{name}({arg}) failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--workers", action="store_true",
                        help="also time 1, 2 and 4 Dask workers (district scale)")  # fmt: skip
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    villages = SIZES[args.size]
    results: dict[str, Any] = {
        "size": args.size,
        "date": str(date.today()),
        "cores": os.cpu_count(),
    }
    steps = [
        ("floor", "floor", villages), ("backfill", "backfill", villages),
        ("incremental_small", "incremental", SIZES["small"]),
        ("validation_10k", "validation", 10_000), ("validation_500k", "validation", 500_000),
    ]  # fmt: skip
    if args.size == "province":
        steps.insert(3, ("incremental_province", "incremental", villages))
    if args.workers:
        steps += [(f"workers_{n}", "workers", n) for n in (1, 2, 4)]
    for key, name, arg in steps:
        print(f"… {key}", flush=True)
        results[key] = run_child(name, arg)
    write(results)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "—"


def write(results: dict[str, Any]) -> None:
    floor = results["floor"]["stages"]["total"]
    back = results["backfill"]
    lines = [
        f"# sammachip benchmarks — {results['size']}, {results['date']}, {results['cores']} cores",
        "",
        "| figure | value | ratio to baseline | baseline |",
        "|---|---|---|---|",
        f"| full backfill ({back['submissions']:,} submissions) | {back['stages']['total']:.1f} s"
        f" | {ratio(back['stages']['total'], floor)} | floor fetch+parse+Parquet {floor:.1f} s |",
    ]
    for stage, secs in sorted(back["stages"].items(), key=lambda kv: -kv[1]):
        if stage != "total":
            lines.append(f"| · stage {stage} | {secs:.2f} s | {ratio(secs, floor)} | floor |")
    small = results["incremental_small"]["stages"]["incremental"]
    lines.append(f"| incremental 5k on small | {small:.2f} s | 1.00× | itself |")
    if "incremental_province" in results:
        prov = results["incremental_province"]["stages"]["incremental"]
        lines.append(f"| incremental 5k on province | {prov:.2f} s | {ratio(prov, small)} "
                     "| incremental on small |")  # fmt: skip
    v10, v500 = results["validation_10k"], results["validation_500k"]
    if "workers_1" in results:
        one = results["workers_1"]["stages"]["total"]
        for n in (1, 2, 4):
            t = results[f"workers_{n}"]["stages"]["total"]
            lines.append(f"| nightly flow, {n} Dask worker(s), district | {t:.1f} s | "
                         f"{ratio(t, one)} | 1 worker |")  # fmt: skip
    lines += [
        f"| GX validation 10k rows | {v10['rows_per_s']:,.0f} rows/s | 1.00× | itself |",
        f"| GX validation 500k rows | {v500['rows_per_s']:,.0f} rows/s | "
        f"{ratio(v500['rows_per_s'], v10['rows_per_s'])} | 10k throughput |",
        f"| GX import + context | {v10['stages']['gx_import_and_context']:.1f} s | "
        f"{ratio(v10['stages']['gx_import_and_context'], floor)} | floor |",
        "",
        "| scenario | peak RSS |",
        "|---|---|",
    ]
    for key, value in results.items():
        if isinstance(value, dict) and "peak_rss_mb" in value:
            lines.append(f"| {key} | {value['peak_rss_mb']:.0f} MB |")
    text = "\n".join(lines) + "\n"
    print(text)
    stem = ROOT / "bench" / "results" / f"{results['date']}-{results['size']}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
