"""Kobo's sync passes: what may have changed since the last committed sync of an asset.

Kobo has no "modified since" (kpi#7259), so each run makes keyset passes on `_id` — new ids
(with an overlap), validation statuses set since the last run, and a look-back window of recent
submissions (edits) — and keeps its position in a `KoboCursor`, stored with the data it covers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sammachip.connectors.kobo.client import KoboClient
from sammachip.connectors.sources import SyncPolicy


@dataclass
class KoboCursor:
    """Where the last committed sync of an asset stopped."""

    last_id: int = 0  # highest `_id` seen
    status_ts: int = 0  # newest `_validation_status.timestamp` seen (epoch seconds)

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> KoboCursor:
        doc = doc or {}
        return cls(int(doc.get("last_id") or 0), int(doc.get("status_ts") or 0))

    def to_json(self) -> dict[str, int]:
        return {"last_id": self.last_id, "status_ts": self.status_ts}

    def observe(self, page: list[dict[str, Any]]) -> None:
        """Advance past a page of submissions (per page: most carry no review)."""
        if not page:
            return
        self.last_id = max(self.last_id, *(int(raw["_id"]) for raw in page))
        stamps = [
            int(s.get("timestamp") or 0) for raw in page if (s := raw.get("_validation_status"))
        ]
        self.status_ts = max([self.status_ts, *stamps])


def kobo_time(moment: datetime) -> str:
    """`_submission_time` is stored as a UTC string: compare with exactly this format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def changes(
    client: KoboClient,
    asset_uid: str,
    cursor: KoboCursor,
    policy: SyncPolicy,
    *,
    now: datetime,
    full_rescan: bool = False,
) -> Iterator[tuple[list[dict], int]]:
    """Every submission that may have changed since `cursor`, in batches of about
    `policy.batch_size`, with the server's count of what the current pass still has to send.

    Passes: new `_id`s (with an overlap), then — below where that pass began, so nothing is
    read twice — validation statuses set since the last run and the look-back window of
    recent submissions (edits). Batches fill across passes, so a form with a few changes is
    validated once, not once per pass. A submission the look-back finds again after the status
    pass read it is skipped (an edit made during the run is the next run's). Re-read
    versions are dropped downstream by payload hash, so overlaps cost bandwidth, never
    duplicates. `cursor` advances as rows are seen; the caller stores it only when the data
    is committed.
    """
    start = KoboCursor(cursor.last_id, cursor.status_ts)
    passes: list[tuple[int, int | None, dict[str, Any]]]
    if full_rescan or start.last_id == 0:
        passes = [(0, None, {})]
    else:
        since = now - timedelta(days=policy.lookback_days)
        newest_read = max(0, start.last_id - policy.overlap_ids)
        passes = [
            (newest_read, None, {}),
            (0, newest_read, {"_validation_status.timestamp": {"$gt": start.status_ts}}),
            (0, newest_read, {"_submission_time": {"$gte": kobo_time(since)}}),
        ]
    # The status and look-back passes share a range and may read a submission twice; the
    # first pass's range is above theirs, so only theirs are remembered.
    seen: set[int] = set()
    batch: list[dict] = []
    remaining = 0
    for after_id, until_id, where in passes:
        shared = until_id is not None
        for page, count in client.pages(
            asset_uid, after_id=after_id, until_id=until_id, where=where
        ):
            fresh = [raw for raw in page if raw["_id"] not in seen] if seen else page
            if shared:
                seen.update(raw["_id"] for raw in fresh)
            cursor.observe(fresh)
            batch.extend(fresh)
            remaining = count
            if len(batch) >= policy.batch_size:
                yield batch, remaining
                batch = []
    if batch:
        yield batch, remaining
