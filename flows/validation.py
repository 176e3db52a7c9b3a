"""A run's validation: GX started while the run lists and fetches (in a child process for
the nightly), and its Data Docs beside the officer files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from sammachip.flows.settings import Settings
from sammachip.reports.data_docs import make_offline
from sammachip.schemas.validation import SuiteRunner, Validator
from sammachip.schemas.validation_process import ProcessRunner


@task(name="start-validation", cache_policy=NO_CACHE)
def start_validation(own_process: bool = False) -> Validator:
    """The run's GX context, handed down to every task that validates: tasks on threads of
    this process validate through it (their batches then appear in the run's Data Docs); a
    Dask worker process gets its own (see `SuiteRunner.__reduce__`). GX starts (`own_process`:
    in a child, on the second core; else on a thread) while the run lists its forms and
    fetches the first pages: the first validation waits for it."""
    return ProcessRunner() if own_process else SuiteRunner(background=True)


@task(name="build-data-docs", cache_policy=NO_CACHE)
def build_data_docs(runner: Validator, settings: Settings, today: date) -> Path | None:
    """GX's own report of the suites and of this run's validations, beside the officer files
    (a run that validated nothing leaves the last report in place)."""
    if not runner.batches_validated:
        return None
    index = runner.build_data_docs(settings.reports_path / today.isoformat() / "data_docs")
    make_offline(index.parent)  # the office opens them without internet
    return index
