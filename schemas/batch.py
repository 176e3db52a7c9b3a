"""Turn one form's fetched submissions into clean rows and quarantine rows.

A submission is the unit of quarantine: if any of its rows (parent or repeat) fails a critical
expectation, none of its rows enter the clean tables, so counts reconcile per form:
fetched = clean + quarantined.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sammachip.schemas.facts import Fact
from sammachip.schemas.flatten import Row, attachment_rows, flatten
from sammachip.schemas.records import Submission
from sammachip.schemas.registry import FORMS, FormSpec
from sammachip.schemas.tables import ATTACHMENTS, CLEAN_TABLES, QUARANTINE, VALIDATION_RUNS
from sammachip.schemas.validation import ROW_ID, Failure, SuiteRunner, explain_unreadable


def _codes(values: Iterable[str | None] = ()) -> pa.Array:
    return pa.array(values, type=pa.string())


@dataclass(frozen=True)
class CrossFormContext:
    """What other forms already told the warehouse, for checks that span forms: each fact a
    form's checks read (`schemas.facts`), by name; a fact left out is one with no household
    yet.

    Kept as Arrow columns and asked about a batch's households only: at province scale each
    fact holds ~55k households, a night's batches name a few thousand."""

    facts: Mapping[str, pa.Table] = field(default_factory=dict)

    def fact(self, fact: Fact) -> pa.Table:
        return self.facts.get(fact.name, fact.empty())


def _add_cross_form_columns(
    rows: dict[str, list[Row]], spec: FormSpec, ctx: CrossFormContext | None
) -> None:
    """Validation-only columns the suites check (as warnings: the other form may come later).
    Without a context the checks are skipped (null is never unexpected)."""
    for check in spec.checks:
        batch = rows.get(check.table, [])
        flags = [None] * len(batch) if ctx is None else check.flag(batch, ctx.fact(check.fact))
        for r, flag in zip(batch, flags, strict=True):
            r[check.column] = flag


@dataclass
class ValidatedForm:
    form_id: str
    fetched: int
    clean_keys: set[str] = field(default_factory=set)
    quarantined_keys: set[str] = field(default_factory=set)
    tables: dict[str, pa.Table] = field(default_factory=dict)  # clean rows per table
    quarantine: pa.Table | None = None
    validation_runs: pa.Table | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)  # unknown answers per version

    @property
    def reconciles(self) -> bool:
        return self.fetched == len(self.clean_keys) + len(self.quarantined_keys)


def latest_versions(subs: Iterable[Submission]) -> list[Submission]:
    """One version per submission key; a page re-read later wins over an earlier read."""
    latest: dict[str, Submission] = {}
    for sub in subs:
        latest[sub.key] = sub
    return list(latest.values())


# Who registered each of these programme codes already: code → submission key.
CodeOwners = Callable[[list[str]], Mapping[str, str]]


def _mark_duplicates(rows: list[Row], spec: FormSpec, owners: CodeOwners | None) -> None:
    """`duplicate_of` = key of the submission that registered the same code first.

    The earlier one is the one already clean in the warehouse, else the lowest submission
    id in this batch; a re-sent edit of the same submission is never its own duplicate.
    """
    key_col = spec.business_key
    if key_col is None:
        return
    codes = [row.get(key_col) for row in rows]
    first: dict[str, str] = dict(owners([c for c in codes if c])) if owners else {}
    ordered = sorted(rows, key=lambda r: (r["submitted_at"], _numeric(r["submission_id"])))
    for row in ordered:
        code = row.get(key_col)
        owner = first.setdefault(code, row["submission_key"]) if code else row["submission_key"]
        row["duplicate_of"] = owner if owner != row["submission_key"] else None


