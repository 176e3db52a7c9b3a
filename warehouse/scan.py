"""DuckDB views over warehouse tables, scanned lazily: the marts and the cross-form checks
query a table's files where they lie, reading only the columns and rows the SQL needs."""

from __future__ import annotations

import os
import threading

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

_database: duckdb.DuckDBPyConnection | None = None
_opening = threading.Lock()
# Databases a forked child inherited: their worker threads did not come along, so a query
# would wait for them forever, and closing one would too. Kept, never used.
_inherited: list[duckdb.DuckDBPyConnection] = []


def connect() -> duckdb.DuckDBPyConnection:
    """A connection of its own to the process's one in-memory DuckDB database: what it
    registers (`register`, Arrow tables, temporary views) only it sees, and it is gone with
    the connection. A new database costs ~16 ms, a connection to one almost nothing — and a
    night's load asks for ~30 of them. A forked child opens a database of its own."""
    global _database
    with _opening:
        if _database is None:
            _database = duckdb.connect()
        return _database.cursor()


def _forked() -> None:
    global _database, _opening
    if _database is not None:
        _inherited.append(_database)
    _database, _opening = None, threading.Lock()


os.register_at_fork(after_in_child=_forked)


def register(con: duckdb.DuckDBPyConnection, view: str, data: pa.Table | ds.Dataset) -> None:
    """`data` (a table in memory or a warehouse dataset) as the view `view`.

    Files on a local disk are read by DuckDB's own Parquet reader, in parallel: at province
    scale the marts build in ~60% of the time a pyarrow dataset scan takes. Elsewhere (S3)
    pyarrow reads them. Either way a column the code added reads as null in older files.
    """
    local = isinstance(data, ds.FileSystemDataset) and isinstance(
        data.filesystem, pafs.LocalFileSystem
    )
    if not local:
        con.register(view, data)
        return
    con.register(f"{view}_declared", data.schema.empty_table())
    files = ", ".join("'" + f.replace("'", "''") + "'" for f in data.files)
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {view} AS
        SELECT * FROM {view}_declared
        UNION ALL BY NAME SELECT * FROM read_parquet([{files}], union_by_name = true)""")
