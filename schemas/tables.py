"""Table definitions: names, columns and Arrow types of every table the forms feed, of the
system tables, and of the marts built from them.

The warehouse stores exactly these columns; the flatteners in `schemas.flatten` produce the
clean ones, the SQL in `marts/sql/` the marts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

UTC_TS = pa.timestamp("us", tz="UTC")

# Lineage columns carried by every row of a parent (one row per submission) table.
SUBMISSION_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("submission_key", pa.string()),
    ("source", pa.string()),
    ("server", pa.string()),
    ("form_uid", pa.string()),
    ("submission_id", pa.string()),
    ("instance_id", pa.string()),
    ("form_version", pa.string()),
    ("submitted_at", UTC_TS),
    ("device_end", UTC_TS),
    ("review_status", pa.string()),
    ("valid_from", UTC_TS),  # ingest time of the version this row was built from
    ("deleted_at", UTC_TS),
    ("ingest_batch", pa.string()),
    ("dq_flags", pa.list_(pa.string())),  # warnings that did not stop the row
]

# Child (repeat-group) rows point at their parent submission and keep their position.
CHILD_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("submission_key", pa.string()),
    ("row_index", pa.int32()),
]


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, pa.DataType], ...]
    parent: str | None = None  # set for repeat-group tables

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(list(self.columns))

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


def _parent(name: str, *domain: tuple[str, pa.DataType]) -> TableSpec:
    return TableSpec(name, (*SUBMISSION_COLUMNS, *domain))


def _child(name: str, parent: str, *domain: tuple[str, pa.DataType]) -> TableSpec:
    return TableSpec(name, (*CHILD_COLUMNS, *domain), parent=parent)


_S, _I, _F, _D, _B = pa.string(), pa.int64(), pa.float64(), pa.date32(), pa.bool_()
_AREA = (("village_code", _S), ("tambon_code", _S), ("amphoe_code", _S))

CLEAN_TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in [
        _parent(
            "households",
            ("hh_code", _S),
            *_AREA,
            ("house_no", _S),
            ("village_name", _S),
            ("head_name", _S),
            ("national_id", _S),
            ("phone", _S),
            ("members", _I),
            ("occupation", _S),
            ("baseline_income", _I),
            ("lat", _F),
            ("lon", _F),
        ),
        _parent(
            "sages",
            ("sage_code", _S),
            *_AREA,
            ("name", _S),
            ("national_id", _S),
            ("phone", _S),
            ("expertise", _S),
            ("years_experience", _I),
            ("trained_trainer", _B),
            ("trainer_course_date", _D),
        ),
        _parent(
            "sessions",
            ("session_code", _S),
            *_AREA,
            ("sage_code", _S),
            ("occupation", _S),
            ("activity_type", _S),
            ("methods", pa.list_(_S)),
            ("planned_date", _D),
            ("held_date", _D),
        ),
        _child("attendance", "sessions", ("session_code", _S), ("hh_code", _S), ("present", _B)),
        _parent(
            "materials",
            ("hh_code", _S),
            *_AREA,
            ("handout_date", _D),
            ("n_items", _I),
            ("total_value_thb", _F),
        ),
        _child(
            "material_items",
            "materials",
            ("hh_code", _S),
            ("item", _S),
            ("quantity", _F),
            ("unit", _S),
            ("value_thb", _F),
        ),
        _parent(
            "income_surveys",
            ("hh_code", _S),
            *_AREA,
            ("round", _S),
            ("survey_date", _D),
            ("practising", _B),
            ("occ_income", _I),
            ("hh_income", _I),
            ("costs", _I),
            ("problem", _S),  # follow-up: the problem found
            ("action_agreed", _S),  # … and what was agreed to do about it
        ),
        _parent(
            "groups",
            ("group_code", _S),
            *_AREA,
            ("group_name", _S),
            ("formed_date", _D),
            ("n_members", _I),
            ("product_name", _S),
            ("product_type", _S),
            ("standards", pa.list_(_S)),
            ("packaging", _B),
            ("label", _B),
            ("local_materials", _B),
            ("monthly_sales", _I),
            ("months_recorded", _I),
            ("otop_status", _S),
            ("market_channel", _S),  # main sales channel
            ("buyer", _S),  # main buyer or market, as written
            ("sale_unit", _S),
            ("price_per_unit", _F),  # THB
            ("cost_per_unit", _F),  # THB
        ),
        _child("group_members", "groups", ("group_code", _S), ("hh_code", _S), ("role", _S)),
    ]
}


def children_of(table: str) -> list[TableSpec]:
    return [t for t in CLEAN_TABLES.values() if t.parent == table]


# Tables that are not fed by one form: every payload as received, rows held back by validation,
# and the record of each validation run.
RAW_SUBMISSIONS = TableSpec(
    "raw_submissions",
    (
        ("submission_key", _S),
        ("source", _S),
        ("server", _S),
        ("form_uid", _S),
        ("form_id", _S),
        ("submission_id", _S),
        ("instance_id", _S),
        ("root_uuid", _S),
        ("form_version", _S),
        ("submitted_at", UTC_TS),
        ("review_status", _S),
        ("deleted", _B),
        ("payload", _S),
        ("payload_hash", _S),
        ("ingest_batch", _S),
        ("ingested_at", UTC_TS),
    ),
)

QUARANTINE = TableSpec(
    "quarantine",
    (
        ("submission_key", _S),
        ("form_id", _S),
        ("table_name", _S),
        ("submission_id", _S),
        ("instance_id", _S),
        ("village_code", _S),
        ("tambon_code", _S),
        ("business_key", _S),  # the code the submission is about (hh_code, sage_code …)
        ("subject_name", _S),  # whom it names, as written: the enumerator's fix says who
        ("subject_house_no", _S),  # … and where to find them (a registration held back here
        ("subject_phone", _S),  # never reaches the clean tables)
        ("expectation", _S),
        ("column_name", _S),
        ("value", _S),
        ("reason_th", _S),
        ("reason_en", _S),
        ("submitted_at", UTC_TS),
        ("quarantined_at", UTC_TS),
        ("ingest_batch", _S),
    ),
)

VALIDATION_RUNS = TableSpec(
    "validation_runs",
    (
        ("ingest_batch", _S),
        ("run_at", UTC_TS),
        ("form_id", _S),
        ("table_name", _S),
        ("suite", _S),
        ("rows_in", _I),
        ("rows_passed", _I),
        ("rows_quarantined", _I),
        ("rows_flagged", _I),
        ("expectation_counts", _S),  # JSON: expectation:column → unexpected rows
    ),
)

# Answers a form's current definition does not know (a newer or older form version on a phone):
# never a failure, always recorded.
SCHEMA_DRIFT = TableSpec(
    "schema_drift",
    (
        ("ingest_batch", _S),
        ("seen_at", UTC_TS),
        ("form_id", _S),
        ("form_version", _S),
        ("answer_key", _S),
        ("submissions", _I),
    ),
)

# Media files attached to submissions (photos of products, sign-in sheets): metadata only;
# the files themselves are downloaded on request into the attachments folder.
ATTACHMENTS = TableSpec(
    "attachments",
    (
        ("submission_key", _S),
        ("form_id", _S),
        ("attachment_uid", _S),
        ("question_xpath", _S),
        ("basename", _S),
        ("mimetype", _S),
        ("download_url", _S),
        ("is_deleted", _B),
    ),
)

SYSTEM_TABLES: dict[str, TableSpec] = {
    t.name: t for t in (RAW_SUBMISSIONS, QUARANTINE, VALIDATION_RUNS, SCHEMA_DRIFT, ATTACHMENTS)
}


# The marts' output tables: what `marts/` builds from the clean tables, and what the warehouse
# stores and officers' files read.
HOUSEHOLD_OUTCOMES_SCHEMA = pa.schema(
    [
        ("hh_code", _S),
        ("village_code", _S),
        ("tambon_code", _S),
        ("head_name", _S),
        ("phone", _S),
        ("occupation", _S),
        ("sessions_invited", _I),
        ("sessions_attended", _I),
        ("absent_last_two", _B),
        ("first_trained", _D),
        ("trained", _B),
        ("first_handout", _D),
        ("baseline_income", _I),
        ("followup_date", _D),
        ("followup_income", _I),
        ("practising", _B),
        ("income_change", _F),
        ("followup_problem", _S),  # the problem the latest follow-up found (step 10)
        ("followup_action", _S),  # … and the action agreed
        ("house_no", _S),  # where the household lives, as registered
        ("village_name", _S),
        ("lat", _F),
        ("lon", _F),
    ]
)

ATTENDANCE_MONTHLY_SCHEMA = pa.schema(
    [
        ("village_code", _S),
        ("tambon_code", _S),
        ("month", _D),
        ("sessions", _I),
        ("invited", _I),
        ("present", _I),
        ("attendance_rate", _F),
    ]
)

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
        ("status", _S),  # open | snoozed | resolved
        ("resolved_on", _D),
        ("snoozed_until", _D),
        ("snooze_note", _S),
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
        ("product_type_th", _S),
        ("n_members", _I),
        ("members_ok", _B),
        ("thai_members_ok", _B),
        ("community_link_ok", _B),
        ("product_type_ok", _B),
        ("standard_ok", _B),
        ("packaging_label_ok", _B),
        ("steady_records_ok", _B),
        ("score", _I),
        ("max_score", _I),
        ("status", _S),  # ready | nearly_ready | not_ready
        ("status_th", _S),
        ("missing_th", _S),
        ("missing_en", _S),
        ("next_step_th", _S),
        ("next_step_en", _S),
        ("otop_status", _S),
        ("otop_status_th", _S),
        ("action_order", _I),
        ("market_channel", _S),
        ("market_channel_th", _S),
        ("buyer", _S),
        ("sale_unit", _S),
        ("price_per_unit", _F),
        ("cost_per_unit", _F),
        ("margin_per_unit", _F),  # price − cost, null when either is unknown
        ("market_th", _S),  # the market link in one Thai line
    ]
)

KPIS_SCHEMA = pa.schema(
    [
        ("scope", _S),  # district | officer | tambon
        ("scope_code", _S),
        ("scope_name", _S),
        ("kpi_id", _S),
        ("kpi_th", _S),
        ("kpi_en", _S),
        ("value", _F),
        ("target", _F),
        ("met", _B),
        ("n", _I),
        ("numerator", _I),  # value = numerator / denominator
        ("denominator", _I),
        ("detail_th", _S),
        ("detail_en", _S),
        ("as_of", _D),
        ("source_th", _S),  # where the target comes from (null: no target)
        ("source_en", _S),
    ]
)

_REASON = pa.struct(
    [
        ("alert_id", _S),
        ("rule_id", _S),
        ("rule_th", _S),
        ("rule_en", _S),
        ("priority", pa.int32()),
        ("due_date", _D),
        ("detail_th", _S),
        ("detail_en", _S),
        ("first_seen", _D),
    ]
)
_CALL = pa.struct(
    [
        ("hh_code", _S),
        ("head_name", _S),
        ("phone", _S),
        ("house_no", _S),
        ("village_name", _S),
        ("moo", pa.int32()),
        ("alert_id", _S),  # the household's own contact alert (what a snooze names)
    ]
)

# One row per (officer, subject): the officer's day, built from the open alerts (the contract
# with reports/: docs in the mart's SQL, `marts/sql/worklist.sql`).
WORKLIST_SCHEMA = pa.schema(
    [
        ("officer_id", _S),
        ("officer_name", _S),
        ("item_id", _S),  # <subject_type>:<subject_id>, stable for the same subject
        ("subject_type", _S),  # household | group | sage | session | village | submission
        ("subject_id", _S),
        ("title_th", _S),
        ("title_en", _S),
        ("village_code", _S),
        ("village_name", _S),
        ("moo", pa.int32()),
        ("tambon_code", _S),
        ("tambon_name", _S),
        ("house_no", _S),
        ("phone", _S),
        ("lat", _F),
        ("lon", _F),
        ("geo_uri", _S),
        ("priority", pa.int32()),
        ("due_date", _D),
        ("overdue_days", pa.int32()),
        ("bucket", _S),  # today | later
        ("visit_order", pa.int32()),
        ("reasons", pa.list_(_REASON)),
        ("call_list", pa.list_(_CALL)),
        ("first_seen", _D),
    ]
)

# Attendance and outcomes per teaching method, for the district and each officer's area.
KPIS_BY_METHOD_SCHEMA = pa.schema(
    [
        ("scope", _S),  # district | officer
        ("scope_code", _S),
        ("scope_name", _S),
        ("method", _S),  # lecture | qa | demonstration | video
        ("method_th", _S),
        ("sessions", _I),  # held sessions that used it
        ("invited", _I),
        ("present", _I),
        ("attendance_rate", _F),  # present / invited
        ("trained", _I),  # households present at a held training that used it
        ("followed", _I),  # … with a follow-up survey
        ("practising", _I),
        ("practising_rate", _F),  # practising / trained
        ("n_income", _I),  # … with a baseline and a follow-up income
        ("income_change_numerator", _I),  # Σ follow-up − Σ baseline
        ("income_change_denominator", _I),  # Σ baseline
        ("income_change", _F),
        ("as_of", _D),
    ]
)

# In build order (`marts.build_marts` runs them so): a mart may read any mart listed before it.
MART_SCHEMAS: dict[str, pa.Schema] = {
    "household_outcomes": HOUSEHOLD_OUTCOMES_SCHEMA,
    "attendance_monthly": ATTENDANCE_MONTHLY_SCHEMA,
    "alerts": ALERTS_SCHEMA,
    "worklist": WORKLIST_SCHEMA,
    "otop_readiness": OTOP_SCHEMA,
    "kpis": KPIS_SCHEMA,
    "kpis_by_method": KPIS_BY_METHOD_SCHEMA,
}
