"""`sammachip serve`: everything one office machine needs, in one command.

Prefect's no-server (ephemeral) mode runs no scheduler, so schedules and event triggers need
a real Prefect server. `serve` uses the one PREFECT_API_URL names, or starts a local one
(SQLite) as a child process; registers and runs the deployments (`nightly`, `ingest`,
`reconcile`) in this process; and runs the Kobo webhook receiver beside them, whose deliveries
a warm worker of this process loads within seconds (`flows/warm.py`). Ctrl-C (or
SIGTERM) stops the runner, then the receiver (flushing its queued events), then the server.
A run a stop or a crash interrupted is marked crashed (on stop, or else on the next start), so
that it frees its deployment's concurrency slot.

The same deployments, for several machines with a work pool and workers, are in prefect.yaml;
`DEPLOYMENTS` here is the single-machine twin and a test keeps the two in step.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import (
    EVENT_RECEIVED,
    RESOURCE_PREFIX,
    SOURCE,
    IncompleteAssetList,
    PrefectEvents,
    Receiver,
    RefreshingAssets,
    create_app,
    prefect_api_headers,
    serve_in_thread,
)
from sammachip.flows.settings import IngestSettings, Settings
from sammachip.flows.warm import WarmIngest

TIMEZONE = "Asia/Bangkok"
Say = Callable[[str], None]
SHUTDOWN_GRACE = 30.0  # seconds from Ctrl-C until a stuck shutdown is cut short
EXIT_FORCED = 3


# =========================================================================== deployments


@dataclass(frozen=True)
class DeploymentSpec:
    """What prefect.yaml says about a deployment, in a form `serve` can use too."""

    name: str  # also the flow's name: deployments are "<name>/<name>"
    entrypoint: str  # module path, importable wherever sammachip is installed
    description: str
    cron: str | None = None
    collision: str = "CANCEL_NEW"  # concurrency limit 1: what happens to a second run
    triggered: bool = False  # by sammachip.submission.received, micro-batched
    tags: tuple[str, ...] = field(default_factory=tuple)


def deployment_specs(ingest: IngestSettings) -> list[DeploymentSpec]:
    return [
        DeploymentSpec(
            "nightly",
            "sammachip.flows.nightly.nightly",
            "Sync every configured Kobo server, validate, load, build marts and officer lists.",
            cron="30 2 * * *",
            tags=("nightly",),
        ),
        DeploymentSpec(
            "ingest",
            "sammachip.flows.ingest.ingest",
            "Load the submissions the Kobo webhook landed; marts and officer lists follow.",
            cron=ingest.sweep_cron,
            collision="ENQUEUE",
            triggered=True,
            tags=("ingest",),
        ),
        DeploymentSpec(
            "reconcile",
            "sammachip.flows.nightly.reconcile",
            "Weekly full rescan: edits past the look-back window, tombstones for deletions.",
            cron="30 3 * * 0",
            tags=("reconcile",),
        ),
    ]


def ingest_trigger(window_seconds: int) -> Any:
    """One run per burst: fire on the first event of a window, ignore the rest of it, and
    start the run when the window closes, when all of its deliveries have landed."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    window = timedelta(seconds=window_seconds)
    return DeploymentEventTrigger(
        name="ingest on Kobo submissions",
        match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
        expect={EVENT_RECEIVED},
        posture="Reactive",  # type: ignore[arg-type]
        threshold=1,
        within=window,
        schedule_after=window,
    )


