"""Helpers for the tests that run `sammachip serve`, workers and a real Prefect server: waiting
with a deadline, reading a subprocess's output, asking the Prefect API, holding a simulator
request open. Every wait polls with a deadline; nothing sleeps a fixed time."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from sammachip.flows.serve import PrefectServer, local_prefect_server
from sammachip.simulators.faults import FaultPlan
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while (result := check()) is None or result is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)  # polling interval, not a wait for something to happen
    return result


# A server's scheduler creates runs from the deployments' crons: the nightly's (19:30 UTC, 02:30
# in Bangkok) and the reconcile's (Saturday 20:30 UTC) would fire when a module happens to run
# then, and load the whole cohort under its counts. Servers the tests start schedule nothing
# unless a test is about the scheduler.
WITHOUT_SCHEDULER = {"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}


@contextmanager
def prefect_server(root: Path, *, scheduler: bool = False) -> Iterator[PrefectServer]:
    """A local Prefect server under `root`: without a scheduler, or with one that looks for
    due schedules every 2 s (production: 60 s)."""
    settings = (
        {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"} if scheduler else WITHOUT_SCHEDULER
    )
    with pytest.MonkeyPatch.context() as env:
        for name, value in settings.items():
            env.setenv(name, value)
        with local_prefect_server(
            port=0, home=root / "prefect-home", log_path=root / "prefect-server.log"
        ) as prefect:
            env.undo()  # the server's settings only: serve and the tests see the usual env
            yield prefect


@dataclass
class Output:
    """A subprocess's output lines, readable with a deadline."""

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


def started(
    command: list[str], env: dict[str, str], cwd: Path = REPO
) -> tuple[subprocess.Popen[str], Output]:
    """A subprocess whose stdout and stderr are read into an `Output`."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = Output()
    threading.Thread(target=output.pump, args=(process.stdout,), daemon=True).start()
    return process, output


def stop(process: subprocess.Popen[str], timeout: float = 90) -> int:
    """Ctrl-C, as an operator would; killed if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


@dataclass
class Served:
    """A `sammachip serve` subprocess, up and listening."""

    process: subprocess.Popen[str]
    output: Output
    webhook: str  # the receiver's base URL
    api_url: str  # the Prefect API it uses

    def stop(self, timeout: float = 90) -> int:
        return stop(self.process, timeout)


def start_serve(workdir: Path, env: dict[str, str], *args: str, timeout: float = 180) -> Served:
    command = [
        sys.executable,
        "-m",
        "sammachip.flows.cli",
        "serve",
        "--workdir",
        str(workdir),
        "--webhook-port",
        "0",
        *args,
    ]
    process, output = started(command, env)
    try:
        api_url = output.wait_for(r"prefect-api\s+(\S+/api)", timeout)[1]
        webhook = output.wait_for(r"webhook\s+(http://127\.0\.0\.1:\d+)/hooks/kobo/", 60)[1]
        output.wait_for(r"deployment\s+reconcile/reconcile", 30)
    except BaseException:
        stop(process)
        raise
    return Served(process, output, webhook, api_url)


@dataclass
class Api:
    """The Prefect REST API, as the tests read it."""

    url: str

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        # The server answers 503 while its SQLite database is locked by a write beside ours (a
        # run starting in serve); the request was rolled back, and Prefect's own client retries.
        def unless_busy() -> httpx.Response | None:
            response = httpx.request(method, f"{self.url}{path}", timeout=10, **kwargs)
            return None if response.status_code == 503 else response

        response = poll(unless_busy, 60, f"the Prefect API to answer {method} {path}, not 503")
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment(self, name: str) -> dict[str, Any]:
        """`name` is both the flow's and the deployment's: deployments are "<name>/<name>"."""
        return dict(self("GET", f"/deployments/name/{name}/{name}"))

    def limit(self, name: str) -> tuple[int, str]:
        """(concurrency limit, collision strategy) of a deployment."""
        d = self.deployment(name)
        limit, options = d["global_concurrency_limit"], d["concurrency_options"]
        return limit["limit"], options["collision_strategy"]

    def active_slots(self, name: str) -> int:
        return int(self.deployment(name)["global_concurrency_limit"]["active_slots"])

    def flow_runs(self, deployment: str) -> list[dict[str, Any]]:
        body = {
            "deployments": {"id": {"any_": [self.deployment(deployment)["id"]]}},
            "sort": "EXPECTED_START_TIME_ASC",
        }
        return list(self("POST", "/flow_runs/filter", json=body))

    def run_deployment(self, name: str) -> dict[str, Any]:
        """A flow run of the deployment, as `prefect deployment run` makes one."""
        return dict(
            self("POST", f"/deployments/{self.deployment(name)['id']}/create_flow_run", json={})
        )

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return dict(self("GET", f"/flow_runs/{run_id}"))


def sql(workdir: Path, query: str) -> list[tuple]:
    wh = open_warehouse(str(workdir / "data" / "warehouse"))
    return connect(wh).execute(query).fetchall()


def households_loaded_once(workdir: Path, docs: list[dict[str, Any]]) -> None:
    """Each of these household submissions is in the warehouse once: one raw version, and
    either clean or quarantined (new = clean + quarantined)."""
    ids = ", ".join(f"'{d['_id']}'" for d in docs)
    mine = f"form_id = 'sammachip_household' and submission_id in ({ids})"
    [(raw, raw_ids)] = sql(
        workdir, f"select count(*), count(distinct submission_id) from raw_submissions where {mine}"
    )
    [(clean, clean_ids)] = sql(
        workdir,
        "select count(*), count(distinct submission_id) from "
        f"households where submission_id in ({ids})",
    )
    [(quarantined,)] = sql(
        workdir, f"select count(distinct submission_id) from quarantine where {mine}"
    )
    assert raw == raw_ids == len(docs)
    assert clean == clean_ids and clean + quarantined == len(docs) and clean > 0


class Gate:
    """Holds the simulator's requests whose path contains `target` until opened (at most
    `limit` seconds), so a run is caught in flight whatever the machine's speed. The simulator
    answers nothing else while one is held."""

    def __init__(self, faults: FaultPlan, target: str, limit: float = 180.0) -> None:
        self.target, self.limit = target, limit
        self.reached = threading.Event()
        self._open = threading.Event()
        faults.on_request(self._hold)

    def _hold(self, path: str) -> None:
        if self.target in path and not self._open.is_set():
            self.reached.set()
            self._open.wait(self.limit)

    def open(self) -> None:
        self._open.set()
