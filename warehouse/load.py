"""Load validated batches into the warehouse: raw versions, clean upserts, quarantine, cursors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from schemas.batch import ValidatedForm
from schemas.records import Submission
from schemas.registry import FORMS
from schemas.tables import CLEAN_TABLES, RAW_SUBMISSIONS, SYSTEM_TABLES
from warehouse.store import Transaction, Warehouse

ALL_SCHEMAS: dict[str, pa.Schema] = {
    name: spec.schema for name, spec in {**CLEAN_TABLES, **SYSTEM_TABLES}.items()
}


def open_warehouse(root: str) -> Warehouse:
    from warehouse.marts import MART_SCHEMAS

    return Warehouse(root, {**ALL_SCHEMAS, **MART_SCHEMAS})


def _raw_table(subs: Sequence[Submission], batch: str, now: datetime) -> pa.Table:
    rows = [
        {
            "submission_key": s.key,
            "source": s.source,
            "server": s.server,
            "form_uid": s.form_uid,
            "form_id": s.form_id,
            "submission_id": s.submission_id,
            "instance_id": s.instance_id,
            "root_uuid": s.root_uuid,
            "form_version": s.version,
            "submitted_at": s.submitted_at,
            "review_status": s.review_status,
            "deleted": s.deleted,
            "payload": orjson.dumps(s.payload).decode(),
            "payload_hash": s.hash,
            "ingest_batch": batch,
            "ingested_at": now,
        }
        for s in subs
    ]
    return pa.Table.from_pylist(rows, schema=RAW_SUBMISSIONS.schema)


def new_versions(tx: Transaction, subs: Sequence[Submission]) -> list[Submission]:
    """The submissions whose exact payload the raw layer does not hold yet (replays are no-ops)."""
    if not subs:
        return []
    seen = tx.read("raw_submissions", columns=["submission_key", "payload_hash"])
    keys = pa.array(sorted({s.key for s in subs}))
    seen = seen.filter(pc.is_in(seen["submission_key"], value_set=keys))
    known = set(
        zip(seen["submission_key"].to_pylist(), seen["payload_hash"].to_pylist(), strict=True)
    )
    fresh: dict[tuple[str, str], Submission] = {}
    for s in subs:
        if (s.key, s.hash) not in known:
            fresh.setdefault((s.key, s.hash), s)
    return list(fresh.values())


def existing_codes(wh: Warehouse | Transaction, form_id: str) -> dict[str, str]:
    """Programme code → submission key of the clean row that holds it (for duplicate checks)."""
    spec = FORMS[form_id]
    if spec.business_key is None:
        return {}
    table = wh.read(spec.table, columns=[spec.business_key, "submission_key"])
    return dict(
        zip(table[spec.business_key].to_pylist(), table["submission_key"].to_pylist(), strict=True)
    )


def load_form(
    tx: Transaction,
    validated: ValidatedForm,
    raw: Sequence[Submission],
    *,
    batch: str,
    now: datetime,
    cursor: tuple[str, Any] | None = None,
) -> None:
    """Stage one form's batch in the transaction; the caller's commit makes it visible."""
    if raw:
        form = raw[0].form_id
        tx.append(
            "raw_submissions",
            _raw_table(raw, batch, now),
            partition=f"source={raw[0].source}/form={form}/ingest_date={now.date()}",
        )
    touched = validated.clean_keys | validated.quarantined_keys
    if touched:
        for table, data in validated.tables.items():
            tx.upsert(table, data, touched)
        if validated.quarantine is not None:
            tx.upsert("quarantine", validated.quarantine, touched)
        if validated.validation_runs is not None:
            tx.append("validation_runs", validated.validation_runs)
    if cursor is not None:
        tx.set_cursor(*cursor)
