"""Kill -9 during an ingest run. The ingest flow's body (`ingest_landing`: the webhook's landed
deliveries → one transaction → landing files removed → officer lists) SIGKILLed at a chosen
point, then run again, ends in the warehouse of an uninterrupted ingest, with no version of a
submission twice. Between the kill and the re-run nothing is lost: a run killed before its
commit leaves every landing file in place; one killed after it (files not yet removed) has
committed all of them, and its re-run is a replay the warehouse drops as known versions.

Kill points: the first data file half-written, a seeded failpoint pass, the manifest
half-written, right after the commit (before any landing file is removed), and a seeded
instant of the run. Ingest reads its own clock, so runs compare without it
(`clock_free_fingerprint`: when it ran is left out, every row and cursor kept).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prefect.logging.loggers import disable_run_logger

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import SOURCE, delivery_key
from sammachip.flows import nightly
from sammachip.flows.ingest import ingest_landing
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import HOUSEHOLD, SESSION
from sammachip.warehouse import failpoints
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from tests.reliability.helpers import (
    JOBS,
    TODAY,
    District,
    clock_free_fingerprint,
    in_child,
    in_children,
    kill_after,
    kill_at_failpoint,
    kobo_settings,
    warehouse_version,
)

pytestmark = pytest.mark.slow  # ingest runs killed

SEED = 2570


@pytest.fixture(autouse=True, scope="module")
def one_gx_context(suite_runner: SuiteRunner) -> Iterator[None]:
    """`start_validation` hands out the session's GX context (GX loads in seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nightly, "SuiteRunner", lambda **_: suite_runner)  # background=True too
        yield


def landing(workdir: Path) -> Landing:
    return Landing(workdir / "data" / "landing")


def land(workdir: Path, docs: list[dict[str, Any]]) -> None:
    """What the webhook receiver does with each delivery."""
    for doc in docs:
        submission_id, instance = delivery_key(doc)
        landing(workdir).put(
            SOURCE, doc["_xform_id_string"], f"{submission_id}_{instance}", orjson.dumps(doc)
        )


def ingest(workdir: Path, url: str) -> dict[str, int]:
    """One ingest run over `workdir`'s landing area, outside a flow run: its tasks still run
    (on the test API); the flow-level log lines are dropped."""
    with disable_run_logger():
        summary = ingest_landing(kobo_settings(workdir, url), landing(workdir), TODAY)
    return {
        "landed": summary.landed,
        "removed": summary.removed,
        "waiting": summary.waiting,
        "new": sum(f.new_versions for f in summary.run.forms),
    }


def pending(workdir: Path) -> int:
    return len(landing(workdir).pending(SOURCE))


def duplicate_versions(workdir: Path) -> int:
    """Raw rows beyond one per (submission, payload version)."""
    con = connect(open_warehouse(str(workdir / "data" / "warehouse")))
    [(extra,)] = con.execute(
        "select count(*) - count(distinct (submission_key, payload_hash)) from raw_submissions"
    ).fetchall()
    return int(extra)


@dataclass(frozen=True)
class Deliveries:
    """Every household and session submission of the district, as the webhook landed them,
    and what an uninterrupted ingest of them makes."""

    url: str
    docs: list[dict[str, Any]]
    reference: dict[str, str]
    passes: int  # failpoint passes of that ingest
    seconds: float


@pytest.fixture(scope="module")
def deliveries(
    prefect_harness: None, district: District, tmp_path_factory: pytest.TempPathFactory
) -> Deliveries:
    store = district.store
    docs = [
        store.get(uid, i)
        for uid in (district.uids[HOUSEHOLD], district.uids[SESSION])
        for i in store.asset(uid).ids
    ]  # type: ignore[union-attr]
    workdir = tmp_path_factory.mktemp("ingest-reference")
    land(workdir, docs)

    def uninterrupted() -> dict[str, Any]:  # in a child, as the trials' runs are
        os.environ[failpoints.ENV] = "*:0"  # count every failpoint pass, never die
        failpoints.reset()
        started = time.perf_counter()
        summary = ingest(workdir, district.url)
        return {
            "summary": summary,
            "seconds": time.perf_counter() - started,
            "passes": failpoints.passes(),
        }

    outcome = in_child(uninterrupted)
    assert outcome.error is None, outcome.trace
    assert outcome.result["summary"] == {
        "landed": len(docs),
        "removed": len(docs),
        "waiting": 0,
        "new": len(docs),
    }
    assert pending(workdir) == 0 and duplicate_versions(workdir) == 0
    return Deliveries(
        district.url,
        docs,
        clock_free_fingerprint(workdir),
        outcome.result["passes"],
        outcome.result["seconds"],
    )


