"""Load validated batches into the warehouse: raw versions, clean upserts, quarantine, cursors,
and tombstones for submissions the server no longer has."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sammachip.schemas.batch import CrossFormContext, StreamState, ValidatedForm
from sammachip.schemas.facts import Fact
from sammachip.schemas.records import Submission, payload_hash
from sammachip.schemas.registry import FACTS, FORMS
from sammachip.schemas.tables import CLEAN_TABLES, MART_SCHEMAS, RAW_SUBMISSIONS, SYSTEM_TABLES
from sammachip.warehouse import scan
from sammachip.warehouse.store import Transaction, Warehouse

ALL_SCHEMAS: dict[str, pa.Schema] = {
    name: spec.schema for name, spec in {**CLEAN_TABLES, **SYSTEM_TABLES}.items()
}


def open_warehouse(root: str) -> Warehouse:
    return Warehouse(root, {**ALL_SCHEMAS, **MART_SCHEMAS})


def raw_partition(source: str, form_id: str, now: datetime) -> str:
    return f"source={source}/form={form_id}/ingest_date={now.date()}"


def _raw_table(subs: Sequence[Submission], batch: str, now: datetime) -> pa.Table:
    """The raw versions of `subs`, built column by column (a Submission is a tuple: its
    columns are one transpose away)."""
    if not subs:
        return RAW_SUBMISSIONS.schema.empty_table()
    record = dict(zip(Submission._fields, zip(*subs, strict=True), strict=True))
    columns = {
        "submission_key": record["key"],
        "source": record["source"],
        "server": record["server"],
        "form_uid": record["form_uid"],
        "form_id": record["form_id"],
        "submission_id": record["submission_id"],
        "instance_id": record["instance_id"],
        "root_uuid": record["root_uuid"],
        "form_version": record["version"],
        "submitted_at": record["submitted_at"],
        "review_status": record["review_status"],
        "deleted": record["deleted"],
        # UTF-8 already: Arrow takes the bytes as text (a str would be encoded back)
        "payload": [orjson.dumps(payload) for payload in record["payload"]],
        "payload_hash": record["hash"],
        "ingest_batch": [batch] * len(subs),
        "ingested_at": [now] * len(subs),
    }
    return pa.Table.from_pydict(columns, schema=RAW_SUBMISSIONS.schema)


def _raw(tx: Transaction, form_id: str, columns: list[str] | None = None) -> pa.Table:
    return tx.read_partitions("raw_submissions", f"/form={form_id}/", columns=columns)


def latest_versions(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest raw row of each submission key. A tombstone and a version staged by the same
    run share `ingested_at`: the tombstone is the later (deletions are looked for after the
    run's pages)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = latest.get(row["submission_key"])
        if held is None or (row["ingested_at"], row["deleted"]) >= (
            held["ingested_at"],
            held["deleted"],
        ):
            latest[row["submission_key"]] = row
    return latest


def known_versions(tx: Transaction, form_id: str) -> tuple[pa.Table, set[str]]:
    """(submission key, payload hash) of every version of a form the raw layer holds, and the
    keys whose latest raw version is a tombstone. A tombstoned submission's versions are left
    out of the first: the server showing it again (a restore on Central, a purged instanceID
    submitted anew) is a live submission again, even with a payload held before."""
    raw = _raw(tx, form_id, ["submission_key", "payload_hash", "deleted", "ingested_at"])
    stones = raw.filter(raw["deleted"])
    if not stones.num_rows:
        return raw.select(["submission_key", "payload_hash"]), set()
    touched = raw.filter(pc.is_in(raw["submission_key"], value_set=stones["submission_key"]))
    latest = latest_versions(
        touched.select(["submission_key", "deleted", "ingested_at"]).to_pylist()
    )
    tombstoned = {key for key, row in latest.items() if row["deleted"]}
    live = pc.and_not(
        pc.invert(raw["deleted"]),
        pc.is_in(raw["submission_key"], value_set=pa.array(sorted(tombstoned), pa.string())),
    )
    return raw.filter(live).select(["submission_key", "payload_hash"]), tombstoned


# Which way each form's raw hashes were made: hashes made before null answers were left out
# (`schemas.records.payload_hash`) are recomputed once, from the payloads raw keeps.
_HASHES_CURSOR = "payload_hashes"
HASH_VERSION = 2


def upgrade_payload_hashes(tx: Transaction, form_id: str) -> int:
    """Recompute the raw payload hashes of a form made the old way (once per form, marked in
    the warehouse's cursors); returns the versions whose hash changed.

    Without it, the first re-read of a submission holding a null answer (every ODK row, some
    Kobo rows) would look like a new version — one more raw row and a re-validation per
    submission on the next reconcile. Only the files holding such a version are rewritten
    (same rows, payloads byte-exact); tombstones keep their marker."""
    marks = dict(tx.cursor(_HASHES_CURSOR) or {})
    if marks.get(form_id) == HASH_VERSION:
        return 0
    changed, storage = 0, tx.warehouse.storage
    for rel in [f for f in tx.files("raw_submissions") if f"/form={form_id}/" in f]:
        data = pq.read_table(storage.path(rel), filesystem=storage.fs)
        old = data["payload_hash"].to_pylist()
        new = [
            h if gone else payload_hash(orjson.loads(p))
            for h, gone, p in zip(
                old, data["deleted"].to_pylist(), data["payload"].to_pylist(), strict=True
            )
        ]
        diff = sum(a != b for a, b in zip(old, new, strict=True))
        if diff:
            index = data.schema.get_field_index("payload_hash")
            tx.rewrite(
                "raw_submissions",
                rel,
                data.set_column(index, "payload_hash", pa.array(new, pa.string())),
            )
            changed += diff
    marks[form_id] = HASH_VERSION
    tx.set_cursor(_HASHES_CURSOR, dict(sorted(marks.items())))  # whatever order forms load in
    return changed


def existing_codes(wh: Warehouse | Transaction, form_id: str) -> pa.Table:
    """Programme code → submission key of the clean row that holds it (for duplicate checks),
    as columns `code` and `submission_key`."""
    spec = FORMS[form_id]
    if spec.business_key is None:
        return pa.table(
            {"code": pa.array([], pa.string()), "submission_key": pa.array([], pa.string())}
        )
    table = wh.read(spec.table, columns=[spec.business_key, "submission_key", "deleted_at"])
    table = table.filter(pc.is_null(table["deleted_at"]))
    return pa.table({"code": table[spec.business_key], "submission_key": table["submission_key"]})


def cross_form_context(tx: Transaction, form_id: str | None = None) -> CrossFormContext:
    """The facts forms are checked against as this transaction sees them (forms staged
    earlier in the same run included: households load before sessions). With `form_id`, only
    the facts that form's checks read are gathered (they span the whole history)."""
    facts = FACTS.values() if form_id is None else FORMS[form_id].facts
    return CrossFormContext(gather_facts(tx.dataset, facts))


def gather_facts(dataset: Callable[[str], Any], facts: Iterable[Fact]) -> dict[str, pa.Table]:
    """The `facts`, each read from `dataset(table)` where it lies."""
    con = scan.connect()
    found: dict[str, pa.Table] = {}
    for fact in facts:
        data = {table: dataset(table) for table in fact.reads}
        key = _fact_key(fact, data)
        if key is not None and key in _FACTS_READ:
            found[fact.name] = _FACTS_READ[key]
            continue
        for table, lying in data.items():  # scanned where they lie: only the columns it reads
            scan.register(con, table, lying)
        # Arrow: ~55k households at province scale
        found[fact.name] = con.sql(fact.sql).to_arrow_table().combine_chunks()
        if key is not None:
            _FACTS_READ[key] = found[fact.name]
            while len(_FACTS_READ) > _FACTS_KEPT:
                _FACTS_READ.pop(next(iter(_FACTS_READ)))
    return found


# Facts already read, by the files they were read from. A load gathers the same facts several
# times over unchanged tables — a form's checks, then the same tables before and after the
# form is staged, then the next form's checks — and each gathering reads the whole history.
# Data files are written once under names never reused, so the same files are the same rows.
_FACTS_READ: dict[tuple[Any, ...], pa.Table] = {}
_FACTS_KEPT = 16


def _fact_key(fact: Fact, data: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What `fact` read from `data` is known by: the files of each table (None: a table in
    memory, which has no such name)."""
    parts: list[Any] = [fact.name, fact.sql]
    for table, lying in data.items():
        if isinstance(lying, ds.FileSystemDataset):
            parts.append((table, type(lying.filesystem).__name__, tuple(lying.files)))
        elif isinstance(lying, pa.Table) and lying.num_rows == 0:
            parts.append((table, "empty", lying.schema))
        else:
            return None
    return tuple(parts)


@dataclass
class LoadStats:
    fetched: int = 0  # submissions the server returned (re-reads included)
    new_versions: int = 0  # of those, payload versions the warehouse did not hold
    clean: int = 0
    quarantined: int = 0
    restored: int = 0  # of the new versions, submissions that had been tombstoned
    rechecked: dict[str, int] = field(default_factory=dict)  # see `refreshing_dependents`


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
    _tombstoned: set[str] = field(default_factory=set)  # keys whose latest raw is a tombstone
    _restored: set[str] = field(default_factory=set)
    _live_keys: pa.ChunkedArray | None = None  # of each live version raw held; None: not read

    def stream_state(self) -> StreamState:
        """Versions and codes the warehouse holds, for `schemas.batch.validate_stream`."""
        upgrade_payload_hashes(self.tx, self.form_id)
        held, self._tombstoned = known_versions(self.tx, self.form_id)
        self._live_keys = held["submission_key"]
        return StreamState(held, existing_codes(self.tx, self.form_id))

    def add(self, validated: ValidatedForm, fresh: Sequence[Submission], fetched: int) -> None:
        self.stats.fetched += fetched
        if not fresh:
            return
        source = fresh[0].source
        self.tx.append(
            "raw_submissions",
            _raw_table(fresh, self.batch, self.now),
            partition=raw_partition(source, self.form_id, self.now),
        )
        self._restored.update(s.key for s in fresh if s.key in self._tombstoned)
        self._stage(validated)
        self._drift.extend(validated.drift)

    def revalidated(self, validated: ValidatedForm) -> None:
        """Stage the new outcome of versions raw already holds (nothing appended to raw)."""
        self._stage(validated)

    def _stage(self, validated: ValidatedForm) -> None:
        part = len(self._runs)
        for key in validated.clean_keys | validated.quarantined_keys:
            self._latest[key] = part
        for table, data in validated.tables.items():
            self._parts[table].append(_tag(data, part))
        if validated.quarantine is not None:
            self._parts["quarantine"].append(_tag(validated.quarantine, part))
        if validated.validation_runs is not None:
            self._runs.append(validated.validation_runs)

    def finish(self, cursor: tuple[str, Any] | None = None) -> LoadStats:
        touched = set(self._latest)
        held = self._held_before(touched)
        for table, parts in self._parts.items():
            data = pa.concat_tables([self._latest_only(p) for p in parts]).drop_columns("_part")
            self.tx.upsert(table, data, held)
        if self._runs:
            self.tx.append("validation_runs", pa.concat_tables(self._runs))
        if self._drift:
            self.tx.append(
                "schema_drift",
                pa.Table.from_pylist(
                    [{**d, "ingest_batch": self.batch, "seen_at": self.now} for d in self._drift],
                    schema=SYSTEM_TABLES["schema_drift"].schema,
                ),
            )
        if cursor is not None:
            self.tx.set_cursor(*cursor)
        spec = FORMS[self.form_id]
        clean = self._parts.get(spec.table, [])
        self.stats.new_versions = len(touched)
        self.stats.clean = sum(self._latest_only(p).num_rows for p in clean)
        self.stats.quarantined = self.stats.new_versions - self.stats.clean
        self.stats.restored = len(self._restored)
        return self.stats

    def _held_before(self, keys: set[str]) -> set[str]:
        """Of `keys`, those the clean and quarantine tables may hold rows of: the keys raw held
        a version of when the form began to load. Rows come only from raw versions, so a
        submission raw never saw has none to drop, and looking for the night's new ones would
        read the key column of every file of the form's tables."""
        if self._live_keys is None:  # validated again: every key is held
            return keys
        # the form's ~80k held keys probed against the few asked (not hashed themselves)
        live = self._live_keys
        asked = pa.array(sorted(keys), pa.string())
        held = live.filter(pc.is_in(live, value_set=asked))
        return set(held.to_pylist()) | (keys & self._tombstoned)

    def _latest_only(self, part: pa.Table) -> pa.Table:
        pairs = zip(part["submission_key"].to_pylist(), part["_part"].to_pylist(), strict=True)
        return part.filter(pa.array([self._latest[k] == n for k, n in pairs], type=pa.bool_()))


def _tag(table: pa.Table, part: int) -> pa.Table:
    return table.append_column("_part", pa.array([part] * table.num_rows, type=pa.int32()))


def tombstone(
    tx: Transaction,
    form_id: str,
    deleted: Mapping[str, datetime | None],
    *,
    batch: str,
    now: datetime,
) -> int:
    """Mark submissions the server no longer has as deleted: `deleted_at` on their clean rows
    (the server's deletion time where it gives one, else now), a tombstone version in raw
    (earlier payloads stay), and no more quarantine rows to fix. Returns how many were live
    until now (a submission tombstoned already is left as it is)."""
    if not deleted:
        return 0
    columns = [c for c in RAW_SUBMISSIONS.column_names if c != "payload"]
    raw = _raw(tx, form_id, columns)
    raw = raw.filter(
        pc.is_in(raw["submission_key"], value_set=pa.array(sorted(deleted), pa.string()))
    )
    live = {k: row for k, row in latest_versions(raw.to_pylist()).items() if not row["deleted"]}
    if not live:
        return 0
    stones = [
        {
            **row,
            "deleted": True,
            "payload": "{}",
            "payload_hash": "deleted",
            "ingest_batch": batch,
            "ingested_at": now,
        }
        for row in live.values()
    ]
    tx.append(
        "raw_submissions",
        pa.Table.from_pylist(stones, schema=RAW_SUBMISSIONS.schema),
        partition=raw_partition(stones[0]["source"], form_id, now),
    )
    spec = FORMS[form_id]
    parent = tx.read(spec.table)
    hit = pc.and_(
        pc.is_in(parent["submission_key"], value_set=pa.array(sorted(live), pa.string())),
        pc.is_null(parent["deleted_at"]),
    )
    doomed = parent.filter(hit)
    if doomed.num_rows:
        when = [deleted[k] or now for k in doomed["submission_key"].to_pylist()]
        index = doomed.schema.get_field_index("deleted_at")
        stamped = doomed.set_column(
            index, "deleted_at", pa.array(when, type=doomed.schema.field(index).type)
        )
        tx.upsert(spec.table, stamped, set(doomed["submission_key"].to_pylist()))
    tx.upsert("quarantine", SYSTEM_TABLES["quarantine"].schema.empty_table(), set(live))
    return len(live)
