"""Prefect's no-server mode from the command line: time enough to start on a busy machine, and
one line (not a traceback) when it still cannot start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sammachip.flows.runtime import STARTUP_TIMEOUT, STARTUP_TIMEOUT_VAR

pytestmark = pytest.mark.slow  # the `sammachip` command started as a process, Prefect included

REPO = Path(__file__).resolve().parents[2]

READ_TIMEOUT = (
    "import sammachip.flows.cli; from prefect.settings import get_current_settings; "
    "print(get_current_settings().server.ephemeral.startup_timeout_seconds)"
)


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PREFECT_API_URL", STARTUP_TIMEOUT_VAR}}
    return env | extra


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_command_gives_prefect_time_to_start_on_a_busy_machine() -> None:
    assert STARTUP_TIMEOUT >= 120 > 20  # Prefect's own default, 20 s, fails under load
    assert _python(READ_TIMEOUT, _cli_env()) == str(STARTUP_TIMEOUT)


def test_the_start_up_wait_is_the_users_to_set() -> None:
    assert _python(READ_TIMEOUT, _cli_env(**{STARTUP_TIMEOUT_VAR: "300"})) == "300"


@pytest.mark.parametrize("command", ["nightly", "reconcile"])
def test_prefect_that_cannot_start_is_one_line_and_a_failure(command: str, tmp_path: Path) -> None:
    # A wait of 0 s makes Prefect give up exactly as it does when a loaded machine is too slow.
    env = _cli_env(
        **{
            STARTUP_TIMEOUT_VAR: "0",
            "SAMMACHIP_KOBO_URL": "http://127.0.0.1:9",
            "SAMMACHIP_KOBO_TOKEN": "t" * 40,
            "COLUMNS": "400",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "sammachip.flows.cli", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    [message] = [line for line in done.stderr.splitlines() if line.strip()]  # no traceback
    assert "Prefect could not start its local API within 0 s" in message
    assert f"{STARTUP_TIMEOUT_VAR}=300" in message and "PREFECT_API_URL" in message
    assert not (tmp_path / "data").exists()  # nothing run, nothing written
