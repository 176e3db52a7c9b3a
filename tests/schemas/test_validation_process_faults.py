"""A validation process that dies, stops answering or loses its parent: said clearly, never a
hang, never an orphan. These tests kill processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from sammachip.schemas.validation_process import ProcessRunner, ValidatorGone

pytestmark = pytest.mark.slow


def households(rows: int) -> pd.DataFrame:
    """A frame the households suite reads, big enough that validating it takes a while."""
    return pd.DataFrame(
        {
            "submission_key": [f"kobo:s:a:{i}" for i in range(rows)],
            "_row": range(rows),
            "hh_code": [f"HH{i:06d}" for i in range(rows)],
        }
    )


def test_a_child_killed_mid_batch_fails_that_table_with_its_signal_and_the_next_starts_anew() -> (
    None
):
    with ProcessRunner() as runner:
        runner.tables()  # GX is up
        first = runner.pid
        assert first is not None
        pending = runner.submit("households", households(20_000))
        os.kill(first, signal.SIGKILL)
        with pytest.raises(ValidatorGone) as err:
            pending.result()
        said = str(err.value)
        assert "households" in said and "signal 9" in said and str(first) in said
        assert runner.tables()  # a new child answers the next request
        assert runner.pid != first


def test_a_child_that_stops_answering_is_stopped_at_the_deadline() -> None:
    with ProcessRunner(answer_timeout=3) as runner:
        runner.tables()
        child = runner.pid
        assert child is not None
        os.kill(child, signal.SIGSTOP)  # alive, never answering
        started = time.monotonic()
        with pytest.raises(ValidatorGone, match=r"households.*no answer in 3 s"):
            runner.validate("households", households(10))
        assert time.monotonic() - started < 30
        assert not psutil.pid_exists(child)


PARENT = """
import sys, time
from sammachip.schemas.validation_process import ProcessRunner
runner = ProcessRunner()
print(runner.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_child_ends_when_its_parent_is_killed(how: signal.Signals) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        parent.send_signal(how)
        parent.wait(timeout=30)
        psutil.wait_procs([child], timeout=30)  # GX may still be importing: it ends anyway
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait()
