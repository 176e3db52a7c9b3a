"""KoboToolbox (API v2): the client, its sync passes and cursor, and a configured server as a
source of forms. The form-media client (phones' lists) is `connectors.kobo.media`."""

from sammachip.connectors.kobo.client import (
    COUNT_TRIES,
    Asset,
    CountTimedOut,
    KoboClient,
    KoboError,
    KoboServer,
    server_root,
    to_submission,
)
from sammachip.connectors.kobo.source import KoboForm, KoboSource
from sammachip.connectors.kobo.sync import KoboCursor, changes, kobo_time

__all__ = [
    "COUNT_TRIES",
    "Asset",
    "CountTimedOut",
    "KoboClient",
    "KoboCursor",
    "KoboError",
    "KoboForm",
    "KoboServer",
    "KoboSource",
    "changes",
    "kobo_time",
    "server_root",
    "to_submission",
]
