"""What every form source offers a run, whatever its server: the `FormSource` interface (list,
stream what changed, tell what was deleted), where a form's sync position is kept, and the two
policies every source follows (`[sync]`: how much to re-read; `[http]`: how to wait and retry).

Kobo's and ODK Central's sources implement it next to their clients (`connectors.kobo`,
`connectors.odk`); `connectors.discovery` finds them on the configured servers.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sammachip.schemas.records import Submission

Batches = Iterator[tuple[list[Submission], int]]  # submissions, count left in this pass


def made_with_fewer_collections(batches: Batches) -> Batches:
    """`batches`, each one made (pages read, parsed, turned into records) while the garbage
    collector's young generation is collected every 100,000 new containers rather than 700.

    A page of 1,000 submissions makes ~40,000 containers (payload dicts, their lists): at the
    default rate a batch's live payloads were collected again and again and promoted for full
    collections to walk — ~1.5 s of a province fetch's 4.3 s. Only while a batch is made:
    whoever consumes it (validation, marts, officer files) runs at the default rate, because
    over a whole province backfill the young generation held 56 MB more garbage at the peak."""
    while True:
        with _FEWER_COLLECTIONS.held():
            item = next(batches, None)
        if item is None:
            return
        yield item


class _FewerCollections:
    """The collector's rate while any thread makes a batch (forms may sync on threads)."""

    YOUNG = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved = gc.get_threshold()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._saved = gc.get_threshold()
                gc.set_threshold(max(self.YOUNG, self._saved[0]), *self._saved[1:])
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    gc.set_threshold(*self._saved)


_FEWER_COLLECTIONS = _FewerCollections()


@dataclass(frozen=True)
class SyncPolicy:
    """How much to re-read each night (`[sync]`), since Kobo offers no 'modified since'
    (kpi#7259) and ODK Central's timestamps can arrive out of order."""

    overlap_ids: int = 200  # a lower `_id` can become visible after a higher one
    lookback_days: int = 14  # edits happen mostly in the days after submission
    batch_size: int = 20_000  # validated together: GX costs ~0.3 s per batch whatever its size
    odk_overlap_hours: float = 1.0  # ODK: re-read this much before the watermark


@dataclass(frozen=True)
class HttpPolicy:
    """How the server clients wait and retry (`[http]`); the defaults are the clients' own."""

    timeout: float = 60.0  # seconds to connect, send, or wait for the next part of an answer
    attempts: int = 6  # tries of one request, the first included (1: never retry)
    backoff_cap: float = 30.0  # longest wait between two tries, a server's Retry-After included

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for `KoboClient` and `OdkClient`."""
        return asdict(self)


def cursor_key(source: str, server: str, form_uid: str) -> str:
    """Where a form's sync position is kept in the warehouse: by the server's name (its
    identity), like the form's submission keys — never by its URL."""
    return f"{source}:{server}:{form_uid}"


def parse_cursor_key(key: str) -> tuple[str, str, str] | None:
    """(source, server name, form uid) of a form's cursor key; None for any other key. Names
    taken from a host:port (before servers had names) may hold a ':'; form uids do not."""
    source, _, rest = key.partition(":")
    server, _, form_uid = rest.rpartition(":")
    return (source, server, form_uid) if source in ("kobo", "odk") and server else None


class FormSource(Protocol):
    """One registered form on one server, as a run syncs it."""

    form_id: str
    form_uid: str

    @property
    def server_name(self) -> str: ...
    @property
    def cursor_key(self) -> str: ...
    @property
    def key_prefix(self) -> str: ...
    def batches(
        self, cursor: dict[str, Any], policy: SyncPolicy, now: datetime, full_rescan: bool
    ) -> Batches: ...
    def deleted_keys(self, held: set[str]) -> set[str]: ...
    def download(self, url: str, dest: Any) -> bool: ...


@runtime_checkable
class DeletionFeed(Protocol):
    """A source whose server lists what it deleted, and when (ODK Central's soft deletes): read
    every night, not only by the weekly reconcile."""

    def deletions(
        self, cursor: dict[str, Any], policy: SyncPolicy, full: bool
    ) -> dict[str, datetime]: ...
