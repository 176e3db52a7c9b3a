"""Shared test set-up: quiet, isolated Prefect; one GX context for the whole session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# Before anything imports Prefect: its home (SQLite DB) lives in a throwaway folder.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="sammachip-prefect-"))
for key, value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def suite_runner():  # type: ignore[no-untyped-def]
    """GX costs ~5 s to import: one context, every suite, for all tests that validate."""
    from schemas.validation import SuiteRunner

    return SuiteRunner()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real, temporary Prefect API for the tests that run flows (~10 s to start, once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
