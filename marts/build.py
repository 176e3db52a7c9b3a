"""Marts officers act on, derived from the clean tables with DuckDB (rebuildable at any time).

One SQL file per mart in `marts/sql/`, built in this order (later ones read earlier ones):
- `household_outcomes`: per household, training, materials, baseline and follow-up income;
- `attendance_monthly`: attendance per village and month (charts);
- `alerts`: one row per (rule, subject) that needs an officer, with Thai and English reasons,
  a priority, a due date, the owning officer, and its lifecycle (first/last seen, open /
  snoozed / resolved — by the data, or by a follow-up visit, `closed_by_visit`);
- `worklist`: each officer's day, one entry per subject with its open alerts under it, ranked
  into "today" (at most `[worklist] per_day`) and "later", with where to go and whom to call;
- `otop_readiness`: one row per occupational group with its OTOP checklist, score and next step;
- `kpis`: the department's KPIs for the district, each officer's area and each tambon;
- `kpis_by_method`: attendance and outcomes per teaching method (lecture, Q&A, demonstration,
  video), for the district and each officer's area;
- `followup_outcomes`: what the follow-up visits achieved — alerts closed by a visit or by the
  data, days to close, and follow-up coverage of the worklist — per district and officer, all
  rules and per rule.
Rows of submissions a reviewer did not approve (or that are deleted) never reach a mart.
Their columns are table definitions like any other (`schemas.tables.MART_SCHEMAS`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sammachip.marts.labels import READINESS_TH
from sammachip.marts.rules import (
    KPI_SOURCE_EN,
    KPI_SOURCE_TH,
    RULES,
    AlertRules,
    Officer,
    SeasonWindow,
)
from sammachip.marts.snoozes import load_snoozes
from sammachip.schemas.admin_codes import tambon_label, village_label
from sammachip.schemas.registry import (
    ACTIVITY_TH,
    CHANNEL_TH,
    FORMS,
    METHOD_TH,
    OCCUPATION_TH,
    OTOP_STATUS_TH,
    OTOP_TYPE_TH,
    PROBLEM_TH,
)
from sammachip.schemas.tables import ALERTS_SCHEMA, CLEAN_TABLES, MART_SCHEMAS, QUARANTINE
from sammachip.warehouse import scan

SQL_DIR = Path(__file__).parent / "sql"
_S, _I = pa.string(), pa.int64()

# What `household_outcomes` reads about a household, each by its `hh_code` (sessions only
# through the attendance rows): the tables its rows can be recomputed from, a few households
# at a time.
HOUSEHOLD_INPUTS = ("households", "attendance", "materials", "income_surveys")


def build_marts(
    tables: Mapping[str, pa.Table | ds.Dataset],
    previous: Mapping[str, pa.Table],
    today: date,
    rules: AlertRules | None = None,
    households: pa.Array | None = None,
) -> dict[str, pa.Table]:
    """Every mart as of `today`; `previous` holds the last marts (`alerts` for the lifecycle).
    Missing tables count as empty.

    With `households` (hh codes), `household_outcomes` is recomputed for those households only
    and the other rows are kept from `previous["household_outcomes"]`: the caller vouches that
    no other household's rows or dates changed since (`marts.incremental`)."""
    rules = rules or AlertRules()
    con = _connect(tables, rules)
    con.register("previous_alerts", _one_per_alert(conform(previous.get("alerts"), ALERTS_SCHEMA)))
    con.register("snoozes", load_snoozes(rules.snooze_file).table)
    params = _params(rules, today)
    marts: dict[str, pa.Table] = {}
    for name, schema in MART_SCHEMAS.items():
        sql = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
        used = {k: params[k] for k in dict.fromkeys(re.findall(r"\$(\w+)", sql))}
        if name == "household_outcomes" and households is not None:
            kept = conform(previous.get(name), schema)
            result = _outcomes_of(con, sql, used, households, kept)
        else:
            result = _run(con, sql, used)
        marts[name] = result.select(schema.names).cast(schema)
        con.register(name, marts[name])
    return marts


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pa.Table:
    """The rows of a mart's SQL. Not `con.sql()`: its relation finds the parameters with a
    tokenizer that maps every character of a text that is not ASCII (the SQL's Thai) in
    Python, then binds the statement once more before running it — ~0.1 s of CPU per build
    at any size. `execute` plans once in the engine; the Arrow copy of its result that
    DuckDB warns about costs less than that."""
    con.execute(sql, params)
    with warnings.catch_warnings():  # that copy is the choice made here
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        return con.to_arrow_table()


