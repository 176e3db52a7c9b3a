"""ODK Central's sync passes: what was created, changed, deleted or restored since the last
committed sync of a form.

Central pages its OData feed newest first and filters on `__system/submissionDate` or
`updatedAt`; each pass re-reads an overlap before the watermark (a row committed late can carry
an earlier timestamp) and upserts by `__id`. Soft deletes have a feed of their own
(`__system/deletedAt`, its own watermark); a restore moves no timestamp, so each id deleted
lately is watched — asked for by id every night — until Central would have purged it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sammachip.connectors.odk.client import OdkClient
from sammachip.connectors.retry import parse_utc
from sammachip.connectors.sources import Batches, SyncPolicy
from sammachip.schemas.records import Submission

# Central purges a soft-deleted submission 30 days after its deletion (its default): until
# then it can be restored, so a deleted submission is asked for by id until a little after.
RESTORE_WINDOW = timedelta(days=31)


def changes(
    open_client: Callable[[], OdkClient],
    xml_form_id: str,
    cursor: dict[str, Any],
    policy: SyncPolicy,
    *,
    now: datetime,
    full_rescan: bool,
    to_record: Callable[[dict[str, Any]], Submission],
) -> Batches:
    """Everything created or changed since the watermark (minus an overlap), re-read and
    upserted by `__id`, oldest first; the watermark is the newest submissionDate/updatedAt
    seen. Submissions deleted lately are asked for by id too: a restore moves no
    timestamp, so only that shows them live again.

    Central pages newest first, and each batch is checked for duplicate codes against the
    batches before it, so the pass is read whole (the client is closed before the first
    batch) and re-batched by (submitted_at, id): the earlier registration keeps the code
    whatever the page size. The cost is holding one form's pass in memory (a district's delta
    or, on a rescan, its few thousand rows).
    """
    since = None if full_rescan or not cursor.get("since") else parse_utc(cursor["since"])
    overlap = timedelta(hours=policy.odk_overlap_hours)
    newest = since
    rows: dict[str, dict] = {}
    with open_client() as client:
        for page, _count in client.pages(xml_form_id, since=since, overlap=overlap):
            rows.update((str(r["__id"]), r) for r in page)
        watched = _watched(cursor, now)  # a rescan reads them anyway
        for r in _flat(client.rows(xml_form_id, [] if full_rescan else watched)):
            rows.setdefault(str(r["__id"]), r)  # live again: a restore
    for r in rows.values():
        system = r.get("__system") or {}
        for stamp in (system.get("updatedAt"), system.get("submissionDate")):
            if stamp and (newest is None or parse_utc(stamp) > newest):
                newest = parse_utc(stamp)
    subs = [to_record(r) for r in rows.values()]
    subs.sort(key=lambda s: (s.submitted_at, s.submission_id))
    size = policy.batch_size  # as Kobo's: what is validated and staged together
    for start in range(0, len(subs), size):
        yield subs[start : start + size], len(subs) - start  # this batch and those after
    if newest is not None:
        cursor["since"] = newest.isoformat()
    watch = cursor.get("watch") or {}
    cursor["watch"] = {i: t for i, t in sorted(watch.items()) if i not in rows}


def deletions(
    open_client: Callable[[], OdkClient],
    xml_form_id: str,
    cursor: dict[str, Any],
    policy: SyncPolicy,
    *,
    full: bool,
) -> dict[str, datetime]:
    """`__id` → Central's deletion time, for what it soft-deleted since the deletion
    watermark (minus the overlap), or everything it still lists as deleted (`full`). The
    watermark moves to the newest deletion seen; each one is watched for a restore (see
    `changes`) until Central would have purged it."""
    since = None if full or not cursor.get("deleted_since") else parse_utc(cursor["deleted_since"])
    overlap = timedelta(hours=policy.odk_overlap_hours)
    with open_client() as client:
        found = {
            str(r["__id"]): parse_utc((r.get("__system") or {})["deletedAt"])
            for r in _flat(client.deleted(xml_form_id, since=since, overlap=overlap))
        }
    newest = max([*found.values(), *([since] if since else [])], default=None)
    if newest is not None:
        cursor["deleted_since"] = newest.isoformat()
    watch = {**(cursor.get("watch") or {}), **{i: t.isoformat() for i, t in found.items()}}
    cursor["watch"] = dict(sorted(watch.items()))
    return found


def _watched(cursor: dict[str, Any], now: datetime) -> list[str]:
    """Ids deleted within the restore window, oldest first; older ones leave the cursor."""
    watch = cursor.get("watch") or {}
    kept = {i: t for i, t in sorted(watch.items()) if parse_utc(t) > now - RESTORE_WINDOW}
    cursor["watch"] = kept
    return sorted(kept, key=lambda i: (kept[i], i))


def _flat(pages: Iterator[list[dict]]) -> Iterator[dict]:
    """The rows of a client's pages."""
    for page in pages:
        yield from page
