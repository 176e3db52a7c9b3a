"""ODK Central: the client (session, OData feed), its sync passes (watermarks, deletions,
restores), and a configured project as a source of forms. The Entity Lists client (phones'
lists) is `connectors.odk.entities`."""

from sammachip.connectors.odk.client import (
    CentralForm,
    NoDeletedFeed,
    OdkClient,
    OdkError,
    OdkServer,
    odata_time,
    to_submission,
)
from sammachip.connectors.odk.source import OdkForm, OdkSource
from sammachip.connectors.odk.sync import RESTORE_WINDOW

__all__ = [
    "RESTORE_WINDOW",
    "CentralForm",
    "NoDeletedFeed",
    "OdkClient",
    "OdkError",
    "OdkForm",
    "OdkServer",
    "OdkSource",
    "odata_time",
    "to_submission",
]
