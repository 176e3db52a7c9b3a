"""The several-machines set-up of docs/operations.md, followed as written: a Prefect server,
`prefect deploy --all` of prefect.yaml into a process work pool, a `prefect worker`, and the
receiver (`sammachip webhook`) — each process started in a folder of its own, as on separate
machines sharing the office's folder. The worker's environment holds only the Kobo token: the
config path and the data folder reach its runs through the deployments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import SOURCE
from sammachip.flows.serve import PrefectServer, free_port, local_prefect_server
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from tests.flows.serving import REPO, Api, Output, households_loaded_once, poll, started, stop

pytestmark = pytest.mark.slow  # a real Prefect server, a deployed prefect.yaml and a process worker

TOKEN = "w" * 40
PASSWORD = "workers-webhook-password"
HOUSEHOLD = "sammachip_household"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Secrets and Prefect's own settings only: nothing that says where the config or data are.
NOT_FOR_THE_WORKER = ("SAMMACHIP_", "PREFECT_API_URL", "PREFECT_HOME")


@dataclass
class Office:
    api: Api
    prefect: PrefectServer
    store: KoboStore
    assets: dict[str, str]
    home: Path  # SAMMACHIP_HOME: where data/ lives
    config: Path
    receiver: str
    receiver_output: Output
    worker_output: Output

    def households(self) -> list[dict[str, Any]]:
        uid = self.assets[HOUSEHOLD]
        return [self.store.get(uid, i) for i in self.store.asset(uid).ids]  # type: ignore[union-attr]

    def wait_final(self, run_id: str, timeout: float, what: str) -> str:
        def final() -> str | None:
            state = str(self.api.flow_run(run_id)["state_type"])
            return state if state in FINAL else None

        try:
            return poll(final, timeout, what)
        except AssertionError:
            raise AssertionError(
                f"{what}; worker output:\n{self.worker_output.drain()[-3000:]}"
            ) from None


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start_receiver(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], Output, str]:
    """`sammachip webhook` on a free port, answering. Other programs on the machine take
    ports too: one taken between the choice and the bind means another try."""
    for _ in range(3):
        port = free_port()
        receiver, output = started(
            [sys.executable, "-m", "sammachip.flows.cli", "webhook", "--port", str(port)],
            env,
            cwd=cwd,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            poll(
                lambda url=url, receiver=receiver: (
                    _answers(f"{url}/healthz")  # type: ignore[misc]
                    or receiver.poll() is not None
                ),
                120,
                "the receiver to answer or exit",
            )
        except AssertionError:
            stop(receiver, 30)
            raise AssertionError(
                f"the receiver did not answer:\n{output.drain()[-3000:]}"
            ) from None
        if receiver.poll() is None:
            return receiver, output, url
        if "address already in use" not in output.drain().lower():
            raise AssertionError(f"the receiver exited:\n{output.drain()[-3000:]}")
    raise AssertionError("no free port for the receiver in 3 tries")


def _deploy(env: dict[str, str]) -> None:
    prefect = [sys.executable, "-m", "prefect"]
    for args in (
        ["work-pool", "create", "sammachip", "--type", "process"],
        ["--no-prompt", "deploy", "--all"],
    ):
        done = subprocess.run(
            [*prefect, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    root = tmp_path_factory.mktemp("machines")
    home, worker_cwd, receiver_cwd = root / "office", root / "worker", root / "receiver"
    for folder in (home, worker_cwd, receiver_cwd):
        folder.mkdir()
    cohort = generate_cohort(CohortSpec(seed=13, villages=1, today=date(2026, 11, 24)))
    store = KoboStore()
    assets = seed_from_cohort(store, cohort)
    base = {k: v for k, v in os.environ.items() if not k.startswith(NOT_FOR_THE_WORKER)}
    with serve_kobo(store, TOKEN) as kobo_url, pytest.MonkeyPatch.context() as mp:
        config = home / "office.toml"
        config.write_text(
            f'[[kobo]]\nname = "office"\nurl = "{kobo_url}"\ntoken_env = "SAMMACHIP_KOBO_TOKEN"\n',
            encoding="utf-8",
        )
        mp.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "2")  # production: 60 s
        with local_prefect_server(
            port=0, home=root / "prefect-home", log_path=root / "prefect-server.log"
        ) as prefect:
            prefect_env = {
                **base,
                "PREFECT_API_URL": prefect.api_url,
                "PREFECT_HOME": str(root / "client-home"),
            }
            office_paths = {"SAMMACHIP_CONFIG": str(config), "SAMMACHIP_HOME": str(home)}
            _deploy(prefect_env | office_paths)
            receiver_env = (
                prefect_env
                | office_paths
                | {"SAMMACHIP_KOBO_TOKEN": TOKEN, "SAMMACHIP_WEBHOOK_PASSWORD": PASSWORD}
            )
            receiver, receiver_output, url = _start_receiver(receiver_env, receiver_cwd)
            try:
                worker, worker_output = started(
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool", "sammachip"],
                    prefect_env
                    | {
                        "SAMMACHIP_KOBO_TOKEN": TOKEN,
                        "PREFECT_WORKER_QUERY_SECONDS": "1",
                    },  # production: 10 s
                    cwd=worker_cwd,
                )
                try:
                    worker_output.wait_for(r"Worker .* started", 120)
                    yield Office(
                        Api(prefect.api_url),
                        prefect,
                        store,
                        assets,
                        home,
                        config,
                        url,
                        receiver_output,
                        worker_output,
                    )
                finally:
                    stop(worker, 60)
            finally:
                stop(receiver, 30)
            assert not (receiver_cwd / "data").exists() and not (worker_cwd / "data").exists()


def test_the_deployments_carry_the_offices_config_and_folder(office: Office) -> None:
    for name in ("nightly", "ingest", "reconcile"):
        deployment = office.api.deployment(name)
        assert deployment["work_pool_name"] == "sammachip"
        assert deployment["parameters"] == {
            "config": str(office.config),
            "workdir": str(office.home),
        }
    assert office.api.limit("nightly") == (1, "CANCEL_NEW")
    assert office.api.limit("ingest") == (1, "ENQUEUE")
    ingest = office.api.deployment("ingest")
    assert [s["schedule"]["cron"] for s in ingest["schedules"]] == ["*/30 * * * *"]


def test_the_receiver_lands_where_ingest_reads(office: Office) -> None:
    landing = office.home / "data" / "landing"
    office.receiver_output.wait_for(rf"landing\s+{landing}$", 10)


def test_deliveries_trigger_an_ingest_that_a_worker_runs_into_the_offices_warehouse(
    office: Office,
) -> None:
    docs = office.households()[:8]
    posted = datetime.now(UTC)
    with httpx.Client(auth=("kobo", PASSWORD)) as client:
        url = f"{office.receiver}/hooks/kobo/{office.assets[HOUSEHOLD]}"
        assert {client.post(url, json=doc).status_code for doc in docs} == {202}

    def triggered() -> dict[str, Any] | None:  # the sweep's runs are scheduled ahead
        return next((r for r in office.api.flow_runs("ingest") if not r["auto_scheduled"]), None)

    run = poll(triggered, 120, "the ingest run the deliveries trigger")
    # prefect.yaml's window: one run per burst, starting 5 s after its first delivery (and
    # after the server has taken the event in, a few seconds more on a loaded machine)
    start = datetime.fromisoformat(run["expected_start_time"])
    assert timedelta(seconds=4) < start - posted < timedelta(seconds=40)
    assert office.wait_final(run["id"], 240, "the triggered ingest run") == "COMPLETED"
    households_loaded_once(office.home, docs)
    assert not Landing(office.home / "data" / "landing").pending(SOURCE)


def test_a_nightly_run_by_the_worker_fills_the_offices_warehouse(office: Office) -> None:
    run = office.api.run_deployment("nightly")
    assert office.wait_final(run["id"], 300, "the nightly run on the worker") == "COMPLETED"
    households_loaded_once(office.home, office.households())
    assert list((office.home / "data" / "reports").glob("*/index.html"))


def test_schedules_create_runs_that_the_worker_picks_up_and_completes(office: Office) -> None:
    nightly = [r for r in office.api.flow_runs("nightly") if r["state_type"] == "SCHEDULED"]
    assert nightly and all(r["auto_scheduled"] for r in nightly)
    start = datetime.fromisoformat(nightly[0]["expected_start_time"])
    assert (start.hour, start.minute) == (19, 30)  # 02:30 in Bangkok

    # A short interval on ingest (nothing is waiting, so each run is quick); the module's
    # server goes with it.
    ingest = office.api.deployment("ingest")
    office.api(
        "POST",
        f"/deployments/{ingest['id']}/schedules",
        json=[{"schedule": {"interval": 10}, "active": True}],
    )

    def swept() -> dict[str, Any] | None:
        done = [
            r
            for r in office.api.flow_runs("ingest")
            if r["auto_scheduled"] and r["state_type"] in FINAL
        ]
        return done[0] if done else None

    assert poll(swept, 180, "a scheduled ingest on the worker")["state_type"] == "COMPLETED"
