"""Marts officers act on, derived from the clean tables with DuckDB (rebuildable at any time).

- `alerts`: one row per (rule, subject) that needs an officer, with Thai and English reasons,
  a priority, a due date, the officer who owns the area, and when it was first seen.
- `otop_readiness`: one row per occupational group with its OTOP checklist and score.
Rows of submissions a reviewer did not approve (or that are deleted) never reach a mart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

SQL_DIR = Path(__file__).parent / "sql"
_S, _I, _D = pa.string(), pa.int64(), pa.date32()

ALERTS_SCHEMA = pa.schema(
    [
        ("alert_id", _S),
        ("rule_id", _S),
        ("rule_th", _S),
        ("rule_en", _S),
        ("priority", _I),
        ("subject_type", _S),
        ("subject_id", _S),
        ("subject_name", _S),
        ("phone", _S),
        ("village_code", _S),
        ("tambon_code", _S),
        ("officer_id", _S),
        ("officer_name", _S),
        ("reason_th", _S),
        ("reason_en", _S),
        ("due_date", _D),
        ("first_seen", _D),
        ("last_seen", _D),
        ("status", _S),
    ]
)

OTOP_SCHEMA = pa.schema(
    [
        ("group_code", _S),
        ("group_name", _S),
        ("village_code", _S),
        ("tambon_code", _S),
        ("officer_id", _S),
        ("officer_name", _S),
        ("product_name", _S),
        ("product_type", _S),
        ("n_members", _I),
        ("members_ok", pa.bool_()),
        ("thai_members_ok", pa.bool_()),
        ("community_link_ok", pa.bool_()),
        ("product_type_ok", pa.bool_()),
        ("standard_ok", pa.bool_()),
        ("packaging_label_ok", pa.bool_()),
        ("steady_records_ok", pa.bool_()),
        ("score", _I),
        ("max_score", _I),
        ("status", _S),
        ("status_th", _S),
        ("missing_th", _S),
        ("missing_en", _S),
        ("otop_status", _S),
    ]
)

MART_SCHEMAS: dict[str, pa.Schema] = {"alerts": ALERTS_SCHEMA, "otop_readiness": OTOP_SCHEMA}


@dataclass(frozen=True)
class Officer:
    officer_id: str
    name: str
    tambons: tuple[str, ...]


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the first-cut rules (config: `[alerts]`)."""

    min_attendance: float = 0.8
    materials_within_days: int = 30  # trained → materials
    followup_within_days: int = 120  # materials → follow-up income survey
    act_within_days: int = 7  # due date = today + this
    roster: tuple[Officer, ...] = field(default_factory=tuple)
    district_officer: Officer = Officer("district", "สำนักงานพัฒนาชุมชนอำเภอ", ())


def _roster_table(rules: AlertRules) -> pa.Table:
    rows = [
        {"tambon_code": t, "officer_id": o.officer_id, "officer_name": o.name}
        for o in rules.roster
        for t in o.tambons
    ]
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("tambon_code", _S), ("officer_id", _S), ("officer_name", _S)])
    )


def _connect(tables: dict[str, pa.Table], rules: AlertRules) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, data in tables.items():
        con.register(f"{name}_all", data)
    con.register("roster", _roster_table(rules))
    # Marts see only live, not-rejected submissions: review status is a column, never a delete.
    for name in tables:
        if "review_status" in tables[name].schema.names:
            con.execute(f"""CREATE VIEW {name} AS SELECT * FROM {name}_all
                WHERE deleted_at IS NULL
                  AND coalesce(review_status, '') NOT IN ('not_approved', 'rejected')""")
    for child, parent in (
        ("attendance", "sessions"),
        ("material_items", "materials"),
        ("group_members", "groups"),
    ):
        if child in tables:
            con.execute(f"""CREATE VIEW {child} AS SELECT c.* FROM {child}_all c
                SEMI JOIN {parent} p ON p.submission_key = c.submission_key""")
    return con


def build_alerts(
    tables: dict[str, pa.Table], previous: pa.Table | None, today: date, rules: AlertRules
) -> pa.Table:
    """Evaluate every rule as of `today`; carry `first_seen` over from yesterday's mart."""
    con = _connect(tables, rules)
    con.register(
        "previous_alerts",
        previous if previous is not None and previous.num_rows else ALERTS_SCHEMA.empty_table(),
    )
    sql = (SQL_DIR / "alerts.sql").read_text(encoding="utf-8")
    params = {
        "today": today,
        "min_attendance": rules.min_attendance,
        "materials_days": rules.materials_within_days,
        "followup_days": rules.followup_within_days,
        "act_days": rules.act_within_days,
        "district_id": rules.district_officer.officer_id,
        "district_name": rules.district_officer.name,
    }
    return con.sql(sql, params=params).to_arrow_table().cast(ALERTS_SCHEMA)


def build_otop_readiness(tables: dict[str, pa.Table], rules: AlertRules) -> pa.Table:
    con = _connect(tables, rules)
    sql = (SQL_DIR / "otop_readiness.sql").read_text(encoding="utf-8")
    params = {
        "district_id": rules.district_officer.officer_id,
        "district_name": rules.district_officer.name,
    }
    return con.sql(sql, params=params).to_arrow_table().cast(OTOP_SCHEMA)
