"""A generated cohort loaded into the Kobo simulator, as its phones and reviewers would have made
it: assets created on first use, then submissions, Enketo edits and validation statuses in the
order they happened, so a cohort can be replayed in steps.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sammachip.simulators.cohort import FORM_IDS, FORM_TITLES, HOUSEHOLD, Cohort, paused_gc
from sammachip.simulators.kobo.store import KoboStore, epoch, kobo_uid

REVIEWER = "cdd_reviewer"  # who set the cohort's validation statuses


def asset_uid_for(form_id: str) -> str:
    """Deterministic asset uid per form, so configs and tests can name it."""
    return kobo_uid("a", random.Random(f"kobo-asset:{form_id}"))


def seed_from_cohort(
    store: KoboStore,
    cohort: Cohort,
    *,
    after: datetime | None = None,
    as_of: datetime | None = None,
) -> dict[str, str]:
    """Load a cohort into the store; returns {form_id: asset uid}.

    Only what happened in the window (after, as_of] is applied (submissions by receive time,
    edits by edit time, statuses by validation time), so a cohort can be replayed in steps to
    exercise incremental sync. Assets are created on first use.
    """

    def in_window(moment: datetime | None) -> bool:
        return (
            moment is not None
            and (after is None or moment > after)
            and (as_of is None or moment <= as_of)
        )

    first = min((s.received_at for s in cohort.submissions), default=datetime(2025, 1, 1))
    uids = {}
    for form_id in FORM_IDS:
        uid = uids[form_id] = asset_uid_for(form_id)
        if store.asset(uid) is None:
            store.add_asset(
                uid,
                f"{form_id} · {FORM_TITLES[form_id]}",
                form_id,
                date_created=first.replace(microsecond=0) - timedelta(days=14),
                geopoint_keys=("location",) if form_id == HOUSEHOLD else (),
            )
    with paused_gc():
        for sub in cohort.submissions:  # already in received_at order
            if in_window(sub.received_at):
                store.submit(
                    uids[sub.form_id], sub.answers, sub.received_at, submitted_by=sub.submitted_by
                )
        _apply_edits(store, cohort, uids, in_window)
        _apply_statuses(store, cohort, uids, in_window)
    return uids


def _apply_edits(
    store: KoboStore,
    cohort: Cohort,
    uids: dict[str, str],
    in_window: Callable[[datetime | None], bool],
) -> None:
    edits = sorted(
        (
            (at, n, sub, changes)
            for n, sub in enumerate(cohort.submissions)
            for at, changes in sub.edits
            if in_window(at)
        ),
        key=lambda e: (e[0], e[1]),
    )
    for _at, _n, sub, changes in edits:
        _id = store.find_by_root(uids[sub.form_id], sub.answers["meta/instanceID"])
        if _id is not None:
            store.edit(uids[sub.form_id], _id, changes)


def _apply_statuses(
    store: KoboStore,
    cohort: Cohort,
    uids: dict[str, str],
    in_window: Callable[[datetime | None], bool],
) -> None:
    for sub in cohort.submissions:
        if sub.validation_status is None or sub.validated_at is None:
            continue
        if in_window(sub.validated_at):
            _id = store.find_by_root(uids[sub.form_id], sub.answers["meta/instanceID"])
            if _id is not None:
                store.set_validation_status(
                    uids[sub.form_id],
                    _id,
                    sub.validation_status,
                    REVIEWER,
                    epoch(sub.validated_at),
                )