@dataclass(frozen=True)
class Trial:
    label: str
    committed: bool | None  # by the kill (None: a timer, by chance)
    failpoint: str | None = None
    seconds: float | None = None


def trials(d: Deliveries) -> list[Trial]:
    rng = random.Random(SEED)
    middle = rng.randint(2, d.passes - 4)  # a data file; the last four passes are the commit's
    return [
        Trial("first data file half-written", False, failpoint=f"{failpoints.ANY}:1"),
        Trial(
            f"failpoint pass {middle} of {d.passes}", False, failpoint=f"{failpoints.ANY}:{middle}"
        ),
        Trial("manifest half-written", False, failpoint="manifest-mid"),
        Trial("committed, no landing file removed yet", True, failpoint="after-commit"),
        Trial("seeded instant", None, seconds=rng.uniform(0.0, 0.9 * d.seconds)),
    ]


def one_trial(trial: Trial, workdir: Path, d: Deliveries) -> dict[str, Any]:
    """In its own child: deliveries landed, an ingest killed, a look, a re-run, a check."""
    land(workdir, d.docs)

    def run() -> None:
        ingest(workdir, d.url)

    if trial.failpoint:
        died = kill_at_failpoint(trial.failpoint, run)
    else:
        died = kill_after(trial.seconds or 0.0, run)
    version, waiting = warehouse_version(workdir), pending(workdir)
    visible = clock_free_fingerprint(workdir)
    rerun = ingest(workdir, d.url)
    return {
        "signal": died,
        "version": version,
        "waiting": waiting,
        "visible": visible,
        "rerun": rerun,
        "pending": pending(workdir),
        "duplicates": duplicate_versions(workdir),
        "identical": clock_free_fingerprint(workdir) == d.reference,
    }


def test_ingest_runs_killed_then_rerun_lose_nothing_and_duplicate_nothing(
    deliveries: Deliveries, tmp_path: Path
) -> None:
    d, planned = deliveries, trials(deliveries)
    jobs = [
        lambda t=t, n=n: one_trial(t, tmp_path / f"trial-{n}", d) for n, t in enumerate(planned)
    ]
    outcomes = list(in_children(jobs, JOBS))
    assert [(o.error, o.trace) for o in outcomes if o.error] == []
    empty = clock_free_fingerprint(tmp_path / "never-ingested")
    everything = len(d.docs)
    for trial, r in zip(planned, (o.result for o in outcomes), strict=True):
        if trial.committed is not None:
            assert (r["signal"], r["version"]) == (signal.SIGKILL, int(trial.committed)), trial
        if r["version"] == 0:  # killed before the commit: every delivery still waits
            assert (r["visible"], r["waiting"]) == (empty, everything), trial.label
        else:  # after it: all of them are in, whatever is left in the landing area
            assert r["visible"] == d.reference, trial.label
        if trial.committed:  # every file still there, and its re-run a replay of known versions
            assert (r["waiting"], r["rerun"]["new"]) == (everything, 0)
        assert r["rerun"]["removed"] == r["waiting"], trial.label  # each left file taken once
        assert (r["pending"], r["duplicates"]) == (0, 0), trial.label
        assert r["identical"], f"{trial.label}: the re-run differs from an uninterrupted ingest"
    timer = "fired" if outcomes[-1].result["signal"] == signal.SIGKILL else "came too late"
    print(
        f"{len(planned)} ingest kills of {everything} deliveries ({d.passes} failpoint passes, "
        f"{d.seconds:.1f} s a run; the timer at {planned[-1].seconds:.2f} s {timer}): "
        "nothing lost, nothing twice"
    )
