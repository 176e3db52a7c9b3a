"""A push killed (SIGKILL) at any of its writes to Central, or after them and before its record
is committed: the next push converges on the worklist — each item once on the server, nothing
doubled — and the record says what the server holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sammachip.phones.push import PhoneSettings, push_lists
from sammachip.warehouse.store import Warehouse
from tests.phones.conftest import Central, base_rows, put_worklist, row
from tests.phones.test_push_odk import NOW

pytestmark = pytest.mark.slow  # kills processes

ROOT = Path(__file__).resolve().parents[2]


def killed_push(central: Central, wh: Warehouse, failpoint: str) -> int:
    env = {**os.environ, "SAMMACHIP_FAILPOINT": failpoint}
    warehouse = str(wh.root)
    args = [sys.executable, "-m", "tests.phones.push_child", central.url, warehouse]
    return subprocess.run(args, cwd=ROOT, env=env, timeout=120, check=False).returncode


@pytest.mark.parametrize(
    "failpoint",
    [
        "phones-entity-write:1",  # after the bulk create
        "phones-entity-write:2",  # after the first update
        "phones-entity-write:3",  # after the delete
        "phones-before-record",  # every write done, nothing recorded
    ],
)
def test_a_push_killed_anywhere_is_finished_by_the_next_one(
    wh: Warehouse, central: Central, failpoint: str
) -> None:
    put_worklist(wh, base_rows())
    (first,) = push_lists(wh, PhoneSettings(True), ["central"], [central.form], NOW, "n1")
    assert first.error is None
    rows = [
        row("off01", "household", "34140105-07", "นายสมศักดิ์ ใจดี", ["R04", "R05"], house_no="12"),
        *base_rows()[2:],
        row("off02", "household", "34140407-02", "นางคำ ดีใจ", ["R05"], house_no="3"),
    ]
    put_worklist(wh, rows)
    assert killed_push(central, wh, failpoint) == -9  # SIGKILL
    (done,) = push_lists(wh, PhoneSettings(True), ["central"], [central.form], NOW, "n2")
    assert done.error is None
    held = central.held()
    assert sorted(held) == sorted(r["item_id"] for r in rows)  # each item once, none left over
    assert held["household:34140105-07"]["data"]["n_reasons"] == "2"
    record = {
        r["item_id"]: (r["entity_uuid"], r["version"]) for r in wh.read("phone_items").to_pylist()
    }
    assert record == {k: (h["uuid"], h["version"]) for k, h in held.items()}
    (again,) = push_lists(wh, PhoneSettings(True), ["central"], [central.form], NOW, "n3")
    assert again.changed == 0
