"""Checks the suites make because the XLSForms require them: a submission that arrives without
them (an old form version, a hand-made upload) goes to quarantine with its reason."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from sammachip.connectors.kobo import to_submission
from sammachip.schemas.batch import CrossFormContext, validate_form
from sammachip.schemas.records import Submission
from sammachip.schemas.registry import OCCUPATION_TH
from sammachip.schemas.validation import SuiteRunner, process_runner
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
SUITES = Path(__file__).resolve().parents[2] / "schemas" / "expectations"


@pytest.fixture(scope="module")
def received() -> dict[str, list[Submission]]:
    """A small generated district as the server sends it, by form, clean ones only."""
    cohort = generate_cohort(CohortSpec(seed=5, villages=8, today=TODAY))
    dirty = {s.answers["meta/instanceID"] for s in cohort.submissions if s.defects or s.edits}
    store = KoboStore()
    found: dict[str, list[Submission]] = {}
    for form_id, uid in seed_from_cohort(store, cohort).items():
        docs = [orjson.loads(raw) for raw in store.page(uid, limit=10**6)[1]]
        found[form_id] = [
            to_submission(d, server="sim", asset_uid=uid, form_id=form_id)
            for d in docs
            if d["meta/instanceID"] not in dirty
        ]
    return found


def spoilt(sub: Submission, drop: tuple[str, ...] = (), **answers: object) -> Submission:
    """The same submission as the server would send it with answers left out or changed."""
    payload = {k: v for k, v in sub.payload.items() if k not in drop} | answers
    return to_submission(payload, server=sub.server, asset_uid=sub.form_uid, form_id=sub.form_id)


def quarantined(runner: SuiteRunner, form_id: str, subs: list[Submission]) -> dict[str, set]:
    result = validate_form(form_id, subs, runner, batch="b", now=NOW)
    reasons: dict[str, set] = {}
    for r in result.quarantine.to_pylist():
        reasons.setdefault(r["submission_key"], set()).add((r["column_name"], r["reason_en"]))
    return reasons


def test_a_group_without_product_standards_is_quarantined(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    good, other = received["sammachip_group"][:2]
    bad = spoilt(other, drop=("product/standards",))
    assert quarantined(suite_runner, "sammachip_group", [good, bad]) == {
        bad.key: {("standards", 'product standards not answered (choose "none" if there are none)')}
    }


def test_a_session_teaching_an_occupation_off_the_list_is_quarantined(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    good, other = received["sammachip_session"][:2]
    bad = spoilt(other, occupation="rocket_science")
    assert quarantined(suite_runner, "sammachip_session", [good, bad]) == {
        bad.key: {("occupation", "occupation taught is not in the list")}
    }


@pytest.mark.parametrize("suite", ["households", "sessions"])
def test_the_suites_know_exactly_the_registry_occupations(suite: str) -> None:
    doc = json.loads((SUITES / f"{suite}.json").read_text(encoding="utf-8"))
    sets = [
        e["kwargs"]["value_set"]
        for e in doc["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
        and e["kwargs"]["column"] == "occupation"
    ]
    assert [set(s) for s in sets] == [set(OCCUPATION_TH)]


def flags(
    form_id: str, subs: list[Submission], runner: SuiteRunner, context: CrossFormContext
) -> dict[str, list[str]]:
    """Each submission's warnings, after checking that every one of them stayed clean."""
    result = validate_form(form_id, subs, runner, batch="b", now=NOW, context=context)
    assert result.clean_keys == {s.key for s in subs}
    parent = next(iter(result.tables.values()))
    return {r["submission_key"]: r["dq_flags"] for r in parent.to_pylist()}


