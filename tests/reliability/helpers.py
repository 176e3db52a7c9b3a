"""Plain helpers shared by the reliability trials (fixtures live in conftest.py).

The warehouse half of a run, the kill harness and the fingerprint come from the crash-safety
tests (`tests/warehouse/test_crash_safety.py`) and are reused as they are; what is added here
is what those tests did not need: ODK sources, hostile submissions, faults armed mid-sync,
forked children that report back (killed at a failpoint or an instant), trials run side by
side, a warehouse in a bucket (and its copy, for the same fingerprint), the flows' own
one-worker / parallel / reconcile paths in a flow run, and a fingerprint without the clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sammachip.connectors.kobo import KoboServer, KoboSource
from sammachip.connectors.odk import OdkServer, OdkSource
from sammachip.flows import nightly
from sammachip.flows.nightly import FormResult, RunSummary, build_marts, discover_forms, sync_form
from sammachip.flows.progress import FetchProgress
from sammachip.flows.settings import Settings, load_settings
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import HOUSEHOLD, SESSION, Cohort, CohortSpec, generate_cohort
from sammachip.simulators.faults import Fault, FaultPlan
from sammachip.simulators.kobo import KoboStore, seed_from_cohort
from sammachip.simulators.odk import OdkStore, seed_odk_from_cohort
from sammachip.warehouse import failpoints
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from sammachip.warehouse.storage import S3Storage
from tests.reliability.s3_server import Bucket, Upload
from tests.warehouse.test_crash_safety import (
    NOW,
    TODAY,
    TOKEN,
    VOLATILE,
    fingerprint,
    killed_sync,
    sync,
)

__all__ = [
    "NOW",
    "TODAY",
    "TOKEN",
    "fingerprint",
    "killed_sync",
    "sync",  # reused, not redefined
]

EMAIL, PASSWORD = "cdd.ubon@example.org", "correct horse battery staple"
FORMULA = '=HYPERLINK("http://evil.example","คลิก")'
PIPE = "+cmd|' /C calc'!A0"
SCRIPT = "<script>alert('x')</script>"
BAD_ID = "3341404166028"  # 13 digits, wrong checksum: quarantined (the value kept there)
# The night's secrets: distinctive, so a leak of even part of one is found by "S3CR3T".
KOBO_TOKEN = "S3CR3T-kobo-token-0c9f1e2d3b4a59687766"
ODK_PASSWORD = "S3CR3T-odk-รหัสผ่าน-2568"
SECRET_MARK = "S3CR3T"
VILLAGE = "34140101"  # the first village of a one-village cohort
HOSTILE_AT = datetime(2026, 11, 19, 3, 0)  # received after the whole cohort (naive UTC)
JOBS = max(2, min(4, os.cpu_count() or 2))  # forked trials run side by side (CPU-bound)


# ---- data --------------------------------------------------------------------------------


def tiny_cohort(
    seed: int = 11, forms: Iterable[str] = (HOUSEHOLD, SESSION), *, dirty: bool = True
) -> Cohort:
    """One village, twelve households and their sessions (attendance is a repeat group):
    every layer of the warehouse is exercised, and a sync takes about a second. `dirty`: the
    generator's injected mistakes (Thai digits, BE years, a duplicate registration …)."""
    spec = CohortSpec(seed=seed, villages=1, households_per_village=12, today=TODAY, dirty=dirty)
    cohort = generate_cohort(spec)
    wanted = set(forms)
    return replace(cohort, submissions=[s for s in cohort.submissions if s.form_id in wanted])


