"""The suites against a generated cohort whose injected dirt is known (`defects`): what the
normalisation repairs comes out clean, what it cannot goes to quarantine with the right reason,
and every submission is either clean or quarantined."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

import orjson
import pytest

from sammachip.connectors.kobo import to_submission
from sammachip.schemas.batch import ValidatedForm, validate_form
from sammachip.schemas.records import Submission
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import CohortSpec, GeneratedSubmission, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
REPAIRABLE = {"thai_digits", "be_year", "phone_plus66"}


@pytest.fixture(scope="module")
def outcome(suite_runner: SuiteRunner) -> tuple[dict[str, ValidatedForm], dict[str, Submission]]:
    cohort = generate_cohort(CohortSpec(seed=5, villages=12, today=TODAY))
    store = KoboStore()
    assets = seed_from_cohort(store, cohort)
    by_form: dict[str, list[Submission]] = defaultdict(list)
    for form_id, uid in assets.items():
        _, docs = store.page(uid, limit=10**6)
        for raw in docs:
            by_form[form_id].append(
                to_submission(orjson.loads(raw), server="sim", asset_uid=uid, form_id=form_id)
            )
    results = {
        f: validate_form(f, subs, suite_runner, batch="b", now=NOW) for f, subs in by_form.items()
    }
    index = {s.instance_id: s for subs in by_form.values() for s in subs}
    return results, index


def fate(outcome: tuple[dict, dict], gen: GeneratedSubmission) -> tuple[str, set[str]]:
    """('clean'|'quarantined', the quarantine columns) of a generated submission."""
    results, index = outcome
    instance = (gen.edits[-1][1].get("meta/instanceID") if gen.edits else None) or gen.answers[
        "meta/instanceID"
    ]
    sub = index[instance]
    result = results[sub.form_id]
    if sub.key in result.clean_keys:
        return "clean", set()
    columns = {
        r["column_name"] for r in result.quarantine.to_pylist() if r["submission_key"] == sub.key
    }
    return "quarantined", columns


def generated(outcome: tuple[dict, dict], kind: str) -> list[GeneratedSubmission]:
    cohort = generate_cohort(CohortSpec(seed=5, villages=12, today=TODAY))
    found = [
        s
        for s in cohort.submissions
        if not s.edits and any(d.startswith(kind + ":") for d in s.defects)
    ]
    assert found, f"the cohort has no {kind} defects to test with"
    return found


def test_every_submission_is_clean_or_quarantined(outcome: tuple[dict, dict]) -> None:
    results, _ = outcome
    for result in results.values():
        assert result.reconciles
        assert not result.clean_keys & result.quarantined_keys


@pytest.mark.parametrize("kind", sorted(REPAIRABLE))
def test_what_normalisation_repairs_comes_out_clean(outcome: tuple[dict, dict], kind: str) -> None:
    for gen in generated(outcome, kind):
        if {d.split(":")[0] for d in gen.defects} <= REPAIRABLE:
            assert fate(outcome, gen) == ("clean", set()), gen.defects


@pytest.mark.parametrize(
    ("kind", "column"), [("bad_checksum", "national_id"), ("missing_required", None)]
)
def test_what_cannot_be_repaired_is_quarantined_with_its_reason(
    outcome: tuple[dict, dict], kind: str, column: str | None
) -> None:
    for gen in generated(outcome, kind):
        status, columns = fate(outcome, gen)
        assert status == "quarantined", gen.defects
        if column:
            assert column in columns, (gen.defects, columns)


def test_of_two_registrations_of_one_household_the_later_is_quarantined(
    outcome: tuple[dict, dict],
) -> None:
    cohort = generate_cohort(CohortSpec(seed=5, villages=12, today=TODAY))
    households = [s for s in cohort.submissions if s.form_id == "sammachip_household"]
    for dup in generated(outcome, "duplicate"):
        code = dup.answers["hh/hh_code"]
        pair = [s for s in households if s.answers.get("hh/hh_code") == code]
        fates = [fate(outcome, s) for s in sorted(pair, key=lambda s: s.received_at)]
        assert "duplicate_of" not in fates[0][1]  # the first registration is never a duplicate
        assert all("duplicate_of" in f[1] for f in fates[1:]), fates
