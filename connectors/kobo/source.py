"""A configured KoboToolbox server (`[[kobo]]`) and one of its assets as a run syncs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sammachip.connectors.kobo.client import KoboClient, KoboServer, to_submission
from sammachip.connectors.kobo.sync import KoboCursor, changes
from sammachip.connectors.sources import (
    Batches,
    HttpPolicy,
    SyncPolicy,
    cursor_key,
    made_with_fewer_collections,
)
from sammachip.schemas.records import submission_key


@dataclass(frozen=True)
class KoboSource:
    server: KoboServer
    page_size: int = 1000
    assets: dict[str, str] = field(default_factory=dict)  # explicit uid → form id

    @property
    def name(self) -> str:
        """The server's identity in the warehouse: every submission key and sync cursor of it
        carries this, never the URL (an alias, port or proxy may change; the data do not)."""
        return self.server.name or "kobo"


@dataclass(frozen=True)
class KoboForm:
    source: KoboSource
    form_uid: str  # asset uid
    form_id: str
    http: HttpPolicy = field(default_factory=HttpPolicy)  # the run's `[http]`

    @property
    def server_name(self) -> str:
        return self.source.name

    @property
    def cursor_key(self) -> str:
        return cursor_key("kobo", self.server_name, self.form_uid)

    @property
    def key_prefix(self) -> str:
        return submission_key("kobo", self.server_name, self.form_uid, "")

    def client(self) -> KoboClient:
        return KoboClient(
            self.source.server, page_size=self.source.page_size, **self.http.client_options()
        )

    def batches(
        self, cursor: dict[str, Any], policy: SyncPolicy, now: datetime, full_rescan: bool
    ) -> Batches:
        """Streams batches; `cursor` is updated in place as rows are seen."""
        return made_with_fewer_collections(self._batches(cursor, policy, now, full_rescan))

    def _batches(
        self, cursor: dict[str, Any], policy: SyncPolicy, now: datetime, full_rescan: bool
    ) -> Batches:
        position = KoboCursor.from_json(cursor)
        server = self.server_name
        with self.client() as client:
            for raw, remaining in changes(
                client, self.form_uid, position, policy, now=now, full_rescan=full_rescan
            ):
                subs = [
                    to_submission(r, server=server, asset_uid=self.form_uid, form_id=self.form_id)
                    for r in raw
                ]
                yield subs, remaining
                cursor.update(position.to_json())
        cursor.update(position.to_json())

    def deleted_keys(self, held: set[str]) -> set[str]:
        """Kobo hard-deletes: whatever we hold that the id list no longer has."""
        with self.client() as client:
            on_server = {str(i) for page in client.ids(self.form_uid) for i in page}
        prefix = self.key_prefix
        return {k for k in held if k.startswith(prefix) and k[len(prefix) :] not in on_server}

    def download(self, url: str, dest: Any) -> bool:
        with self.client() as client:
            return client.download(url, dest)
