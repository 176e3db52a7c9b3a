"""Parquet tables with an atomically swapped manifest.

Layout under the warehouse root:

    tables/<table>/[<partition>/]part-<batch>-<n>.parquet   data files, never modified
    _manifest/v00000042.json                                  one file per committed version
    _lock                                                     held (flock) by the one writer

A version lists every live file of every table plus the sync cursors, so a run's rows and the
cursor advance become visible together, in one `os.replace`. A writer killed at any instant
leaves only unreferenced files behind; readers always see the last complete version.
"""

from __future__ import annotations

import fcntl
import json
import os
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

from warehouse import failpoints

MANIFEST_DIR = "_manifest"
LOCK_FILE = "_lock"


class WarehouseError(RuntimeError):
    """The warehouse cannot be read or written; the message says what to do."""


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Warehouse:
    def __init__(self, root: str | Path, schemas: dict[str, pa.Schema] | None = None) -> None:
        self.root = Path(root)
        self._schemas = schemas or {}

    # ---- reading -------------------------------------------------------------------------
    def _manifests(self) -> list[Path]:
        folder = self.root / MANIFEST_DIR
        return sorted(folder.glob("v*.json")) if folder.exists() else []

    def snapshot(self) -> Snapshot:
        """The latest committed version (an empty one for a new warehouse)."""
        manifests = self._manifests()
        if not manifests:
            return Snapshot.empty()
        latest = manifests[-1]
        try:
            return Snapshot.from_json(json.loads(latest.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as err:
            raise WarehouseError(
                f"manifest {latest} is unreadable ({err}); move it aside to fall back to the "
                "previous version"
            ) from err

    def files(self, table: str, snapshot: Snapshot | None = None) -> list[Path]:
        state = (snapshot or self.snapshot()).tables.get(table, TableState())
        return [self.root / f for f in state.files]

    def read(
        self, table: str, snapshot: Snapshot | None = None, columns: list[str] | None = None
    ) -> pa.Table:
        files = self.files(table, snapshot)
        if not files:
            schema = self._schemas.get(table)
            if schema is None:
                return pa.table({})
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        # Schema evolution: a column the code added reads as null in older files; a column the
        # code dropped stays readable in the files that have it.
        declared = self._schemas.get(table)
        schemas = ([declared] if declared else []) + [pq.read_schema(f) for f in files]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
        return dataset.to_table(columns=columns)

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
        exactly like garbage)."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / MANIFEST_DIR).mkdir(exist_ok=True)
        with open(self.root / LOCK_FILE, "a+") as lock:
            # flock is released by the kernel when the holder dies: no stale locks after kill -9.
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def manifests(self) -> list[Path]:
        return self._manifests()

    def _commit(self, snapshot: Snapshot) -> None:
        folder = self.root / MANIFEST_DIR
        final = folder / f"v{snapshot.version:08d}.json"
        if final.exists():
            raise WarehouseError(f"version {snapshot.version} already exists: another writer?")
        tmp = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
        text = json.dumps(snapshot.to_json(), ensure_ascii=False, indent=1)
        failpoints.failpoint("before-manifest")
        with open(tmp, "w", encoding="utf-8") as out:
            if failpoints.armed("manifest-mid"):
                out.write(text[: len(text) // 2])
                out.flush()
                failpoints.die()
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        failpoints.failpoint("manifest-written")
        os.replace(tmp, final)  # the commit: one atomic rename
        failpoints.failpoint("after-commit")
        _fsync_dir(folder)


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

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """A table as this transaction sees it (its own staged writes included)."""
        staged = Snapshot(0, None, None, self._tables, self._cursors)
        return self.warehouse.read(table, staged, columns)

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

    def cursor(self, key: str) -> Any:
        return self._cursors.get(key)

    def _write_file(self, table: str, data: pa.Table, partition: str | None) -> str:
        self._seq += 1
        rel = Path("tables") / table
        if partition:
            rel /= partition
        rel /= f"part-{self.run_id}-{self._seq:04d}-{uuid.uuid4().hex[:8]}.parquet"
        path = self.warehouse.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data, path, compression="zstd")
        if failpoints.armed("data-file-mid"):  # a writer killed half-way through a file
            with open(path, "r+b") as f:
                f.truncate(path.stat().st_size // 2)
            failpoints.die()
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        return str(rel)

    def _stamp(self) -> str:
        return datetime.now(UTC).isoformat(timespec="seconds")

    def append(self, table: str, data: pa.Table, partition: str | None = None) -> None:
        if data.num_rows == 0:
            return
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
        self._changed = True

    def upsert(
        self, table: str, data: pa.Table, replaced_keys: set[str], key: str = "submission_key"
    ) -> None:
        """Drop every row whose `key` is in `replaced_keys`, then add `data`.

        Dropping by the batch's keys (not only the rows in `data`) is what lets a submission
        move from clean to quarantine and back, and lets an edit shrink a repeat group.
        """
        current = self.read(table)
        if current.num_rows and replaced_keys:
            keep = pc.invert(pc.is_in(current[key], value_set=pa.array(sorted(replaced_keys))))
            current = current.filter(keep)
        if data.num_rows:
            current = (
                pa.concat_tables([current, data], promote_options="permissive")
                if current.num_rows
                else data
            )
        self.replace(table, current)

    def rewrite(self, table: str, old_files: list[str], data: pa.Table, partition: str | None
                ) -> None:  # fmt: skip
        """Replace some files of a table by one file holding the same rows (compaction)."""
        state = self._tables[table]
        kept = tuple(f for f in state.files if f not in set(old_files))
        new = self._write_file(table, data, partition)
        self._tables[table] = TableState((*kept, new), state.rows, self._stamp())
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
