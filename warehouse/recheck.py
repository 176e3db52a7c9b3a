"""Facts that changed: the rows checked against them are validated again, as one full sync of
the final state would have checked them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sammachip.schemas.batch import StreamState, validate_form
from sammachip.schemas.facts import Check, Fact
from sammachip.schemas.records import Submission
from sammachip.schemas.registry import FORMS, FormSpec, checks_of, fed_by
from sammachip.schemas.tables import CLEAN_TABLES
from sammachip.schemas.validation import SuiteRunner
from sammachip.warehouse import scan
from sammachip.warehouse.load import (
    FormLoader,
    cross_form_context,
    existing_codes,
    gather_facts,
    latest_versions,
)
from sammachip.warehouse.store import Snapshot, TableState, Transaction


@contextmanager
def refreshing_dependents(
    tx: Transaction, form_id: str, runner: SuiteRunner, *, now: datetime
) -> Iterator[dict[str, int]]:
    """Stage a form (its pages, its tombstones) inside this block; then submissions checked
    against something the block changed are validated again from their raw version, as one
    full sync of the final state would have checked them:

    - rows checked against a fact this form's tables feed (households registered, trained,
      the first baseline) for a household whose fact changed — another form's rows, or this
      form's own (a follow-up against a baseline);
    - registrations quarantined as duplicates of one that no longer holds its code (deleted,
      or edited to another code): the earliest of them holds it now.

    Yields form id → submissions validated again (filled when the block ends)."""
    refreshed: dict[str, int] = {}
    spec = FORMS[form_id]
    sources = fed_by(form_id)
    reads = {table for fact in sources for table in fact.reads}
    if spec.business_key:
        reads.add(spec.table)
    before = {table: tx.files(table) for table in sorted(reads)}
    yield refreshed
    if {table: tx.files(table) for table in before} == before:  # nothing staged they read
        return
    then = lambda table: _dataset_at(tx, table, before[table])  # noqa: E731
    if spec.business_key:  # first: who holds a code is itself a registered-or-not fact
        released = _released(
            then(spec.table), tx.dataset(spec.table), spec, _touched(tx, [spec.table])
        )
        if duplicates := _duplicates_of(tx, released):
            refreshed[form_id] = revalidate(tx, form_id, duplicates, runner, now=now)
    stale: dict[str, set[str]] = defaultdict(set)  # form id → submission keys
    for fact in sources:
        if changed := _changed_fact(tx, fact, before):
            for dependent, check in checks_of(fact):
                stale[dependent.form_id] |= _checked(tx, check, changed)
    for dependent_id, keys in stale.items():
        if not keys:
            continue
        with refreshing_dependents(tx, dependent_id, runner, now=now) as deeper:
            refreshed[dependent_id] = refreshed.get(dependent_id, 0) + revalidate(
                tx, dependent_id, keys, runner, now=now
            )
        for other, count in deeper.items():
            refreshed[other] = refreshed.get(other, 0) + count


def _touched(tx: Transaction, tables: Iterable[str]) -> pa.Array | None:
    """Keys of the submissions whose rows in any of `tables` this transaction replaced or
    added (None: one of them was rewritten some other way, so any row may have changed)."""
    keys: set[str] = set()
    for table in tables:
        replaced = tx.replaced.get(table, set())
        if replaced is None:
            return None
        keys |= replaced
    return pa.array(sorted(keys), pa.string())


def _released(before: Any, after: Any, spec: FormSpec, touched: pa.Array | None) -> set[str]:
    """Keys of live clean registrations that held a programme code `before` and hold another
    one, or none, `after`. Only the `touched` submissions' rows can differ (None: any may):
    a night's new registrations held nothing before, so only edits and deletions are
    compared, not the ~55k registrations a province holds."""
    if touched is not None and not len(touched):
        return set()
    con = scan.connect()
    only = ""
    if touched is not None:
        con.register("touched", pa.table({"submission_key": touched}))
        only = "semi join touched using (submission_key)"
    for name, data in (("before", before), ("after", after)):
        scan.register(con, f"{name}_all", data)
        con.execute(f"""create temp view {name} as
            select submission_key, {spec.business_key} as code from {name}_all {only}
            where deleted_at is null and {spec.business_key} is not null""")
    found = con.sql("""select b.submission_key from before b left join after a
                       using (submission_key) where a.code is distinct from b.code""")
    return set(found.to_arrow_table().column(0).to_pylist())


def _changed_fact(tx: Transaction, fact: Fact, before: dict[str, tuple[str, ...]]) -> set[Any]:
    """Households whose `fact` differs between the tables as they held `before` (their files)
    and as the transaction holds them now.

    A household's fact is read from the rows that name it (hh_code), and from rows of the
    same submissions in tables that name none (a session's row for its attendance), so it
    can differ only for the households named by the rows of submissions this transaction
    touched that are in a file one side has and the other not — a night's new files, a file
    rewritten without an edited submission's rows — or that share a submission with such a
    row of a table naming none. The fact is compared for those households alone: the
    history's files are scanned for them, never compared whole."""
    touched = _touched(tx, fact.reads)
    then = lambda table: _dataset_at(tx, table, before[table])  # noqa: E731
    if touched is None or not _named(fact):  # any household may differ
        was, now_is = (gather_facts(side, [fact])[fact.name] for side in (then, tx.dataset))
        return _changed_households(was, now_is)
    if not len(touched):
        return set()
    asked = pa.table({"hh_code": _named_by_moved_rows(tx, fact, before, touched)})
    was, now_is = (_fact_for(side, fact, asked) for side in (then, tx.dataset))
    return _changed_households(was, now_is)


def _named(fact: Fact) -> list[str]:
    return [t for t in fact.reads if "hh_code" in CLEAN_TABLES[t].schema.names]


def _named_by_moved_rows(
    tx: Transaction, fact: Fact, before: dict[str, tuple[str, ...]], touched: pa.Array
) -> pa.Array:
    """The households `_changed_fact` compares (see there)."""
    con = scan.connect()
    con.register("touched", pa.table({"submission_key": touched}))
    for table in fact.reads:
        moved = tuple(sorted(set(before[table]) ^ set(tx.files(table))))
        scan.register(con, f"{table}_moved", _dataset_at(tx, table, moved))
        scan.register(con, table, tx.dataset(table))
    named = _named(fact)
    parts = [
        f"select hh_code from {t}_moved semi join touched using (submission_key)" for t in named
    ]
    for other in set(fact.reads) - set(named):
        keys = f"select submission_key from {other}_moved semi join touched using (submission_key)"
        parts += [f"select hh_code from {t} where submission_key in ({keys})" for t in named]
    found = con.sql(" union ".join(parts)).to_arrow_table()
    return found.column(0).combine_chunks()


def _fact_for(dataset: Callable[[str], Any], fact: Fact, asked: pa.Table) -> pa.Table:
    """`fact` for the `asked` households only, from the tables as `dataset` gives them: the
    rows naming other households are left out before the fact's SQL reads them."""
    con = scan.connect()
    con.register("asked", asked)
    named = _named(fact)
    for table in fact.reads:
        if table not in named:
            scan.register(con, table, dataset(table))
            continue
        scan.register(con, f"{table}_all", dataset(table))
        con.execute(f"""create temp view {table} as
                        select * from {table}_all semi join asked using (hh_code)""")
    return con.sql(fact.sql).to_arrow_table()


def _changed_households(was: pa.Table, now_is: pa.Table) -> set[Any]:
    """Households whose fact differs between `was` and `now_is` (one row per household, hh_code
    first): found in, gained or lost, or with another value. Compared in DuckDB, not as Python
    dicts of every household the history holds."""
    con = scan.connect()
    con.register("was", was)
    con.register("now_is", now_is)
    found = con.sql("""select hh_code from (from was except from now_is)
                       union select hh_code from (from now_is except from was)""")
    return set(found.to_arrow_table().column(0).to_pylist())


def _duplicates_of(tx: Transaction, owners: set[str]) -> set[str]:
    """Keys of submissions quarantined as duplicates of any of `owners`."""
    if not owners:
        return set()
    quarantine = tx.read("quarantine", columns=["submission_key", "column_name", "value"])
    hit = pc.and_(
        pc.equal(quarantine["column_name"], "duplicate_of"),
        pc.is_in(quarantine["value"], value_set=pa.array(sorted(owners), pa.string())),
    )
    return set(quarantine.filter(hit)["submission_key"].to_pylist())


def _dataset_at(tx: Transaction, table: str, files: tuple[str, ...]) -> Any:
    """`table` as it was when it held `files` (earlier in this transaction)."""
    return tx.warehouse.dataset(table, Snapshot(0, None, None, {table: TableState(files)}, {}))


def _checked(tx: Transaction, check: Check, households: set[str]) -> set[str]:
    """Keys of live submissions with a row `check` reads its fact for, for any of
    `households`."""
    table = check.table
    parent = CLEAN_TABLES[table].parent or table
    con = scan.connect()
    scan.register(con, "checked", tx.dataset(table))
    scan.register(con, "parent", tx.dataset(parent))
    con.register("changed", pa.table({"hh_code": pa.array(sorted(households), pa.string())}))
    found = con.sql(f"""select distinct c.submission_key from checked c
                        semi join changed using (hh_code)
                        where ({check.applies}) and c.submission_key in
                              (select submission_key from parent where deleted_at is null)""")
    return set(found.to_arrow_table().column(0).to_pylist())


def revalidate(
    tx: Transaction, form_id: str, keys: set[str], runner: SuiteRunner, *, now: datetime
) -> int:
    """Validate the held versions of `keys` again against the facts as the transaction sees
    them, and stage the outcome (raw gains nothing). Returns how many were validated."""
    subs = [
        _held_submission(row)
        for row in latest_versions(_raw_of(tx, form_id, keys)).values()
        if not row["deleted"]
    ]
    if not subs:
        return 0
    loader = FormLoader(tx, form_id, batch=tx.run_id, now=now)
    owners = StreamState(pa.table({}), existing_codes(tx, form_id)).owners
    loader.revalidated(
        validate_form(
            form_id,
            subs,
            runner,
            batch=tx.run_id,
            now=now,
            existing_codes=owners,
            context=cross_form_context(tx, form_id),
        )
    )
    return loader.finish().new_versions


def _raw_of(tx: Transaction, form_id: str, keys: set[str]) -> list[dict[str, Any]]:
    storage = tx.warehouse.storage
    rels = [rel for rel in tx.files("raw_submissions") if f"/form={form_id}/" in rel]
    return raw_rows_of(storage.fs, [storage.path(rel) for rel in rels], keys)


def raw_rows_of(fs: Any, paths: Iterable[str], keys: set[str]) -> list[dict[str, Any]]:
    """Every raw row of `keys`, payloads included, in file order. Raw files are written per
    run: only the few holding one of `keys` are read whole (a form's raw layer is large)."""
    wanted = pa.array(sorted(keys), pa.string())
    rows: list[dict[str, Any]] = []
    for path in paths:
        held = pq.read_table(path, columns=["submission_key"], filesystem=fs)
        hit = pc.is_in(held["submission_key"], value_set=wanted)
        if pc.any(hit).as_py():
            data = pq.read_table(path, filesystem=fs).filter(hit)
            rows += data.to_pylist()
    return rows


def _held_submission(row: dict[str, Any]) -> Submission:
    """A raw version as the record it was loaded from (device times are the payload's
    `start`/`end`, as both connectors read them)."""
    payload = orjson.loads(row["payload"])
    return Submission(
        source=row["source"],
        server=row["server"],
        form_uid=row["form_uid"],
        form_id=row["form_id"],
        submission_id=row["submission_id"],
        instance_id=row["instance_id"],
        root_uuid=row["root_uuid"],
        version=row["form_version"],
        submitted_at=row["submitted_at"],
        device_start=payload.get("start"),
        device_end=payload.get("end"),
        review_status=row["review_status"],
        payload=payload,
    )