def _numeric(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (0, text)


def _frames(rows_by_table: dict[str, list[Row]]) -> dict[str, pd.DataFrame]:
    frames = {}
    for table, rows in rows_by_table.items():
        if not rows:
            continue
        frame = pd.DataFrame(rows)
        frame[ROW_ID] = range(len(frame))
        frames[table] = frame
    return frames


def _quarantine_rows(
    failures: list[Failure], parents: dict[str, Row], spec: FormSpec, batch: str, now: datetime
) -> list[Row]:
    rows = []
    for f in failures:
        p = parents[f.submission_key]
        rows.append(
            {
                "submission_key": f.submission_key,
                "form_id": spec.form_id,
                "table_name": f.table,
                "submission_id": p["submission_id"],
                "instance_id": p["instance_id"],
                "village_code": p.get("village_code"),
                "tambon_code": p.get("tambon_code"),
                "business_key": _text(p.get(spec.subject_key)),
                "subject_name": _text(p.get(spec.name_key)) if spec.name_key else None,
                "subject_house_no": _text(p.get("house_no")),
                "subject_phone": _text(p.get("phone")),
                "expectation": f.expectation,
                "column_name": f.column,
                "value": f.value,
                "reason_th": f.reason_th,
                "reason_en": f.reason_en,
                "submitted_at": p["submitted_at"],
                "quarantined_at": now,
                "ingest_batch": batch,
            }
        )
    return rows


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def validate_form(
    form_id: str,
    submissions: list[Submission],
    runner: SuiteRunner,
    *,
    batch: str,
    now: datetime,
    existing_codes: CodeOwners | None = None,
    context: CrossFormContext | None = None,
) -> ValidatedForm:
    """Flatten, normalise and validate one form's batch (latest version per submission)."""
    spec = FORMS[form_id]
    subs = latest_versions(submissions)
    result = ValidatedForm(form_id, fetched=len(subs))
    rows_by_table: dict[str, list[Row]] = defaultdict(list)
    drift: Counter[tuple[str | None, str]] = Counter()
    attachments: list[Row] = []
    for sub in subs:
        attachments.extend(attachment_rows(sub))
        flat = flatten(sub, batch, now)
        for table, rows in flat.tables.items():
            rows_by_table[table].extend(rows)
        drift.update((sub.version, key) for key in flat.unknown_keys)
    result.drift = [
        {"form_id": form_id, "form_version": v, "answer_key": k, "submissions": n}
        for (v, k), n in sorted(drift.items(), key=lambda item: (str(item[0][0]), item[0][1]))
    ]
    _add_cross_form_columns(rows_by_table, spec, context)
    parents = {r["submission_key"]: r for r in rows_by_table[spec.table]}
    _mark_duplicates(rows_by_table[spec.table], spec, existing_codes)

    failures: list[Failure] = []
    runs: list[Row] = []
    for table, frame in _frames(rows_by_table).items():
        suite = runner.validate(table, frame)
        failures.extend(suite.failures)
        critical = {f.submission_key for f in suite.failures if f.severity == "critical"}
        flagged = {f.submission_key for f in suite.failures if f.severity != "critical"}
        runs.append(
            {
                "ingest_batch": batch,
                "run_at": now,
                "form_id": form_id,
                "table_name": table,
                "suite": f"{table}_suite",
                "rows_in": suite.rows_in,
                "rows_passed": int((~frame["submission_key"].isin(critical)).sum()),
                "rows_quarantined": int(frame["submission_key"].isin(critical).sum()),
                "rows_flagged": int(frame["submission_key"].isin(flagged - critical).sum()),
                "expectation_counts": json.dumps(suite.expectation_counts, ensure_ascii=False),
            }
        )

    failures = explain_unreadable(failures, parents)
    bad = {f.submission_key for f in failures if f.severity == "critical"}
    for f in failures:
        if f.severity != "critical" and f.submission_key in parents:
            parents[f.submission_key]["dq_flags"].append(f"{f.table}.{f.column}: {f.reason_en}")

    result.quarantined_keys = bad & parents.keys()
    result.clean_keys = parents.keys() - bad
    for table in spec.tables:
        kept = [r for r in rows_by_table.get(table, []) if r["submission_key"] not in bad]
        result.tables[table] = pa.Table.from_pylist(kept, schema=CLEAN_TABLES[table].schema)
    # Media metadata is kept for every submission, quarantined ones included.
    result.tables["attachments"] = pa.Table.from_pylist(attachments, schema=ATTACHMENTS.schema)
    critical_failures = [f for f in failures if f.severity == "critical"]
    result.quarantine = pa.Table.from_pylist(
        _quarantine_rows(critical_failures, parents, spec, batch, now), schema=QUARANTINE.schema
    )
    result.validation_runs = pa.Table.from_pylist(runs, schema=VALIDATION_RUNS.schema)
    return result


@dataclass
class StreamState:
    """What later batches of a form must know about earlier ones (and about the warehouse).

    The warehouse's part stays in Arrow columns and is asked about each batch's submissions
    only — at province scale a form holds ~80k versions, and turning them into Python objects
    every night cost more than the night's new data; what this run adds is kept beside it."""

    held: pa.Table  # submission_key, payload_hash: every version the warehouse holds
    held_codes: pa.Table  # code, submission_key: programme codes clean in the warehouse
    known: set[tuple[str, str]] = field(default_factory=set)  # versions read in this run
    codes: dict[str, str] = field(default_factory=dict)  # codes registered in this run

    def unseen(self, subs: list[Submission]) -> list[Submission]:
        """The versions in `subs` neither the warehouse nor an earlier batch holds, once each
        (marked as seen)."""
        held = self.held
        hit = held.filter(pc.is_in(held["submission_key"], value_set=_codes(s.key for s in subs)))
        known = set(
            zip(hit["submission_key"].to_pylist(), hit["payload_hash"].to_pylist(), strict=True)
        )
        fresh: dict[tuple[str, str], Submission] = {}
        for s in subs:
            version = (s.key, s.hash)
            if version not in known and version not in self.known:
                fresh.setdefault(version, s)
        self.known.update(fresh)
        return list(fresh.values())

    def owners(self, codes: list[str]) -> dict[str, str]:
        """Code → submission key for `codes`: the warehouse's, then this run's."""
        held = self.held_codes
        hit = held.filter(pc.is_in(held["code"], value_set=_codes(codes)))
        found = dict(zip(hit["code"].to_pylist(), hit["submission_key"].to_pylist(), strict=True))
        found.update((c, self.codes[c]) for c in codes if c in self.codes)
        return found


def validate_stream(
    form_id: str,
    batches: Iterable[list[Submission]],
    runner: SuiteRunner,
    *,
    state: StreamState,
    batch: str,
    now: datetime,
    context: CrossFormContext | None = None,
) -> Iterator[tuple[ValidatedForm, list[Submission], int]]:
    """Validate a form's batches as they arrive: (result, new versions, submissions read).

    Versions already held (replayed pages, overlap re-reads) are dropped before validation,
    and codes registered by earlier batches count for duplicate checks in later ones. Pure:
    no I/O, so it runs where the data is (the flow's process or a Dask worker)."""
    spec = FORMS[form_id]
    for subs in batches:
        new = state.unseen(subs)
        validated = validate_form(
            form_id, new, runner, batch=batch, now=now, existing_codes=state.owners, context=context
        )
        if spec.business_key:
            parent = validated.tables[spec.table]
            state.codes.update(
                zip(
                    parent[spec.business_key].to_pylist(),
                    parent["submission_key"].to_pylist(),
                    strict=True,
                )
            )
        yield validated, new, len(subs)
