"""Pipeline benchmarks: figures, never pass/fail. Every figure is printed as a ratio against a
baseline measured in the same run, with absolute times and peak RSS beside it.

    python bench/pipeline.py                 # small (Muang Sam Sip) — a few minutes
    python bench/pipeline.py --size province # + Ubon Ratchathani scale (~2,700 villages)

The Kobo simulator runs in a process of its own (bench/simulator.py), seeded the same way every
time: one simulator serves the read-only scenarios in turn, each incremental scenario gets a
fresh one. Every scenario runs in its own process too, so its peak RSS is its own — the
pipeline's, not the simulator's. Peers (bench/peers.py) fetch the same data from the same
simulator. Results go to bench/results/<date>-<size>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")

from bench import freshness, peers
from bench.report import PAGE, write
from bench.simulator import SEED, TODAY, Simulator, running

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
SIZES = {"small": None, "province": 2700}


@contextmanager
def timed(out: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    out[name] = out.get(name, 0.0) + time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def tree_rss(
    out: dict[str, Any],
    every: float = 0.05,
    *,
    pid: int | None = None,
    key: str = "tree_peak_rss_mb",
) -> Iterator[None]:
    """Peak RSS of this process (or `pid`) and the processes it starts, summed, sampled
    `every` seconds, as `out[key]`: officers' files are written by processes that live only
    during the reports stage (and a child's own peak RSS counts its parent's pages from
    before it started)."""
    import psutil

    me, stop, peak = psutil.Process(pid), threading.Event(), [0]

    def sample() -> None:
        while not stop.wait(every):
            with suppress(psutil.Error):  # a process sampled may be gone already
                total = me.memory_info().rss
                for child in me.children(recursive=True):
                    with suppress(psutil.Error):
                        total += child.memory_info().rss
                peak[0] = max(peak[0], total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
        out[key] = peak[0] / 2**20


def settings_for(sim: Simulator, workdir: Path) -> Any:
    """The nightly's settings (bundled config) pointed at the simulator. At district scale the
    bundled roster is the real one; beyond it, a generated roster covers the province."""
    from sammachip.connectors.kobo import KoboServer, KoboSource
    from sammachip.flows.settings import alert_rules, load_settings, read_config

    settings = load_settings(base_dir=workdir, require_sources=False)
    settings = replace(settings, kobo=(KoboSource(KoboServer(sim.url, sim.token)),))
    if sim.villages is None:
        return settings
    from bench.roster import roster_tables

    doc = {**read_config(), **roster_tables(SEED, sim.villages)}
    return replace(settings, rules=alert_rules(doc, workdir))


# ---- scenarios (each runs in a child process) -------------------------------------------


def scenario_fetch(sim: Simulator, _arg: str | None) -> dict[str, Any]:
    """The simulator alone: every page of every form with bare httpx, nothing parsed (the
    count is read off the head of a form's first page), so the time is the server's and the
    loopback's."""
    import httpx

    stages: dict[str, float] = {}
    pages = size = rows = 0
    client = httpx.Client(base_url=sim.url, headers=sim.headers, timeout=120)
    with client, timed(stages, "total"):
        for uid in sim.assets.values():
            start, count = 0, 1
            while start < count:
                params = {"format": "json", "limit": PAGE, "start": start}
                body = client.get(f"/api/v2/assets/{uid}/data/", params=params).content
                count = envelope_count(body) if start == 0 else count
                pages, size, start = pages + 1, size + len(body), start + PAGE
            rows += count
    return {"stages": stages, "submissions": rows, "pages": pages, "bytes": size}


def scenario_fetch_ours(sim: Simulator, _arg: str | None) -> dict[str, Any]:
    """Our fetch stage alone, in a process of its own: every form's pages through the Kobo
    source a nightly uses (client, paging, JSON, submission records with their hashes), as
    koboextractor's fetch is timed — in the backfill it shares the process with GX starting."""
    from sammachip.flows.nightly import discover_forms
    from sammachip.flows.runtime import settle_heap

    stages: dict[str, float] = {}
    settings = settings_for(sim, Path(tempfile.mkdtemp()))
    rows = 0
    settle_heap()  # as the nightly does before it fetches
    with timed(stages, "total"):
        forms, _ = discover_forms.fn(settings)
        for form in forms:
            for subs, _remaining in form.batches({}, settings.sync, NOW, False):
                rows += len(subs)
    return {"stages": stages, "submissions": rows}


def envelope_count(body: bytes) -> int:
    """`count` from the head of a DRF page envelope, without parsing the page."""
    found = re.match(rb'\{"count":\s*(\d+)', body)
    if found is None:
        raise ValueError(f"not a page envelope: {body[:80]!r}")
    return int(found.group(1))


def scenario_floor(sim: Simulator, _arg: str | None) -> dict[str, Any]:
    """The floor: the same pages with bare httpx + orjson, written as Parquet — nothing else."""
    import httpx
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, Any] = {"stages": {}}
    with tempfile.TemporaryDirectory() as tmp, timed(out["stages"], "total"):
        client = httpx.Client(base_url=sim.url, headers=sim.headers, timeout=120)
        rows = 0
        for form, uid in sim.assets.items():
            last, docs = 0, []
            while True:
                r = client.get(
                    f"/api/v2/assets/{uid}/data/",
                    params={
                        "format": "json",
                        "limit": PAGE,
                        "sort": '{"_id":1}',
                        "query": json.dumps({"_id": {"$gt": last}}),
                    },
                )
                page = orjson.loads(r.content)["results"]
                if not page:
                    break
                docs.extend(page)
                last = page[-1]["_id"]
            table = pa.table(
                {
                    "_id": [d["_id"] for d in docs],
                    "payload": [orjson.dumps(d).decode() for d in docs],
                }
            )
            pq.write_table(table, f"{tmp}/{form}.parquet", compression="zstd")
            rows += len(docs)
    out["submissions"] = rows
    return out


