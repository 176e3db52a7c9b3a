"""Validation in a child process (`ProcessRunner`): the same answers as GX in the run's own
process, and a child that never outlives the run nor leaves it waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import psutil
import pyarrow as pa
import pytest

from sammachip.connectors.kobo import to_submission
from sammachip.schemas.batch import StreamState, ValidatedForm, validate_stream
from sammachip.schemas.records import Submission
from sammachip.schemas.registry import FORMS
from sammachip.schemas.validation import SuiteRunner
from sammachip.schemas.validation_process import ProcessRunner
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def district() -> dict[str, list[Submission]]:
    """A small generated district as the server sends it, dirty answers and edits included."""
    cohort = generate_cohort(CohortSpec(seed=11, villages=6, today=TODAY))
    store = KoboStore()
    found: dict[str, list[Submission]] = {}
    for form_id, uid in seed_from_cohort(store, cohort).items():
        docs = [orjson.loads(raw) for raw in store.page(uid, limit=10**6)[1]]
        found[form_id] = [
            to_submission(d, server="sim", asset_uid=uid, form_id=form_id) for d in docs
        ]
    return found


@pytest.fixture(scope="module")
def process_runner() -> Iterator[ProcessRunner]:
    with ProcessRunner() as runner:
        yield runner


def _empty_state() -> StreamState:
    text = pa.array([], pa.string())
    return StreamState(
        pa.table({"submission_key": text, "payload_hash": text}),
        pa.table({"code": text, "submission_key": text}),
    )


def _stream(runner: object, form_id: str, subs: list[Submission]) -> list[ValidatedForm]:
    """A form's submissions in small batches, so that several are in flight at once and
    codes registered by one batch are duplicates in the next."""
    batches = (subs[i : i + 40] for i in range(0, len(subs), 40))
    stream = validate_stream(
        form_id,
        batches,
        runner,
        state=_empty_state(),
        batch="b",
        now=NOW,  # type: ignore[arg-type]
    )
    return [validated for validated, _, _ in stream]


def _as_compared(v: ValidatedForm) -> dict[str, object]:
    tables = {name: t.to_pylist() for name, t in sorted(v.tables.items())}
    assert v.quarantine is not None and v.validation_runs is not None
    return {
        "tables": tables,
        "quarantine": v.quarantine.to_pylist(),
        "runs": v.validation_runs.to_pylist(),
        "clean": sorted(v.clean_keys),
        "quarantined": sorted(v.quarantined_keys),
        "drift": v.drift,
    }


def test_a_district_validated_in_a_child_process_is_what_the_run_s_own_process_gives(
    district: dict[str, list[Submission]],
    suite_runner: SuiteRunner,
    process_runner: ProcessRunner,
) -> None:
    quarantined = 0
    for form_id in FORMS:
        subs = district.get(form_id, [])
        here = [_as_compared(v) for v in _stream(suite_runner, form_id, subs)]
        there = [_as_compared(v) for v in _stream(process_runner, form_id, subs)]
        assert there == here, form_id
        quarantined += sum(len(v["quarantined"]) for v in there)  # type: ignore[arg-type]
    assert quarantined > 0  # the cohort's defects reached the suites
    assert process_runner.batches_validated > 0


def test_data_docs_show_the_child_s_validations(
    district: dict[str, list[Submission]], process_runner: ProcessRunner, tmp_path: Path
) -> None:
    _stream(process_runner, "sammachip_household", district["sammachip_household"][:40])
    index = process_runner.build_data_docs(tmp_path / "data_docs")
    assert index == tmp_path / "data_docs" / "index.html" and index.exists()
    results = list((index.parent / "validations").rglob("*.html"))
    assert any("households" in str(page) for page in results)  # the child's validation results


def test_the_child_is_gone_when_the_run_ends_and_when_it_raised() -> None:
    with ProcessRunner() as runner:
        assert "households" in runner.tables()
        ended_well = runner.pid
    with pytest.raises(KeyError), ProcessRunner() as runner:
        raised = runner.pid
        raise KeyError("the run failed before its first validation")
    assert ended_well and raised
    assert not psutil.pid_exists(ended_well)
    assert not psutil.pid_exists(raised)


def test_gx_that_cannot_start_is_said_where_validation_waits(tmp_path: Path) -> None:
    (tmp_path / "households.json").write_text("{ not json", encoding="utf-8")
    with ProcessRunner(tmp_path) as runner, pytest.raises(RuntimeError) as err:
        runner.tables()
    assert "Great Expectations could not start" in str(err.value)
