"""Fingerprint every table of a warehouse: rows and a content hash, run-specific columns left out.

Two warehouses built from the same data (the demo with the same seed and date) must print the same
fingerprints whatever the code's layout: the check behind a refactor that must not change
behaviour. Columns that name the run or the moment it ran (batch ids, load times, the
warehouse's own bookkeeping) differ between any two runs and are left out.

    .venv/bin/python bench/fingerprint.py data/warehouse > before.txt
"""

from __future__ import annotations

import hashlib
import sys

import duckdb

# Set by each run, not by the data: ids of the run and wall-clock times of loading.
RUN_COLUMNS = {
    "ingest_batch",
    "ingested_at",
    "quarantined_at",
    "run_at",
    "seen_at",
    "run_id",
    "batch",
    "valid_from",
    "first_seen",
    "last_seen",
    "resolved_at",
    "committed_at",
    "validated_at",
}


def fingerprints(path: str) -> dict[str, tuple[int, str]]:
    """table → (rows, sha256 of its rows sorted, run columns left out)."""
    from sammachip.warehouse.load import open_warehouse
    from sammachip.warehouse.query import connect

    con: duckdb.DuckDBPyConnection = connect(open_warehouse(path))
    names = [
        r[0]
        for r in con.execute(
            "select view_name from duckdb_views() where not internal order by 1"
        ).fetchall()
    ]
    out = {}
    for name in names:
        cols = [c for c, *_ in con.execute(f'describe "{name}"').fetchall() if c not in RUN_COLUMNS]
        rows = sorted(
            repr(r)
            for r in con.execute(
                f'select {", ".join(repr(c).replace(chr(39), chr(34)) for c in cols)} from "{name}"'
            ).fetchall()
        )
        out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    return out


if __name__ == "__main__":
    for table, (rows, digest) in fingerprints(sys.argv[1]).items():
        print(f"{table:28} {rows:>8} {digest}")
