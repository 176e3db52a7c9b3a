"""Parquet tables with an atomically swapped manifest.

Layout under the warehouse root:

    tables/<table>/[<partition>/]part-<batch>-<n>.parquet   data files, never modified
    _manifest/v00000042.json                                  one file per committed version
    _lock                                                     held (flock) by the one writer

A version lists every live file of every table plus the sync cursors, so a run's rows and the
cursor advance become visible together, in one atomic, exclusive creation of the version file
(see `warehouse.storage`: a local folder or an S3-compatible bucket). A writer killed at any
instant leaves only unreferenced files behind; readers always see the last complete version.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sammachip.warehouse.storage import (
    LocalStorage,
    Storage,
    VersionExists,
    WarehouseError,
    storage_for,
)

__all__ = ["Snapshot", "TableState", "Transaction", "Warehouse", "WarehouseError"]

MANIFEST_DIR = "_manifest"
# An upserted table keeps at most this many files before its small ones are merged.
MAX_FILES = 16
_VERSION_FILE = re.compile(r"v(\d{8})\.json")


@dataclass(frozen=True)
class TableState:
    files: tuple[str, ...] = ()
    rows: int = 0
    committed_at: str | None = None


@dataclass(frozen=True)
class Snapshot:
    version: int
    committed_at: str | None
    run_id: str | None
    tables: dict[str, TableState] = field(default_factory=dict)
    cursors: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(0, None, None)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "committed_at": self.committed_at,
            "run_id": self.run_id,
            "tables": {
                n: {"files": list(t.files), "rows": t.rows, "committed_at": t.committed_at}
                for n, t in sorted(self.tables.items())
            },
            "cursors": self.cursors,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Snapshot:
        tables = {
            n: TableState(tuple(t["files"]), t["rows"], t.get("committed_at"))
            for n, t in doc["tables"].items()
        }
        return cls(doc["version"], doc["committed_at"], doc["run_id"], tables, doc["cursors"])


class Warehouse:
    def __init__(self, root: str | Path, schemas: dict[str, pa.Schema] | None = None) -> None:
        self.storage: Storage = storage_for(root)
        # The local folder, for tools that want paths (None for a bucket).
        self.root: Path | None = (
            self.storage.root if isinstance(self.storage, LocalStorage) else None
        )
        self._schemas = schemas or {}

    # ---- reading -------------------------------------------------------------------------
    def manifests(self) -> list[str]:
        """Committed version files, oldest first (temporary and foreign files ignored)."""
        names = self.storage.list(MANIFEST_DIR)
        return [n for n in names if _VERSION_FILE.fullmatch(n.rsplit("/", 1)[-1])]

    def snapshot(self) -> Snapshot:
        """The latest committed version (an empty one for a new warehouse)."""
        manifests = self.manifests()
        if not manifests:
            return Snapshot.empty()
        latest = manifests[-1]
        try:
            return Snapshot.from_json(json.loads(self.storage.read_text(latest)))
        except (OSError, ValueError, KeyError) as err:
            raise WarehouseError(
                f"manifest {latest} in {self.storage.uri} is unreadable ({err}); move it aside "
                "to fall back to the previous version"
            ) from err

    def files(self, table: str, snapshot: Snapshot | None = None) -> list[str]:
        """Paths (for `self.storage.fs`) of the files a table's version reads."""
        state = (snapshot or self.snapshot()).tables.get(table, TableState())
        return [self.storage.path(f) for f in state.files]

    def read(
        self, table: str, snapshot: Snapshot | None = None, columns: list[str] | None = None
    ) -> pa.Table:
        data = self.dataset(table, snapshot)
        if isinstance(data, pa.Table):
            return data.select(columns) if columns and data.num_columns else data
        return data.to_table(columns=columns)

    def dataset(self, table: str, snapshot: Snapshot | None = None) -> ds.Dataset | pa.Table:
        """A table's version, scanned lazily (DuckDB pushes column and row filters into it);
        an empty table of the declared schema when it has no files yet."""
        files = self.files(table, snapshot)
        if not files:
            schema = self._schemas.get(table)
            return pa.table({}) if schema is None else schema.empty_table()
        # Schema evolution: a column the code added reads as null in older files; a column the
        # code dropped stays readable in the files that have it.
        fs = self.storage.fs
        declared = self._schemas.get(table)
        schemas = ([declared] if declared else []) + [
            pq.read_schema(f, filesystem=fs) for f in files
        ]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        return ds.dataset(files, schema=schema, format="parquet", filesystem=fs)

    def table_names(self) -> list[str]:
        return sorted(set(self.snapshot().tables) | set(self._schemas))

    # ---- writing -------------------------------------------------------------------------
    @contextmanager
    def transaction(self, run_id: str | None = None) -> Iterator[Transaction]:
        """One writer at a time; the commit happens when the block ends without an error."""
        with self.locked():
            tx = Transaction(self, self.snapshot(), run_id or uuid.uuid4().hex[:12])
            yield tx
            tx.commit()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The writer lock (housekeeping takes it too: a writer's uncommitted files look
        exactly like garbage). On a bucket there is no lock: commits are optimistic."""
        with self.storage.lock():
            yield

    def _commit(self, snapshot: Snapshot) -> None:
        name = f"{MANIFEST_DIR}/v{snapshot.version:08d}.json"
        text = json.dumps(snapshot.to_json(), ensure_ascii=False, indent=1)
        try:
            self.storage.create_exclusive(name, text)
        except VersionExists:
            raise WarehouseError(
                f"another run committed version {snapshot.version} of {self.storage.uri} "
                "first; nothing of this run was committed — run it again"
            ) from None


class Transaction:
    """Stages new table states and cursors; nothing is visible until `commit`."""

    def __init__(self, warehouse: Warehouse, base: Snapshot, run_id: str) -> None:
        self.warehouse = warehouse
        self.base = base
        self.run_id = run_id
        self._tables: dict[str, TableState] = dict(base.tables)
        self._cursors: dict[str, Any] = dict(base.cursors)
        self._changed = False
        self._seq = 0
        # Table → the keys its upserts replaced or added (None: rewritten some other way), so
        # the marts recompute only what this transaction touched.
        self.replaced: dict[str, set[str] | None] = {}

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo what the block staged if it fails (one form's error must not leave half of
        that form staged); files it wrote stay unreferenced."""
        tables, cursors, changed = dict(self._tables), dict(self._cursors), self._changed
        try:
            yield
        except BaseException:
            self._tables, self._cursors, self._changed = tables, cursors, changed
            raise

    def _staged(self) -> Snapshot:
        """What this transaction sees: the base version plus its own staged writes."""
        return Snapshot(0, None, None, self._tables, self._cursors)

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        return self.warehouse.read(table, self._staged(), columns)

    def dataset(self, table: str) -> ds.Dataset | pa.Table:
        return self.warehouse.dataset(table, self._staged())

    def read_partitions(
        self, table: str, contains: str, columns: list[str] | None = None
    ) -> pa.Table:
        """Only the files whose path contains `contains` (e.g. "/form=sammachip_household/")."""
        state = self._tables.get(table, TableState())
        kept = TableState(tuple(f for f in state.files if contains in f), 0)
        staged = Snapshot(0, None, None, {table: kept}, {})
        return self.warehouse.read(table, staged, columns)

    def files(self, table: str) -> tuple[str, ...]:
        return self._tables.get(table, TableState()).files

    def rows(self, table: str) -> int:
        return self._tables.get(table, TableState()).rows

    def cursor(self, key: str) -> Any:
        return self._cursors.get(key)

    def _write_file(self, table: str, data: pa.Table, partition: str | None) -> str:
        self._seq += 1
        rel = f"tables/{table}/" + (f"{partition}/" if partition else "")
        rel += f"part-{self.run_id}-{self._seq:04d}-{uuid.uuid4().hex[:8]}.parquet"
        self.warehouse.storage.write_table(rel, data)
        return rel

    def _stamp(self) -> str:
        return datetime.now(UTC).isoformat(timespec="seconds")

    def _unknown_rows(self, table: str) -> None:
        self.replaced[table] = None

    def append(self, table: str, data: pa.Table, partition: str | None = None) -> None:
        if data.num_rows == 0:
            return
        self._unknown_rows(table)
        state = self._tables.get(table, TableState())
        path = self._write_file(table, data, partition)
        self._tables[table] = TableState(
            (*state.files, path), state.rows + data.num_rows, self._stamp()
        )
        self._changed = True

    def replace(self, table: str, data: pa.Table) -> None:
        """Rewrite a whole table (marts, and clean tables after an upsert)."""
        files = (self._write_file(table, data, None),) if data.num_rows else ()
        self._tables[table] = TableState(files, data.num_rows, self._stamp())
        self._unknown_rows(table)
        self._changed = True

    def upsert(
        self, table: str, data: pa.Table, replaced_keys: set[str], key: str = "submission_key"
    ) -> None:
        """Drop every row whose `key` is in `replaced_keys`, then add `data`.

        Dropping by the batch's keys (not only the rows in `data`) is what lets a submission
        move from clean to quarantine and back, and lets an edit shrink a repeat group.
        Only files holding a replaced key are rewritten and `data` lands in a file of its own,
        so a night's cost follows what changed, not the table's history.
        """
        state = self._tables.get(table, TableState())
        files, rows = list(state.files), state.rows
        if (seen := self.replaced.get(table, set())) is not None:
            self.replaced[table] = seen | replaced_keys | set(data[key].to_pylist())
        if replaced_keys and files:
            doomed = pa.array(sorted(replaced_keys))
            files, dropped = self._drop_keys(table, files, key, doomed)
            rows -= dropped
        if data.num_rows:
            files.append(self._write_file(table, data, None))
            rows += data.num_rows
        self._tables[table] = TableState(tuple(files), rows, self._stamp())
        self._changed = True
        if len(files) > MAX_FILES:
            self._merge_small(table)

    def _drop_keys(
        self, table: str, files: list[str], key: str, doomed: pa.Array
    ) -> tuple[list[str], int]:
        """`files` with the rows whose `key` is in `doomed` removed (a hit file is rewritten
        without them, or dropped when nothing is left), and how many rows went."""
        storage, kept, dropped = self.warehouse.storage, [], 0
        for rel in files:
            path = storage.path(rel)
            keys = pq.read_table(path, columns=[key], filesystem=storage.fs)[key]
            hit = pc.is_in(keys, value_set=doomed)
            hits = pc.sum(hit).as_py() or 0
            if not hits:
                kept.append(rel)
                continue
            dropped += hits
            if hits < len(keys):
                rest = pq.read_table(path, filesystem=storage.fs).filter(pc.invert(hit))
                kept.append(self._write_file(table, rest, None))
        return kept, dropped

    def _merge_small(self, table: str) -> None:
        """Merge every file but the largest into one: nightly and event-driven runs each add
        a file, and readers slow down with the count (size-tiered, like LSM compaction)."""
        storage = self.warehouse.storage
        files = list(self._tables[table].files)
        largest = max(files, key=storage.size)
        self.merge(table, [f for f in files if f != largest], None)

    def merge(self, table: str, files: list[str], partition: str | None) -> None:
        """Replace some files of a table by one file holding the same rows (compaction)."""
        fs = self.warehouse.storage.fs
        parts = [pq.read_table(self.warehouse.storage.path(f), filesystem=fs) for f in files]
        merged = pa.concat_tables(parts, promote_options="permissive")
        state = self._tables[table]
        gone = set(files)
        kept = tuple(f for f in state.files if f not in gone)
        new = self._write_file(table, merged, partition)
        self._tables[table] = TableState((*kept, new), state.rows, self._stamp())
        self._changed = True

    def rewrite(self, table: str, rel: str, data: pa.Table) -> None:
        """Replace one file of a table by `data`, in the same partition folder (a derived
        column recomputed for the same rows); the old file stays until a vacuum."""
        state = self._tables[table]
        self._unknown_rows(table)
        folder = rel.removeprefix(f"tables/{table}/").rpartition("/")[0]
        new = self._write_file(table, data, folder or None)
        files = tuple(new if f == rel else f for f in state.files)
        self._tables[table] = TableState(files, state.rows, self._stamp())
        self._changed = True

    def set_cursor(self, key: str, value: Any) -> None:
        if self._cursors.get(key) != value:
            self._cursors[key] = value
            self._changed = True

    def commit(self) -> Snapshot | None:
        if not self._changed:
            return None
        snapshot = Snapshot(
            self.base.version + 1, self._stamp(), self.run_id, self._tables, self._cursors
        )
        self.warehouse._commit(snapshot)
        self._changed = False
        return snapshot