def scenario_backfill(sim: Simulator, _arg: str | None) -> dict[str, Any]:
    """The whole pipeline from an empty warehouse, stage by stage, with the flow's own code."""
    from bench.roster import describe
    from sammachip.flows.nightly import build_marts, discover_forms
    from sammachip.flows.runtime import settle_heap
    from sammachip.marts import MART_SCHEMAS
    from sammachip.reports.deliverables import write_deliverables
    from sammachip.reports.fixes import enumerator_fixes
    from sammachip.schemas.batch import validate_stream
    from sammachip.schemas.flatten import flatten
    from sammachip.schemas.validation import SuiteRunner
    from sammachip.warehouse.load import FormLoader, cross_form_context, open_warehouse

    stages: dict[str, float] = {}
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, tree_rss(memory):
        settings = settings_for(sim, Path(tmp))
        total = 0
        start = time.perf_counter()
        settle_heap()
        # As the nightly: GX starts on a thread while the forms are listed and fetched; what
        # the first validation still waits for it is the stage gx_wait.
        runner = SuiteRunner(background=True)
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
                    source = form.batches(cursor, settings.sync, NOW, False)
                    while True:
                        with timed(stages, "fetch"):
                            subs = next(source, (None, 0))[0]
                        if subs is None:
                            return
                        fetched.append(subs)
                        if "gx_wait" not in stages:
                            with timed(stages, "gx_wait"):
                                runner.tables()
                        with timed(stages, "normalise"):  # measured apart, then again inside
                            for s in subs:
                                flatten(s, "b", NOW)
                        yield subs

                results = validate_stream(
                    form.form_id,
                    batches(),
                    runner,
                    state=loader.stream_state(),
                    batch=tx.run_id,
                    now=NOW,
                    context=cross_form_context(tx, form.form_id),
                )
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
        with timed(stages, "reports"):  # as the flow's write-reports task does it
            built = {name: wh.read(name) for name in MART_SCHEMAS}
            files = write_deliverables(
                built,
                Path(tmp) / "reports",
                TODAY,
                settings.rules,
                workers=settings.report_processes,
                data_as_of=NOW,
                fixes=enumerator_fixes(wh),
            )
        # The validate timer wraps the generator that fetches and normalises: take them out.
        # …and the flattening validate_form does inside is reported as the normalise stage.
        stages["validate"] -= stages["fetch"] + 2 * stages["normalise"] + stages["gx_wait"]
        stages["total"] = time.perf_counter() - start - stages["normalise"]
    roster = describe(settings.rules, SEED, sim.villages)
    return {
        "stages": stages,
        "submissions": total,
        "roster": roster,
        "report_files": len(files),
        "report_processes": settings.report_processes,
        **memory,
    }


def nightly_sync(sim: Simulator, workdir: Path, runner: Any, night: int = 0) -> dict[str, float]:
    """The nightly sync of `night` nights after NOW into `workdir` (every form, then the
    marts), timed: the total, and the sync and marts stages in it."""
    from sammachip.flows.nightly import build_marts, discover_forms, sync_form
    from sammachip.flows.progress import FetchProgress
    from sammachip.flows.runtime import settle_heap
    from sammachip.warehouse.load import open_warehouse

    settle_heap()  # as the nightly does before it fetches
    settings = settings_for(sim, workdir)
    now, today = NOW + timedelta(days=night), TODAY + timedelta(days=night)
    stages: dict[str, float] = {}
    start = time.perf_counter()
    forms, _ = discover_forms.fn(settings)
    wh = open_warehouse(str(settings.warehouse_path))
    with wh.transaction() as tx:
        with timed(stages, "sync"):
            for form in forms:
                sync_form.fn(tx, form, runner, settings, now, FetchProgress.quiet())
        with timed(stages, "marts"):
            build_marts.fn(tx, settings, today)
    stages["total"] = time.perf_counter() - start
    return stages


