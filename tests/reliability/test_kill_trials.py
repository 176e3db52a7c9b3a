"""Kill -9 trials. A sync SIGKILLed at a seeded random point, then run again, ends in exactly
the warehouse of an uninterrupted run (every table's sorted rows and the cursors hashed, as in
tests/warehouse/test_crash_safety.py). Between the kill and the re-run the warehouse is
readable and shows all of the killed run or none of it.

Two kinds of point: the n-th pass of *any* failpoint (`SAMMACHIP_FAILPOINT=*:n`: every data
file a run writes, killed half-written, and every manifest step — all of them for this small
district, a seeded sample of 20 for a bigger one; one trial is killed twice in a row), and a
seeded random instant of the run's wall time (fetching, validating, staging or writing —
`failpoints.die_after`). The named points are tried one by one in
tests/warehouse/test_crash_safety.py.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sammachip.schemas.validation import SuiteRunner
from sammachip.warehouse import failpoints
from tests.reliability.helpers import (
    JOBS,
    District,
    fingerprint,
    in_child,
    in_children,
    kill_after,
    killed_sync,
    sync,
    warehouse_version,
)

pytestmark = pytest.mark.slow  # runs killed at every failpoint

SEED = 2568
FAILPOINT_TRIALS = 20  # a run with more passes than this is sampled (seeded)
TIMER_TRIALS = 6


def empty_fingerprint(tmp_path: Path) -> dict[str, str]:
    return fingerprint(tmp_path / "never-synced")


def trial(
    workdir: Path, district: District, runner: SuiteRunner, kill: Callable[[Path], int]
) -> dict[str, Any]:
    """One trial, in its own child: a run killed by `kill`, a look, a re-run, a comparison."""
    died = kill(workdir)
    visible = fingerprint(workdir)  # every table readable from whatever version is current
    version = warehouse_version(workdir)
    sync(workdir, district.url, runner)
    return {
        "signal": died,
        "version": version,
        "visible": visible,
        "identical": fingerprint(workdir) == district.reference,
    }


def run_trials(
    kills: list[Callable[[Path], int]], district: District, runner: SuiteRunner, root: Path
) -> list[dict[str, Any]]:
    jobs = [
        lambda n=n, kill=kill: trial(root / f"trial-{n:02d}", district, runner, kill)
        for n, kill in enumerate(kills)
    ]
    outcomes = list(in_children(jobs, JOBS))
    assert [o.error for o in outcomes if o.error] == []
    return [o.result for o in outcomes]


def assert_all_or_nothing_then_identical(
    results: list[dict[str, Any]], district: District, empty: dict[str, str]
) -> None:
    for n, r in enumerate(results):
        # Killed before its commit: the previous (empty) version; after: all of the run.
        expected = {0: empty, 1: district.reference}.get(r["version"])
        assert r["visible"] == expected, f"trial {n}: half a run is visible"
        assert r["identical"], f"trial {n}: the re-run differs from an uninterrupted run"


def killed_at(n: int, district: District, runner: SuiteRunner) -> Callable[[Path], int]:
    return lambda wd: killed_sync(wd, district.url, runner, f"{failpoints.ANY}:{n}")


def killed_twice(
    points: list[int], district: District, runner: SuiteRunner
) -> Callable[[Path], int]:
    """A power cut, then another during the catch-up run (both before the commit)."""
    return lambda wd: max(killed_at(n, district, runner)(wd) for n in points)


def test_kills_at_every_failpoint_pass_then_a_rerun_equal_an_uninterrupted_run(
    district: District, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    passes = range(1, district.passes + 1)  # every data file half-written, every manifest step
    picks = rng.sample(passes, k=min(FAILPOINT_TRIALS, len(passes)))
    kills = [killed_at(n, district, suite_runner) for n in picks]
    kills.append(killed_twice(rng.sample(passes[:-1], k=2), district, suite_runner))
    results = run_trials(kills, district, suite_runner, tmp_path)
    assert [r["signal"] for r in results] == [signal.SIGKILL] * len(kills)
    assert_all_or_nothing_then_identical(results, district, empty_fingerprint(tmp_path))
    committed = sum(r["version"] == 1 for r in results)
    print(
        f"{len(kills)} failpoint kills ({district.passes} passes a run): {committed} after "
        "the commit, every re-run identical"
    )


def killed_after(delay: float, district: District, runner: SuiteRunner) -> Callable[[Path], int]:
    return lambda wd: kill_after(delay, lambda: sync(wd, district.url, runner))


def seconds_of_a_run(district: District, runner: SuiteRunner, workdir: Path) -> float:
    """How long an uninterrupted sync takes in a forked child, as the trials will run."""

    def timed() -> float:
        started = time.perf_counter()
        sync(workdir, district.url, runner)
        return time.perf_counter() - started

    return float(in_child(timed).result)


def test_seeded_kills_at_a_random_instant_then_a_rerun_equal_an_uninterrupted_run(
    district: District, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    seconds = seconds_of_a_run(district, suite_runner, tmp_path / "timed")
    rng = random.Random(SEED + 1)
    delays = [rng.uniform(0.0, 0.9 * seconds) for _ in range(TIMER_TRIALS)]
    kills = [killed_after(d, district, suite_runner) for d in delays]
    results = run_trials(kills, district, suite_runner, tmp_path)
    killed = sum(r["signal"] == signal.SIGKILL for r in results)
    assert killed >= TIMER_TRIALS // 2  # two trials side by side run a little slower
    assert_all_or_nothing_then_identical(results, district, empty_fingerprint(tmp_path))
    print(
        f"{TIMER_TRIALS} timed kills within {seconds:.1f} s: {killed} killed mid-run, "
        "every re-run identical"
    )
