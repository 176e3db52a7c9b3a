"""Freshness: seconds from a Kobo REST Service post to the warehouse and the officers' files.

End to end on loopback, as deployed on an office machine: a real Prefect server (a process of
its own), `sammachip serve` (a process of its own: the receiver, the runner, the warm ingest)
pointed at the benchmark's Kobo simulator, and a warehouse that already holds the history (the
district or province backfill). New submissions — a new intake of villages, sent to the
simulator first so that Kobo and the warehouse agree, as a REST Service posts what Kobo holds —
are posted to the receiver:

- a trickle: one post every `TRICKLE_EVERY` s (the issue's figure), `TRICKLE` posts; each
  post's latency to queryable (the warehouse's manifest names its raw version: polled every
  `POLL` s) and to the end of the ingest run that committed it (Prefect's record of the run:
  the officers' files are rewritten before a run ends);
- a burst: `BURST` new submissions plus re-deliveries of some of them, `CONCURRENCY` at a
  time: the time until all are loaded, and exactly once (one raw version per submission, each
  clean or quarantined, the landing area empty, each answered 202 once and 200 on re-delivery).

The floor is the same work in a warm process of its own without Prefect or HTTP: land the
delivery, validate, commit (with the marts) and rewrite the officers' files, one delivery at a
time (`scenario_floor`). The serve process's peak RSS is sampled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRICKLE, TRICKLE_EVERY = 20, 5.0  # posts, seconds between them
BURST, REDELIVERED, CONCURRENCY = 500, 50, 10
POLL = 0.1  # seconds between looks at the warehouse's manifest
PASSWORD = "bench-webhook-password"
SETTLE = 300.0  # seconds: the most any phase waits for its posts to be loaded
DOCS = "deliveries.json"


def new_deliveries(sim: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` new submissions as the simulator holds them — the documents Kobo would post —
    (asset uid, document), registrations first (the order phones send them in a new village)."""
    import httpx

    from bench.simulator import SEED
    from sammachip.schemas.registry import WAVES

    with httpx.Client(base_url=sim.url, headers=sim.headers, timeout=120) as client:
        before = {uid: _last_id(client, uid) for uid in sim.assets.values()}
        sim.submit(seed=SEED, villages=70, count=count, received_at=_arrival())
        out: list[tuple[str, dict[str, Any]]] = []
        order = [form for wave in WAVES for form in sorted(wave)]
        for form in sorted(sim.assets, key=lambda f: order.index(f) if f in order else 99):
            uid = sim.assets[form]
            last = before[uid]
            while True:
                params = {
                    "format": "json",
                    "limit": 1000,
                    "sort": json.dumps({"_id": 1}),
                    "query": json.dumps({"_id": {"$gt": last}}),
                }
                page = client.get(f"/api/v2/assets/{uid}/data/", params=params).json()["results"]
                if not page:
                    break
                out.extend((uid, doc) for doc in page)
                last = page[-1]["_id"]
    return out


def _last_id(client: Any, uid: str) -> int:
    params = {"format": "json", "limit": 1, "sort": json.dumps({"_id": -1})}
    page = client.get(f"/api/v2/assets/{uid}/data/", params=params).json()["results"]
    return int(page[0]["_id"]) if page else 0


def _arrival() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)  # the store keeps naive UTC


# =========================================================================== watching


class Watcher:
    """When each submission first became queryable: polls the warehouse's manifest and, when
    it moves, reads the raw keys."""

    def __init__(self, warehouse: Path) -> None:
        from sammachip.warehouse.load import open_warehouse

        self._wh = open_warehouse(str(warehouse))
        self.seen: dict[str, float] = {}
        self._version = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Watcher:
        self._look()  # the history's keys are not news
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            self._look()

    def _look(self) -> None:
        snapshot = self._wh.snapshot()
        if snapshot.version == self._version:
            return
        now = time.time()
        keys = self._wh.read("raw_submissions", snapshot, columns=["submission_key"])
        for key in keys["submission_key"].to_pylist():
            self.seen.setdefault(key, now if self._version >= 0 else 0.0)
        self._version = snapshot.version

    def wait_for(self, keys: list[str], timeout: float = SETTLE) -> None:
        deadline = time.monotonic() + timeout
        while not all(k in self.seen for k in keys):
            if time.monotonic() > deadline:
                missing = sum(k not in self.seen for k in keys)
                raise RuntimeError(f"{missing} of {len(keys)} posts not loaded in {timeout:.0f} s")
            time.sleep(POLL)