def _outcomes_of(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any],
    households: pa.Array,
    kept: pa.Table,
) -> pa.Table:
    """`household_outcomes` with the rows of `households` computed afresh by the mart's own
    SQL — run over views of its inputs narrowed to them — and every other row from `kept`."""
    con.register("affected", pa.table({"hh_code": households.cast(pa.string())}))
    con.execute("CREATE SCHEMA IF NOT EXISTS scoped")
    for table in HOUSEHOLD_INPUTS:
        con.execute(f"""CREATE OR REPLACE VIEW scoped.{table} AS
            SELECT * FROM main.{table} SEMI JOIN affected USING (hh_code)""")
    con.execute("SET search_path = 'scoped,main'")
    try:
        fresh = _run(con, sql, params)
    finally:
        con.execute("SET search_path = 'main'")
    con.register("fresh_outcomes", fresh)
    con.register("kept_outcomes", kept)
    return con.sql("""SELECT * FROM kept_outcomes ANTI JOIN affected USING (hh_code)
                      UNION ALL BY NAME SELECT * FROM fresh_outcomes
                      ORDER BY hh_code""").to_arrow_table()


def _one_per_alert(alerts: pa.Table) -> pa.Table:
    """Yesterday's alerts, one row per alert id. A mart this code built already is (checked
    here, cheaply); one built before the R09 tie fix may repeat an id, and the lifecycle's
    joins would then repeat it again — so only then the latest row of each is kept."""
    if pc.count_distinct(alerts["alert_id"]).as_py() == alerts.num_rows:
        return alerts
    con = duckdb.connect()
    con.register("alerts", alerts)
    return con.sql("""SELECT * FROM alerts QUALIFY row_number() OVER (
        PARTITION BY alert_id ORDER BY last_seen DESC NULLS LAST, status) = 1""").to_arrow_table()


def conform(data: pa.Table | None, schema: pa.Schema) -> pa.Table:
    """`data` with exactly `schema`'s columns: a mart written by an older version lacks the
    newer columns, which read as empty."""
    if data is None or data.num_rows == 0:
        return schema.empty_table()
    columns = [
        data[f.name].cast(f.type) if f.name in data.schema.names else pa.nulls(len(data), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


# ---- the DuckDB session the SQL files run in ------------------------------------------------


def _params(rules: AlertRules, today: date) -> dict[str, Any]:
    return {
        "today": today,
        "min_attendance": rules.min_attendance,
        "materials_days": rules.materials_within_days,
        "followup_days": rules.followup_within_days,
        "act_days": rules.act_within_days,
        "upcoming_days": rules.upcoming_within_days,
        "lead_days": rules.contact_lead_days,
        "season_recent_days": rules.season_recent_days,
        "min_income_change": rules.min_income_change,
        "group_days": rules.group_within_days,
        "study_visit_days": rules.study_visit_within_days,
        "keep_resolved_days": rules.keep_resolved_days,
        "reopen_days": rules.reopen_after_days,
        "district_id": rules.district_officer.officer_id,
        "district_name": rules.district_officer.name,
        "min_members": rules.otop.min_members,
        "min_months": rules.otop.min_months_recorded,
        "nearly_missing": rules.otop.nearly_ready_missing,
        "target_practising": rules.kpi.practising_share,
        "target_income": rules.kpi.income_change,
        "target_groups": rules.kpi.group_village_share,
        "kpi_source_th": KPI_SOURCE_TH,
        "kpi_source_en": KPI_SOURCE_EN,
        "per_day": rules.worklist.per_day,
    }


def _connect(
    tables: Mapping[str, pa.Table | ds.Dataset], rules: AlertRules
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Bangkok'")  # submission dates as officers saw them
    specs = {**{n: s.schema for n, s in CLEAN_TABLES.items()}, "quarantine": QUARANTINE.schema}
    for name, schema in specs.items():  # a missing table or column reads as empty
        data = tables.get(name)
        scan.register(
            con, f"{name}_all", data if isinstance(data, ds.Dataset) else conform(data, schema)
        )
    # Marts see only live, not-rejected submissions: review status is a column, never a delete.
    for name, spec in CLEAN_TABLES.items():
        if spec.parent is None:
            con.execute(f"""CREATE VIEW {name} AS SELECT * FROM {name}_all
                WHERE deleted_at IS NULL
                  AND coalesce(review_status, '') NOT IN ('not_approved', 'rejected')""")
        else:
            con.execute(f"""CREATE VIEW {name} AS SELECT c.* FROM {name}_all c
                SEMI JOIN {spec.parent} p ON p.submission_key = c.submission_key""")
    con.register("roster", _roster_table(rules))
    con.register("season_windows", _season_table(rules))
    con.register("rule_labels", pa.Table.from_pylist([r._asdict() for r in RULES]))
    con.register("forms", _forms_table())
    _label_functions(con)
    return con


def _forms_table() -> pa.Table:
    """Each form's Thai and English title and what its submissions are about (the subject a
    data fix is filed under)."""
    subjects = {
        "hh_code": "household",
        "sage_code": "sage",
        "session_code": "session",
        "group_code": "group",
    }
    rows = [
        {
            "form_id": f.form_id,
            "subject_key": f.subject_key,
            "subject_type": subjects.get(f.subject_key),
            "title_th": f.title_th,
            "title_en": f.title_en,
        }
        for f in FORMS.values()
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema([(k, _S) for k in rows[0]]))


def _roster_table(rules: AlertRules) -> pa.Table:
    owner: dict[str, Officer] = {}
    for officer in rules.roster:
        for tambon in officer.tambons:
            owner.setdefault(tambon, officer)  # a tambon listed twice: the first officer owns it
    rows = [
        {"tambon_code": t, "officer_id": o.officer_id, "officer_name": o.name}
        for t, o in owner.items()
    ]
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("tambon_code", _S), ("officer_id", _S), ("officer_name", _S)])
    )


