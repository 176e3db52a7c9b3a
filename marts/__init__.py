"""The marts officers act on (alerts, OTOP readiness, KPIs, outcomes), built from the clean
tables with DuckDB SQL; the alert rules and the officers' snoozes that shape them.

The builders load on first use: the officer-file workers import the rules and the readiness
labels from this package, and loading DuckDB, pandas and Arrow's datasets with them cost each worker
~70 MB it never uses."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sammachip.marts.labels import READINESS_TH
from sammachip.schemas.tables import MART_SCHEMAS

if TYPE_CHECKING:
    from sammachip.marts.build import build_marts
    from sammachip.marts.incremental import Refresh, refresh_marts

__all__ = ["MART_SCHEMAS", "READINESS_TH", "Refresh", "build_marts", "refresh_marts"]

_LAZY = {
    "build_marts": "sammachip.marts.build",
    "Refresh": "sammachip.marts.incremental",
    "refresh_marts": "sammachip.marts.incremental",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