def scenario_history(sim: Simulator, workdir: str | None) -> dict[str, Any]:
    """The warehouse an incremental run starts from: everything the simulator holds."""
    from sammachip.schemas.validation import SuiteRunner

    assert workdir is not None
    return {"stages": {"history": nightly_sync(sim, Path(workdir), SuiteRunner())["total"]}}


def scenario_incremental(sim: Simulator, workdir: str | None) -> dict[str, Any]:
    """The next night's nightly, after new submissions and edits arrived during the day,
    timed in a process of its own as the nightly job runs (the history was loaded by
    another): cost should follow the new data, not the history. The date moves on, so the
    date-driven alert rules and the alerts' lifecycle do a real night's work. GX starts
    before the clock does (a fixed cost, measured apart)."""
    from sammachip.schemas.validation import SuiteRunner

    assert workdir is not None
    stages = nightly_sync(sim, Path(workdir), SuiteRunner(), night=1)
    return {"stages": {"incremental": stages.pop("total"), **stages}}


def scenario_validation(rows: int) -> dict[str, Any]:
    """GX throughput on household rows, and the cost of starting GX."""
    import pandas as pd

    stages: dict[str, float] = {}
    with timed(stages, "gx_import_and_context"):
        from sammachip.schemas.validation import SuiteRunner

        runner = SuiteRunner()
    frame = pd.DataFrame(
        {
            "_row": range(rows),
            "submission_key": [f"k{i}" for i in range(rows)],
            "hh_code": [f"34140101-{i % 100:02d}" for i in range(rows)],
            "village_code": "34140101",
            "tambon_code": "341401",
            "house_no": "12",
            "head_name": "สมศรี ใจดี",
            "national_id": "3100600445635",
            "phone": "0812345678",
            "members": 4,
            "occupation": "mushroom",
            "baseline_income": 8000,
            "parse_errors": None,
            "duplicate_of": None,
            "clock_ahead_minutes": 0.0,
        }
    )
    with timed(stages, "validate"):
        runner.validate("households", frame)
    return {"stages": stages, "rows": rows, "rows_per_s": rows / stages["validate"]}


def scenario_workers(sim: Simulator, workers: str | None) -> dict[str, Any]:
    """The nightly backfill as a real Prefect flow (ephemeral API), forms fetched and validated
    on a local Dask cluster of `workers` processes (1 = no Dask: the flow's own process)."""
    from prefect import flow

    from sammachip.flows.nightly import run_sync

    n = int(workers or 1)
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(settings_for(sim, Path(tmp)), workers=n)
        body = flow(name=f"bench-{n}-workers")(lambda: run_sync(settings, TODAY))
        if n > 1:
            from prefect_dask import DaskTaskRunner

            cluster = {"n_workers": n, "processes": True, "threads_per_worker": 1}
            body = body.with_options(task_runner=DaskTaskRunner(cluster_kwargs=cluster))
        with timed(stages, "total"):
            summary = body()
    return {"stages": stages, "submissions": sum(f.fetched for f in summary.forms)}


# Scenarios against a running simulator, and the one without.
SIM_SCENARIOS: dict[str, Callable[[Simulator, str | None], dict[str, Any]]] = {
    "fetch": scenario_fetch,
    "fetch_ours": scenario_fetch_ours,
    "floor": scenario_floor,
    "backfill": scenario_backfill,
    "history": scenario_history,
    "incremental": scenario_incremental,
    "workers": scenario_workers,
    "freshness": freshness.scenario_serve,
    "freshness_floor": freshness.scenario_in_process,
}


