"""DuckDB over the warehouse: every table (raw, clean, marts) is a view by its name."""

from __future__ import annotations

import duckdb

from sammachip.warehouse.store import Warehouse


def connect(wh: Warehouse) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose views show the latest committed version of every table."""
    con = duckdb.connect()
    snapshot = wh.snapshot()
    for name in wh.table_names():
        files = wh.files(name, snapshot)
        if files and wh.root is not None:  # local: DuckDB reads the files itself
            listed = "[" + ", ".join(_quote(f) for f in files) + "]"
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet({listed}, union_by_name=true)"
            )
        else:  # empty, or in a bucket (DuckDB's S3 support is a download this box lacks)
            con.register(f"_{name}_arrow", wh.read(name, snapshot))
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_arrow")
    return con


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_stats(wh: Warehouse) -> list[dict[str, object]]:
    """Name, rows, bytes on disk and last commit time of every table."""
    snapshot = wh.snapshot()
    stats = []
    for name in wh.table_names():
        state = snapshot.tables.get(name)
        stats.append(
            {
                "table": name,
                "rows": state.rows if state else 0,
                "bytes": sum(wh.storage.size(f) for f in state.files) if state else 0,
                "files": len(state.files) if state else 0,
                "last_commit": state.committed_at if state else None,
            }
        )
    return stats