def build_deployments(
    specs: Iterable[DeploymentSpec],
    parameters: dict[str, Any],
    window_seconds: int,
    *,
    event_triggers: bool = True,
) -> list[Any]:
    """RunnerDeployments for `prefect.serve`. Without `event_triggers` a triggered deployment
    gets no trigger: something in this process starts its runs (serve's warm ingest)."""
    from importlib import import_module

    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    out = []
    for spec in specs:
        module, _, name = spec.entrypoint.rpartition(".")
        flow_obj = getattr(import_module(module), name)
        out.append(
            flow_obj.to_deployment(
                spec.name,
                description=spec.description,
                tags=list(spec.tags),
                parameters=parameters,
                schedules=[Cron(spec.cron, timezone=TIMEZONE)] if spec.cron else [],
                triggers=(
                    [ingest_trigger(window_seconds)] if spec.triggered and event_triggers else None
                ),
                concurrency_limit=ConcurrencyLimitConfig(
                    limit=1, collision_strategy=ConcurrencyLimitStrategy(spec.collision)
                ),
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return out


# =========================================================================== Prefect server


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def api_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    started_here: bool
    log_path: Path | None = None

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def wait_until_healthy(
    api_url: str, process: subprocess.Popen[bytes] | None, timeout: float, log_path: Path
) -> None:
    """Poll /health until it answers, the child dies, or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not api_healthy(api_url, timeout=1.0):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"Prefect server exited ({process.returncode}): {_tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Prefect server not healthy after {timeout:.0f} s: {_tail(log_path)}"
            )
        time.sleep(0.2)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def local_prefect_server(
    *,
    host: str = "127.0.0.1",
    port: int = 4200,
    home: Path | None = None,
    log_path: Path,
    timeout: float = 120.0,
) -> Iterator[PrefectServer]:
    """A Prefect server (SQLite under PREFECT_HOME) as a child process for the block's
    lifetime; reuses one already answering on that port. Port 0 picks a free port."""
    port = port or free_port(host)
    api_url = f"http://{host}:{port}/api"
    if api_healthy(api_url):
        yield PrefectServer(api_url, started_here=False)
        return
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        env["PREFECT_HOME"] = str(home)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        host,
        "--port",
        str(port),
    ]
    with open(log_path, "ab") as log:
        # Its own session: a terminal's Ctrl-C reaches us only, and we stop it last, after
        # the runner has paused its schedules through it.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_until_healthy(api_url, process, timeout, log_path)
        yield PrefectServer(api_url, started_here=True, log_path=log_path)
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


# =========================================================================== the receiver


def kobo_asset_lookup(settings: Settings) -> Callable[[], list[str]]:
    """The asset uids the nightly would sync (the same discovery, without a Prefect task)."""
    from sammachip.connectors.kobo import KoboForm
    from sammachip.flows.nightly import discover_forms

    def lookup() -> list[str]:
        found, failed = discover_forms.fn(settings)
        uids = [f.form_uid for f in found if isinstance(f, KoboForm)]
        if failed := [f for f in failed if f.error]:  # warnings: the listing is complete
            errors = "; ".join(f"{f.form_uid}: {f.error}" for f in failed)
            raise IncompleteAssetList(errors, uids)
        return uids

    return lookup


def build_receiver(
    settings: Settings, api_url: str | None, on_landed: Callable[[], None] | None = None
) -> tuple[Receiver, RefreshingAssets]:
    """The receiver as configured (`settings.webhook`, landing in `settings.landing_path`);
    events go to `api_url` (none: landing only); `on_landed` is called after each new
    delivery."""
    from prefect.settings import get_current_settings

    assets = RefreshingAssets(kobo_asset_lookup(settings))
    assets.refresh()
    events = None
    if api_url:
        api = get_current_settings().api
        key = api.key.get_secret_value() if api.key else None
        auth = api.auth_string.get_secret_value() if api.auth_string else None
        events = PrefectEvents(api_url, headers=prefect_api_headers(key, auth))
    webhook = settings.webhook
    receiver = Receiver(
        Landing(settings.landing_path),
        assets,
        webhook.authenticator(),
        webhook.max_body_bytes,
        events,
        webhook.body_timeout,
        on_landed,
    )
    return receiver, assets


@dataclass(frozen=True)
class ServeOptions:
    config: Path | None = None
    workdir: Path = Path(".")
    webhook_host: str | None = None
    webhook_port: int | None = None
    prefect_port: int = 4200
    prefect_home: Path | None = None


def _listing(
    server: PrefectServer,
    receiver_url: str,
    settings: Settings,
    assets: RefreshingAssets,
    specs: list[DeploymentSpec],
) -> list[str]:
    webhook, window = settings.webhook, settings.ingest.window_seconds
    who = f"user '{webhook.username}'" if webhook.auth == "basic" else f"header {webhook.header}"
    api_note = f"started here; log {server.log_path}" if server.started_here else "configured"
    lines = [
        "sammachip serve — listening (Ctrl-C to stop):",
        f"  prefect-api  {server.api_url}  ({api_note})",
        f"  prefect-ui   {server.ui_url}",
        f"  webhook      {receiver_url}/hooks/kobo/{{asset_uid}}  ({webhook.auth} auth, {who}; "
        f"{len(assets.uids)} assets known)",
        f"  health       {receiver_url}/healthz",
        f"  landing      {settings.landing_path.resolve()}",
    ]
    for spec in specs:
        when = [f"cron '{spec.cron}' {TIMEZONE}"] if spec.cron else []
        if spec.triggered:
            when.insert(
                0, f"on each delivery, run in this process (a burst waits at most {window} s)"
            )
        lines.append(f"  deployment   {spec.name}/{spec.name}: {'; '.join(when)}")
    return lines


def register(deployments: list[Any]) -> tuple[Any, list[Any]]:
    """A Prefect Runner with the deployments registered (and their triggers created), and
    the deployments' ids."""
    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True)  # no scheduled runs pile up while nobody serves
    return runner, [runner.add_deployment(deployment) for deployment in deployments]


# =========================================================================== unfinished runs

IN_FLIGHT = ("PENDING", "RUNNING", "CANCELLING")  # states that hold a deployment's slot
CRASHED_ON_STOP = (
    "sammachip serve stopped during this run; what it had not committed is "
    "fetched or loaded again by the next run"
)
CRASHED_ON_START = (
    "left unfinished by a sammachip serve that was stopped or killed; marked "
    "crashed so that its deployment runs again"
)


def crash_unfinished_runs(deployment_ids: list[Any], message: str) -> list[str]:
    """Force every run of these deployments still PENDING, RUNNING or CANCELLING into
    CRASHED, which frees its concurrency slot; returns the runs' names.

    Called when nothing of this process runs them any more: on stop, after the runner ended
    its flow-run processes (Prefect's runner leaves their runs RUNNING when it is cancelled);
    on start, before the runner starts (a run the previous process left behind would hold
    its deployment's slot forever: a local server keeps slot leases in memory only)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    in_flight = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(map(StateType, IN_FLIGHT)))),
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=in_flight)
        for run in runs:
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
        for deployment_id in deployment_ids:
            _free_slots(client, deployment_id)
    return [run.name for run in runs]


def _free_slots(client: Any, deployment_id: Any) -> None:
    """A slot still counted once none of the deployment's runs is in flight was held by a
    lease the server lost (a restart): give it back."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    limit = client.read_deployment(deployment_id).global_concurrency_limit
    if limit is not None and limit.active_slots > 0:
        client.update_global_concurrency_limit(
            limit.name, GlobalConcurrencyLimitUpdate(active_slots=0)
        )


def catch_up_ingest(warm: WarmIngest, landing: Landing, say: Say) -> None:
    """Deliveries waiting from before the start (an interrupted ingest, deliveries landed
    while nobody served) are loaded now rather than at the next delivery or sweep."""
    waiting = len(landing.pending(SOURCE))
    if not waiting:
        return
    warm.kick()
    say(
        f"  catch-up     {waiting} deliveries were waiting in the landing area: an ingest run "
        "loads them now"
    )


def run_until_stopped(runner: Any, say: Say, grace: float = SHUTDOWN_GRACE) -> None:
    """What `prefect.serve` does after registering: run until Ctrl-C or SIGTERM.

    Ctrl-C cancels the runner, which stops its flow runs and pauses the schedules. That
    shutdown waits on its flow-run processes without a time limit, and on a loaded machine it
    has been seen to hang; so Ctrl-C also starts a deadline after which whatever this process
    started is killed and it exits (a killed flow run leaves the warehouse as its last commit
    left it; its landing files stay for the next run)."""
    import asyncio
    import signal

    from prefect.exceptions import TerminationSignal

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        deadline: list[threading.Timer] = []

        def on_ctrl_c() -> None:
            if deadline:  # a second Ctrl-C: the operator does not want to wait
                _force_stop(say, "Ctrl-C again")
            deadline.append(threading.Timer(grace, _force_stop, (say, f"over {grace:.0f} s")))
            deadline[0].daemon = True  # a clean stop in time exits without waiting for it
            deadline[0].start()
            say(f"stopping (up to {grace:.0f} s; Ctrl-C again to stop at once) …")
            task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_ctrl_c)
        await runner.start()

    # Prefect's SIGTERM handler calls its async `stop()` without awaiting it, then exits;
    # the shutdown is still clean (asyncio.run cancels the runner), only the warning is not.
    warnings.filterwarnings("ignore", "coroutine 'Runner.astop' was never awaited")
    with contextlib.suppress(KeyboardInterrupt, TerminationSignal, asyncio.CancelledError):
        asyncio.run(main())


