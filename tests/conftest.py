"""Shared test set-up: quiet, isolated Prefect; one GX context and one Prefect API for the folders
that validate or run flows; and a check that no process a test started outlives the run."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sammachip.flows.runtime import apply_prefect_defaults

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # shared helpers are imported as `tests.<folder>.<module>`
    sys.path.insert(0, str(ROOT))

# Before anything imports Prefect: its home (SQLite DB) lives in a throwaway folder, and it is
# as quiet and as patient at start-up as the `sammachip` command makes it. Each pytest-xdist
# worker gets a home of its own (a worker inherits the controller's environment).
if "PYTEST_XDIST_WORKER" in os.environ or "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="sammachip-prefect-")
apply_prefect_defaults()


@pytest.fixture(scope="session")
def suite_runner():  # type: ignore[no-untyped-def]
    """GX costs ~5 s to import: one context, every suite, for all tests that validate."""
    from sammachip.schemas.validation import SuiteRunner

    return SuiteRunner()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real, temporary Prefect API for the tests that run flows (~10 s to start, once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


# ---- the tiers: `make test` runs everything, `make test-fast` (-m "not slow") the edit loop ----

# Any test that runs flows on a real Prefect API is slow, whichever fixture brings the API in;
# modules that start servers, kill processes, run Dask or a browser mark themselves.
_SLOW_FIXTURES = frozenset({"prefect_harness"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# ---- nothing a test starts outlives the run ---------------------------------------------------

OUTLIVE_GRACE = 15.0  # seconds for children already told to stop to finish exiting
# Started by multiprocessing for this process's lifetime; it exits when this process does.
_LIVES_WITH_US = ("multiprocessing.resource_tracker",)


def _become_subreaper() -> None:
    """Orphans of our children (a pool's worker whose forked parent was SIGKILLed, a server's
    child whose parent was killed) are re-parented to this process rather than to init, so
    the check below sees them instead of leaving them running unseen."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_child_subreaper = 36
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def pytest_configure(config: pytest.Config) -> None:
    _become_subreaper()


def _stop_prefect_temporary_servers() -> None:
    """Prefect stops its no-server-mode API subprocesses at interpreter exit; stop them now
    so that what is left below is only what a test forgot."""
    if "prefect.server.api.server" not in sys.modules:
        return
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()


def _describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline())[:160]}"
    except psutil.Error:
        return f"pid {process.pid}"


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def outliving_children(grace: float = OUTLIVE_GRACE) -> list[str]:
    """Every process below this one still running after `grace` s, killed and described."""
    _stop_prefect_temporary_servers()
    children = []
    for child in psutil.Process().children(recursive=True):
        try:
            if not any(mark in " ".join(child.cmdline()) for mark in _LIVES_WITH_US):
                children.append(child)
        except psutil.Error:  # already gone
            continue
    _, alive = psutil.wait_procs(children, timeout=grace)
    alive = [p for p in alive if _running(p)]
    found = [_describe(p) for p in alive]
    for process in alive:  # the run must not leave them behind either
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=5)
    return found


@pytest.fixture(scope="session", autouse=True)
def _nothing_outlives_the_run() -> Iterator[None]:
    """Fail the run when a test left a child process running (an unclosed pool, a server not
    stopped, the workers of a process that was killed): the suite must end what it starts.
    A session fixture, not a session hook, so that under pytest-xdist each worker checks its
    own children and the failure reaches the controller as an error of the last test."""
    yield
    found = outliving_children()
    if found:
        pytest.fail(
            "\n".join([f"{len(found)} process(es) outlived the tests that started them:", *found]),
            pytrace=False,
        )
