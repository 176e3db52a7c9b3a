"""What each server's phones hold, in the warehouse (`phone_items`): written after a push, in a
transaction of its own.

The record is never what a push decides from: each push reads the server itself (the entities
and their versions; the media the phones are served), so a push that dies between a server
call and this commit leaves the record a run behind, and the next push converges all the same
and rewrites it. A push that finds everything as recorded commits nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from sammachip.schemas.tables import PHONE_ITEMS
from sammachip.warehouse.freshness import record_push
from sammachip.warehouse.store import Warehouse


@dataclass(frozen=True)
class Held:
    """One list item as a server holds it after a push."""

    item_id: str
    officer_id: str
    entity_uuid: str
    version: int | None
    content_hash: str


def record_held(
    wh: Warehouse,
    server: str,
    source: str,
    target: str,
    held: Sequence[Held],
    now: datetime,
    run_id: str | None = None,
) -> bool:
    """Replace the server's rows; an item whose content and version did not change keeps the
    time it was pushed. False when the record already said so (nothing committed)."""
    with wh.transaction(run_id) as tx:
        before = {
            r["item_id"]: r for r in tx.read("phone_items").to_pylist() if r["server"] == server
        }
        rows = []
        for h in held:
            old = before.get(h.item_id)
            same = old is not None and (old["content_hash"], old["version"]) == (
                h.content_hash,
                h.version,
            )
            rows.append(
                {
                    "server": server,
                    "source": source,
                    "target": target,
                    "item_id": h.item_id,
                    "officer_id": h.officer_id,
                    "entity_uuid": h.entity_uuid,
                    "version": h.version,
                    "content_hash": h.content_hash,
                    "pushed_at": old["pushed_at"] if same and old else now,
                }
            )
        if {r["item_id"]: r for r in rows} == before:
            return False  # nothing staged: the transaction commits no version
        data = pa.Table.from_pylist(rows, schema=PHONE_ITEMS.schema)
        tx.upsert("phone_items", data, {server}, key="server")
    return True


def record_failures(
    wh: Warehouse, failed: Mapping[str, str], now: datetime, run_id: str | None = None
) -> None:
    """Which servers' phones did not get this push's lists (name → the summary's line), for
    the officers' banner of the next files; a transaction of its own, none when unchanged."""
    with wh.transaction(run_id) as tx:
        record_push(tx, failed, now)
