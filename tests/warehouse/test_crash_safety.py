"""Crash safety on real files: a sync killed with SIGKILL at named points between data write,
manifest and commit, then re-run, converges to exactly the warehouse of an uninterrupted run;
two runs at once equal two runs in a row; schema evolution keeps old rows readable.

The killed runs are forked children (the parent keeps GX loaded and the simulator serving),
so a trial costs a second, not a fresh interpreter.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sammachip.connectors.kobo import KoboServer, KoboSource
from sammachip.flows.nightly import build_marts, discover_forms, sync_form
from sammachip.flows.progress import FetchProgress
from sammachip.flows.settings import load_settings
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from sammachip.warehouse import failpoints
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from sammachip.warehouse.store import Warehouse

pytestmark = pytest.mark.slow  # commits killed mid-write

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
TOKEN = "c" * 40
# Columns that name the run rather than the data.
VOLATILE = {"ingest_batch", "run_at"}


@pytest.fixture(scope="module")
def kobo_url() -> Iterator[str]:
    store = KoboStore()
    seed_from_cohort(store, generate_cohort(CohortSpec(seed=11, villages=1, today=TODAY)))
    with serve_kobo(store, TOKEN, max_page_size=40) as url:
        yield url


def sync(workdir: Path, url: str, runner: SuiteRunner) -> None:
    """The warehouse part of a nightly run (the flow's tasks, called without Prefect)."""
    settings = load_settings(base_dir=workdir, require_sources=False)
    settings = replace(settings, kobo=(KoboSource(KoboServer(url, TOKEN)),))
    forms, _ = discover_forms.fn(settings)
    wh = open_warehouse(str(settings.warehouse_path))
    with wh.transaction() as tx:
        for form in forms:
            sync_form.fn(tx, form, runner, settings, NOW, FetchProgress.quiet())
        build_marts.fn(tx, settings, TODAY)


def killed_sync(workdir: Path, url: str, runner: SuiteRunner, point: str) -> int:
    """Run `sync` in a forked child that SIGKILLs itself at `point`; return its signal."""
    pid = os.fork()
    if pid == 0:  # child
        os.environ[failpoints.ENV] = point
        try:
            sync(workdir, url, runner)
        finally:
            os._exit(0)  # reached only if the failpoint never fired
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def fingerprint(workdir: Path) -> dict[str, str]:
    """Content hash of every table, rows sorted, run-naming columns left out; plus cursors."""
    wh = open_warehouse(str(workdir / "data" / "warehouse"))
    con = connect(wh)
    out = {"_cursors": repr(sorted(wh.snapshot().cursors.items()))}
    for name in wh.table_names():
        cols = [c[0] for c in con.execute(f"describe {name}").fetchall() if c[0] not in VOLATILE]
        quoted = ", ".join(f'"{c}"' for c in cols)
        rows = con.execute(f"select {quoted} from {name}").fetchall()
        out[name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(
    kobo_url: str, suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("reference")
    sync(workdir, kobo_url, suite_runner)
    return fingerprint(workdir)


@pytest.mark.parametrize(
    "point",
    [
        "data-file-mid:1",
        "data-file-mid:7",
        "before-manifest",
        "manifest-mid",
        "manifest-written",
        "after-commit",
    ],
)
def test_a_killed_run_then_a_rerun_equals_an_uninterrupted_run(
    point: str,
    kobo_url: str,
    suite_runner: SuiteRunner,
    reference: dict[str, str],
    tmp_path: Path,
) -> None:
    assert killed_sync(tmp_path, kobo_url, suite_runner, point) == signal.SIGKILL
    wh = Warehouse(tmp_path / "data" / "warehouse")
    committed = point == "after-commit"
    assert wh.snapshot().version == (1 if committed else 0)  # all or nothing became visible
    sync(tmp_path, kobo_url, suite_runner)
    assert fingerprint(tmp_path) == reference


def test_two_runs_at_once_equal_two_runs_in_a_row(
    kobo_url: str, suite_runner: SuiteRunner, reference: dict[str, str], tmp_path: Path
) -> None:
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                sync(tmp_path, kobo_url, suite_runner)
            finally:
                os._exit(0)
        children.append(pid)
    assert all(os.waitpid(pid, 0)[1] == 0 for pid in children)
    # The lock serialised them: the second found nothing new and changed only the marts.
    assert fingerprint(tmp_path) == reference


def test_a_column_added_later_reads_as_null_in_old_files(tmp_path: Path) -> None:
    old = pa.schema([("submission_key", pa.string()), ("members", pa.int64())])
    new = old.append(pa.field("disability", pa.bool_()))
    with Warehouse(tmp_path, {"t": old}).transaction() as tx:
        tx.append("t", pa.Table.from_pylist([{"submission_key": "a", "members": 3}], old))
    evolved = Warehouse(tmp_path, {"t": new})
    with evolved.transaction() as tx:
        tx.upsert(
            "t",
            pa.Table.from_pylist([{"submission_key": "b", "members": 2, "disability": True}], new),
            {"b"},
        )
    rows = sorted(evolved.read("t").to_pylist(), key=lambda r: r["submission_key"])
    assert rows == [
        {"submission_key": "a", "members": 3, "disability": None},
        {"submission_key": "b", "members": 2, "disability": True},
    ]
