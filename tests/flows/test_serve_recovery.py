"""`sammachip serve` on an office machine, over time: schedules that fire, and runs interrupted by
a stop (Ctrl-C) or a crash (power cut) that recover on the next start.

A real Prefect server, the Kobo simulator and `sammachip serve` subprocesses. A `Gate` holds one
simulator request open so a run is caught in flight whatever the machine's speed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import SOURCE
from sammachip.flows.serve import PrefectServer, free_port
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from tests.flows.serving import (
    WITHOUT_SCHEDULER,
    Api,
    Gate,
    households_loaded_once,
    poll,
    prefect_server,
    start_serve,
)

pytestmark = pytest.mark.slow  # real `sammachip serve` processes stopped, killed and restarted

TOKEN = "r" * 40
PASSWORD = "recovery-webhook-password"
HOUSEHOLD = "sammachip_household"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Office:
    prefect: PrefectServer
    store: KoboStore
    assets: dict[str, str]
    kobo_url: str
    root: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "PREFECT_API_URL": self.prefect.api_url,
            "PREFECT_HOME": str(self.root / "client-home"),
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # production: 10 s
            "SAMMACHIP_KOBO_URL": self.kobo_url,
            "SAMMACHIP_KOBO_TOKEN": TOKEN,
            "SAMMACHIP_WEBHOOK_PASSWORD": PASSWORD,
            "SAMMACHIP_INGEST_WINDOW_SECONDS": "2",
            "SAMMACHIP_INGEST_SWEEP_CRON": "",  # only what a test starts runs
            **extra,
        }

    def households(self) -> list[dict[str, Any]]:
        uid = self.assets[HOUSEHOLD]
        return [self.store.get(uid, i) for i in self.store.asset(uid).ids]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    root = tmp_path_factory.mktemp("office")
    cohort = generate_cohort(CohortSpec(seed=11, villages=1, today=date(2026, 11, 24)))
    store = KoboStore()
    assets = seed_from_cohort(store, cohort)
    with serve_kobo(store, TOKEN) as kobo_url, prefect_server(root) as prefect:
        yield Office(prefect, store, assets, kobo_url, root)


def in_state(api: Api, deployment: str, *states: str) -> list[dict[str, Any]] | None:
    return [r for r in api.flow_runs(deployment) if r["state_type"] in states] or None


def state_of(api: Api, run_id: str) -> str:
    return str(api.flow_run(run_id)["state_type"])


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


# ------------------------------------------------------------------ interrupted by Ctrl-C


def test_ctrl_c_mid_ingest_ends_the_run_and_the_restart_loads_every_delivery_once(
    office: Office,
) -> None:
    workdir = office.root / "ingest"
    api = Api(office.prefect.api_url)
    docs = office.households()
    first = start_serve(workdir, office.env())
    gate = Gate(office.store.faults, "/api/v2/assets")  # the run's form discovery waits here
    try:
        with httpx.Client(auth=("kobo", PASSWORD)) as client:
            url = f"{first.webhook}/hooks/kobo/{office.assets[HOUSEHOLD]}"
            assert {client.post(url, json=doc).status_code for doc in docs} == {202}
        poll(lambda: gate.reached.is_set(), 120, "the ingest run to reach the Kobo server")
        run = poll(lambda: in_state(api, "ingest", "RUNNING"), 30, "a RUNNING ingest run")[0]
        children = descendants(first.process.pid)
        assert first.stop() == 0
    finally:
        gate.open()
        first.stop()

    # On stop: the run ended in a final state, its slot is free, nothing it started runs on,
    # and every delivery is still waiting in the landing area.
    assert state_of(api, run["id"]) == "CRASHED"
    assert not in_state(api, "ingest", "PENDING", "RUNNING", "CANCELLING")
    assert api.active_slots("ingest") == 0
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert len(Landing(workdir / "data" / "landing").pending(SOURCE)) == len(docs)

    second = start_serve(workdir, office.env())
    try:
        second.output.wait_for(rf"catch-up\s+{len(docs)} deliveries were waiting", 30)

        def all_final() -> list[dict[str, Any]] | None:  # the catch-up run included
            runs = api.flow_runs("ingest")
            caught_up = any(r["id"] != run["id"] for r in runs)
            return runs if caught_up and all(r["state_type"] in FINAL for r in runs) else None

        runs = poll(all_final, 300, "every ingest run to finish")
        assert {r["state_type"] for r in runs if r["id"] != run["id"]} == {"COMPLETED"}
    finally:
        assert second.stop() == 0
    households_loaded_once(workdir, docs)
    assert not Landing(workdir / "data" / "landing").pending(SOURCE)


# ------------------------------------------------------------------ interrupted by a power cut


def test_a_nightly_killed_with_its_server_is_crashed_on_restart_and_the_next_nightly_runs(
    office: Office, tmp_path: Path
) -> None:
    """Everything dies at once (power cut, OOM killer): no shutdown code runs, and the
    restarted local Prefect server has lost the run's slot lease. Before the fix every later
    nightly was cancelled at once (CANCEL_NEW) and officers' lists silently stopped."""
    workdir = tmp_path / "office"
    # serve's own local Prefect server, on a port and home of this test
    env = {k: v for k, v in office.env(**WITHOUT_SCHEDULER).items() if k != "PREFECT_API_URL"}
    args = ("--prefect-port", str(free_port()), "--prefect-home", str(tmp_path / "prefect"))
    first = start_serve(workdir, env, *args)
    api = Api(first.api_url)
    gate = Gate(office.store.faults, "/data/")  # the nightly's first page waits here
    try:
        run = api.run_deployment("nightly")
        poll(lambda: gate.reached.is_set(), 180, "the nightly run to reach the Kobo server")
        assert state_of(api, run["id"]) == "RUNNING"
        everything = [psutil.Process(first.process.pid), *descendants(first.process.pid)]
        for process in everything:
            process.kill()
        psutil.wait_procs(everything, timeout=30)
    finally:
        gate.open()
        first.stop()

    second = start_serve(workdir, env, *args)
    api = Api(second.api_url)  # the same port and database, a new server process
    try:
        second.output.wait_for(r"crashed\s+1 unfinished run\(s\) marked crashed", 30)
        assert state_of(api, run["id"]) == "CRASHED"
        assert api.active_slots("nightly") == 0
        again = api.run_deployment("nightly")
        poll(lambda: state_of(api, again["id"]) in FINAL, 300, "the next nightly run")
        assert state_of(api, again["id"]) == "COMPLETED"
        assert api.active_slots("nightly") == 0
    finally:
        assert second.stop() == 0
    households_loaded_once(workdir, office.households())


