"""Faults on the wire. Every transient failure a real server or proxy produces, injected into
the simulators in the middle of a sync (on a form's second page), ends in a warehouse
identical to the clean run's: same rows in every table, same cursors. Submissions arriving
between two pages are not lost. (Permanent errors: test_permanent_errors.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from sammachip.connectors import retry
from sammachip.connectors.sources import HttpPolicy
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import HOUSEHOLD, SESSION
from sammachip.simulators.faults import Fault, FaultPlan
from sammachip.simulators.kobo import KoboStore, serve_kobo
from sammachip.simulators.odk import OdkStore, seed_odk_from_cohort, serve_odk
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from tests.reliability.helpers import (
    EMAIL,
    HOSTILE_AT,
    PASSWORD,
    TOKEN,
    District,
    arm_on_request,
    fingerprint,
    hostile_households,
    kobo_settings,
    seed_kobo,
    seed_odk,
    sync,
    sync_odk,
    sync_settings,
    tiny_cohort,
)

pytestmark = pytest.mark.slow  # whole syncs through injected server faults


@dataclass(frozen=True)
class Scenario:
    """Faults armed on the n-th request to a path (n=2 on a household path: its 2nd page)."""

    armed: tuple[tuple[str, int, tuple[Fault, ...]], ...]  # (form id or "*", n, faults)
    timeout: float | None = None  # the client's timeout, for a server slower than it
    wait: float | None = None  # every retry must wait exactly this long (Retry-After)

    @property
    def faults(self) -> int:
        return sum(len(faults) for _, _, faults in self.armed)


def on_page_2(*faults: Fault) -> tuple[tuple[str, int, tuple[Fault, ...]], ...]:
    return ((HOUSEHOLD, 2, faults),)


def burst(fault: Fault, times: int = 3) -> tuple[Fault, ...]:
    return (fault,) * times


TRANSIENT = {
    "HTTP 500/502/503/504 bursts": Scenario(
        (
            ("*", 1, burst(Fault("status", 503))),  # the asset list, before anything is synced
            (HOUSEHOLD, 2, burst(Fault("status", 500))),
            (SESSION, 1, burst(Fault("status", 502))),
            ("sammachip_group", 1, burst(Fault("status", 504))),  # an empty form
        )
    ),
    "429 with Retry-After": Scenario(
        on_page_2(*burst(Fault("status", 429, retry_after=0.05), 2)), wait=0.05
    ),
    "429 without Retry-After": Scenario(on_page_2(*burst(Fault("status", 429)))),
    "slower than the client timeout": Scenario(
        on_page_2(*burst(Fault("slow", delay=0.6), 2)), timeout=0.2
    ),
    "connection reset mid-body": Scenario(on_page_2(*burst(Fault("reset")))),
    "200 with truncated JSON": Scenario(on_page_2(*burst(Fault("truncate")))),
    "200 with an HTML proxy page": Scenario(on_page_2(*burst(Fault("non_json")))),
}


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait the retry policy chose, in order."""
    waits: list[float] = []
    chosen = retry.backoff_wait

    def recorded(state: retry.RetryCallState, base: float, cap: float) -> float:
        waits.append(chosen(state, base, cap))
        return waits[-1]

    monkeypatch.setattr(retry, "backoff_wait", recorded)
    return waits


def arm(plan: FaultPlan, district: District, scenario: Scenario) -> None:
    for form_id, nth, faults in scenario.armed:
        path = "/api/v2/assets/" if form_id == "*" else f"{district.uids[form_id]}/data"
        arm_on_request(plan, path, nth, [replace(f, target=path) for f in faults])