def hostile_households() -> list[dict[str, Any]]:
    """Registrations a district really receives: formula and script names, a mistyped ID,
    "สี่" typed for a number, a second registration of a household. All are quarantined, each
    for its own fault only (every other answer the form requires is there)."""
    base = {
        "hh/village_code": VILLAGE,
        "hh/house_no": "7",
        "members": "4",
        "occupation": "mushroom",
        "baseline_income": "6000",
        "head/phone": "0812345678",
        "end": "2026-11-19T10:00:00.000+07:00",
    }
    return [
        {**base, "hh/hh_code": f"{VILLAGE}-90", "head/name": FORMULA, "head/national_id": BAD_ID},
        {
            **base,
            "hh/hh_code": f"{VILLAGE}-91",
            "head/name": SCRIPT,
            "members": "สี่",
            "head/national_id": "1101700203450",
        },
        {
            **base,
            "hh/hh_code": f"{VILLAGE}-12",
            "head/name": PIPE,
            "head/national_id": "3100600445635",
        },
    ]


def seed_kobo(store: KoboStore, seed: int = 11) -> dict[str, str]:
    """The tiny cohort and the hostile households; returns {form id: asset uid}."""
    uids = seed_from_cohort(store, tiny_cohort(seed))
    for answers in hostile_households():
        store.submit(uids[HOUSEHOLD], answers, HOSTILE_AT)
    return uids


def seed_odk(store: OdkStore, seed: int = 5) -> dict[str, str]:
    """The same on ODK Central; returns {form id: xmlFormId}."""
    forms = seed_odk_from_cohort(store, tiny_cohort(seed))
    for answers in hostile_households():
        store.submit(forms[HOUSEHOLD], answers, HOSTILE_AT, submitter="enum01")
    return forms


@dataclass(frozen=True)
class District:
    """A one-village Kobo server (pages of 10) and what an uninterrupted sync makes of it."""

    store: KoboStore
    url: str
    uids: dict[str, str]  # form id → asset uid
    reference: dict[str, str]  # fingerprint of the warehouse after an uninterrupted sync
    passes: int  # failpoint passes that sync makes (data files, manifest steps)


@dataclass(frozen=True)
class BucketDistrict:
    """The district's sync into a bucket: its fingerprint, time, and uploads of each kind."""

    bucket: Bucket
    kobo_url: str
    reference: dict[str, str]
    seconds: float
    uploads: dict[Upload, int]


@dataclass
class Night:
    """A nightly run over a Kobo and an ODK server, with secrets in the environment and the
    faults of a bad night: a form refused mid-sync on each server (403), a dropped
    connection, an ODK session that expires between forms."""

    workdir: Path
    summary: RunSummary
    kobo_uids: dict[str, str]
    odk_forms: dict[str, str]
    logs: list[str]  # every log record, DEBUG and up, with tracebacks
    output: str  # everything written to stdout and stderr
    prefect_runs: list[dict[str, Any]] = field(default_factory=list)  # params, state messages
    prefect_db: list[Path] = field(default_factory=list)  # the API database's files


# ---- syncing -----------------------------------------------------------------------------


def sync_settings(settings: Settings, runner: SuiteRunner) -> None:
    """`sync` of the crash-safety tests for any configured servers (Kobo, ODK or both)."""
    forms, _ = discover_forms.fn(settings)
    with open_warehouse(str(settings.warehouse_path)).transaction() as tx:
        for form in forms:
            sync_form.fn(tx, form, runner, settings, NOW, FetchProgress.quiet())
        build_marts.fn(tx, settings, TODAY)


def kobo_settings(workdir: Path, url: str, warehouse: str | None = None) -> Settings:
    """What `sync` runs with: the district's Kobo server, the warehouse in `workdir` (or at
    `warehouse`, e.g. a bucket), the bundled config for the rest."""
    settings = load_settings(base_dir=workdir, require_sources=False)
    settings = replace(settings, kobo=(KoboSource(KoboServer(url, TOKEN)),))
    return replace(settings, warehouse_path=warehouse) if warehouse else settings


def sync_to(warehouse: str, workdir: Path, url: str, runner: SuiteRunner) -> None:
    """`sync`, into the warehouse at `warehouse` (a bucket URI) instead of `workdir`'s."""
    sync_settings(kobo_settings(workdir, url, warehouse), runner)


