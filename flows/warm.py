"""The warm ingest of `sammachip serve`: a delivery is in the warehouse and the officers' files
seconds after it lands.

The receiver runs in serve's process and kicks this worker after each new delivery is durable.
After a short quiet spell (`QUIET`, at most `[ingest] window_seconds` after the burst's first
delivery) the worker creates a run of the `ingest` deployment and executes it here, in this
process, where Prefect, GX and the pipeline are imported already and the GX runner is built once
(in the background while serve starts; renewed now and then, since GX keeps every validation
result in memory). A flow-run process per burst spent ~10 s importing and building all that
before doing any work. Deliveries that land during a run are taken by the next one.

It is an ordinary run of the deployment: the server sees it pending, running and completed,
it takes the deployment's concurrency slot (one ingest at a time, whoever runs it), and a stop
mid-run marks it crashed like any other. When Prefect will not let it start here (a sweep run
holds the slot, or the runner claimed it first) the run stays with the runner, which starts it
in a process of its own. A crash of serve leaves the deliveries in the landing area: the next
start loads them (`kick` at start), and the sweep schedule and the nightly remain the safety net.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sammachip.serve")

QUIET = 0.5  # seconds without a new delivery before a run starts
RENEW_AFTER = 2000  # GX batches validated before the runner is built afresh (memory)


class WarmIngest:
    """One thread that runs `ingest` in this process whenever deliveries have landed."""

    def __init__(
        self, window_seconds: float, say: Callable[[str], None], quiet: float = QUIET
    ) -> None:
        self._deployment_id: Any = None
        self._attached = threading.Event()
        self._window = float(window_seconds)
        self._quiet = min(quiet, self._window)
        self._say = say
        self._kicked = threading.Event()
        self._stopping = threading.Event()
        self._last_kick = 0.0
        # A daemon: a stop does not wait for a run in progress; the run is marked crashed and
        # its deliveries, still in the landing area, go to the next run.
        self._thread = threading.Thread(target=self._loop, name="warm-ingest", daemon=True)
        self.runs = 0

    def start(self) -> None:
        """Prepare GX now; runs wait for `attach`."""
        self._thread.start()

    def attach(self, deployment_id: Any) -> None:
        """The `ingest` deployment whose runs this worker executes."""
        self._deployment_id = deployment_id
        self._attached.set()

    def kick(self) -> None:
        """A delivery landed (or some may be waiting): run soon. Never blocks."""
        self._last_kick = time.monotonic()
        self._kicked.set()

    def stop(self) -> None:
        self._stopping.set()
        self._kicked.set()
        self._attached.set()

    # ---- the worker thread -------------------------------------------------------------
    def _loop(self) -> None:
        try:
            warm_up()
        except Exception as err:  # runs then build their own runner, as in a process of their own
            self._say(f"  warm ingest: GX could not be prepared ({type(err).__name__}: {err})")
        self._attached.wait()
        while not self._stopping.is_set():
            self._kicked.wait()
            if self._stopping.is_set():
                return
            self._settle()
            # Cleared before the run lists the landing area: a delivery that lands from here
            # on kicks again and is taken by the next run; one that landed before is listed.
            self._kicked.clear()
            try:
                self._run_once()
            except Exception as err:  # the server is unreachable, say: the sweep catches up
                self._say(f"  warm ingest: run not started ({type(err).__name__}: {err})")
                log.exception("warm ingest run failed to start")
            renew_if_worn()

    def _settle(self) -> None:
        """Wait for a quiet spell, at most the window after the first kick: a burst is loaded
        in a few runs rather than one run per delivery."""
        first = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            quiet_for, waited = now - self._last_kick, now - first
            if quiet_for >= self._quiet or waited >= self._window:
                return
            self._stopping.wait(min(self._quiet - quiet_for, self._window - waited))

    def _run_once(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.responses import SetStateStatus
        from prefect.flow_engine import run_flow
        from prefect.states import Pending

        from sammachip.flows.ingest import ingest

        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(self._deployment_id)
            # The same claim a runner or worker makes: it takes the concurrency slot, and
            # only one claimant of a run can win it.
            answer = client.set_flow_run_state(run.id, Pending())
            if answer.status != SetStateStatus.ACCEPT:
                log.info("ingest run %s left to the runner: %s", run.name, answer.details)
                return
            run = client.read_flow_run(run.id)
        self.runs += 1
        state = run_flow(ingest, flow_run=run, parameters=run.parameters, return_type="state")
        if state is not None and not state.is_completed():  # type: ignore[union-attr]
            self._say(f"  warm ingest: run '{run.name}' ended {state.type.value}")  # type: ignore[union-attr]


def warm_up() -> None:
    """Build the GX runner every ingest run of this process validates through."""
    from sammachip.flows.ingest import keep_warm
    from sammachip.schemas.validation import SuiteRunner

    keep_warm(SuiteRunner())


def renew_if_worn(limit: int = RENEW_AFTER) -> None:
    """GX keeps each validation result for its Data Docs: a runner that has validated
    `limit` batches is replaced, so a serve that runs for months does not grow."""
    from sammachip.flows.ingest import warm_runner

    runner = warm_runner()
    if runner is not None and runner.batches_validated >= limit:
        warm_up()
