"""The weekly reconcile under faults. A reconcile re-reads every submission (edits the nightly
look-back missed) and scans every id the server still holds; what is gone is tombstoned. Kobo
deletes without a trace, so its id scan is all there is; ODK Central soft-deletes (its deleted
feed lists them) and purges 30 days later (then only the id scan notices). Transient faults in
every half — the rescan's pages, the deleted feed, the id scan's pages — end in exactly the
warehouse, and the same tombstones, as a reconcile without faults. An id scan or a deleted
feed cut short must never read as "deleted" (nor as "still there"): a retry or nothing.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from sammachip.flows.nightly import FormResult
from sammachip.flows.settings import Settings
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import HOUSEHOLD, SESSION
from sammachip.simulators.faults import Fault, FaultPlan
from sammachip.simulators.kobo import KoboStore, serve_kobo
from sammachip.simulators.odk import OdkStore, serve_odk
from tests.reliability.helpers import (
    EMAIL,
    PASSWORD,
    TOKEN,
    arm_on_request,
    fingerprint,
    kobo_settings,
    odk_settings,
    seed_kobo,
    seed_odk,
    sync_in_flow,
    sync_settings,
)

PAGE = 10  # the simulators' page, for the rescan, the deleted feed and the id scan alike
FORMS = (HOUSEHOLD, SESSION)
# Where faults go: (form, the n-th request to its submissions path) → faults queued there.
FaultMap = Mapping[tuple[str, int], list[Fault]]
Actions = Mapping[tuple[str, int], Callable[[], None]]  # … or what the server does there


@dataclass(frozen=True)
class Week:
    """A server a week after a nightly run: submissions deleted and an old one edited since.
    `first` is the warehouse the nightly left (copied, never synced again)."""

    faults: Callable[[], FaultPlan]  # the server's fault plan (looked up: a store may reset it)
    settings: Callable[[Path], Settings]  # a run's settings, its warehouse in that folder
    paths: dict[str, str]  # form id → the path its submission pages (and id scan) are read at
    rows: dict[str, int]  # form id → submissions the server still shows
    first: Path
    deleted: dict[str, int]  # form id → submissions deleted on the server


@dataclass(frozen=True)
class OdkWeek(Week):
    store: OdkStore | None = None
    deleted_feed_pages: int = 1  # per form: the feed is read even when it lists nothing


@pytest.fixture(scope="module")
def week(suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    store = KoboStore()
    uids = seed_kobo(store)
    first = tmp_path_factory.mktemp("nightly")
    with serve_kobo(store, TOKEN, max_page_size=PAGE) as url:
        sync_settings(kobo_settings(first, url), suite_runner)
        households, sessions = (store.asset(uids[f]).ids for f in FORMS)  # type: ignore[union-attr]
        for uid, _id in [
            (uids[HOUSEHOLD], households[0]),
            (uids[HOUSEHOLD], households[5]),
            (uids[SESSION], sessions[1]),
        ]:
            store.delete(uid, _id)
        store.edit(uids[HOUSEHOLD], households[2], {"members": "9"})
        yield Week(
            faults=lambda: store.faults,
            settings=lambda workdir: kobo_settings(workdir, url),
            paths={f: f"{uids[f]}/data" for f in FORMS},
            rows={f: store.count(uids[f]) for f in FORMS},
            first=first,
            deleted={HOUSEHOLD: 2, SESSION: 1},
        )


@pytest.fixture(scope="module")
def odk_week(
    suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OdkWeek]:
    """The same week on ODK Central: one household soft-deleted (in the deleted feed), one
    purged (gone without a trace: only the id scan can tell), a session soft-deleted."""
    store = OdkStore()
    forms = seed_odk(store)
    first = tmp_path_factory.mktemp("odk-nightly")
    with serve_odk(store, EMAIL, PASSWORD) as url:
        sync_settings(odk_settings(first, url, PAGE), suite_runner)
        households, sessions = (list(store.form(1, forms[f]).records) for f in FORMS)  # type: ignore[union-attr]
        store.delete(forms[HOUSEHOLD], households[0])
        store.purge(forms[HOUSEHOLD], households[5])
        store.delete(forms[SESSION], sessions[1])
        store.edit(forms[HOUSEHOLD], households[2], {"members": "9"})
        yield OdkWeek(
            faults=lambda: store.faults,
            settings=lambda workdir: odk_settings(workdir, url, PAGE),
            paths={f: f"/forms/{forms[f]}.svc/Submissions" for f in FORMS},
            rows={f: store.count(forms[f]) for f in FORMS},
            first=first,
            deleted={HOUSEHOLD: 2, SESSION: 1},
            store=store,
        )


def rescan_pages(week: Week, form_id: str) -> int:
    """Pages the rescan reads before the deletions are looked for (the id scan reads as many)."""
    return max(1, math.ceil(week.rows[form_id] / PAGE))


def arm(week: Week, faults: FaultMap, actions: Actions = {}) -> int:  # noqa: B006 (read only)
    """Queue `faults` at their requests (each hits that request and the retries after it)
    and run `actions` at theirs; returns how many faults were armed."""
    plan = week.faults()
    plan.clear()
    for (form_id, nth), queued in faults.items():
        path = week.paths[form_id]
        arm_on_request(plan, path, nth, [replace(f, target=path) for f in queued])
    for (form_id, nth), action in actions.items():
        arm_on_request(plan, week.paths[form_id], nth, action=action)
    return sum(map(len, faults.values()))


def kobo_faults(week: Week) -> FaultMap:
    """Faults on the rescan's pages and the id scan's. A fault costs one more request (its
    retry), so the id scan's first request comes that much later."""
    hh_rescan, s_rescan = [Fault("status", 503)] * 3, [Fault("status", 502)] * 2
    hh_ids = rescan_pages(week, HOUSEHOLD) + len(hh_rescan) + 1
    s_ids = rescan_pages(week, SESSION) + len(s_rescan) + 1
    return {
        (HOUSEHOLD, 2): hh_rescan,  # the rescan's 2nd page
        (HOUSEHOLD, hh_ids): [
            Fault("reset"),
            Fault("truncate"),  # the id scan's 1st page
            Fault("status", 429, retry_after=0.05),
        ],
        (SESSION, 1): s_rescan,  # the rescan's 1st page
        (SESSION, s_ids): [Fault("non_json")] * 2,  # the id scan's 1st page
    }


