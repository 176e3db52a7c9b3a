"""`sammachip serve` end to end — the slow module (about a minute), one shared set-up.

A real Prefect server (`prefect server start` on loopback, its own PREFECT_HOME), the Kobo
simulator for asset discovery, and `sammachip serve` as a subprocess pointed at both. Kobo-shaped
payloads are posted to the receiver; the trigger must turn the burst into one `ingest` run whose
rows reach the clean tables. Every wait polls with a deadline; nothing sleeps a fixed time.
Timings of each stage are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from connectors.simulators.cohort import CohortSpec, generate_cohort
from connectors.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from flows.serve import EXIT_FORCED, PrefectServer, local_prefect_server
from warehouse.load import open_warehouse
from warehouse.query import connect

REPO = Path(__file__).resolve().parents[2]
TOKEN = "d" * 40
PASSWORD = "e2e-webhook-password"
HOUSEHOLD = "sammachip_household"
WINDOW = 3  # seconds of micro-batch window (60 in production)
T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while (result := check()) is None or result is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)  # polling interval, not a wait for something to happen
    return result


@dataclass
class Output:
    """The subprocess's output lines, readable with a deadline."""

    lines: list[str] = field(default_factory=list)
    _new: queue.Queue[str] = field(default_factory=queue.Queue)

    def pump(self, stream: Any) -> None:
        for line in stream:
            self._new.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if m := re.search(pattern, line):
                return m
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                tail = "\n".join(self.lines[-30:])
                raise AssertionError(f"no line matching {pattern!r}; output:\n{tail}") from None
            self.lines.append(line)
            if m := re.search(pattern, line):
                return m

    def drain(self) -> str:
        while not self._new.empty():
            self.lines.append(self._new.get_nowait())
        return "\n".join(self.lines)


@dataclass
class Stack:
    prefect: PrefectServer
    kobo_host: str
    store: KoboStore
    assets: dict[str, str]
    workdir: Path
    serve: subprocess.Popen[str]
    output: Output
    webhook: str
    timings: dict[str, float]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.prefect.api_url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def limit(self, name: str) -> tuple[int, str]:
        """(concurrency limit, collision strategy) of a deployment."""
        d = self.api("GET", f"/deployments/name/{name}/{name}")
        limit, options = d["global_concurrency_limit"], d["concurrency_options"]
        return limit["limit"], options["collision_strategy"]

    def deployment_id(self, name: str) -> str:
        return str(self.api("GET", f"/deployments/name/{name}/{name}")["id"])

    def flow_runs(self, deployment: str) -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [self.deployment_id(deployment)]}}}
        return list(self.api("POST", "/flow_runs/filter", json=body))

    def sql(self, query: str) -> list[tuple]:
        wh = open_warehouse(str(self.workdir / "data" / "warehouse"))
        return connect(wh).execute(query).fetchall()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("serve-e2e")
    workdir = root / "work"
    timings: dict[str, float] = {}
    cohort = generate_cohort(CohortSpec(seed=5, villages=1, today=date(2026, 11, 24)))
    store = KoboStore()
    assets = seed_from_cohort(store, cohort)
    started = time.monotonic()
    with (
        serve_kobo(store, TOKEN) as kobo_url,
        local_prefect_server(
            port=0, home=root / "prefect-home", log_path=root / "prefect-server.log"
        ) as prefect,
    ):
        timings["prefect server healthy"] = time.monotonic() - started
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
        command = [sys.executable, "-m", "flows.cli", "serve", "--workdir", str(workdir),
                   "--webhook-port", "0"]  # fmt: skip
        serve_started = time.monotonic()
        serve = subprocess.Popen(
            command, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        output = Output()
        threading.Thread(target=output.pump, args=(serve.stdout,), daemon=True).start()
        try:
            webhook = output.wait_for(r"webhook\s+(http://127\.0\.0\.1:\d+)/hooks/kobo/", 120)[1]
            output.wait_for(r"deployment\s+reconcile/reconcile", 30)
            timings["sammachip serve ready"] = time.monotonic() - serve_started
            host = kobo_url.removeprefix("http://")
            yield Stack(prefect, host, store, assets, workdir, serve, output, webhook, timings)
        finally:
            if serve.poll() is None:
                serve.send_signal(signal.SIGINT)
                try:
                    serve.wait(60)
                except subprocess.TimeoutExpired:
                    serve.kill()
            timings["whole module"] = time.monotonic() - started
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
    nightly = stack.api("GET", "/deployments/name/nightly/nightly")
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["30 2 * * *"]
    assert nightly["schedules"][0]["schedule"]["timezone"] == "Asia/Bangkok"
    assert stack.limit("nightly") == (1, "CANCEL_NEW")
    assert stack.limit("ingest") == (1, "ENQUEUE")
    reconcile = stack.api("GET", "/deployments/name/reconcile/reconcile")
    assert [s["schedule"]["cron"] for s in reconcile["schedules"]] == ["30 3 * * 0"]
    automations = stack.api("POST", "/automations/filter", json={})
    (trigger,) = [a["trigger"] for a in automations if a["name"].startswith("ingest")]
    assert trigger["expect"] == ["sammachip.submission.received"]
    assert (trigger["threshold"], trigger["within"]) == (1, WINDOW)


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
        runs = stack.flow_runs("ingest")
        failed = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED", "CANCELLED")]
        assert not failed, failed
        return runs if runs and all(r["state_type"] == "COMPLETED" for r in runs) else None

    runs = poll(completed, 180, "a completed ingest run")
    stack.timings["posts → ingest run completed"] = time.monotonic() - posted
    assert len(runs) == 1  # micro-batched: one run for the burst

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
    before = len(stack.flow_runs("ingest"))
    docs = household_docs(stack, 14)[10:]
    posted = time.monotonic()
    with httpx.Client(auth=("kobo", PASSWORD)) as client:
        url = f"{stack.webhook}/hooks/kobo/{stack.assets[HOUSEHOLD]}"
        assert {client.post(url, json=doc).status_code for doc in docs} == {202}

    def done() -> bool:
        runs = stack.flow_runs("ingest")
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
    nightly = stack.api("GET", "/deployments/name/nightly/nightly")
    assert nightly["paused"] is True


def test_prefect_yaml_deploys_the_same_set_to_a_process_work_pool(stack: Stack) -> None:
    """The multi-machine sequence from docs/operations.md, against the same server."""
    env = {**os.environ, "PREFECT_API_URL": stack.prefect.api_url,
           "PREFECT_HOME": str(stack.workdir.parent / "client-home"),
           "SAMMACHIP_HOME": str(stack.workdir)}  # fmt: skip
    prefect = [sys.executable, "-m", "prefect"]
    started = time.monotonic()
    for args in (["work-pool", "create", "sammachip", "--type", "process"],
                 ["--no-prompt", "deploy", "--all"]):  # fmt: skip
        done = subprocess.run([*prefect, *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    stack.timings["work-pool create + deploy --all"] = time.monotonic() - started
    for name in ("nightly", "ingest", "reconcile"):
        deployment = stack.api("GET", f"/deployments/name/{name}/{name}")
        assert deployment["work_pool_name"] == "sammachip"
    ingest = stack.api("GET", "/deployments/name/ingest/ingest")
    assert stack.limit("ingest") == (1, "ENQUEUE")
    assert [s["schedule"]["cron"] for s in ingest["schedules"]] == ["*/30 * * * *"]