SERVER = "kobo"  # the name of a server configured by SAMMACHIP_KOBO_URL alone


def key_of(uid: str, doc: dict[str, Any]) -> str:
    from sammachip.schemas.records import submission_key

    return submission_key("kobo", SERVER, uid, str(doc["_id"]))


# =========================================================================== serve


@contextmanager
def served(sim: Any, workdir: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """A Prefect server and `sammachip serve` on `workdir`; yields (serve, webhook, api)."""
    import re

    from sammachip.flows.serve import local_prefect_server

    home = workdir / "prefect"
    with local_prefect_server(
        port=0, home=home / "server", log_path=home / "server.log"
    ) as prefect:
        env = {
            **os.environ,
            "PREFECT_API_URL": prefect.api_url,
            "PREFECT_HOME": str(home / "client"),
            "SAMMACHIP_KOBO_URL": sim.url,
            "SAMMACHIP_KOBO_TOKEN": sim.token,
            "SAMMACHIP_WEBHOOK_PASSWORD": PASSWORD,
            "SAMMACHIP_INGEST_SWEEP_CRON": "",  # a sweep at :00/:30 would land in a figure
        }
        command = [sys.executable, "-m", "sammachip.flows.cli", "serve", "--workdir", str(workdir)]
        command += ["--webhook-port", "0"]
        if config := serve_config(sim, workdir):
            command += ["--config", str(config)]
        log_path = workdir / "serve.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
            )
        try:
            pattern = re.compile(r"webhook\s+(http://\S+?)/hooks/kobo/")
            deadline = time.monotonic() + 180
            while not (found := pattern.search(log_path.read_text())):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield proc, found[1], prefect.api_url
        finally:
            if proc.poll() is None:
                proc.send_signal(2)  # Ctrl-C
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def serve_config(sim: Any, workdir: Path) -> Path | None:
    """The config `serve` reads: at province scale the bundled one with the generated roster,
    as `bench.pipeline.settings_for` gives the history and the floor (with the bundled roster
    every village beyond Muang Sam Sip is on the one district list: each delivery would rewrite
    a province-sized list, and the ingest would rebuild the history's marts for a new roster).
    None at district scale: the bundled config as it is."""
    if sim.villages is None:
        return None
    from bench.roster import roster_tables
    from bench.simulator import SEED
    from sammachip.flows.settings import read_config

    path = workdir / "province.toml"
    path.write_text(toml_text({**read_config(), **roster_tables(SEED, sim.villages)}), "utf-8")
    return path


def toml_text(doc: dict[str, Any]) -> str:
    """A config dict as TOML: tables and arrays of tables of scalars and lists."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v, ensure_ascii=False)  # strings, ints and floats read back as TOML

    lines: list[str] = []
    for name, table in doc.items():
        for item in table if isinstance(table, list) else [table]:
            lines.append(f"[[{name}]]" if isinstance(table, list) else f"[{name}]")
            lines += [f"{key} = {value(v)}" for key, v in item.items()]
    return "\n".join(lines) + "\n"


def ingest_runs(api_url: str) -> list[tuple[float, float]]:
    """(start, end) of every finished ingest run, as Unix times."""
    from datetime import datetime

    import httpx

    deployment = httpx.get(f"{api_url}/deployments/name/ingest/ingest", timeout=30).json()
    body = {"deployments": {"id": {"any_": [deployment["id"]]}}, "limit": 200}
    runs = httpx.post(f"{api_url}/flow_runs/filter", json=body, timeout=30).json()
    out = []
    for run in runs:
        if run["start_time"] and run["end_time"]:
            start = datetime.fromisoformat(run["start_time"]).timestamp()
            out.append((start, datetime.fromisoformat(run["end_time"]).timestamp()))
    return sorted(out)


def run_end(runs: list[tuple[float, float]], seen: float) -> float | None:
    """The end of the run that committed what was first seen at `seen`: it started before it
    was seen and ended after the commit (seen at most a poll later)."""
    ends = [end for start, end in runs if start <= seen and end >= seen - 2 * POLL]
    return min(ends) if ends else None


def wait_runs_done(api_url: str, posts_seen_by: float, timeout: float = SETTLE) -> None:
    """Until the run that loaded the last post has ended."""
    deadline = time.monotonic() + timeout
    while run_end(ingest_runs(api_url), posts_seen_by) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the last ingest run did not end")
        time.sleep(0.5)


def post(client: Any, webhook: str, uid: str, doc: dict[str, Any]) -> int:
    return int(client.post(f"{webhook}/hooks/kobo/{uid}", json=doc).status_code)


def post_alone(webhook: str, uid: str, doc: dict[str, Any]) -> int:
    """One post on a connection of its own, as Kobo's REST Service sends each submission (a
    kept-alive connection idle for 5 s meets uvicorn's keep-alive timeout)."""
    import httpx

    with httpx.Client(auth=("kobo", PASSWORD), timeout=60) as client:
        return post(client, webhook, uid, doc)


