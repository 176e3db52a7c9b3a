"""Fixtures of the flow tests."""

import os
from collections.abc import Iterator
from datetime import date

import pytest

from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from tests.smtp import smtp  # noqa: F401  (a fixture: a real SMTP server on loopback)


@pytest.fixture(scope="module")
def kobo_env() -> Iterator[None]:
    """A small district (2 villages) on the Kobo simulator, named by the nightly's env vars."""
    store = KoboStore()
    today = date(2026, 11, 24)
    seed_from_cohort(store, generate_cohort(CohortSpec(seed=21, villages=2, today=today)))
    token = "e" * 40
    with serve_kobo(store, token) as url:
        os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"] = url, token
        yield
        del os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"]
