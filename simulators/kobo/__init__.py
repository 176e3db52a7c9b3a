"""The KoboToolbox API v2 simulator (see `store`)."""

from simulators.kobo.media import MediaStore, media_store
from simulators.kobo.store import (
    Asset,
    KoboStore,
    asset_uid_for,
    create_app,
    derived_uuid,
    run_kobo_forever,
    seed_from_cohort,
    serve_kobo,
)

__all__ = [
    "Asset",
    "KoboStore",
    "MediaStore",
    "asset_uid_for",
    "create_app",
    "derived_uuid",
    "media_store",
    "run_kobo_forever",
    "seed_from_cohort",
    "serve_kobo",
]
