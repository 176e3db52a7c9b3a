"""The marts officers act on (alerts, OTOP readiness, KPIs, outcomes), built from the clean
tables with DuckDB SQL; the alert rules and the officers' snoozes that shape them."""

from sammachip.marts.build import READINESS_TH, build_marts
from sammachip.marts.incremental import Refresh, refresh_marts
from sammachip.schemas.tables import MART_SCHEMAS

__all__ = ["MART_SCHEMAS", "READINESS_TH", "Refresh", "build_marts", "refresh_marts"]
