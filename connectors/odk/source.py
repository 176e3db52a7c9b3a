"""A configured ODK Central project (`[[odk]]`) and one of its forms as a run syncs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sammachip.connectors.odk import sync
from sammachip.connectors.odk.client import OdkClient, OdkServer, to_submission
from sammachip.connectors.sources import (
    Batches,
    HttpPolicy,
    SyncPolicy,
    cursor_key,
    made_with_fewer_collections,
)
from sammachip.schemas.records import Submission, submission_key


@dataclass(frozen=True)
class OdkSource:
    server: OdkServer
    page_size: int = 1000
    forms: dict[str, str] = field(default_factory=dict)  # xmlFormId → form id, if they differ

    @property
    def name(self) -> str:
        """As `KoboSource.name`: the configured name, "odk" for the one unnamed server."""
        return self.server.name or "odk"


@dataclass(frozen=True)
class OdkForm:
    source: OdkSource
    form_uid: str  # "<project>/<xmlFormId>"
    form_id: str
    http: HttpPolicy = field(default_factory=HttpPolicy)  # the run's `[http]`

    @property
    def xml_form_id(self) -> str:
        return self.form_uid.split("/", 1)[1]

    @property
    def server_name(self) -> str:
        return self.source.name

    @property
    def cursor_key(self) -> str:
        return cursor_key("odk", self.server_name, self.form_uid)

    @property
    def key_prefix(self) -> str:
        return submission_key("odk", self.server_name, self.form_uid, "")

    def client(self) -> OdkClient:
        return OdkClient(
            self.source.server, page_size=self.source.page_size, **self.http.client_options()
        )

    def batches(
        self, cursor: dict[str, Any], policy: SyncPolicy, now: datetime, full_rescan: bool
    ) -> Batches:
        """See `connectors.odk.sync.changes`; `cursor` is updated in place."""
        return made_with_fewer_collections(
            sync.changes(
                self.client,
                self.xml_form_id,
                cursor,
                policy,
                now=now,
                full_rescan=full_rescan,
                to_record=self._record,
            )
        )

    def _record(self, row: dict[str, Any]) -> Submission:
        return to_submission(
            row,
            server=self.server_name,
            project_id=self.source.server.project_id,
            xml_form_id=self.xml_form_id,
            form_id=self.form_id,
        )

    def deletions(
        self, cursor: dict[str, Any], policy: SyncPolicy, full: bool
    ) -> dict[str, datetime]:
        """Submission key → Central's deletion time (see `connectors.odk.sync.deletions`)."""
        found = sync.deletions(self.client, self.xml_form_id, cursor, policy, full=full)
        return {self.key_prefix + i: t for i, t in found.items()}

    def deleted_keys(self, held: set[str]) -> set[str]:
        """Whatever we hold that Central's id list lacks: soft-deleted (the deleted feed gives
        their time) or purged 30 days later, without a trace."""
        prefix = self.key_prefix
        with self.client() as client:
            live = {i for page in client.ids(self.xml_form_id) for i in page}
        return {k for k in held if k.startswith(prefix) and k[len(prefix) :] not in live}

    def download(self, url: str, dest: Any) -> bool:
        return False  # ODK attachments are not fetched yet (see docs/design.md)