def odk_faults(week: OdkWeek) -> tuple[FaultMap, Actions]:
    """Faults on the rescan, the deleted feed and the id scan, in that order on one path
    (the deleted feed and the live feed differ only by their `$filter`). And every session
    expires as the households' deleted feed is first asked for: that request is refused
    (401), the client logs in again and asks again, then meets the feed's faults."""
    hh_rescan, hh_feed = [Fault("status", 503)] * 3, [Fault("reset"), Fault("truncate")]
    s_rescan, s_feed = [Fault("status", 502)] * 2, [Fault("status", 504)]
    hh_expiry = rescan_pages(week, HOUSEHOLD) + len(hh_rescan) + 1
    hh_feed_at = hh_expiry + 1  # the 401 costs a request
    hh_ids = hh_feed_at + len(hh_feed) + week.deleted_feed_pages
    s_feed_at = rescan_pages(week, SESSION) + len(s_rescan) + 1
    s_ids = s_feed_at + len(s_feed) + week.deleted_feed_pages
    faults = {
        (HOUSEHOLD, 2): hh_rescan,  # the rescan's 2nd page ($skiptoken)
        (HOUSEHOLD, hh_feed_at): hh_feed,  # the deleted feed's 1st page
        (HOUSEHOLD, hh_ids): [
            Fault("status", 429, retry_after=0.05),  # the id scan's 1st
            Fault("non_json"),
        ],
        (SESSION, 1): s_rescan,
        (SESSION, s_feed_at): s_feed,
        (SESSION, s_ids): [Fault("truncate")],
    }
    assert week.store is not None
    return faults, {(HOUSEHOLD, hh_expiry): week.store.expire_sessions}