def _force_stop(say: Say, why: str) -> None:
    """Kill every process this one started (flow runs, a local Prefect server) and exit."""
    import psutil

    say(f"stopping took {why}: killing the flow runs and servers it started")
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    os._exit(EXIT_FORCED)


def run_serve(settings: Settings, options: ServeOptions, say: Say) -> None:
    """Run until Ctrl-C / SIGTERM; everything started here is stopped in reverse order.
    `settings` are the config's, read from `options.workdir`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    workdir = options.workdir.resolve()
    webhook = replace(
        settings.webhook,
        host=options.webhook_host or settings.webhook.host,
        port=settings.webhook.port if options.webhook_port is None else options.webhook_port,
    )
    settings = replace(settings, webhook=webhook)
    webhook.authenticator()  # fail on a missing secret before starting anything
    with ExitStack() as stack:
        api_url = configured_api_url()
        if api_url:
            server = PrefectServer(api_url, started_here=False)
        else:
            say(f"starting a local Prefect server on port {options.prefect_port} …")
            server = stack.enter_context(
                local_prefect_server(
                    port=options.prefect_port,
                    home=options.prefect_home,
                    log_path=workdir / "data" / "prefect-server.log",
                )
            )
        os.environ["PREFECT_API_URL"] = server.api_url  # flow-run subprocesses inherit it
        stack.enter_context(temporary_settings({PREFECT_API_URL: server.api_url}))
        warm = WarmIngest(settings.ingest.window_seconds, say)
        warm.start()  # GX is prepared while the rest starts
        receiver, assets = build_receiver(settings, server.api_url, warm.kick)
        url = stack.enter_context(serve_in_thread(create_app(receiver), webhook.host, webhook.port))
        specs = deployment_specs(settings.ingest)
        parameters = {
            "config": str(options.config.resolve()) if options.config else None,
            "workdir": str(workdir),
        }
        window = settings.ingest.window_seconds
        deployments = build_deployments(specs, parameters, window, event_triggers=False)
        runner, ids = register(deployments)
        for line in _listing(server, url, settings, assets, specs):
            say(line)
        _crash_unfinished(say, ids, CRASHED_ON_START, "unfinished")
        warm.attach(dict(zip([spec.name for spec in specs], ids, strict=True))["ingest"])
        catch_up_ingest(warm, receiver.landing, say)
        try:
            run_until_stopped(runner, say)
        finally:
            warm.stop()
            _crash_unfinished(say, ids, CRASHED_ON_STOP, "interrupted")
            say("stopping: runner stopped; receiver and Prefect server next …")
    say("stopped")


def _crash_unfinished(say: Say, ids: list[Any], message: str, which: str) -> None:
    try:
        names = crash_unfinished_runs(ids, message)
    except Exception as err:  # the server is gone: the next start does it
        say(
            f"  could not mark {which} runs crashed ({type(err).__name__}: {err}); the next "
            "`sammachip serve` does it"
        )
        return
    if names:
        say(
            f"  crashed      {len(names)} {which} run(s) marked crashed, their slots freed: "
            f"{', '.join(names)}"
        )


def run_webhook(settings: Settings, host: str | None, port: int | None, say: Say) -> None:
    """Only the receiver, in the foreground (multi-machine set-up: workers run the flows)."""
    import uvicorn

    api_url = configured_api_url()
    receiver, assets = build_receiver(settings, api_url)
    webhook = settings.webhook
    host, port = host or webhook.host, webhook.port if port is None else port
    say(f"webhook  http://{host}:{port}/hooks/kobo/{{asset_uid}}  ({len(assets.uids)} assets)")
    say(f"landing  {settings.landing_path}")
    say(f"events   {api_url or 'none: PREFECT_API_URL is not set, nothing triggers ingest'}")
    app = create_app(receiver)
    uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, lifespan="on", log_config=None, timeout_graceful_shutdown=10
        )
    ).run()
