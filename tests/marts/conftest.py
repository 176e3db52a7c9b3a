"""The tiny district (tests/marts/district.py) as fixtures: fresh tables to change, and its
marts as of today, built once for the tests that only read them."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.marts.district import build, by_id, district_tables


@pytest.fixture
def district() -> dict[str, pa.Table]:
    return district_tables()


@pytest.fixture(scope="module")
def marts_today() -> dict[str, pa.Table]:
    """The district's marts as of today, built once for the tests that only read them."""
    return build(district_tables())


@pytest.fixture(scope="module")
def alerts_today(marts_today: dict[str, pa.Table]) -> dict[str, dict[str, Any]]:
    return by_id(marts_today["alerts"])
