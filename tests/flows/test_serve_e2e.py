"""`sammachip serve` end to end — the slow module (about a minute), one shared set-up.

A real Prefect server (`prefect server start` on loopback, its own PREFECT_HOME), the Kobo
simulator for asset discovery, and `sammachip serve` as a subprocess pointed at both. Kobo-shaped
payloads are posted to the receiver; the trigger must turn the burst into one `ingest` run whose
rows reach the clean tables. Every wait polls with a deadline; nothing sleeps a fixed time.
Timings of each stage are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from sammachip.flows.serve import EXIT_FORCED, PrefectServer
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from tests.flows.serving import Api, Output, poll, prefect_server, sql, start_serve

pytestmark = pytest.mark.slow  # a real `sammachip serve` process with its Prefect server

TOKEN = "d" * 40
PASSWORD = "e2e-webhook-password"
HOUSEHOLD = "sammachip_household"
WINDOW = 3  # seconds a burst's first delivery waits at most for the rest (5 in production)


@dataclass
class Stack:
    prefect: PrefectServer
    api: Api
    kobo_host: str
    store: KoboStore
    assets: dict[str, str]
    workdir: Path
    serve: subprocess.Popen[str]
    output: Output
    webhook: str
    timings: dict[str, float]

    def sql(self, query: str) -> list[tuple]:
        return sql(self.workdir, query)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("serve-e2e")
    workdir = root / "work"
    timings: dict[str, float] = {}
    cohort = generate_cohort(CohortSpec(seed=5, villages=1, today=date(2026, 11, 24)))
    store = KoboStore()
    assets = seed_from_cohort(store, cohort)
    started_at = time.monotonic()
    with (
        serve_kobo(store, TOKEN) as kobo_url,
        prefect_server(root) as prefect,  # runs only what the tests trigger
    ):
        timings["prefect server healthy"] = time.monotonic() - started_at
        env = {
            **os.environ,
            "PREFECT_API_URL": prefect.api_url,
            "PREFECT_HOME": str(root / "client-home"),
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # production: 10 s
            "SAMMACHIP_KOBO_URL": kobo_url,
            "SAMMACHIP_KOBO_TOKEN": TOKEN,
            "SAMMACHIP_WEBHOOK_PASSWORD": PASSWORD,
            "SAMMACHIP_INGEST_WINDOW_SECONDS": str(WINDOW),
            "SAMMACHIP_INGEST_SWEEP_CRON": "",  # only the trigger may start runs here
        }
        serve_started = time.monotonic()
        served = start_serve(workdir, env)
        try:
            timings["sammachip serve ready"] = time.monotonic() - serve_started
            host = kobo_url.removeprefix("http://")
            yield Stack(
                prefect,
                Api(prefect.api_url),
                host,
                store,
                assets,
                workdir,
                served.process,
                served.output,
                served.webhook,
                timings,
            )
        finally:
            served.stop(60)
            timings["whole module"] = time.monotonic() - started_at
            print("\n" + "\n".join(f"  {k:<34} {v:6.1f} s" for k, v in timings.items()))


def household_docs(stack: Stack, n: int) -> list[dict[str, Any]]:
    uid = stack.assets[HOUSEHOLD]
    return [stack.store.get(uid, i) for i in stack.store.asset(uid).ids[:n]]  # type: ignore[union-attr]


# ------------------------------------------------------------------ start-up


def test_serve_prints_where_everything_listens(stack: Stack) -> None:
    text = stack.output.drain()
    assert f"prefect-api  {stack.prefect.api_url}  (configured)" in text
    assert f"{stack.webhook}/healthz" in text
    assert "(basic auth, user 'kobo'; 6 assets known)" in text
    for name in ("nightly", "ingest", "reconcile"):
        assert f"deployment   {name}/{name}" in text
    assert httpx.get(f"{stack.webhook}/healthz").json()["status"] == "ok"


def test_the_deployments_carry_their_schedules_trigger_and_limits(stack: Stack) -> None:
    nightly = stack.api.deployment("nightly")
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["30 2 * * *"]
    assert nightly["schedules"][0]["schedule"]["timezone"] == "Asia/Bangkok"
    assert stack.api.limit("nightly") == (1, "CANCEL_NEW")
    assert stack.api.limit("ingest") == (1, "ENQUEUE")
    reconcile = stack.api.deployment("reconcile")
    assert [s["schedule"]["cron"] for s in reconcile["schedules"]] == ["30 3 * * 0"]
    # No event trigger: the receiver starts serve's warm ingest itself, without the round
    # trip through Prefect's events and without a flow-run process per burst.
    automations = stack.api("POST", "/automations/filter", json={})
    assert not [a for a in automations if a["name"].startswith("ingest")]


# ------------------------------------------------------------------ the point of it all


def test_a_burst_of_kobo_posts_becomes_one_ingest_run_and_clean_rows(stack: Stack) -> None:
    docs = household_docs(stack, 10)
    posted = time.monotonic()
    with httpx.Client(auth=("kobo", PASSWORD)) as client:
        url = f"{stack.webhook}/hooks/kobo/{stack.assets[HOUSEHOLD]}"
        codes = [client.post(url, json=doc).status_code for doc in docs]
        codes.append(client.post(url, json=docs[0]).status_code)  # Kobo delivers twice
    assert codes == [202] * 10 + [200]
    stack.timings["10 posts + 1 duplicate"] = time.monotonic() - posted

    def completed() -> list[dict[str, Any]] | None:
        runs = stack.api.flow_runs("ingest")
        failed = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED", "CANCELLED")]
        assert not failed, failed
        return runs if runs and all(r["state_type"] == "COMPLETED" for r in runs) else None

    runs = poll(completed, 180, "a completed ingest run")
    stack.timings["posts → ingest run completed"] = time.monotonic() - posted
    assert len(runs) == 1  # micro-batched: one run for the burst
    # Run warm, in serve's own process: the runner would have started a process for it and
    # recorded that process as the run's infrastructure.
    assert stack.api.flow_run(runs[0]["id"])["infrastructure_pid"] is None

    uid = stack.assets[HOUSEHOLD]
    keys = "', '".join(f"kobo:kobo:{uid}:{d['_id']}" for d in docs)  # the unnamed server
    [(clean, quarantined)] = stack.sql(
        f"""select (select count(*) from households where submission_key in ('{keys}')),
                   (select count(distinct submission_key) from quarantine
                    where submission_key in ('{keys}'))"""
    )
    assert clean + quarantined == 10 and clean > 0
    assert not list((stack.workdir / "data" / "landing" / "kobo").rglob("*.json"))


def test_a_later_burst_gets_its_own_run(stack: Stack) -> None:
    before = len(stack.api.flow_runs("ingest"))
    docs = household_docs(stack, 14)[10:]
    posted = time.monotonic()
    with httpx.Client(auth=("kobo", PASSWORD)) as client:
        url = f"{stack.webhook}/hooks/kobo/{stack.assets[HOUSEHOLD]}"
        assert {client.post(url, json=doc).status_code for doc in docs} == {202}

    def done() -> bool:
        runs = stack.api.flow_runs("ingest")
        return len(runs) == before + 1 and all(r["state_type"] == "COMPLETED" for r in runs)

    poll(done, 180, "a second completed ingest run")
    stack.timings["2nd burst → its run completed"] = time.monotonic() - posted
    [(n,)] = stack.sql("select count(distinct submission_key) from raw_submissions")
    assert n == 14


# ------------------------------------------------------------------ shutdown


def test_ctrl_c_stops_serve_cleanly(stack: Stack) -> None:
    stopping = time.monotonic()
    stack.serve.send_signal(signal.SIGINT)
    # A clean stop takes seconds; one that hangs (seen under full-suite load on 2 cores, its
    # cause not found) is cut short after serve's 30 s grace — exit 3, nothing left running.
    code = stack.serve.wait(90)
    stack.timings["Ctrl-C → exited"] = time.monotonic() - stopping
    output = stack.output.drain().splitlines()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.webhook}/healthz")
    if code == EXIT_FORCED:
        assert "killing the flow runs" in output[-1]
        pytest.xfail("serve's shutdown hung and was cut short after its grace period")
    assert code == 0
    assert "stopped" in output[-1]
    # The served schedules are paused, so the server schedules nothing nobody would run.
    nightly = stack.api.deployment("nightly")
    assert nightly["paused"] is True
