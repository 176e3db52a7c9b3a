"""A KoboToolbox API v2 simulator: an in-memory store and a Starlette app served by uvicorn.

It reproduces what a sync client meets on a real kpi server:
paging with `start`/`limit` (default 100, silently capped at 1000, 400 on bad values), DRF-style
absolute `next`/`previous` links with sorted query parameters, Mongo-style `query` / `sort` /
`fields` JSON parameters, the exact meta keys of a submission, edits that keep `_id` and
`meta/rootUuid` but change `_uuid`, hard deletes, validation statuses, and token auth errors;
assets in draft (never deployed: their data answers 400) or archived; a count that times out
(`KoboStore.slow_count`: kpi answers 400 ["Unsupported query"] when Mongo gives up counting);
and form media with what KoboCollect downloads.

By concern: `store` (assets, submissions and their changes), `query` (the Mongo-style query
engine), `render` (envelopes, paging links, asset JSON), `app` (routes, auth, serving), `media`
(form media and redeployments), `seed` (a generated cohort loaded into a store).
"""

from sammachip.simulators.kobo.app import create_app, run_kobo_forever, serve_kobo
from sammachip.simulators.kobo.media import MediaStore, media_store
from sammachip.simulators.kobo.query import CountTimedOut, QueryError
from sammachip.simulators.kobo.seed import asset_uid_for, seed_from_cohort
from sammachip.simulators.kobo.store import (
    VALIDATION_LABELS,
    Asset,
    KoboStore,
    derived_uuid,
    kobo_uid,
)

__all__ = [
    "VALIDATION_LABELS",
    "Asset",
    "CountTimedOut",
    "KoboStore",
    "MediaStore",
    "QueryError",
    "asset_uid_for",
    "create_app",
    "derived_uuid",
    "kobo_uid",
    "media_store",
    "run_kobo_forever",
    "seed_from_cohort",
    "serve_kobo",
]