def mirror(warehouse: str, workdir: Path) -> Path:
    """Copy every object under `warehouse` (a bucket URI) into `workdir`'s warehouse folder,
    read through the warehouse's own S3 storage: the local trials' `fingerprint` then reads
    exactly what a reader of the bucket would see. Returns `workdir`."""
    storage = S3Storage(warehouse)
    for rel in storage.list(""):
        target = workdir / "data" / "warehouse" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with storage.fs.open_input_stream(storage.path(rel)) as source:
            target.write_bytes(source.read())
    return workdir


def odk_settings(workdir: Path, url: str, page_size: int = 10) -> Settings:
    settings = load_settings(base_dir=workdir, require_sources=False)
    source = OdkSource(OdkServer(url, EMAIL, PASSWORD, project_id=1), page_size=page_size)
    return replace(settings, kobo=(), odk=(source,))


def sync_in_flow(
    settings: Settings,
    runner: SuiteRunner,
    *,
    workers: int = 1,
    reconcile: bool = False,
    now: datetime = NOW,
) -> list[FormResult]:
    """`run_sync`'s transaction as the flows run it — one worker (`_sync_one`: each form in a
    savepoint, a permanent error skips it) or the parallel path (`_sync_parallel` on
    `workers` threads), a reconcile's rescan and deletions included — with the run's clock
    fixed (NOW, or `now` for runs that must differ), so warehouses compare whole. In a flow:
    the task runner needs a flow run."""
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    def body() -> list[FormResult]:
        forms, failed = discover_forms.fn(settings)
        assert failed == []
        with open_warehouse(str(settings.warehouse_path)).transaction() as tx:
            if workers > 1:
                results = list(nightly._sync_parallel(tx, forms, runner, settings, now, reconcile))
            else:
                quiet = FetchProgress.quiet()
                results = [
                    nightly._sync_one(tx, form, runner, settings, now, quiet, reconcile)
                    for form in forms
                ]
            build_marts.fn(tx, settings, TODAY)
        return results

    task_runner = ThreadPoolTaskRunner(max_workers=workers)
    return flow(name=f"sync-on-{workers}-workers", task_runner=task_runner)(body)()


def sync_odk(workdir: Path, url: str, runner: SuiteRunner, page_size: int = 10) -> None:
    sync_settings(odk_settings(workdir, url, page_size), runner)


# When a run happened (its clock), beside which run it was (crash-safety's VOLATILE).
RUN_CLOCK = frozenset({"ingested_at", "valid_from", "quarantined_at", "seen_at", "deleted_at"})