def count_requests(week: Week) -> dict[str, int]:
    """Requests to each form's submissions path from now on (a live dict)."""
    seen = dict.fromkeys(FORMS, 0)

    def hook(path: str) -> None:
        for form_id, target in week.paths.items():
            if target in path:
                seen[form_id] += 1

    week.faults().on_request(hook)
    return seen


def reconcile_copy(week: Week, workdir: Path, runner: SuiteRunner) -> list[FormResult]:
    shutil.copytree(week.first, workdir)
    return sync_in_flow(week.settings(workdir), runner, reconcile=True)


def reconcile_clean_then_faulty(
    week: Week,
    faults: Callable[[], FaultMap],
    runner: SuiteRunner,
    tmp_path: Path,
    actions: Actions = {},  # noqa: B006 (read only)
) -> tuple[list[FormResult], list[FormResult], int, int, dict[str, int]]:
    """A reconcile without faults, then one with `faults` (and `actions`) armed: (clean
    results, faulty results, faults armed, faults met, requests the clean run made per form).
    `faults` is called after the clean run, whose request layout it may rely on."""
    week.faults().clear()
    requests = count_requests(week)
    clean = reconcile_copy(week, tmp_path / "clean", runner)
    layout = dict(requests)
    armed = arm(week, faults(), actions)
    served = week.faults().served
    faulty = reconcile_copy(week, tmp_path / "faulty", runner)
    met = week.faults().served - served
    week.faults().clear()
    return clean, faulty, armed, met, layout


def assert_same_reconcile(
    week: Week, clean: list[FormResult], faulty: list[FormResult], tmp_path: Path
) -> None:
    assert [r.error for r in clean + faulty if r.error] == []
    tombstoned = {r.form_id: r.deleted for r in faulty if r.deleted}
    assert tombstoned == week.deleted == {r.form_id: r.deleted for r in clean if r.deleted}
    assert fingerprint(tmp_path / "faulty") == fingerprint(tmp_path / "clean")
    assert fingerprint(tmp_path / "clean") != fingerprint(week.first)  # it did change things


def test_a_reconcile_under_transient_faults_ends_as_a_reconcile_without(
    prefect_harness: None, week: Week, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    clean, faulty, armed, met, layout = reconcile_clean_then_faulty(
        week, lambda: kobo_faults(week), suite_runner, tmp_path
    )
    # The layout the faults are armed by: the rescan's pages, then as many of the id scan's.
    assert layout == {f: 2 * rescan_pages(week, f) for f in FORMS}
    assert met == armed  # every fault was met, and retried
    assert_same_reconcile(week, clean, faulty, tmp_path)


def test_an_odk_reconcile_under_transient_faults_ends_as_one_without(
    prefect_harness: None, odk_week: OdkWeek, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    store = odk_week.store
    assert store is not None
    faults, expiry = odk_faults(odk_week)
    logins = [store.logins]

    def after_the_clean_run() -> FaultMap:
        logins.append(store.logins)
        return faults

    clean, faulty, armed, met, layout = reconcile_clean_then_faulty(
        odk_week, after_the_clean_run, suite_runner, tmp_path, expiry
    )
    logins.append(store.logins)
    # The layout: the rescan's pages, the deleted feed's, then the id scan's (as many as the
    # rescan's).
    feed = odk_week.deleted_feed_pages
    assert layout == {f: 2 * rescan_pages(odk_week, f) + feed for f in FORMS}
    assert met == armed  # every fault was met, and retried
    clean_logins, faulty_logins = logins[1] - logins[0], logins[2] - logins[1]
    assert faulty_logins == clean_logins + 1  # the expired session: one login more
    assert_same_reconcile(odk_week, clean, faulty, tmp_path)
