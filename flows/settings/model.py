"""What a run is configured with: `Settings`, carrying the typed settings of every room that
needs them, each dataclass in the room that uses it (server sources and policies in
connectors, `AlertRules` in the marts' rules, `MailSettings` beside the mailer, the receiver's
`WebhookSettings` beside it). Only what orchestration alone reads is defined here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sammachip.connectors.kobo import KoboSource
from sammachip.connectors.odk import OdkSource
from sammachip.connectors.sources import HttpPolicy, SyncPolicy
from sammachip.connectors.webhook import WebhookSettings
from sammachip.marts.rules import AlertRules
from sammachip.phones.push import PhoneSettings
from sammachip.reports.mailer import MailSettings


@dataclass(frozen=True)
class IngestSettings:
    """`[ingest]`: when the deliveries the webhook landed are loaded."""

    # The most a burst's first delivery waits for the rest: serve's warm ingest starts after
    # half a second without a delivery, at the latest this long after the first; with workers
    # (prefect.yaml) the trigger's window — deliveries of one window share a run.
    window_seconds: int = 5
    sweep_cron: str | None = "*/30 * * * *"  # catches deliveries whose event was lost


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path | str  # a folder, or a bucket URI such as s3://office-data/warehouse
    reports_path: Path
    kobo: tuple[KoboSource, ...]
    rules: AlertRules
    odk: tuple[OdkSource, ...] = ()
    sync: SyncPolicy = field(default_factory=SyncPolicy)
    attachments_path: Path | None = None  # set: media files are downloaded there
    workers: int = 1  # >1: forms fetched and validated concurrently on the task runner
    report_processes: int = 1  # processes writing officers' files (from 16 officers on)
    mail: MailSettings | None = None  # set: officers get their lists by e-mail
    http: HttpPolicy = field(default_factory=HttpPolicy)
    landing_path: Path = Path("data/landing")  # where webhook deliveries wait for `ingest`
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    phones: PhoneSettings = field(default_factory=PhoneSettings)  # lists pushed to the phones

    @property
    def server_names(self) -> list[str]:
        """Every configured server's name (its identity in the warehouse), Kobo's first."""
        return [src.name for src in (*self.kobo, *self.odk)]
