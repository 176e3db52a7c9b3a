"""Connections to the process's one DuckDB database (`warehouse.scan.connect`): each sees only
what it registered, and a forked child (the crash tests' killed runs, officer-file workers)
queries a database of its own instead of waiting forever on its parent's."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sammachip.warehouse import scan


def test_each_connection_sees_only_the_views_it_registered() -> None:
    first, second = scan.connect(), scan.connect()
    scan.register(first, "households", pa.table({"hh_code": ["34140101-01"]}))
    scan.register(second, "households", pa.table({"hh_code": ["34140102-07", "34140102-08"]}))
    first.execute("create temp view registered as select hh_code from households")

    assert first.sql("select hh_code from registered").fetchall() == [("34140101-01",)]
    assert second.sql("select count(*) from households").fetchall() == [(2,)]
    assert not second.sql("select * from duckdb_views() where view_name = 'registered'").fetchall()


def _distinct_in_child(path: str, out: Queue) -> None:
    out.put(scan.connect().sql(f"select count(distinct k) from '{path}'").fetchall())


def test_a_forked_child_queries_after_its_parent_did(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.parquet")  # row groups enough for a parallel scan
    pq.write_table(pa.table({"k": [f"k{i}" for i in range(300_000)]}), path, row_group_size=10_000)
    parent = scan.connect()  # the parent's database exists, its worker threads started
    assert parent.sql(f"select count(distinct k) from '{path}'").fetchall() == [(300_000,)]
    forked = multiprocessing.get_context("fork")
    out: Queue = forked.Queue()
    child = forked.Process(target=_distinct_in_child, args=(path, out))
    child.start()
    try:
        assert out.get(timeout=30) == [(300_000,)]
    finally:
        child.kill()
        child.join()
