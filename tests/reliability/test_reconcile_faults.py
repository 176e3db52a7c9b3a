"""The weekly reconcile under faults. A reconcile re-reads every submission (edits the nightly
look-back missed) and scans every id the server still holds (Kobo deletes without a trace:
what is gone is tombstoned). Transient faults in both — on the rescan's pages and on the id
scan's — end in exactly the warehouse, and the same tombstones, as a reconcile without faults.
An id scan cut short must never read as "deleted": a retry or nothing.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from connectors.simulators.cohort import HOUSEHOLD, SESSION
from connectors.simulators.faults import Fault
from connectors.simulators.kobo import KoboStore, serve_kobo
from flows.nightly import FormResult
from schemas.validation import SuiteRunner
from tests.reliability.helpers import (
    TOKEN,
    arm_on_request,
    fingerprint,
    kobo_settings,
    seed_kobo,
    sync,
    sync_in_flow,
)

PAGE = 10  # the simulator's largest page, for the rescan and the id scan alike


@dataclass(frozen=True)
class Week:
    """A Kobo server a week after a nightly run: submissions deleted and an old one edited
    since. `first` is the warehouse the nightly left (copied, never synced again)."""

    store: KoboStore
    url: str
    uids: dict[str, str]
    first: Path
    deleted: dict[str, int]  # form id → submissions deleted on the server


@pytest.fixture(scope="module")
def week(suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    store = KoboStore()
    uids = seed_kobo(store)
    first = tmp_path_factory.mktemp("nightly")
    with serve_kobo(store, TOKEN, max_page_size=PAGE) as url:
        sync(first, url, suite_runner)
        households, sessions = (store.asset(uids[f]).ids for f in (HOUSEHOLD, SESSION))  # type: ignore[union-attr]
        for uid, _id in [(uids[HOUSEHOLD], households[0]), (uids[HOUSEHOLD], households[5]),
                         (uids[SESSION], sessions[1])]:  # fmt: skip
            store.delete(uid, _id)
        store.edit(uids[HOUSEHOLD], households[2], {"members": "9"})
        yield Week(store, url, uids, first, {HOUSEHOLD: 2, SESSION: 1})


def rescan_pages(week: Week, form_id: str) -> int:
    """Pages the rescan reads before the id scan starts (both page the same data path)."""
    return max(1, math.ceil(week.store.count(week.uids[form_id]) / PAGE))


def arm_rescan_and_id_scan_faults(week: Week) -> int:
    """Faults on the rescan's pages and the id scan's; returns how many were armed. A fault
    costs one more request (its retry), so the id scan's first request comes that much later."""
    hh_rescan, s_rescan = [Fault("status", 503)] * 3, [Fault("status", 502)] * 2
    hh_ids = rescan_pages(week, HOUSEHOLD) + len(hh_rescan) + 1
    s_ids = rescan_pages(week, SESSION) + len(s_rescan) + 1
    faults = {  # (form, its n-th data request) → faults queued there
        (HOUSEHOLD, 2): hh_rescan,  # the rescan's 2nd page
        (HOUSEHOLD, hh_ids): [Fault("reset"), Fault("truncate"),  # the id scan's 1st page
                              Fault("status", 429, retry_after=0.05)],
        (SESSION, 1): s_rescan,  # the rescan's 1st page
        (SESSION, s_ids): [Fault("non_json")] * 2,  # the id scan's 1st page
    }  # fmt: skip
    week.store.faults.clear()
    for (form_id, nth), queued in faults.items():
        path = f"{week.uids[form_id]}/data"
        arm_on_request(week.store.faults, path, nth, [replace(f, target=path) for f in queued])
    return sum(map(len, faults.values()))


def count_data_requests(week: Week) -> dict[str, int]:
    """Data requests per form from now on (a live dict)."""
    seen = dict.fromkeys((HOUSEHOLD, SESSION), 0)
    paths = {f"{week.uids[form_id]}/data": form_id for form_id in seen}

    def hook(path: str) -> None:
        for target, form_id in paths.items():
            if target in path:
                seen[form_id] += 1

    week.store.faults.on_request(hook)
    return seen


def reconcile_copy(week: Week, workdir: Path, runner: SuiteRunner) -> list[FormResult]:
    shutil.copytree(week.first, workdir)
    return sync_in_flow(kobo_settings(workdir, week.url), runner, reconcile=True)


def test_a_reconcile_under_transient_faults_ends_as_a_reconcile_without(
    prefect_harness: None, week: Week, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    week.store.faults.clear()
    requests = count_data_requests(week)
    clean = reconcile_copy(week, tmp_path / "clean", suite_runner)
    # The layout the faults are armed by: the rescan's pages, then as many of the id scan's.
    assert requests == {f: 2 * rescan_pages(week, f) for f in (HOUSEHOLD, SESSION)}
    armed = arm_rescan_and_id_scan_faults(week)
    served = week.store.faults.served
    faulty = reconcile_copy(week, tmp_path / "faulty", suite_runner)
    met = week.store.faults.served - served
    week.store.faults.clear()
    assert [r.error for r in clean + faulty if r.error] == []
    assert met == armed  # every fault was met, and retried
    tombstoned = {r.form_id: r.deleted for r in faulty if r.deleted}
    assert tombstoned == week.deleted == {r.form_id: r.deleted for r in clean if r.deleted}
    assert fingerprint(tmp_path / "faulty") == fingerprint(tmp_path / "clean")
    assert fingerprint(tmp_path / "clean") != fingerprint(week.first)  # it did change things