# =========================================================================== the scenario


def measure(sim: Any, workdir: Path, docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Trickle, then burst, against `sammachip serve` on a warehouse that holds the history."""
    import httpx

    from bench.pipeline import tree_rss

    warm, trickle = docs[0], docs[1 : 1 + TRICKLE]
    burst = docs[1 + TRICKLE : 1 + TRICKLE + BURST]
    out: dict[str, Any] = {}
    with (
        served(sim, workdir) as (proc, webhook, api),
        tree_rss(out, 0.2, pid=proc.pid, key="serve_peak_rss_mb"),
        Watcher(workdir / "data" / "warehouse") as watch,
        httpx.Client(auth=("kobo", PASSWORD), timeout=60) as client,
    ):
        # One delivery first: serve has been up for hours on an office machine, so its first
        # run (GX prepared in the background, DuckDB and the chart renderer loaded) is no
        # figure of freshness.
        assert post_alone(webhook, *warm) == 202
        watch.wait_for([key_of(*warm)])
        wait_runs_done(api, watch.seen[key_of(*warm)])

        posted: dict[str, float] = {}
        start = time.time()
        for n, (uid, doc) in enumerate(trickle):
            time.sleep(max(0.0, start + n * TRICKLE_EVERY - time.time()))
            posted[key_of(uid, doc)] = time.time()
            assert post_alone(webhook, uid, doc) == 202
        watch.wait_for(list(posted))
        wait_runs_done(api, max(watch.seen[k] for k in posted))
        runs = ingest_runs(api)
        queryable = [watch.seen[k] - t for k, t in posted.items()]
        files = [(run_end(runs, watch.seen[k]) or float("nan")) - t for k, t in posted.items()]
        out["trickle"] = {"posts": len(posted), "queryable_s": queryable, "files_s": files}

        bodies = burst + burst[:REDELIVERED]
        began = time.time()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            codes = list(pool.map(lambda d: post(client, webhook, *d), bodies))
        posting = time.time() - began
        keys = [key_of(*d) for d in burst]
        watch.wait_for(keys)
        last = max(watch.seen[k] for k in keys)
        wait_runs_done(api, last)
        end = run_end(ingest_runs(api), last) or float("nan")
        out["burst"] = {
            "posts": len(bodies),
            "submissions": len(burst),
            "posting_s": posting,
            "all_queryable_s": last - began,
            "all_files_s": end - began,
            "runs": len([r for r in ingest_runs(api) if r[0] >= began]),
            "problems": exactly_once(workdir, keys, codes, len(burst)),
        }
        out["runs"] = len(ingest_runs(api))
    return out


def exactly_once(workdir: Path, keys: list[str], codes: list[int], unique: int) -> list[str]:
    """Problems found: answers, raw versions, clean + quarantined, the landing area."""
    from sammachip.warehouse.load import open_warehouse
    from sammachip.warehouse.query import connect

    problems = []
    if sorted(codes) != sorted([202] * unique + [200] * (len(codes) - unique)):
        problems.append(f"answers {sorted(set(codes))}: expected 202 once per submission")
    con = connect(open_warehouse(str(workdir / "data" / "warehouse")))
    con.execute("CREATE TEMP TABLE posted(k VARCHAR)")
    con.executemany("INSERT INTO posted VALUES (?)", [(k,) for k in keys])
    [(raw, distinct)] = con.execute(
        "select count(*), count(distinct submission_key) from raw_submissions "
        "where submission_key in (select k from posted)"
    ).fetchall()
    if (raw, distinct) != (unique, unique):
        problems.append(f"{raw} raw versions of {distinct} submissions for {unique} posted")
    from sammachip.schemas.registry import FORMS

    clean = 0
    for table in sorted({spec.table for spec in FORMS.values()}):  # each form's parent table
        with suppress(Exception):  # a table this cohort has no rows for has no view
            [(n,)] = con.execute(
                f"select count(distinct submission_key) from {table} "
                "where submission_key in (select k from posted)"
            ).fetchall()
            clean += n
    [(quarantined,)] = con.execute(
        "select count(distinct submission_key) from quarantine "
        "where submission_key in (select k from posted)"
    ).fetchall()
    if clean + quarantined < unique:
        problems.append(f"clean {clean} + quarantined {quarantined} < {unique} posted")
    if waiting := list((workdir / "data" / "landing" / "kobo").rglob("*.json")):
        problems.append(f"{len(waiting)} deliveries still in the landing area")
    return problems


def scenario_floor(
    sim: Any, workdir: Path, docs: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """The in-process floor: land, validate, commit with the marts, rewrite the officers'
    files, in a warm process (GX built, modules imported, one delivery done first)."""
    from datetime import UTC, datetime

    import orjson

    from bench.pipeline import settings_for
    from sammachip.connectors.kobo import to_submission
    from sammachip.connectors.landing import Landing
    from sammachip.connectors.webhook import SOURCE, read_delivery
    from sammachip.flows.nightly import bangkok_today, build_marts, load_batches
    from sammachip.flows.officer_files import write_reports
    from sammachip.schemas.registry import FORMS
    from sammachip.schemas.validation import SuiteRunner
    from sammachip.warehouse.load import open_warehouse

    settings = settings_for(sim, workdir)
    runner, today = SuiteRunner(), bangkok_today()
    landing = Landing(settings.landing_path)
    form_of = {uid: form for form, uid in sim.assets.items() if form in FORMS}
    wh = open_warehouse(str(settings.warehouse_path))
    latencies = []
    for uid, doc in docs[: 1 + TRICKLE]:
        start = time.perf_counter()
        body = orjson.dumps(doc)
        landing.put(SOURCE, uid, f"{doc['_id']}_{doc['_uuid']}", body)
        (landed,) = landing.pending(SOURCE)
        sub = to_submission(
            read_delivery(landed.read_bytes(), uid),
            server=SERVER,
            asset_uid=uid,
            form_id=form_of[uid],
        )
        with wh.transaction() as tx:
            load_batches(tx, form_of[uid], [[sub]], runner, datetime.now(UTC))
            build_marts.fn(tx, settings, today)
        landing.remove([landed])
        write_reports.fn(settings, today)
        latencies.append(time.perf_counter() - start)
    return {"latency_s": latencies[1:], "posts": len(latencies) - 1}


# ---- the two child scenarios (bench/pipeline.py runs each in a process of its own) -------


def read_docs(workdir: Path) -> list[tuple[str, dict[str, Any]]]:
    import orjson

    return [(uid, doc) for uid, doc in orjson.loads((workdir.parent / DOCS).read_bytes())]


def prepare(sim: Any, root: Path, history: Path) -> list[Path]:
    """Copies of the history for serve and for the floor, and the deliveries beside them."""
    import orjson

    docs = new_deliveries(sim, 1 + TRICKLE + BURST)
    (root / DOCS).write_bytes(orjson.dumps(docs))
    return [Path(shutil.copytree(history, root / name)) for name in ("serve", "floor")]


def scenario_serve(sim: Any, workdir: str | None) -> dict[str, Any]:
    assert workdir is not None
    return measure(sim, Path(workdir), read_docs(Path(workdir)))


def scenario_in_process(sim: Any, workdir: str | None) -> dict[str, Any]:
    assert workdir is not None
    return scenario_floor(sim, Path(workdir), read_docs(Path(workdir)))
