"""The processes that write officers' files never outlive the run that started them."""

from __future__ import annotations

import os
import signal

import psutil

from warehouse.deliverables import _mapper


def test_report_workers_exit_when_their_run_is_killed() -> None:
    """A run killed while it writes officers' files (its runner stopped it, the OOM killer)
    must not leave its worker processes waiting for work forever."""
    read, write = os.pipe()
    run = os.fork()
    if run == 0:  # the run: starts its report worker, then dies without any clean-up
        try:
            os.close(read)
            with _mapper(2) as shared_map:  # /proc/self names the process that reads it
                pids = set(shared_map(os.readlink, ["/proc/self"] * 4)) - {str(os.getpid())}
                os.write(write, pids.pop().encode())
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    os.close(write)
    with os.fdopen(read) as pipe:
        worker = psutil.Process(int(pipe.read()))
    os.waitpid(run, 0)
    worker.wait(timeout=30)  # psutil.TimeoutExpired: the worker outlived its run


def test_a_forked_runs_chart_process_exits_with_it() -> None:
    """A run forked from a process that already drew charts draws its own through a spawned
    process (a forked chart engine would hang): killed, it must not leave that one behind."""
    from warehouse import charts

    spec = {"mark": "bar", "data": {"values": [{"x": 1}]}, "encoding": {"x": {"field": "x"}}}
    charts.render(spec)  # this process's engine runs: a fork's first chart goes elsewhere
    read, write = os.pipe()
    run = os.fork()
    if run == 0:
        try:
            os.close(read)
            charts.render(spec)
            pool = charts._spawned
            assert pool is not None
            os.write(write, str(next(iter(pool._processes))).encode())
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    os.close(write)
    with os.fdopen(read) as pipe:
        drawer = psutil.Process(int(pipe.read()))
    os.waitpid(run, 0)
    drawer.wait(timeout=30)  # psutil.TimeoutExpired: the chart process outlived its run
