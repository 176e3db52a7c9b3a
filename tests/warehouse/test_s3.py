"""The warehouse on an S3-compatible bucket: moto's S3 server on loopback, real HTTP, real
Parquet — the same guarantees as a local folder, with optimistic commits instead of a lock."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pyarrow as pa
import pytest

from sammachip.warehouse.housekeeping import vacuum
from sammachip.warehouse.query import connect
from sammachip.warehouse.store import Warehouse, WarehouseError

SCHEMA = pa.schema([("submission_key", pa.string()), ("name", pa.string())])
BUCKET = "sammachip-office"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def wh(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Warehouse:
    env = {
        "SAMMACHIP_S3_ENDPOINT": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Warehouse(f"s3://{BUCKET}/{request.node.name}", {"names": SCHEMA})


def rows(*pairs: tuple[str, str]) -> pa.Table:
    return pa.Table.from_pylist([{"submission_key": k, "name": v} for k, v in pairs], SCHEMA)


def test_rows_round_trip_through_the_bucket_byte_exact(wh: Warehouse) -> None:
    with wh.transaction() as tx:
        tx.append("names", rows(("a", "นางสาวพรทิพย์ ศรีสุข")), partition="day=2026-11-24")
        tx.set_cursor("kobo:x", {"last_id": 7})
    with wh.transaction() as tx:
        tx.upsert("names", rows(("a", "นางพรทิพย์ ศรีสุข"), ("b", "นายสมชาย")), {"a", "b"})
    assert wh.snapshot().version == 2 and wh.snapshot().cursors == {"kobo:x": {"last_id": 7}}
    assert sorted(wh.read("names").to_pylist(), key=lambda r: r["submission_key"]) == [
        {"submission_key": "a", "name": "นางพรทิพย์ ศรีสุข"},
        {"submission_key": "b", "name": "นายสมชาย"},
    ]
    assert connect(wh).execute("select count(*) from names").fetchone() == (2,)


def test_a_run_that_lost_the_race_commits_nothing(wh: Warehouse) -> None:
    with wh.transaction() as first:
        first.append("names", rows(("a", "x")))
    # Two writers start from version 1; the bucket lets exactly one create version 2.
    late = wh.transaction()
    tx = late.__enter__()
    tx.append("names", rows(("late", "y")))
    with wh.transaction() as winner:
        winner.append("names", rows(("b", "z")))
    with pytest.raises(WarehouseError, match="run it again"):
        late.__exit__(None, None, None)
    assert sorted(wh.read("names")["submission_key"].to_pylist()) == ["a", "b"]


def test_vacuum_works_on_the_bucket_and_keeps_the_latest(wh: Warehouse) -> None:
    for n in range(3):
        with wh.transaction() as tx:
            tx.replace("names", rows((f"k{n}", "v")))
    result = vacuum(wh, keep_versions=1, min_age_seconds=0)
    assert (result.files_deleted, result.manifests_deleted) == (2, 2)
    assert wh.read("names").to_pylist() == [{"submission_key": "k2", "name": "v"}]


def test_a_write_the_bucket_refuses_is_a_clear_error_and_commits_nothing(
    wh: Warehouse, s3_endpoint: str
) -> None:
    lost = Warehouse("s3://no-such-bucket-here/district", {"names": SCHEMA})
    refused = pytest.raises(WarehouseError, match="nothing of this run was committed")
    with refused, lost.transaction() as tx:
        tx.append("names", rows(("a", "นายสมชาย")))
    assert lost.snapshot().version == 0
