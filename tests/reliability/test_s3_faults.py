"""S3 itself failing while the writer lives. The district's sync into a bucket (moto's S3
server on loopback) meets S3's own failures — 503 `SlowDown`, 500 `InternalError`, a
connection dropped before the store saw the request or after it acted on it — on the data
files' uploads, the manifest's conditional PUT (the commit), and the reads of both
(`s3_server.KillSwitch.inject`). Data files go through pyarrow's S3 filesystem (the AWS C++
SDK: 3 tries), the manifest's PUT through boto3 (standard mode: 3 tries).

- A few faults, within the clients' retries: the warehouse equals the uninterrupted run's.
- Past every retry: the run fails with an error that says nothing was committed and what to
  do, nothing is committed, and the next run converges.
- A commit whose answer was lost: the run must know it committed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sammachip.schemas.validation import SuiteRunner
from sammachip.warehouse.load import open_warehouse
from tests.reliability.helpers import (
    JOBS,
    BucketDistrict,
    ChildOutcome,
    fingerprint,
    in_children,
    mirror,
    sync_to,
)
from tests.reliability.s3_server import FaultsOnRequest, Kind, S3Fault

pytestmark = pytest.mark.slow  # a bucket server (moto) with injected faults

SEED = 2571
PAST_EVERY_RETRY = 3  # both clients try a request 3 times


Injection = tuple[Kind, int, tuple[S3Fault, ...]]  # at the n-th request of a kind: faults


@dataclass(frozen=True)
class Trial:
    """Faults injected into the trial's runs; `runs`: 1, or 2 (the second over the warehouse
    the first committed: it reads a manifest and data files back)."""

    label: str
    injections: tuple[Injection, ...]
    runs: int = 1

    @property
    def faults(self) -> int:
        return sum(len(faults) for _, _, faults in self.injections)


def run_trial(
    trial: Trial, name: str, s3: BucketDistrict, runner: SuiteRunner, root: Path
) -> dict[str, Any]:
    """In its own child: the faulty run(s), what the bucket then shows and, if a run failed,
    a re-run (a run that succeeded is the re-run of nothing)."""
    uri, workdir = s3.bucket.uri(name), root / name
    workdir.mkdir()
    error = None
    try:
        for _ in range(trial.runs):
            sync_to(uri, workdir, s3.kobo_url, runner)
    except Exception as err:  # the parent asserts on what it says
        error = f"{type(err).__module__}.{type(err).__name__}: {err}"
    version = open_warehouse(uri).snapshot().version
    visible = fingerprint(mirror(uri, workdir / "after-faults"))
    rerun = visible
    if error is not None:
        sync_to(uri, workdir, s3.kobo_url, runner)
        rerun = fingerprint(mirror(uri, workdir / "after-rerun"))
    return {
        "error": error,
        "version": version,
        "visible": visible,
        "identical": rerun == s3.reference,
    }


def run_trials(
    trials: list[Trial], s3: BucketDistrict, runner: SuiteRunner, root: Path, tag: str
) -> list[tuple[Trial, dict[str, Any], int]]:
    """Each trial in a forked child (JOBS at a time), its faults injected under its own
    prefix first; (trial, outcome, faults served)."""
    names = [f"{tag}-{n:02d}" for n in range(len(trials))]
    for trial, name in zip(trials, names, strict=True):
        for kind, nth, faults in trial.injections:
            s3.bucket.switch.inject(FaultsOnRequest(name, kind, nth, faults))
    jobs: list[Callable[[], Any]] = [
        lambda t=t, n=n: run_trial(t, n, s3, runner, root)
        for t, n in zip(trials, names, strict=True)
    ]
    outcomes: list[ChildOutcome] = list(in_children(jobs, JOBS))
    assert [(o.error, o.trace) for o in outcomes if o.error] == []
    served = [s3.bucket.switch.served[n] for n in names]
    return list(zip(trials, (o.result for o in outcomes), served, strict=True))


def transient_trials(s3: BucketDistrict) -> list[Trial]:
    # Seeded uploads at least 3 requests apart: one upload's faults (and retries) never run
    # into the next's, so no upload meets more faults than its tries.
    spaced = range(1, s3.uploads["data-part"] + 1, 3)
    parts = sorted(random.Random(SEED).sample(spaced, k=3))
    return [
        Trial(
            "data files: 2× SlowDown on an upload; a connection dropped before S3 saw "
            "another; the answer to a third lost (S3 stored it); InternalError completing "
            "a multipart upload",
            (
                ("data-part", parts[0], ("slow-down", "slow-down")),
                ("data-part", parts[1], ("drop",)),
                ("data-part", parts[2], ("drop-after",)),
                ("data-complete", 1, ("internal-error",)),
            ),
        ),
        Trial(
            "the manifest's conditional PUT: SlowDown, then a connection dropped before S3 saw it",
            (("manifest", 1, ("slow-down", "drop")),),
        ),
        Trial(
            "reads (a second run): SlowDown then InternalError on the manifest; SlowDown "
            "then a body cut half-way on a data file",
            (
                ("manifest-get", 1, ("slow-down", "internal-error")),
                ("data-get", 1, ("slow-down", "drop-after")),
            ),
            runs=2,
        ),
    ]


def test_s3_failures_within_the_retries_end_in_the_warehouse_of_a_clean_run(
    s3: BucketDistrict, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    for trial, r, served in run_trials(transient_trials(s3), s3, suite_runner, tmp_path, "t"):
        assert served == trial.faults, f"{trial.label}: faults not all met"
        assert r["error"] is None, f"{trial.label}: {r['error']}"
        assert (r["version"], r["visible"]) == (trial.runs, s3.reference), trial.label
        assert r["identical"], trial.label


# Past every retry (a fault on each of a request's tries), and a commit made whose answer was
# lost; run once for the tests below, which read different things of the same outcomes.
FAILING = [
    Trial(
        "SlowDown on every try of a data file's upload",
        (("data-part", 3, ("slow-down",) * PAST_EVERY_RETRY),),
    ),
    Trial(
        "SlowDown on every try of the manifest's PUT",
        (("manifest", 1, ("slow-down",) * PAST_EVERY_RETRY),),
    ),
]
LOST_ANSWER = Trial("the manifest's PUT made, its answer lost", (("manifest", 1, ("drop-after",)),))
Outcomes = dict[str, tuple[dict[str, Any], int]]  # trial label → (outcome, faults served)


@pytest.fixture(scope="module")
def failing(
    s3: BucketDistrict, suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Outcomes:
    root = tmp_path_factory.mktemp("s3-failing")
    ran = run_trials([*FAILING, LOST_ANSWER], s3, suite_runner, root, "f")
    return {trial.label: (r, served) for trial, r, served in ran}


def test_s3_failing_past_every_retry_commits_nothing_and_the_next_run_converges(
    failing: Outcomes, s3: BucketDistrict, tmp_path: Path
) -> None:
    empty = fingerprint(tmp_path / "never-synced")
    for trial in FAILING:
        r, served = failing[trial.label]
        assert served == trial.faults, trial.label
        assert r["error"] is not None, f"{trial.label}: the run did not fail"
        assert (r["version"], r["visible"]) == (0, empty), f"{trial.label}: committed"
        assert r["identical"], f"{trial.label}: the next run did not converge"


# Fixed (was: pyarrow's OSError / botocore's ClientError escaped with no advice).
def test_s3_failing_past_every_retry_is_a_warehouse_error_saying_nothing_was_committed(
    failing: Outcomes,
) -> None:
    errors = {trial.label: failing[trial.label][0]["error"] for trial in FAILING}
    for label, error in errors.items():
        assert error.startswith("sammachip.warehouse.storage.WarehouseError: "), f"{label}: {error}"
        assert "nothing of this run was committed" in error, f"{label}: {error}"


def test_a_commit_whose_answer_was_lost_is_in_the_bucket_whole(
    failing: Outcomes, s3: BucketDistrict
) -> None:
    r, served = failing[LOST_ANSWER.label]
    assert served == 1
    assert (r["version"], r["visible"]) == (1, s3.reference)  # S3 made the commit
    assert r["identical"]  # and a re-run after it changes nothing


# Fixed (was: boto3 retried the PUT, S3 answered 412 — the version was this very run's —
# and the run said 'another run committed … first; nothing of this run was committed').
def test_a_commit_whose_answer_was_lost_is_known_to_the_run_as_committed(
    failing: Outcomes,
) -> None:
    r, _ = failing[LOST_ANSWER.label]
    assert r["error"] is None, r["error"]
