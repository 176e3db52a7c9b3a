"""Load validated batches into the warehouse: raw versions, clean upserts, quarantine, cursors,
and tombstones for submissions the server no longer has."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from schemas.batch import CrossFormContext, StreamState, ValidatedForm
from schemas.records import Submission
from schemas.registry import FORMS
from schemas.tables import CLEAN_TABLES, RAW_SUBMISSIONS, SYSTEM_TABLES
from warehouse import scan
from warehouse.store import Transaction, Warehouse

ALL_SCHEMAS: dict[str, pa.Schema] = {
    name: spec.schema for name, spec in {**CLEAN_TABLES, **SYSTEM_TABLES}.items()
}


def open_warehouse(root: str) -> Warehouse:
    from warehouse.marts import MART_SCHEMAS

    return Warehouse(root, {**ALL_SCHEMAS, **MART_SCHEMAS})


def raw_partition(source: str, form_id: str, now: datetime) -> str:
    return f"source={source}/form={form_id}/ingest_date={now.date()}"


def _raw_table(subs: Sequence[Submission], batch: str, now: datetime) -> pa.Table:
    rows = [
        {
            "submission_key": s.key, "source": s.source, "server": s.server,
            "form_uid": s.form_uid, "form_id": s.form_id, "submission_id": s.submission_id,
            "instance_id": s.instance_id, "root_uuid": s.root_uuid, "form_version": s.version,
            "submitted_at": s.submitted_at, "review_status": s.review_status,
            "deleted": s.deleted, "payload": orjson.dumps(s.payload).decode(),
            "payload_hash": s.hash, "ingest_batch": batch, "ingested_at": now,
        }
        for s in subs
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=RAW_SUBMISSIONS.schema)


def known_versions(tx: Transaction, form_id: str) -> pa.Table:
    """(submission key, payload hash) of every version of a form the raw layer holds."""
    return tx.read_partitions(
        "raw_submissions", f"/form={form_id}/", columns=["submission_key", "payload_hash"]
    )


def existing_codes(wh: Warehouse | Transaction, form_id: str) -> pa.Table:
    """Programme code → submission key of the clean row that holds it (for duplicate checks),
    as columns `code` and `submission_key`."""
    spec = FORMS[form_id]
    if spec.business_key is None:
        return pa.table({"code": pa.array([], pa.string()),
                         "submission_key": pa.array([], pa.string())})  # fmt: skip
    table = wh.read(spec.table, columns=[spec.business_key, "submission_key", "deleted_at"])
    table = table.filter(pc.is_null(table["deleted_at"]))
    return pa.table({"code": table[spec.business_key], "submission_key": table["submission_key"]})


def cross_form_context(tx: Transaction, form_id: str | None = None) -> CrossFormContext:
    """Registered, trained and baseline facts as this transaction sees them (forms staged
    earlier in the same run included: households load before sessions). With `form_id`, only
    the facts that form's tables check are gathered (they span the whole history); the others
    stay empty and unread."""
    tables = set(CLEAN_TABLES if form_id is None else FORMS[form_id].tables)
    con = duckdb.connect()
    facts: dict[str, Any] = {}
    for fact, (needed_by, reads, sql) in _FACTS.items():
        if tables & needed_by:
            for name in reads:  # scanned where they lie: only the columns the SQL reads
                scan.register(con, name, tx.dataset(name))
            found = con.sql(sql).to_arrow_table()  # Arrow: ~55k households at province scale
            facts[fact] = found if fact == "baseline_dates" else found.column(0).combine_chunks()
    return CrossFormContext(**facts)


# fact → (tables whose checks use it, tables it reads, the query)
_FACTS: dict[str, tuple[set[str], set[str], str]] = {
    "registered": (
        {"attendance", "group_members"},
        {"households"},
        "select distinct hh_code from households where deleted_at is null and hh_code is not null",
    ),
    "trained": (
        {"materials"},
        {"sessions", "attendance"},
        """select distinct a.hh_code from attendance a join sessions s using (submission_key)
           where a.present and s.held_date is not null and s.deleted_at is null""",
    ),
    "baseline_dates": (
        {"income_surveys"},
        {"income_surveys"},
        """select hh_code, min(survey_date) as first from income_surveys
           where round = 'baseline' and deleted_at is null and survey_date is not null
           group by hh_code""",
    ),
}  # fmt: skip


@dataclass
class LoadStats:
    fetched: int = 0  # submissions the server returned (re-reads included)
    new_versions: int = 0  # of those, payload versions the warehouse did not hold
    clean: int = 0
    quarantined: int = 0


@dataclass
class FormLoader:
    """Stages one form's batches in a transaction.

    Raw versions are appended as each batch arrives (so memory holds a batch, not a form);
    clean and quarantine rows are upserted once at `finish`, keeping for each submission only
    the outcome of its latest batch.
    """

    tx: Transaction
    form_id: str
    batch: str
    now: datetime
    stats: LoadStats = field(default_factory=LoadStats)
    _parts: dict[str, list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    _latest: dict[str, int] = field(default_factory=dict)  # submission key → batch number
    _runs: list[pa.Table] = field(default_factory=list)
    _drift: list[dict[str, Any]] = field(default_factory=list)

    def stream_state(self) -> StreamState:
        """Versions and codes the warehouse holds, for `schemas.batch.validate_stream`."""
        return StreamState(known_versions(self.tx, self.form_id),
                           existing_codes(self.tx, self.form_id))  # fmt: skip

    def add(self, validated: ValidatedForm, fresh: Sequence[Submission], fetched: int) -> None:
        self.stats.fetched += fetched
        if not fresh:
            return
        part = len(self._runs)
        source = fresh[0].source
        self.tx.append(
            "raw_submissions",
            _raw_table(fresh, self.batch, self.now),
            partition=raw_partition(source, self.form_id, self.now),
        )
        for key in validated.clean_keys | validated.quarantined_keys:
            self._latest[key] = part
        for table, data in validated.tables.items():
            self._parts[table].append(_tag(data, part))
        if validated.quarantine is not None:
            self._parts["quarantine"].append(_tag(validated.quarantine, part))
        if validated.validation_runs is not None:
            self._runs.append(validated.validation_runs)
        self._drift.extend(validated.drift)

    def finish(self, cursor: tuple[str, Any] | None = None) -> LoadStats:
        touched = set(self._latest)
        for table, parts in self._parts.items():
            data = pa.concat_tables([self._latest_only(p) for p in parts]).drop_columns("_part")
            self.tx.upsert(table, data, touched)
        if self._runs:
            self.tx.append("validation_runs", pa.concat_tables(self._runs))
        if self._drift:
            self.tx.append("schema_drift", pa.Table.from_pylist(
                [{**d, "ingest_batch": self.batch, "seen_at": self.now} for d in self._drift],
                schema=SYSTEM_TABLES["schema_drift"].schema))  # fmt: skip
        if cursor is not None:
            self.tx.set_cursor(*cursor)
        spec = FORMS[self.form_id]
        clean = self._parts.get(spec.table, [])
        self.stats.new_versions = len(touched)
        self.stats.clean = sum(self._latest_only(p).num_rows for p in clean)
        self.stats.quarantined = self.stats.new_versions - self.stats.clean
        return self.stats

    def _latest_only(self, part: pa.Table) -> pa.Table:
        pairs = zip(part["submission_key"].to_pylist(), part["_part"].to_pylist(), strict=True)
        return part.filter(pa.array([self._latest[k] == n for k, n in pairs], type=pa.bool_()))


def _tag(table: pa.Table, part: int) -> pa.Table:
    return table.append_column("_part", pa.array([part] * table.num_rows, type=pa.int32()))


def tombstone(tx: Transaction, form_id: str, keys: set[str], *, batch: str, now: datetime) -> int:
    """Mark submissions the server no longer has as deleted: `deleted_at` on their clean rows,
    a tombstone version in raw (earlier payloads stay), and no more quarantine rows to fix."""
    if not keys:
        return 0
    spec = FORMS[form_id]
    parent = tx.read(spec.table)
    hit = pc.and_(pc.is_in(parent["submission_key"], value_set=pa.array(sorted(keys))),
                  pc.is_null(parent["deleted_at"]))  # fmt: skip
    doomed = parent.filter(hit)
    if doomed.num_rows:
        stamped = doomed.set_column(
            doomed.schema.get_field_index("deleted_at"),
            "deleted_at",
            pa.array([now] * doomed.num_rows, type=doomed.schema.field("deleted_at").type),
        )
        tx.upsert(spec.table, stamped, set(doomed["submission_key"].to_pylist()))
    tx.upsert("quarantine", SYSTEM_TABLES["quarantine"].schema.empty_table(), keys)
    raw = tx.read_partitions("raw_submissions", f"/form={form_id}/")
    raw = raw.filter(pc.is_in(raw["submission_key"], value_set=pa.array(sorted(keys))))
    latest: dict[str, dict[str, Any]] = {}
    already = set()
    for row in raw.to_pylist():
        if row["deleted"]:
            already.add(row["submission_key"])
        else:
            latest[row["submission_key"]] = row
    stones = [
        {**row, "deleted": True, "payload": "{}", "payload_hash": "deleted",
         "ingest_batch": batch, "ingested_at": now}
        for key, row in latest.items()
        if key in keys and key not in already
    ]  # fmt: skip
    if stones:
        source = stones[0]["source"]
        tx.append(
            "raw_submissions",
            pa.Table.from_pylist(stones, schema=RAW_SUBMISSIONS.schema),
            partition=raw_partition(source, form_id, now),
        )
    return doomed.num_rows