def test_checks_across_forms_warn_about_what_other_forms_do_not_vouch_for(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    # the other form may simply not have arrived yet: a warning for the officer, never quarantine
    sessions, materials = received["sammachip_session"][:2], received["sammachip_materials"][:2]
    attendees = validate_form("sammachip_session", sessions, suite_runner, batch="b", now=NOW)
    registered = pa.table(
        {"hh_code": sorted(set(attendees.tables["attendance"]["hh_code"].to_pylist()))}
    )
    known = flags(
        "sammachip_session", sessions, suite_runner, CrossFormContext({"registered": registered})
    )
    unknown = flags("sammachip_session", sessions, suite_runner, CrossFormContext())
    assert not any("household_registered" in f for fs in known.values() for f in fs)
    assert all(
        "attendance.household_registered: household is not in the household register" in fs
        for fs in unknown.values()
    )

    given = validate_form("sammachip_materials", materials, suite_runner, batch="b", now=NOW)
    first = given.tables["materials"].to_pylist()[0]
    trained = CrossFormContext({"trained": pa.table({"hh_code": [first["hh_code"]]})})
    warned = flags("sammachip_materials", materials, suite_runner, trained)
    assert [any("household_trained" in f for f in warned[s.key]) for s in materials] == [
        first["hh_code"] != row["hh_code"] for row in given.tables["materials"].to_pylist()
    ]


def test_a_follow_up_survey_dated_before_the_baseline_is_flagged(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    surveys = received["sammachip_income"]
    rows = validate_form("sammachip_income", surveys, suite_runner, batch="b", now=NOW)
    followup = next(
        r for r in rows.tables["income_surveys"].to_pylist() if r["round"] == "followup"
    )
    sub = next(s for s in surveys if s.key == followup["submission_key"])
    day = followup["survey_date"]
    for baseline, expected in ((day, False), (date.fromordinal(day.toordinal() + 1), True)):
        context = CrossFormContext(
            {"baseline_dates": pa.table({"hh_code": [followup["hh_code"]], "first": [baseline]})}
        )
        warned = flags("sammachip_income", [sub], suite_runner, context)
        assert any("followup_after_baseline" in f for f in warned[sub.key]) is expected


def reasons(runner: SuiteRunner, form_id: str, sub: Submission) -> set[tuple[str, str, str]]:
    """(column, Thai reason, English reason) of each quarantine row of one submission."""
    result = validate_form(form_id, [sub], runner, batch="b", now=NOW)
    assert result.quarantined_keys == {sub.key}
    return {
        (r["column_name"], r["reason_th"], r["reason_en"]) for r in result.quarantine.to_pylist()
    }


@pytest.mark.parametrize(
    ("form_id", "answer", "typed", "reason_th", "reason_en"),
    [
        (
            "sammachip_household",
            "members",
            "1e309",
            "อ่านเป็นจำนวนเต็มไม่ได้",
            "could not be read as a whole number",
        ),
        ("sammachip_session", "planned_date", "2024-02-30", "ไม่มีวันที่นี้ในปฏิทิน", "is no such date"),
    ],
)
def test_a_value_typed_but_unreadable_is_said_so_not_missing(
    suite_runner: SuiteRunner,
    received: dict[str, list[Submission]],
    form_id: str,
    answer: str,
    typed: str,
    reason_th: str,
    reason_en: str,
) -> None:
    bad = spoilt(received[form_id][0], **{answer: typed})
    assert reasons(suite_runner, form_id, bad) == {
        (answer, f"{answer}: '{typed}' {reason_th}", f"{answer}: '{typed}' {reason_en}")
    }


def test_each_unreadable_answer_has_its_own_reason_beside_what_is_really_missing(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    bad = spoilt(
        received["sammachip_household"][0],
        drop=("hh/house_no",),
        members="สี่",
        baseline_income="๕,๐๐๐ บาท",
    )
    assert {(c, en) for c, _, en in reasons(suite_runner, "sammachip_household", bad)} == {
        ("members", "members: 'สี่' could not be read as a whole number"),
        ("baseline_income", "baseline_income: '๕,๐๐๐ บาท' could not be read as a whole number"),
        ("house_no", "house number is missing"),  # left out: that one is missing
    }


def test_an_unreadable_answer_in_a_repeat_names_its_entry(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    session = next(
        s
        for s in received["sammachip_session"]
        if s.payload.get("held_date") and len(s.payload.get("attendees") or []) > 1
    )
    attendees = [dict(a) for a in session.payload["attendees"]]
    attendees[1]["attendees/present"] = "มาสาย"  # neither yes nor no
    bad = spoilt(session, attendees=attendees)
    assert {(c, en) for c, _, en in reasons(suite_runner, "sammachip_session", bad)} == {
        ("present", "attendees[2]/attendees/present: 'มาสาย' is not yes or no")
    }


def test_a_runner_handed_to_another_process_arrives_as_that_processs_own(
    suite_runner: SuiteRunner,
) -> None:
    """A GX context cannot cross processes: a runner pickled for a Dask worker is rebuilt
    there once, and every task that process runs shares it."""
    arrived = pickle.loads(pickle.dumps(suite_runner))
    assert arrived is not suite_runner
    assert arrived is pickle.loads(pickle.dumps(suite_runner)) is process_runner()
    assert arrived.tables() == suite_runner.tables()


def test_a_group_selling_below_zero_is_quarantined(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    good, other = next(
        (a, b)
        for a, b in zip(received["sammachip_group"], received["sammachip_group"][1:], strict=False)
        if "market/price_per_unit" in b.payload
    )
    bad = spoilt(other, **{"market/price_per_unit": "-45", "market/channel": "somewhere"})
    assert quarantined(suite_runner, "sammachip_group", [good, bad]) == {
        bad.key: {
            ("price_per_unit", "selling price per unit is negative"),
            ("market_channel", "sales channel not in the list"),
        }
    }


def test_a_follow_up_that_found_a_problem_but_agreed_nothing_is_flagged(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    surveys = received["sammachip_income"]
    found = next(s for s in surveys if s.payload.get("problem") not in (None, "none"))
    assert found.payload["action_agreed"]  # the cohort records what was agreed
    silent = spoilt(found, drop=("action_agreed",))
    no_baselines = pa.table(
        {"hh_code": pa.array([], pa.string()), "first": pa.array([], pa.date32())}
    )
    context = CrossFormContext({"baseline_dates": no_baselines})
    for sub, warned in ((found, False), (silent, True)):
        got = flags("sammachip_income", [sub], suite_runner, context)[sub.key]
        assert any("action_agreed" in f for f in got) is warned, got
    baseline = next(s for s in surveys if s.payload["round"] == "baseline")
    assert "problem" not in baseline.payload  # asked at follow-up only


def test_a_registration_held_back_keeps_who_and_where_for_the_officer(
    suite_runner: SuiteRunner, received: dict[str, list[Submission]]
) -> None:
    sub = spoilt(received["sammachip_household"][0], **{"head/national_id": "1234567890123"})
    result = validate_form("sammachip_household", [sub], suite_runner, batch="b", now=NOW)
    (row,) = {
        (r["subject_name"], r["subject_house_no"], r["subject_phone"])
        for r in result.quarantine.to_pylist()
    }
    payload = sub.payload
    assert row == (payload["head/name"], payload["hh/house_no"], payload["head/phone"])