def clock_free_fingerprint(workdir: Path) -> dict[str, str]:
    """`fingerprint`, the run's clock left out too: for runs that read the clock themselves
    (the ingest flow), whose rows are otherwise the same whenever they run."""
    wh = open_warehouse(str(workdir / "data" / "warehouse"))
    con = connect(wh)
    out = {"_cursors": repr(sorted(wh.snapshot().cursors.items()))}
    for name in wh.table_names():
        cols = [
            c[0]
            for c in con.execute(f"describe {name}").fetchall()
            if c[0] not in VOLATILE | RUN_CLOCK
        ]
        quoted = ", ".join(f'"{c}"' for c in cols)
        rows = con.execute(f"select {quoted} from {name}").fetchall()
        out[name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    return out


def warehouse_version(workdir: Path) -> int:
    return open_warehouse(str(workdir / "data" / "warehouse")).snapshot().version


def arm_on_request(
    plan: FaultPlan,
    target: str,
    nth: int,
    faults: Iterable[Fault] = (),
    action: Callable[[], None] | None = None,
) -> None:
    """When the `nth` request whose path contains `target` arrives, queue `faults` (they hit
    that very request and the retries after it) and run `action`: a fault in mid-sync, not
    on the first request a form makes."""
    seen = 0

    def hook(path: str) -> None:
        nonlocal seen
        if target not in path:
            return
        seen += 1
        if seen == nth:
            for fault in faults:
                plan.add(fault)
            if action is not None:
                action()

    plan.on_request(hook)


# ---- forked children ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChildOutcome:
    signal: int  # the signal that ended the child, 0 if it exited
    result: Any  # what the function returned (JSON), or None
    error: str | None  # "OSError: [Errno 27] File too large" if it raised
    trace: str | None = None  # and where


def _report(write_fd: int, fn: Callable[[], Any]) -> None:
    """Child side: run `fn`, send its result or error up the pipe, exit without clean-up."""
    try:
        message = {"result": fn(), "error": None}
    except BaseException as err:  # the parent asserts on it
        message = {
            "result": None,
            "error": f"{type(err).__name__}: {err}",
            "trace": traceback.format_exc(),
        }
    with os.fdopen(write_fd, "w") as pipe:
        json.dump(message, pipe)
    os._exit(0)


def _start(fn: Callable[[], Any]) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            _report(write_fd, fn)
        finally:
            os._exit(1)  # never return into pytest from a child
    os.close(write_fd)
    return pid, read_fd


def _finish(pid: int, read_fd: int) -> ChildOutcome:
    with os.fdopen(read_fd) as pipe:
        text = pipe.read()  # EOF when the child exits or dies
    _, status = os.waitpid(pid, 0)
    died = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    message = json.loads(text) if text else {}
    return ChildOutcome(died, message.get("result"), message.get("error"), message.get("trace"))


def in_child(fn: Callable[[], Any]) -> ChildOutcome:
    """Run `fn` in a forked child (it may SIGKILL itself, hit a file-size limit …)."""
    return _finish(*_start(fn))


def kill_at_failpoint(point: str, fn: Callable[[], Any]) -> int:
    """Run `fn` in a forked child that SIGKILLs itself at failpoint `point` ("before-manifest",
    "*:7" …, counted from the child's start); return the signal that ended it (0: none)."""

    def armed() -> Any:
        os.environ[failpoints.ENV] = point
        failpoints.reset()
        return fn()

    return in_child(armed).signal


def kill_after(seconds: float, fn: Callable[[], Any]) -> int:
    """Run `fn` in a forked child SIGKILLed after `seconds` of wall time, wherever it is."""

    def timed() -> Any:
        failpoints.die_after(seconds)
        return fn()

    return in_child(timed).signal


def in_children(fns: list[Callable[[], Any]], jobs: int) -> Iterator[ChildOutcome]:
    """Run each function in its own forked child, `jobs` at a time, outcomes in order.
    The parent keeps the simulator serving and GX loaded; children share both by fork."""
    running: list[tuple[int, int]] = []
    for fn in fns:
        if len(running) == jobs:
            yield _finish(*running.pop(0))
        running.append(_start(fn))
    for child in running:
        yield _finish(*child)


# ---- capturing what a run says -------------------------------------------------------------


class _Records(logging.Handler):
    """Every log record, formatted with its traceback, as caplog would keep it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """DEBUG and up from every logger (non-propagating ones too) while the block runs."""
    handler = _Records()
    quiet = [
        lg
        for lg in logging.root.manager.loggerDict.values()
        if isinstance(lg, logging.Logger) and not lg.propagate
    ]
    targets = [logging.root, *quiet]
    levels = {name: logging.getLogger(name).level for name in ("", "prefect")}
    for lg in targets:
        lg.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        for lg in targets:
            lg.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def captured_output() -> Iterator[list[str]]:
    """What the block writes to stdout and stderr, at the file-descriptor level too."""
    out: list[str] = []
    with tempfile.TemporaryFile() as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fds, saved_streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
        text = open(sink.fileno(), "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        sys.stdout = sys.stderr = text
        try:
            yield out
        finally:
            text.flush()
            sys.stdout, sys.stderr = saved_streams
            for fd, saved in zip((1, 2), saved_fds, strict=True):
                os.dup2(saved, fd)
                os.close(saved)
            sink.seek(0)
            out.append(sink.read().decode("utf-8", "replace"))


def as_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