def _season_rows(province: str, windows: tuple[SeasonWindow, ...]) -> list[dict[str, Any]]:
    return [
        {
            "province_code": province,
            "season": w.season,
            "name_th": w.name_th,
            "name_en": w.name_en,
            "start_md": w.start[0] * 100 + w.start[1],
            "end_md": w.end[0] * 100 + w.end[1],
        }
        for w in windows
    ]


def _season_table(rules: AlertRules) -> pa.Table:
    """'*' rows: the default calendar; other rows: provinces with a calendar of their own."""
    rows = _season_rows("*", rules.seasons)
    for province, windows in rules.province_seasons:
        rows += _season_rows(province, windows)
    schema = pa.schema(
        [
            ("province_code", _S),
            ("season", _S),
            ("name_th", _S),
            ("name_en", _S),
            ("start_md", _I),
            ("end_md", _I),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _case_macro(name: str, mapping: Mapping[str, str], fallback: str) -> str:
    def q(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    whens = " ".join(f"WHEN {q(k)} THEN {q(v)}" for k, v in mapping.items())
    return f"CREATE MACRO {name}(x) AS CASE x {whens} ELSE {fallback} END"


def _label_functions(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE MACRO be_date(d) AS strftime(d, '%d/%m/') || CAST(year(d) + 543 AS VARCHAR)"
    )
    # 12/3 → [12, 3]: house numbers sort as numbers, then by their sub-number
    con.execute(
        "CREATE MACRO house_number(h) AS "
        "[TRY_CAST(x AS INTEGER) FOR x IN regexp_extract_all(h, '[0-9]+')]"
    )
    con.execute(_case_macro("activity_th", ACTIVITY_TH, "'กิจกรรม'"))
    con.execute(_case_macro("occupation_th", OCCUPATION_TH, "x"))
    con.execute(_case_macro("method_th", METHOD_TH, "x"))
    con.execute(_case_macro("channel_th", CHANNEL_TH, "x"))
    con.execute(_case_macro("problem_th", PROBLEM_TH, "x"))
    con.execute(_case_macro("otop_type_th", OTOP_TYPE_TH, "x"))
    con.execute(_case_macro("otop_status_th", OTOP_STATUS_TH, "x"))
    con.execute(_case_macro("readiness_th", READINESS_TH, "x"))
    udfs: dict[str, Callable[[str | None], str | None]] = {
        "village_th": village_label,
        "tambon_th": tambon_label,
    }
    varchar = duckdb.sqltype("VARCHAR")
    for name, fn in udfs.items():
        con.create_function(
            name, _per_distinct(fn), [varchar], varchar, type="arrow", null_handling="special"
        )


def _per_distinct(label: Callable[[str | None], str | None]) -> Callable[[pa.Array], pa.Array]:
    """`label` as a vectorised function: one Python call per distinct code of a column,
    not one per row."""

    def apply(codes: pa.Array) -> pa.Array:
        distinct = pc.unique(codes)
        labelled = pa.array([label(c) for c in distinct.to_pylist()], type=pa.string())
        return pc.take(labelled, pc.index_in(codes, value_set=distinct))

    return apply
