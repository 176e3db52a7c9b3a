"""The processes that write officers' files never outlive the run that started them."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import suppress

import psutil
import pytest

from sammachip.reports import charts
from sammachip.reports.deliverables import _mapper

pytestmark = pytest.mark.slow  # worker processes killed with their run

SPEC = {"mark": "bar", "data": {"values": [{"x": 1}]}, "encoding": {"x": {"field": "x"}}}


def helper_of_a_killed_run(run: Callable[[Callable[[int], None]], None]) -> int:
    """Fork a run: `run(killed)` starts a helper process and calls `killed(helper's pid)`,
    which SIGKILLs the run there and then, with no clean-up at all. Returns the helper's pid:
    it is on its own now."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)

            def killed(helper: int) -> None:
                os.write(write, str(helper).encode())
                os.kill(os.getpid(), signal.SIGKILL)

            run(killed)
        finally:
            os._exit(1)
    os.close(write)
    with os.fdopen(read) as pipe:
        helper = int(pipe.read())
    os.waitpid(pid, 0)
    return helper


def ends_by_itself(pid: int, timeout: float = 30) -> None:
    """psutil.TimeoutExpired if the process is still running after `timeout` s."""
    with suppress(psutil.NoSuchProcess):  # already gone
        psutil.Process(pid).wait(timeout)


def test_report_workers_exit_when_their_run_is_killed() -> None:
    """A run killed while it writes officers' files (its runner stopped it, the OOM killer)
    must not leave its worker processes waiting for work forever."""

    def run(killed: Callable[[int], None]) -> None:
        with _mapper(2) as shared_map:  # /proc/self names the process that reads it
            pids = set(shared_map(os.readlink, ["/proc/self"] * 4)) - {str(os.getpid())}
            killed(int(pids.pop()))

    ends_by_itself(helper_of_a_killed_run(run))


def test_a_forked_runs_chart_process_exits_with_it() -> None:
    """A run forked from a process that already drew charts draws its own through a spawned
    process (a forked chart engine would hang): killed, it must not leave that one behind."""
    charts.render(SPEC)  # this process's engine runs: a fork's first chart goes elsewhere

    def run(killed: Callable[[int], None]) -> None:
        charts.render(SPEC)
        assert charts._spawned is not None
        killed(next(iter(charts._spawned._processes)))

    ends_by_itself(helper_of_a_killed_run(run))


def pid_of(item: int) -> tuple[int, int]:
    return item, os.getpid()


def test_the_processes_share_the_officers_each_written_once_and_in_order() -> None:
    """The workers take officers from the front, this process from the back whatever no
    worker has started: every officer is written exactly once, the results come back in the
    officers' order, and the work is shared (the first officer always goes to a worker)."""
    with _mapper(2) as shared_map:
        results = list(shared_map(pid_of, range(40)))
    assert [item for item, _ in results] == list(range(40))
    by = [pid for _, pid in results]
    assert by[0] != os.getpid() and os.getpid() in by


def dies_in_a_worker(item: tuple[int, int]) -> tuple[int, int]:
    """Item 0 kills the worker process that takes it (the OOM killer), wherever else it runs
    it is written."""
    parent, i = item
    if i == 0 and os.getpid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return pid_of(i)


def test_a_worker_that_dies_leaves_its_officers_to_this_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker killed mid-run must neither hang the run nor lose an officer: this process
    writes what the dead worker held and what was left, and the run says so in one line."""
    with _mapper(2) as shared_map:
        results = list(shared_map(dies_in_a_worker, [(os.getpid(), i) for i in range(40)]))
    assert [item for item, _ in results] == list(range(40))
    assert results[0][1] == os.getpid()  # the dead worker's officer, written here
    (line,) = [r.getMessage() for r in caplog.records if "worker process died" in r.getMessage()]
    assert "this process wrote its officers" in line