# ------------------------------------------------------------------ schedules fire


def test_the_server_schedules_the_deployments_and_serve_runs_what_it_scheduled(
    office: Office, tmp_path: Path
) -> None:
    """What a schedule definition cannot show: the server's scheduler creates the runs (it
    did not with SQLAlchemy 2.1), and the runner picks them up and completes them."""
    workdir = tmp_path / "scheduled"
    with prefect_server(tmp_path, scheduler=True) as prefect:
        api = Api(prefect.api_url)
        env = office.env(PREFECT_API_URL=prefect.api_url, SAMMACHIP_INGEST_SWEEP_CRON="* * * * *")
        served = start_serve(workdir, env)
        try:

            def scheduled_nightly() -> list[dict[str, Any]] | None:
                runs = [r for r in api.flow_runs("nightly") if r["state_type"] == "SCHEDULED"]
                return runs or None

            nightly = poll(scheduled_nightly, 180, "SCHEDULED runs of the nightly")
            start = datetime.fromisoformat(nightly[0]["expected_start_time"])
            assert (start.hour, start.minute) == (19, 30)  # 02:30 in Bangkok
            assert all(r["auto_scheduled"] for r in nightly)

            def swept() -> dict[str, Any] | None:
                done = [
                    r
                    for r in api.flow_runs("ingest")
                    if r["auto_scheduled"] and r["state_type"] in FINAL
                ]
                return done[0] if done else None

            swept_run = poll(swept, 200, "a scheduled ingest sweep to finish")
            assert swept_run["state_type"] == "COMPLETED"
        finally:
            assert served.stop() == 0
