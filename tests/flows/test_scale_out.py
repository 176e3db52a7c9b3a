"""Scale-out on existing engines: the same nightly run with forms fetched and validated on a
real local Dask cluster of worker processes gives the warehouse of a one-process run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from sammachip.flows.nightly import run_sync
from sammachip.flows.settings import load_settings
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect

pytestmark = pytest.mark.slow  # a local Dask cluster

TODAY = date(2026, 11, 24)
TOKEN = "e" * 40


@pytest.fixture(scope="module")
def kobo_env() -> Iterator[None]:
    store = KoboStore()
    seed_from_cohort(store, generate_cohort(CohortSpec(seed=21, villages=2, today=TODAY)))
    with serve_kobo(store, TOKEN) as url:
        os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"] = url, TOKEN
        yield
        del os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"]


def clean_rows(workdir: Path) -> dict[str, list[tuple]]:
    con = connect(open_warehouse(str(workdir / "data" / "warehouse")))
    tables = (
        "households",
        "sessions",
        "attendance",
        "materials",
        "income_surveys",
        "groups",
        "quarantine",
        "alerts",
        "otop_readiness",
    )
    skip = {"valid_from", "ingest_batch", "quarantined_at"}
    out = {}
    for t in tables:
        cols = [c[0] for c in con.execute(f"describe {t}").fetchall() if c[0] not in skip]
        quoted = ", ".join(f'"{c}"' for c in cols)
        out[t] = sorted(con.execute(f"select {quoted} from {t}").fetchall(), key=repr)
    return out


def test_dask_workers_give_the_same_warehouse_as_one_process(
    prefect_harness: None, kobo_env: None, tmp_path: Path
) -> None:
    pytest.importorskip("prefect_dask")
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    def run(workdir: Path, workers: int, runner: object | None) -> None:
        settings = replace(load_settings(base_dir=workdir), workers=workers)
        body = flow(name="scale-out-check")(lambda: run_sync(settings, TODAY))
        (body.with_options(task_runner=runner) if runner else body)()

    run(tmp_path / "one", 1, None)
    cluster = {"n_workers": 2, "processes": True, "threads_per_worker": 1}
    run(tmp_path / "dask", 2, DaskTaskRunner(cluster_kwargs=cluster))
    assert clean_rows(tmp_path / "dask") == clean_rows(tmp_path / "one")
