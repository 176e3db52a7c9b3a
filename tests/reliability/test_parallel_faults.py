"""The parallel path under faults. With `[run] workers = 2` a wave of forms is fetched and
validated on two threads at once (`flows.nightly._sync_parallel`: `fetch_and_validate` on the
flow's task runner, the run's GX context handed to the threads) and staged by the flow's
thread. Transient faults hitting the forms of a wave at the same time end in the warehouse of a
clean single-worker run; a form refused for good is skipped alone — nothing of it staged, its
cursor where it was — while the others run beside it.

Found here and pinned (SHARED_GX_CONTEXT): two answered forms of one wave validated at once on
threads make the run fail, faults or not; the passing cases keep one answered form per wave
validating at a time (the other one's fetch, faults and all, still runs beside it).

The body of `run_sync` runs in a small flow (`sync_in_flow`: the task runner needs a flow
run) with the run's clock fixed, so warehouses compare whole (`fingerprint`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from sammachip.flows.settings import Settings
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import FORM_IDS, HOUSEHOLD, SESSION
from sammachip.simulators.faults import Fault
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from sammachip.warehouse.load import open_warehouse
from tests.reliability.helpers import (
    TOKEN,
    District,
    arm_on_request,
    fingerprint,
    kobo_settings,
    sync,
    sync_in_flow,
    tiny_cohort,
)

WORKERS = 2
SAGE, GROUP, MATERIALS, INCOME = (
    "sammachip_sage",
    "sammachip_group",
    "sammachip_materials",
    "sammachip_income",
)


def parallel(workdir: Path, url: str) -> Settings:
    return replace(kobo_settings(workdir, url), workers=WORKERS)


# ---- transient faults --------------------------------------------------------------------


@dataclass(frozen=True)
class FullDistrict:
    """The tiny district with every form answered: every form of each wave has answers to
    validate."""

    store: KoboStore
    url: str
    uids: dict[str, str]
    reference: dict[str, str]  # fingerprint of a clean single-worker sync


@pytest.fixture(scope="module")
def full_district(
    suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FullDistrict]:
    store = KoboStore()
    uids = seed_from_cohort(store, tiny_cohort(forms=FORM_IDS))
    with serve_kobo(store, TOKEN, max_page_size=10) as url:
        workdir = tmp_path_factory.mktemp("one-worker")
        sync(workdir, url, suite_runner)
        yield FullDistrict(store, url, uids, fingerprint(workdir))


@pytest.mark.parametrize(
    "servers",
    [
        "district",  # households and sessions: one form of a wave has answers to validate
        # every form of every wave does: validations at once on the run's one GX context
        # (this failed every run until SuiteRunner serialised its context's use)
        "full_district",
    ],
)
def test_transient_faults_on_the_forms_of_each_wave_leave_the_warehouse_of_one_worker(
    servers: str,
    prefect_harness: None,
    suite_runner: SuiteRunner,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A wave's forms are fetched at once: each form meets its faults while the others of its
    wave are being fetched."""
    district: District | FullDistrict = request.getfixturevalue(servers)
    plan = district.store.faults
    faults = {  # form → (its n-th data request, the faults queued there)
        HOUSEHOLD: (2, [Fault("status", 500)] * 3),  # its 2nd page
        SAGE: (1, [Fault("status", 503)] * 3),
        SESSION: (1, [Fault("status", 429, retry_after=0.05)] * 2 + [Fault("reset")]),
        GROUP: (1, [Fault("status", 502), Fault("truncate")]),
        MATERIALS: (1, [Fault("reset")] * 2),
        INCOME: (1, [Fault("status", 504), Fault("non_json")]),
    }
    plan.clear()
    for form_id, (nth, queued) in faults.items():
        path = f"{district.uids[form_id]}/data"
        arm_on_request(plan, path, nth, [replace(f, target=path) for f in queued])
    served = plan.served  # counted since the server started
    validated = suite_runner.batches_validated
    try:
        results = sync_in_flow(parallel(tmp_path, district.url), suite_runner, workers=WORKERS)
        met = plan.served - served
    finally:
        plan.clear()
    assert [r.error for r in results if r.error] == []
    # the threads validated through the run's GX context, handed down: their batches are in
    # the run's Data Docs
    assert suite_runner.batches_validated > validated
    assert met == sum(len(q) for _, q in faults.values())  # every fault was met, and retried
    assert fingerprint(tmp_path) == district.reference  # the clean run on one worker


# ---- a permanent error -------------------------------------------------------------------


@dataclass(frozen=True)
class SecondNight:
    """A Kobo server and a warehouse after a first night; the server has since had a
    second day's submissions and edits (income surveys and materials among them)."""

    store: KoboStore
    url: str
    uids: dict[str, str]
    first: Path  # the workdir after the first night (copied, never synced again)


@pytest.fixture(scope="module")
def second_night(
    suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecondNight]:
    # The first wave's income survey is refused mid-sync, while the household form is
    # validated beside it; sessions and materials follow in waves of their own.
    cohort = tiny_cohort(forms=(HOUSEHOLD, SESSION, MATERIALS, INCOME))
    times = sorted(s.received_at for s in cohort.submissions)
    middle = times[len(times) // 2]
    store = KoboStore()
    uids = seed_from_cohort(store, cohort, as_of=middle)
    first = tmp_path_factory.mktemp("first-night")
    with serve_kobo(store, TOKEN, max_page_size=10) as url:
        sync(first, url, suite_runner)
        seed_from_cohort(store, cohort, after=middle)
        yield SecondNight(store, url, uids, first)


def refuse_income_on_page_2(night: SecondNight) -> None:
    """The token's user loses 'view submissions' on the income survey mid-sync, while the
    household form, in the same wave, is fetched beside it."""
    uid = night.uids[INCOME]
    night.store.faults.clear()
    arm_on_request(night.store.faults, f"{uid}/data", 2, [Fault("status", 403, target=uid)])


def cursors(workdir: Path) -> dict[str, object]:
    return open_warehouse(str(workdir / "data" / "warehouse")).snapshot().cursors


def test_a_form_refused_for_good_while_others_run_in_parallel_is_the_only_one_skipped(
    prefect_harness: None, second_night: SecondNight, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    night = second_night
    runs = {}
    for workers in (WORKERS, 1):  # the parallel path, then one worker as the oracle
        workdir = tmp_path / f"workers-{workers}"
        shutil.copytree(night.first, workdir)
        refuse_income_on_page_2(night)
        settings = replace(kobo_settings(workdir, night.url), workers=workers)
        runs[workers] = (workdir, sync_in_flow(settings, suite_runner, workers=workers))
    night.store.faults.clear()
    workdir, results = runs[WORKERS]
    skipped = [r for r in results if r.error]
    assert [r.form_id for r in skipped] == [INCOME]
    assert "HTTP 403" in skipped[0].error and "share the project" in skipped[0].error  # type: ignore[operator]
    before, after = cursors(night.first), cursors(workdir)
    key = {
        form_id: next(k for k in before if night.uids[form_id] in k)
        for form_id in (INCOME, MATERIALS)
    }
    assert after[key[INCOME]] == before[key[INCOME]]  # where the first night left it
    assert after[key[MATERIALS]] != before[key[MATERIALS]]  # the other forms moved on
    assert next(r for r in results if r.form_id == MATERIALS).new_versions > 0
    first, second = fingerprint(night.first), fingerprint(workdir)
    assert second["income_surveys"] == first["income_surveys"]  # nothing of it staged
    # One worker skips the same form and commits the same rows and cursors.
    assert second == fingerprint(runs[1][0])
