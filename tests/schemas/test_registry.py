"""A form's dependencies are declared once, on its registry entry (its `checks`); the facts a
form's validation gathers, the forms checked again when a fact changes and the parallel waves
are derived from that declaration, so a seventh form is added in one place."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sammachip.schemas.facts import REGISTERED, TRAINED, Check, household_in
from sammachip.schemas.registry import FACTS, FORMS, WAVES, FormSpec, checks_of, fed_by, waves

SUITES = Path(__file__).parents[2] / "schemas" / "expectations"


def wave_of(form_id: str, layers: tuple[tuple[str, ...], ...] = WAVES) -> int:
    return next(n for n, layer in enumerate(layers) if form_id in layer)


def test_every_form_loads_in_a_wave_after_every_form_whose_facts_it_reads() -> None:
    assert sorted(f for layer in WAVES for f in layer) == sorted(FORMS)
    for form_id, spec in FORMS.items():
        for source in spec.reads:
            assert wave_of(source) < wave_of(form_id), (form_id, source)
    # as early as that allows: the first wave reads nothing, every later form reads the wave
    # just before its own
    for form_id, spec in FORMS.items():
        assert wave_of(form_id) == 1 + max((wave_of(r) for r in spec.reads), default=-1)
    assert WAVES == (
        ("sammachip_household", "sammachip_sage", "sammachip_income", "sammachip_followup"),
        ("sammachip_session", "sammachip_group"),
        ("sammachip_materials",),
    )


def test_every_cross_form_fact_is_read_from_a_declared_form_that_holds_its_tables() -> None:
    for spec in FORMS.values():
        for check in spec.checks:
            fact = check.fact
            assert FACTS[fact.name] is fact
            assert fact.source in FORMS, f"{fact.name}: {fact.source} is no registered form"
            assert set(fact.reads) <= set(FORMS[fact.source].tables), fact.name
            # the check's form waits for the fact's form, unless the form reads itself
            assert fact.source in spec.reads | {spec.form_id}
            assert check.table in spec.tables, (spec.form_id, check.table)
    assert {f.name for f in FACTS.values()} == {"registered", "trained", "baseline_dates"}
    assert {f.name for f in fed_by("sammachip_session")} == {"trained"}
    assert [(s.form_id, c.table) for s, c in checks_of(REGISTERED)] == [
        ("sammachip_session", "attendance"),
        ("sammachip_group", "group_members"),
    ]


@pytest.mark.parametrize(
    "check",
    [c for spec in FORMS.values() for c in spec.checks],
    ids=lambda c: f"{c.table}.{c.column}",
)
def test_every_check_is_a_column_its_tables_suite_warns_about(check: Check) -> None:
    suite = json.loads((SUITES / f"{check.table}.json").read_text(encoding="utf-8"))
    warned = [e for e in suite["expectations"] if e["kwargs"].get("column") == check.column]
    assert warned and all(e.get("severity", "critical") == "warning" for e in warned)


def test_a_seventh_form_is_added_on_its_registry_entry_alone() -> None:
    """A form of home visits to trained households: its entry's check puts it in a wave of
    its own, after the sessions whose facts it reads."""
    visits = FormSpec(
        "sammachip_visit",
        "visit",
        "materials",
        None,
        "hh_code",
        "การเยี่ยมบ้าน",
        "Home visit",
        (Check("materials", "household_trained", TRAINED, household_in),),
    )
    seven = {**FORMS, visits.form_id: visits}
    layers = waves(seven)
    assert wave_of("sammachip_visit", layers) == wave_of("sammachip_session", layers) + 1
    assert visits.reads == {"sammachip_session"} and visits.facts == [TRAINED]


def test_forms_whose_checks_read_each_other_cannot_be_ordered() -> None:
    household = FORMS["sammachip_household"]
    circular = {
        **FORMS,
        household.form_id: replace(
            household, checks=(Check("households", "household_trained", TRAINED, household_in),)
        ),
    }
    with pytest.raises(ValueError, match="read each other's facts"):
        waves(circular)
