"""The manifest store: atomic commits, isolation of uncommitted writes, upserts, cursors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sammachip.warehouse.housekeeping import compact, vacuum
from sammachip.warehouse.store import Warehouse

SCHEMA = pa.schema([("submission_key", pa.string()), ("value", pa.int64())])


def rows(*pairs: tuple[str, int]) -> pa.Table:
    return pa.Table.from_pylist([{"submission_key": k, "value": v} for k, v in pairs], SCHEMA)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh", {"t": SCHEMA})


def test_a_new_warehouse_reads_as_empty_typed_tables(wh: Warehouse) -> None:
    assert wh.snapshot().version == 0
    assert wh.read("t").schema == SCHEMA
    assert wh.read("t").num_rows == 0


def test_rows_and_cursor_become_visible_together_on_commit(wh: Warehouse) -> None:
    with wh.transaction("run1") as tx:
        tx.append("t", rows(("a", 1), ("b", 2)))
        tx.set_cursor("kobo:x:asset", {"last_id": 2})
        assert wh.read("t").num_rows == 0  # not visible to readers before the commit
        assert tx.read("t").num_rows == 2  # but visible to the transaction itself
    snap = wh.snapshot()
    assert snap.version == 1
    assert snap.cursors == {"kobo:x:asset": {"last_id": 2}}
    assert sorted(wh.read("t")["submission_key"].to_pylist()) == ["a", "b"]


def test_a_failed_run_commits_nothing(wh: Warehouse) -> None:
    with pytest.raises(RuntimeError), wh.transaction("run1") as tx:
        tx.append("t", rows(("a", 1)))
        tx.set_cursor("c", 1)
        raise RuntimeError("killed mid-run")
    assert wh.snapshot().version == 0
    assert wh.read("t").num_rows == 0


def test_upsert_replaces_every_row_of_the_touched_keys(wh: Warehouse) -> None:
    with wh.transaction() as tx:
        tx.append("t", rows(("a", 1), ("b", 2), ("b", 3)))
    with wh.transaction() as tx:
        tx.upsert("t", rows(("b", 20)), replaced_keys={"b", "c"})
    assert sorted(wh.read("t").to_pylist(), key=lambda r: r["submission_key"]) == [
        {"submission_key": "a", "value": 1},
        {"submission_key": "b", "value": 20},
    ]


def test_a_transaction_that_changes_nothing_writes_no_version(wh: Warehouse) -> None:
    with wh.transaction() as tx:
        tx.append("t", rows())
        tx.set_cursor("c", None)
    assert wh.snapshot().version == 0


def test_a_half_written_manifest_is_ignored(wh: Warehouse) -> None:
    with wh.transaction() as tx:
        tx.append("t", rows(("a", 1)))
    # A writer killed while writing the next manifest leaves only its temporary file.
    (wh.root / "_manifest" / ".v00000002.json.dead.tmp").write_text('{"version": 2, "tab')
    assert wh.snapshot().version == 1
    assert wh.read("t").num_rows == 1


def test_thai_text_round_trips_byte_exact(wh: Warehouse) -> None:
    thai = pa.schema([("submission_key", pa.string()), ("name", pa.string())])
    wh = Warehouse(wh.root, {"names": thai})
    text = "นางสาวพรทิพย์ ศรีสุข บ้านโนนสำราญ ๑๒/๓"
    with wh.transaction() as tx:
        tx.append("names", pa.Table.from_pylist([{"submission_key": "a", "name": text}], thai))
    assert wh.read("names")["name"][0].as_py().encode() == text.encode()


def test_compaction_merges_small_files_without_changing_a_row(wh: Warehouse) -> None:
    for n in range(10):  # ten event-driven micro-batches
        with wh.transaction() as tx:
            tx.append("t", rows((f"k{n}", n)), partition="day=2026-11-24")
    before = sorted(wh.read("t").to_pylist(), key=str)
    (result,) = compact(wh, min_files=8)
    assert (result.files_before, result.files_after) == (10, 1)
    assert sorted(wh.read("t").to_pylist(), key=str) == before


def test_vacuum_frees_old_versions_but_never_the_latest(wh: Warehouse) -> None:
    for n in range(4):
        with wh.transaction() as tx:
            tx.replace("t", rows((f"k{n}", n)))
    latest = wh.read("t").to_pylist()
    result = vacuum(wh, keep_versions=1, min_age_seconds=0)
    assert (result.files_deleted, result.manifests_deleted) == (3, 3)
    assert wh.read("t").to_pylist() == latest
    assert len(list((wh.root / "tables").rglob("*.parquet"))) == 1


def test_vacuum_spares_recent_unreferenced_files_a_writer_may_still_commit(wh: Warehouse) -> None:
    with wh.transaction() as tx:
        tx.append("t", rows(("a", 1)))
    # Files of a run in progress are unreferenced until its commit: vacuum takes the lock.
    with wh.locked():
        staged = wh.root / "tables" / "t" / "part-inflight.parquet"
        staged.write_bytes(b"not yet committed")
    assert vacuum(wh, keep_versions=1, min_age_seconds=3600).files_deleted == 0
    assert staged.exists()
