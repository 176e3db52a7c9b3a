"""Disk full. A night whose writes start failing part-way stops with an error that says so
and what to do, commits nothing, and leaves the previous night's warehouse intact and
readable; the next run, with room again, converges to the warehouse of two clean nights.

"Full" is a forked child's file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so write()
fails with EFBIG, as it fails with ENOSPC on a full disk), set just below the size of one of
the files the night writes: the first data file, the median one, the largest, and the
manifest itself — the commit (armed as the commit starts, since the manifest is smaller
than the largest table).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from sammachip.warehouse.storage import LocalStorage
from tests.reliability.helpers import (
    JOBS,
    TOKEN,
    fingerprint,
    in_child,
    in_children,
    sync,
    tiny_cohort,
    warehouse_version,
)

pytestmark = pytest.mark.slow  # whole nights synced against a disk that fills up

WAREHOUSE = Path("data") / "warehouse"


@dataclass(frozen=True)
class TwoNights:
    url: str
    first: Path  # a workdir after the first night
    after_first: dict[str, str]  # its fingerprint
    after_second: dict[str, str]  # the fingerprint after a clean second night
    second_writes: dict[str, int]  # files the second night writes → size in bytes


def _new_files(before: Path, after: Path) -> dict[str, int]:
    old = {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
    return {
        str(p.relative_to(after)): p.stat().st_size
        for p in after.rglob("*")
        if p.is_file() and p.relative_to(after) not in old and p.name != "_lock"
    }


@pytest.fixture(scope="module")
def two_nights(
    suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TwoNights]:
    cohort = tiny_cohort()
    times = sorted(s.received_at for s in cohort.submissions)
    middle = times[len(times) // 2]
    store = KoboStore()
    seed_from_cohort(store, cohort, as_of=middle)
    root = tmp_path_factory.mktemp("disk")
    with serve_kobo(store, TOKEN, max_page_size=10) as url:
        sync(root / "first", url, suite_runner)
        seed_from_cohort(store, cohort, after=middle)  # the second day's submissions and edits
        shutil.copytree(root / "first", root / "second")
        sync(root / "second", url, suite_runner)
        writes = _new_files(root / "first" / WAREHOUSE, root / "second" / WAREHOUSE)
        after_first, after_second = fingerprint(root / "first"), fingerprint(root / "second")
        yield TwoNights(url, root / "first", after_first, after_second, writes)


@dataclass(frozen=True)
class Full:
    limit: int  # no file may grow past this many bytes …
    at_commit: bool = False  # … from the start, or only once the manifest is being written


def ways_to_fill(writes: dict[str, int]) -> dict[str, Full]:
    """Each makes the write of one chosen file fail (the manifest is smaller than the largest
    table, so its limit is armed when the commit starts)."""
    data = sorted(size for name, size in writes.items() if name.endswith(".parquet"))
    manifest = next(size for name, size in writes.items() if name.startswith("_manifest/"))
    return {
        "the first data file": Full(0),
        "the median data file": Full(int(statistics.median_low(data)) - 1),
        "the largest data file": Full(data[-1] - 1),
        "the manifest": Full(manifest // 2, at_commit=True),
    }


def failing_write(trace: str) -> str:
    """The storage function whose write failed: the innermost warehouse frame (but the
    wrapper that turns a full disk into a warehouse error)."""
    frames = re.findall(r'/warehouse/\w+\.py", line \d+, in (\w+)', trace)
    return [f for f in frames if f != "_room_for"][-1]


def limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG), don't kill
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))


def on_a_full_disk(workdir: Path, url: str, runner: SuiteRunner, full: Full) -> None:
    """Child side: a sync that runs out of room; its stdout/stderr go nowhere (pytest's
    capture files are files too)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    if full.at_commit:
        commit = LocalStorage.create_exclusive

        def commit_on_a_full_disk(self: LocalStorage, rel: str, text: str) -> None:
            limit_file_size(full.limit)
            commit(self, rel, text)

        LocalStorage.create_exclusive = commit_on_a_full_disk  # type: ignore[method-assign]
    else:
        limit_file_size(full.limit)
    sync(workdir, url, runner)


def full_disk_trial(
    workdir: Path, nights: TwoNights, runner: SuiteRunner, full: Full
) -> dict[str, Any]:
    shutil.copytree(nights.first, workdir)
    failed = in_child(lambda: on_a_full_disk(workdir, nights.url, runner, full))
    seen = {
        "error": failed.error,
        "trace": failed.trace,
        "signal": failed.signal,
        "version": warehouse_version(workdir),
        "intact": fingerprint(workdir) == nights.after_first,
    }
    sync(workdir, nights.url, runner)  # room again
    return {**seen, "converged": fingerprint(workdir) == nights.after_second}


def test_a_full_disk_fails_the_night_clearly_keeps_the_last_one_and_the_next_run_converges(
    two_nights: TwoNights, suite_runner: SuiteRunner, tmp_path: Path
) -> None:
    chosen = ways_to_fill(two_nights.second_writes)
    trials: list[Callable[[], Any]] = [
        lambda n=n, f=full: full_disk_trial(tmp_path / f"t{n}", two_nights, suite_runner, f)
        for n, full in enumerate(chosen.values())
    ]
    outcomes = list(in_children(trials, JOBS))
    assert [o.error for o in outcomes if o.error] == []
    for what, outcome in zip(chosen, outcomes, strict=True):
        r = outcome.result
        assert r["signal"] == 0, f"{what}: the run crashed instead of failing"
        assert r["error"] and "File too large" in r["error"], f"{what}: {r['error']}"
        assert "nothing of this run was committed" in r["error"], r["error"]
        assert "free space" in r["error"], f"{what}: the error does not say what to do"
        writer = "create_exclusive" if what == "the manifest" else "write_table"
        assert failing_write(r["trace"]) == writer, f"{what}: {r['trace']}"
        assert r["version"] == 1 and r["intact"], f"{what}: the last night was damaged"
        assert r["converged"], f"{what}: the next run did not converge"
