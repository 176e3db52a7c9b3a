"""Kill -9 on a bucket. The kill trials' sync, writing its warehouse to an S3 bucket (moto's
S3 server on loopback: real HTTP, real multipart uploads, real conditional PUTs), SIGKILLed at
a chosen point, then run again, ends in exactly the warehouse of an uninterrupted run; between
the kill and the re-run, a reader of the bucket sees all of the killed run or none of it.

The fingerprint is the local trials' own (`fingerprint`, read from a copy of the bucket), and
the uninterrupted run into the bucket has the fingerprint of the same run into a folder.

Kill points: S3Storage's failpoints (`before-manifest`, `after-commit`: either side of the
conditional PUT that commits); the bucket killing the writer half-way through a data file's
upload (two seeded files), just before a seeded data file's upload is completed, and half-way
through the manifest's PUT (`s3_server.KillSwitch`); two seeded instants of the run.
"""

from __future__ import annotations

import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sammachip.schemas.validation import SuiteRunner
from sammachip.warehouse.load import open_warehouse
from tests.reliability.helpers import (
    JOBS,
    BucketDistrict,
    District,
    fingerprint,
    in_child,
    in_children,
    kill_after,
    kill_at_failpoint,
    mirror,
    sync_to,
)
from tests.reliability.s3_server import KillOnUpload, Upload

pytestmark = pytest.mark.slow  # runs killed against a bucket server

SEED = 2569
TIMER_TRIALS = 2


def test_a_sync_into_a_bucket_makes_the_warehouse_it_makes_in_a_folder(
    s3: BucketDistrict, district: District
) -> None:
    assert s3.uploads["manifest"] == 1  # one commit, one conditional PUT
    assert s3.uploads["data-part"] >= 10 and s3.uploads["data-complete"] >= 1
    assert s3.reference == district.reference


@dataclass(frozen=True)
class Trial:
    """What kills the run, and whether the run had committed by then (None: by chance)."""

    label: str
    committed: bool | None
    failpoint: str | None = None  # S3Storage's own
    upload: tuple[Upload, int] | None = None  # the bucket kills the writer at its n-th upload
    seconds: float | None = None  # a timer


def trials(s3: BucketDistrict) -> list[Trial]:
    rng = random.Random(SEED)
    parts = rng.sample(range(1, s3.uploads["data-part"] + 1), k=2)
    complete = rng.randint(1, s3.uploads["data-complete"])
    delays = [rng.uniform(0.0, 0.9 * s3.seconds) for _ in range(TIMER_TRIALS)]
    return [
        Trial("before the manifest's conditional PUT", False, failpoint="before-manifest"),
        Trial("after the manifest's conditional PUT", True, failpoint="after-commit"),
        *(
            Trial(f"half-way through data file upload {n}", False, upload=("data-part", n))
            for n in parts
        ),
        Trial(
            f"before data file upload {complete} is completed",
            False,
            upload=("data-complete", complete),
        ),
        Trial("half-way through the manifest's PUT", False, upload=("manifest", 1)),
        *(Trial(f"{d:.2f} s into the run", None, seconds=d) for d in delays),
    ]


def killed_run(
    trial: Trial, uri: str, workdir: Path, s3: BucketDistrict, runner: SuiteRunner
) -> int:
    """The run, in a forked child, killed as `trial` says; the signal that ended it."""

    def run() -> None:
        (workdir / "writer.pid").write_text(str(os.getpid()))  # for the bucket's kill switch
        sync_to(uri, workdir, s3.kobo_url, runner)

    if trial.failpoint:
        return kill_at_failpoint(trial.failpoint, run)
    if trial.seconds is not None:
        return kill_after(trial.seconds, run)
    return in_child(run).signal  # the kill switch was armed before this trial started


def one_trial(
    trial: Trial, name: str, s3: BucketDistrict, runner: SuiteRunner, root: Path
) -> dict[str, Any]:
    """In its own child: a killed run, a look at the bucket, a re-run, a comparison."""
    uri, workdir = s3.bucket.uri(name), root / name
    workdir.mkdir()
    died = killed_run(trial, uri, workdir, s3, runner)
    version = open_warehouse(uri).snapshot().version
    visible = fingerprint(mirror(uri, workdir / "after-kill"))
    sync_to(uri, workdir, s3.kobo_url, runner)
    rerun = fingerprint(mirror(uri, workdir / "after-rerun"))
    return {
        "signal": died,
        "version": version,
        "visible": visible,
        "identical": rerun == s3.reference,
    }


def test_runs_killed_on_a_bucket_then_rerun_equal_an_uninterrupted_run(
    s3: BucketDistrict, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    planned = trials(s3)
    names = [f"trial-{n:02d}" for n in range(len(planned))]
    for trial, name in zip(planned, names, strict=True):
        if trial.upload:
            kind, nth = trial.upload
            s3.bucket.switch.arm(KillOnUpload(name, kind, nth, tmp_path / name / "writer.pid"))
    jobs = [
        lambda t=t, n=n: one_trial(t, n, s3, suite_runner, tmp_path)
        for t, n in zip(planned, names, strict=True)
    ]
    outcomes = list(in_children(jobs, JOBS))
    assert [(o.error, o.trace) for o in outcomes if o.error] == []
    empty = fingerprint(tmp_path / "never-synced")
    for trial, r in zip(planned, (o.result for o in outcomes), strict=True):
        if trial.committed is not None:  # a named point: killed there, before or after commit
            assert (r["signal"], r["version"]) == (signal.SIGKILL, int(trial.committed)), trial
        expected = {0: empty, 1: s3.reference}.get(r["version"])
        assert r["visible"] == expected, f"{trial.label}: half a run is visible"
        assert r["identical"], f"{trial.label}: the re-run differs from an uninterrupted run"
    timers = [
        r["signal"]
        for t, r in zip(planned, (o.result for o in outcomes), strict=True)
        if t.seconds is not None
    ]
    fired = timers.count(signal.SIGKILL)
    print(
        f"{len(planned)} kills on a bucket ({s3.seconds:.1f} s a run, uploads {s3.uploads}; "
        f"{fired} of {len(timers)} timers fired mid-run): every re-run identical"
    )