@pytest.mark.parametrize("scenario", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_faults_mid_sync_leave_the_warehouse_of_a_clean_run(
    scenario: Scenario,
    district: District,
    kobo_faults: FaultPlan,
    retry_waits: list[float],
    suite_runner: SuiteRunner,
    tmp_path: Path,
) -> None:
    settings = kobo_settings(tmp_path, district.url)
    if scenario.timeout is not None:  # `[http] timeout`, as an office would set it
        settings = replace(settings, http=HttpPolicy(timeout=scenario.timeout))
    served = kobo_faults.served
    arm(kobo_faults, district, scenario)
    sync_settings(settings, suite_runner)
    assert kobo_faults.served - served == scenario.faults  # every fault was met …
    assert len(retry_waits) == scenario.faults  # … and retried
    if scenario.wait is not None:
        assert retry_waits == [scenario.wait] * scenario.faults  # the server's Retry-After
    assert fingerprint(tmp_path) == district.reference


def test_submissions_arriving_between_two_pages_are_all_synced(
    suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    store = KoboStore()
    uid = seed_kobo(store)[HOUSEHOLD]
    before = store.count(uid)
    arrivals = [
        {**a, "hh/hh_code": f"34140101-{80 + i}"} for i, a in enumerate(hostile_households())
    ]

    def submit_three() -> None:  # phones coming online while the sync pages through
        for i, answers in enumerate(arrivals):
            store.submit(uid, answers, HOSTILE_AT + timedelta(minutes=i + 1))

    with serve_kobo(store, TOKEN, max_page_size=10) as url:
        arm_on_request(store.faults, f"{uid}/data", 2, action=submit_three)
        sync(tmp_path / "during", url, suite_runner)  # page 2 reports a larger `count`
        sync(tmp_path / "after", url, suite_runner)  # a clean run over the final server
    assert store.count(uid) == before + 3
    assert fingerprint(tmp_path / "during") == fingerprint(tmp_path / "after")


# ---- ODK Central ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OdkDistrict:
    store: OdkStore
    url: str
    forms: dict[str, str]
    reference: dict[str, str]


@pytest.fixture(scope="module")
def odk_district(
    suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OdkDistrict]:
    store = OdkStore()
    forms = seed_odk(store)
    with serve_odk(store, EMAIL, PASSWORD) as url:
        workdir = tmp_path_factory.mktemp("odk-reference")
        sync_odk(workdir, url, suite_runner)
        yield OdkDistrict(store, url, forms, fingerprint(workdir))


def feed(xml_form_id: str) -> str:
    """The path of a form's OData submissions feed (every page of it, $skiptoken or not)."""
    return f"{xml_form_id}.svc/Submissions"


@pytest.fixture
def odk_faults(odk_district: OdkDistrict) -> Iterator[FaultPlan]:
    odk_district.store.faults.clear()
    yield odk_district.store.faults
    odk_district.store.faults.clear()


def test_transient_faults_on_the_odata_feed_leave_the_warehouse_of_a_clean_run(
    odk_district: OdkDistrict, odk_faults: FaultPlan, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    faults = {
        (feed(odk_district.forms[HOUSEHOLD]), 2): burst(Fault("status", 503)),  # $skiptoken page
        (feed(odk_district.forms[SESSION]), 1): burst(Fault("reset")),
        (feed(odk_district.forms["sammachip_sage"]), 1): burst(Fault("truncate")),  # empty feed
    }
    served = odk_faults.served
    for (path, nth), burst_ in faults.items():
        arm_on_request(odk_faults, path, nth, [replace(f, target=path) for f in burst_])
    sync_odk(tmp_path, odk_district.url, suite_runner)
    assert odk_faults.served - served == 9
    assert fingerprint(tmp_path) == odk_district.reference


def test_an_odk_session_that_expires_mid_sync_is_renewed_and_nothing_is_lost(
    odk_district: OdkDistrict, odk_faults: FaultPlan, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    store = odk_district.store
    logins, rejected = store.logins, store.rejected_tokens
    households = feed(odk_district.forms[HOUSEHOLD])
    arm_on_request(odk_faults, households, 2, action=store.expire_sessions)  # between pages
    sync_odk(tmp_path, odk_district.url, suite_runner)
    assert store.rejected_tokens > rejected  # the old token was refused once …
    assert store.logins > logins  # … and the client logged in again
    assert fingerprint(tmp_path) == odk_district.reference


def test_odk_submissions_arriving_mid_sync_are_caught_by_the_next_run(
    suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    """Central pages newest first behind an opaque cursor, so rows arriving mid-sync are not
    in this run's pages; the watermark (minus its overlap) brings them in the next night."""
    store = OdkStore()
    forms = seed_odk_from_cohort(store, tiny_cohort(5))  # a duplicate registration included
    xml_id = forms[HOUSEHOLD]
    arrivals = [
        {**a, "hh/hh_code": f"34140101-{80 + i}", "meta/instanceID": f"uuid:late-{i}"}
        for i, a in enumerate(hostile_households())
    ]

    def submit_three() -> None:
        for i, answers in enumerate(arrivals):
            store.submit(xml_id, answers, HOSTILE_AT + timedelta(minutes=i + 1))

    def arrived(workdir: Path) -> int:
        rows = connect(open_warehouse(str(workdir / "data" / "warehouse"))).execute(
            "select count(*) from raw_submissions where submission_id like 'uuid:late-%'"
        )
        return rows.fetchone()[0]  # type: ignore[index]

    during, after = tmp_path / "during", tmp_path / "after"
    with serve_odk(store, EMAIL, PASSWORD) as url:
        arm_on_request(store.faults, feed(xml_id), 2, action=submit_three)
        sync_odk(during, url, suite_runner)
        assert arrived(during) == 0  # behind the cursor of this run's pages
        sync_odk(during, url, suite_runner)  # the next night
        assert arrived(during) == 3
        sync_odk(after, url, suite_runner)  # one clean run over the final server
    # validation_runs logs each run's batches, so two nights log more than one: not data.
    nights, once = fingerprint(during), fingerprint(after)
    assert nights.pop("validation_runs") != once.pop("validation_runs")
    assert nights == once


def test_on_odk_the_later_of_two_registrations_is_the_duplicate_whatever_the_page_size(
    odk_district: OdkDistrict, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    """Central pages newest first; were each page validated as it came, the later of two
    registrations on different pages would hold the code (a bug until the pass was sorted)."""
    sync_odk(tmp_path, odk_district.url, suite_runner, page_size=3)  # the two on other pages
    rows = (
        connect(open_warehouse(str(tmp_path / "data" / "warehouse")))
        .execute(
            "select h.submitted_at < q.submitted_at, q.reason_en from households h "
            "join quarantine q on q.business_key = h.hh_code where h.hh_code = '34140101-12'"
        )
        .fetchall()
    )
    # the earlier one is clean, the later one the duplicate (and quarantined for that alone)
    assert rows == [(True, "duplicate of an earlier submission with the same code")]
