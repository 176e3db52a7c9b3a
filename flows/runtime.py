"""Prefect's runtime settings for the `sammachip` command, and what to say when it cannot start.

Prefect reads its settings when it is imported, so `apply_prefect_defaults` runs before
anything imports it. Each default gives way to a value the user set in the environment.

Without PREFECT_API_URL, a flow call starts Prefect's API as a subprocess ("ephemeral" mode)
and gives up after PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS — 20 s by default, which a
busy 2-core office PC does not meet (migrations and imports alone take ~15 s when idle).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager

STARTUP_TIMEOUT_VAR = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
STARTUP_TIMEOUT = 120  # seconds: what a loaded 2-core machine needs, with room to spare

# Quiet, local Prefect unless the user configured otherwise: no telemetry, no API log shipping.
PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "GX_ANALYTICS_ENABLED": "false",
    STARTUP_TIMEOUT_VAR: str(STARTUP_TIMEOUT),
}

# Prefect's own words when its ephemeral API did not answer in time (prefect/server/api/server.py).
_EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"


def apply_prefect_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set every default the environment does not already set; call before importing Prefect."""
    for key, value in PREFECT_DEFAULTS.items():
        environ.setdefault(key, value)


def startup_failure(err: BaseException) -> str | None:
    """One line saying what happened and what to do, if `err` is Prefect failing to start its
    local API; None for any other error."""
    text = str(err)
    if not isinstance(err, RuntimeError) or _EPHEMERAL_TIMEOUT not in text:
        return None
    waited = os.environ.get(STARTUP_TIMEOUT_VAR, "20")
    exited = " (its process exited)" if "process exited with code" in text else ""
    return (
        f"Prefect could not start its local API within {waited} s{exited}, so nothing was run "
        f"or written. On a busy machine, wait for it longer: {STARTUP_TIMEOUT_VAR}=300; "
        "or run `prefect server start` once and set PREFECT_API_URL=http://127.0.0.1:4200/api"
    )


@contextmanager
def prefect_start_errors(fail: Callable[[str], object]) -> Iterator[None]:
    """Turn Prefect's start-up failure (a 60-line traceback) into `fail(one line)`."""
    try:
        yield
    except RuntimeError as err:
        message = startup_failure(err)
        if message is None:
            raise
        fail(message)  # exits
        raise


_heap_settled = False


def settle_heap() -> None:
    """Take what the imports left on the heap (Prefect, GX, pandas: a million objects) out of
    the garbage collector's scans, once per process: each collection of a run walked all of
    it (~27 % of a district fetch's time). Once, because a frozen object is never collected:
    freezing again later would keep a finished run's garbage for the process's life."""
    global _heap_settled
    if not _heap_settled:
        gc.freeze()
        _heap_settled = True
