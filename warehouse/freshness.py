"""How current the officer lists are. Every sync run records, per configured server, when it
last fetched everything and what failed since; the officer files show it (`SyncNotice`), so a
failed sync never leaves officers a list that looks fine but is stale.

The record lives among the warehouse's cursors, so it is committed with the data it describes
(and rolled back with them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sammachip.schemas.registry import FORMS
from sammachip.schemas.tables import CLEAN_TABLES

if TYPE_CHECKING:  # the officer-file workers read the notices without loading the warehouse
    from sammachip.warehouse.store import Snapshot, Transaction

STATUS_KEY = "sync_status"
PHONES_KEY = "phones_status"


@dataclass(frozen=True)
class SyncNotice:
    """The last sync did not fetch everything: every officer file says so, and how old its
    data are, so a stale list never passes for today's."""

    attempted_at: datetime  # when the sync that failed ran
    data_as_of: datetime | None  # the last sync that fetched everything (None: none yet)
    failed: tuple[str, ...] = ()  # what could not be fetched: form · server, Thai first
    errors: tuple[str, ...] = ()  # the servers' answers, for the data manager


class Outcome(Protocol):
    """What a run learnt of one form or server (the flows' `FormResult`)."""

    form_id: str  # "*": the whole server
    server: str
    error: str | None


def record_sync(
    tx: Transaction, servers: Sequence[str], outcomes: Iterable[Outcome], now: datetime
) -> None:
    """Stage this run's outcome for the configured `servers` (their names): a server whose
    listing and every form synced is current as of `now`; one with a failure keeps the time
    of its last complete sync. A failure that names no configured server counts against every
    server: officers are told too much, never too little."""
    before = (tx.cursor(STATUS_KEY) or {}).get("servers", {})
    names = list(servers)
    failed: dict[str, list[list[str]]] = {}
    for o in outcomes:
        if o.error:
            for name in [o.server] if o.server in names else names:
                failed.setdefault(name, []).append([o.form_id, o.error])
    servers = {}
    for name in names:
        errors = failed.get(name, [])
        synced_at = before.get(name, {}).get("synced_at") if errors else now.isoformat()
        servers[name] = {"synced_at": synced_at, "failed": errors}
    tx.set_cursor(STATUS_KEY, {"at": now.isoformat(), "servers": servers})


def sync_notice(cursors: Mapping[str, Any]) -> SyncNotice | None:
    """What officers must be told about the last sync: nothing when it fetched everything."""
    status = cursors.get(STATUS_KEY)
    if not status:
        return None  # no sync recorded yet (a warehouse fed by webhook deliveries only)
    failing = {name: s for name, s in status["servers"].items() if s["failed"]}
    if not failing:
        return None
    failures = [
        (name, form_id, error) for name, s in failing.items() for form_id, error in s["failed"]
    ]
    return SyncNotice(
        attempted_at=datetime.fromisoformat(status["at"]),
        data_as_of=data_as_of(cursors),  # a failing server's: the others synced just now
        failed=tuple(dict.fromkeys(_what(name, form_id) for name, form_id, _ in failures)),
        errors=tuple(f"{name}: {error}" for name, _, error in failures),
    )


def data_as_of(cursors: Mapping[str, Any]) -> datetime | None:
    """When the data were last complete: the oldest of the servers' last complete syncs
    (None: no sync recorded, or a server never synced whole). Every officer file says it."""
    status = cursors.get(STATUS_KEY)
    synced = [s["synced_at"] for s in (status or {}).get("servers", {}).values()]
    if not synced or None in synced:
        return None
    return datetime.fromisoformat(min(synced))


def lists_would_mislead(snapshot: Snapshot) -> bool:
    """True when the last sync failed and the warehouse holds no submission at all: officer
    lists written now would be empty and read as "no data yet" (a sync that fetched nothing
    never replaces good lists with empty ones)."""
    failed = sync_notice(snapshot.cursors) is not None
    return failed and not any(
        t in snapshot.tables and snapshot.tables[t].rows for t in CLEAN_TABLES
    )


@dataclass(frozen=True)
class PhonesNotice:
    """The last push to a server's phones failed: officers' phones hold older lists than their
    files, and every officer file says so."""

    since: datetime  # the first failed push of the streak: the phones were not updated since
    servers: tuple[str, ...]
    fixes: tuple[str, ...]  # the run summary's line per server, naming the fix


def record_push(tx: Transaction, failed: Mapping[str, str], now: datetime) -> None:
    """Stage the last push's outcome: each server whose phones did not get their lists (name →
    the run summary's line), kept with the time its failures began. A push that reached every
    server clears it; when nothing changes, nothing is staged (an unchanged push commits no
    warehouse version)."""
    before = tx.cursor(PHONES_KEY) or {}
    status = {
        name: {"since": before.get(name, {}).get("since", now.isoformat()), "error": error}
        for name, error in failed.items()
    }
    if status or before:
        tx.set_cursor(PHONES_KEY, status)


def phones_notice(cursors: Mapping[str, Any]) -> PhonesNotice | None:
    """What officers must be told about their phones' lists: nothing when the last push
    reached every server (or none was recorded)."""
    status = cursors.get(PHONES_KEY) or {}
    if not status:
        return None
    return PhonesNotice(
        since=min(datetime.fromisoformat(s["since"]) for s in status.values()),
        servers=tuple(status),
        fixes=tuple(s["error"] for s in status.values()),
    )


def _what(server: str, form_id: str) -> str:
    spec = FORMS.get(form_id)
    form = f"{spec.title_th} ({spec.title_en})" if spec else "ทุกแบบฟอร์ม (every form)"
    return f"{form} · เซิร์ฟเวอร์ {server}"