def child(name: str, arg: str, sim_json: str | None) -> None:
    if name == "validation":
        result = scenario_validation(int(arg))
    else:
        assert sim_json is not None, f"{name} needs a running simulator"
        value = None if arg == "None" else arg
        result = SIM_SCENARIOS[name](Simulator.from_json(sim_json), value)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def run_child(name: str, arg: object = None, sim: Simulator | None = None) -> dict[str, Any]:
    """Run a scenario in its own process; with a simulator, also what the server spent on it."""
    cmd = [sys.executable, __file__, "--child", name, str(arg)]
    if sim is not None:
        cmd += ["--sim", sim.to_json()]
        sim.stats(reset=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            if sim is not None:
                result["server"] = sim.stats(reset=True)
            return result
    raise RuntimeError(f"{name}({arg}) failed:\n{proc.stderr[-3000:]}")


def run_peers(sim: Simulator) -> dict[str, dict[str, Any]]:
    """Install the peers (once) and time each one's fetch from the simulator."""
    out: dict[str, dict[str, Any]] = {}
    for name, problem in peers.ensure_installed().items():
        print(f"… peer {name}", flush=True)
        if problem:
            out[name] = {"error": f"not installed: {problem}"}
            continue
        sim.stats(reset=True)
        out[name] = peers.run(name, sim.url, sim.token, sim.assets, sim.submissions, PAGE)
        out[name]["server"] = sim.stats(reset=True)
    return out


def incremental_runs(sim: Simulator, workdir: Path, runs: int = 5) -> dict[str, Any]:
    """The same nightly `runs` times, each in a fresh process on a fresh copy of the history
    (a run commits): the median run is reported, the others beside it (run-to-run noise on
    this machine is ~15%)."""
    results = []
    for n in range(runs):
        copy = workdir / f"run-{n}"
        shutil.copytree(workdir / "history", copy)
        results.append(run_child("incremental", str(copy), sim))
    results.sort(key=lambda r: r["stages"]["incremental"])
    median = results[len(results) // 2]
    median["runs_s"] = sorted(r["stages"]["incremental"] for r in results)
    return median


def freshness_runs(results: dict[str, Any], villages: int | None) -> None:
    """`sammachip serve` on a warehouse holding the history, posted to; and the in-process
    floor on a copy of the same history (bench/freshness.py). A simulator of its own: the new
    submissions are sent to it first."""
    with running(villages) as sim, tempfile.TemporaryDirectory() as tmp:
        print("… freshness (history, then serve: a trickle and a burst)", flush=True)
        root = Path(tmp)
        run_child("history", str(root / "history"), sim)
        serve_dir, floor_dir = freshness.prepare(sim, root, root / "history")
        results["freshness"] = run_child("freshness", str(serve_dir), sim)
        print("… freshness floor", flush=True)
        results["freshness_floor"] = run_child("freshness_floor", str(floor_dir), sim)


def step(
    results: dict[str, Any], key: str, name: str, arg: object = None, sim: Simulator | None = None
) -> None:
    print(f"… {key}", flush=True)
    results[key] = run_child(name, arg, sim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument(
        "--workers",
        action="store_true",
        help="also time the nightly flow on 1, 2 and 4 Dask workers",
    )
    parser.add_argument(
        "--only-freshness",
        action="store_true",
        help="only the freshness scenario (serve, a trickle and a burst of posts) and its floor",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--sim", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.sim)
        return
    villages = SIZES[args.size]
    results: dict[str, Any] = {
        "size": args.size,
        "date": str(date.today()),
        "cores": os.cpu_count(),
    }
    workers = [(f"workers_{n}", n) for n in (1, 2, 4)] if args.workers else []
    freshness_runs(results, villages)
    if args.only_freshness:
        print(json.dumps(results, indent=1))
        return
    with running(villages) as sim:
        results["simulator"] = {"ready_s": sim.ready_s, "submissions": sim.submissions}
        for key in ("fetch", "fetch_ours", "floor", "backfill"):
            step(results, key, key, sim=sim)
        results["peers"] = run_peers(sim)
        for key, n in workers:  # the nightly flow on 1, 2 and 4 Dask processes, this size
            step(results, key, "workers", n, sim)
        results["simulator"]["peak_rss_mb"] = sim.stats()["peak_rss_mb"]
    # Both sizes whatever --size: the figure is province ÷ district. The province's history is
    # loaded by a nightly without officer files, which is most of what it adds to a small run.
    incrementals = [
        ("incremental_small", SIZES["small"]),
        ("incremental_province", SIZES["province"]),
    ]
    for key, size in incrementals:  # each changes its simulator's data: a fresh one each
        started = time.perf_counter()
        with running(size) as fresh, tempfile.TemporaryDirectory() as workdir:
            print(f"… {key}", flush=True)
            loaded = run_child("history", str(Path(workdir) / "history"), fresh)
            # During the day after the history's night, a new intake of 70 villages (the
            # province's last: in neither history) sends ~5.2k submissions: the first 5,000
            # arrive, the same ones on a district and a province; 29 early submissions of two
            # forms are edited.
            arrival = (NOW + timedelta(hours=10)).replace(tzinfo=None)  # the store keeps naive UTC
            new = fresh.submit(seed=SEED, villages=70, count=5000, received_at=arrival)
            edits = fresh.edit(
                list(fresh.assets.values())[:2], list(range(1, 30)), {"members": "6"}
            )
            results[key] = incremental_runs(fresh, Path(workdir))
            results[key].update(submissions=new, edits=edits, history_s=loaded["stages"]["history"])
        results[key]["scenario_s"] = time.perf_counter() - started  # what it adds to a run
    step(results, "validation_10k", "validation", 10_000)
    step(results, "validation_500k", "validation", 500_000)
    write(results)


if __name__ == "__main__":
    main()
