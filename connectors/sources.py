"""What every form source offers a run, whatever its server: the `FormSource` interface (list,
stream what changed, tell what was deleted), where a form's sync position is kept, and the two
policies every source follows (`[sync]`: how much to re-read; `[http]`: how to wait and retry).

Kobo's and ODK Central's sources implement it next to their clients (`connectors.kobo`,
`connectors.odk`); `connectors.discovery` finds them on the configured servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sammachip.schemas.records import Submission

Batches = Iterator[tuple[list[Submission], int]]  # submissions, count left in this pass


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
