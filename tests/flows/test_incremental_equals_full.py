"""Incremental equals full: a warehouse built night by night from ODK Central holds what one
full sync of the server's final state builds — the same live clean rows (their warnings
included), the same quarantine, the same open alerts — whatever happened in between: late
registrations, edits that change what other forms are checked against (a session no longer
held, a household renumbered, a baseline survey re-dated), deletions and restores.

The nights are random (hypothesis, derandomized, few examples: each night is a real sync of a
one-village cohort on the simulator, over loopback, in a Prefect flow), plus one history with
every kind of change in it.

Not covered: two registrations of the same code. Which one is the duplicate depends on which
was clean first (docs/design.md), so a restored earlier registration is the duplicate of the
one that took its code meanwhile, where a full sync calls the later one the duplicate. (A
deleted registration does release its code: tests/flows/test_nightly_odk.py.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sammachip.flows.nightly import FormResult
from sammachip.schemas.registry import FORMS
from sammachip.schemas.tables import CLEAN_TABLES
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.cohort import (
    GROUP,
    HOUSEHOLD,
    INCOME,
    MATERIALS,
    SAGE,
    SESSION,
    Cohort,
    CohortSpec,
    GeneratedSubmission,
    generate_cohort,
)
from sammachip.simulators.odk import (
    KOBO_TO_REVIEW,
    PUBLIC_LINK,
    OdkStore,
    serve_odk,
    xlsform_definition,
)
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from tests.reliability.helpers import (
    EMAIL,
    NOW,
    PASSWORD,
    RUN_CLOCK,
    odk_settings,
    sync_in_flow,
)
from tests.warehouse.test_crash_safety import TODAY, VOLATILE

NIGHTS = 3
# Eight households, six sessions, their materials and incomes, a group; no code registered
# twice. Sages are left out: no check reads them, and each form costs every night a sync.
_COHORT = generate_cohort(CohortSpec(seed=3, villages=1, households_per_village=8, today=TODAY))
COHORT = replace(_COHORT, submissions=[s for s in _COHORT.submissions if s.form_id != SAGE])
# Edits that change a fact other answers are checked against, or nothing at all.
EDITS: dict[str, tuple[str, ...]] = {
    HOUSEHOLD: ("members", "renumber"),  # a renumbered household is no longer registered
    SESSION: ("unheld", "absent"),  # its attendees are no longer trained by it
    INCOME: ("redate",),  # a baseline moved after its follow-up, or back
}


@dataclass(frozen=True)
class History:
    """What happens on the server, night by night (indices into the cohort's submissions)."""

    arrival: tuple[int, ...]  # night each submission is received
    events: tuple[tuple[int, int, str], ...]  # (night, submission, edit kind|delete|restore)

    def on(self, night: int) -> Iterator[tuple[int, str]]:
        return ((i, what) for n, i, what in self.events if n == night)


@st.composite
def histories(draw: st.DrawFn, cohort: Cohort = COHORT) -> History:
    subs = cohort.submissions
    arrival = [i * NIGHTS // len(subs) for i in range(len(subs))]  # in receive order
    households = [i for i, s in enumerate(subs) if s.form_id == HOUSEHOLD]
    for i in draw(st.sets(st.sampled_from(households), max_size=3)):  # late registrations
        arrival[i] = NIGHTS - 1
    events: list[tuple[int, int, str]] = []
    for i in draw(st.lists(st.integers(0, len(subs) - 1), max_size=6, unique=True)):
        kinds = EDITS.get(subs[i].form_id, ())
        what = draw(st.sampled_from(["delete", *kinds]))
        night = draw(st.integers(arrival[i], NIGHTS - 1))
        events.append((night, i, what))
        if what == "delete" and night < NIGHTS - 1 and draw(st.booleans()):
            events.append((draw(st.integers(night + 1, NIGHTS - 1)), i, "restore"))
    return History(tuple(arrival), tuple(sorted(events)))


@dataclass
class Central:
    """The simulator on loopback, its clock moved by hand: every change is stamped after the
    one before, as on a real server, and a night's sync comes after its changes."""

    store: OdkStore
    url: str
    clock: list[Any] = field(default_factory=lambda: [NOW])

    def tick(self, by: timedelta = timedelta(seconds=1)) -> None:
        self.clock[0] += by

    def reset(self) -> None:
        self.store.reset()
        self.clock[0] = NOW
        for form_id in FORMS.keys() - {SAGE}:
            self.store.add_definition(1, xlsform_definition(FORMS[form_id].xlsform))


@pytest.fixture(scope="module")
def central() -> Iterator[Central]:
    clock = [NOW]
    store = OdkStore(clock=lambda: clock[0])
    with serve_odk(store, EMAIL, PASSWORD) as url:
        yield Central(store, url, clock)


def xml_id(form_id: str) -> str:
    return xlsform_definition(FORMS[form_id].xlsform).xml_form_id


def root(sub: GeneratedSubmission) -> str:
    return str(sub.answers["meta/instanceID"])


def changes(sub: GeneratedSubmission, kind: str) -> dict[str, Any]:
    answers = sub.answers
    if kind == "members":
        return {"members": str(int(answers.get("members") or 0) + 1)}
    if kind == "renumber":
        return {"hh/hh_code": f"{answers['hh/hh_code']}9"}
    if kind == "unheld":
        return {"held_date": None}
    if kind == "absent":
        attendees = answers.get("attendees") or []
        return {"attendees": [{**a, "attendees/present": "no"} for a in attendees]}
    if kind == "redate":  # a week later: a baseline may now come after its follow-up
        day = answers["survey_date"]
        return {"survey_date": f"{int(day[:4])}-{day[5:7]}-{min(28, int(day[8:10]) + 7):02d}"}
    raise ValueError(kind)


def apply(central: Central, night: int, history: History) -> None:
    """What the server receives and does on `night`."""
    store = central.store
    subs = COHORT.submissions
    for i in (i for i, n in enumerate(history.arrival) if n == night):
        sub = subs[i]
        central.tick()
        store.submit(
            xml_id(sub.form_id),
            sub.answers,
            central.clock[0],
            submitter=sub.submitted_by or PUBLIC_LINK,
        )
        for _at, edit in sub.edits:  # the cohort's own corrections, as they came
            central.tick()
            store.edit(xml_id(sub.form_id), root(sub), edit)
        if review := KOBO_TO_REVIEW.get(sub.validation_status or ""):
            central.tick()
            store.set_review_state(xml_id(sub.form_id), root(sub), review)
    for i, what in history.on(night):
        sub, form = subs[i], xml_id(subs[i].form_id)
        deleted = store.row(form, root(sub))["__system"]["deletedAt"] is not None
        central.tick()
        if what == "delete" and not deleted:
            store.delete(form, root(sub))
        elif what == "restore" and deleted:
            store.restore(form, root(sub))
        elif what not in ("delete", "restore") and not deleted:
            store.edit(form, root(sub), changes(sub, what))


def night(central: Central, workdir: Path, runner: SuiteRunner, n: int) -> list[FormResult]:
    central.tick(timedelta(hours=1))  # the sync after the night's changes
    settings = odk_settings(workdir, central.url, page_size=10)
    results = sync_in_flow(settings, runner, now=central.clock[0] + timedelta(minutes=n))
    assert [r.error for r in results if r.error] == []
    return results


def contents(workdir: Path) -> dict[str, list[str]]:
    """Live clean rows, quarantine and open alerts, without the columns that name a run or its
    time (which differ by construction)."""
    con = connect(open_warehouse(str(workdir / "data" / "warehouse")))
    skip = VOLATILE | RUN_CLOCK | {"first_seen", "last_seen"}

    def rows(table: str, where: str = "true") -> list[str]:
        columns = [
            c for (c, *_rest) in con.execute(f"describe {table}").fetchall() if c not in skip
        ]
        query = f"select {', '.join(columns)} from {table} where {where}"
        return sorted(map(repr, con.execute(query).fetchall()))

    out = {}
    for name, spec in CLEAN_TABLES.items():
        live = f"select submission_key from {spec.parent or name} where deleted_at is null"
        out[name] = rows(name, f"submission_key in ({live})")
    out["quarantine"] = rows("quarantine")
    out["alerts"] = rows("alerts", "status <> 'resolved'")
    return out


def at(form_id: str, code: str, round_: str | None = None) -> int:
    """Index of the cohort's submission of `form_id` about `code` (its household or its own)."""
    for i, sub in enumerate(COHORT.submissions):
        a = sub.answers
        about = (
            a.get("hh/hh_code")
            or a.get("hh_code")
            or a.get("session_code")
            or a.get("grp/group_code")
        )
        if sub.form_id == form_id and about == code and a.get("round") == round_:
            return i
    raise LookupError(code)


V = "34140101"
LATE = (at(HOUSEHOLD, f"{V}-08"), at(HOUSEHOLD, f"{V}-05"))  # after their sessions
EVERYTHING = History(
    arrival=tuple(
        NIGHTS - 1 if i in LATE else i * NIGHTS // len(COHORT.submissions)
        for i in range(len(COHORT.submissions))
    ),
    events=(
        (0, at(HOUSEHOLD, f"{V}-03"), "delete"),
        (1, at(HOUSEHOLD, f"{V}-03"), "restore"),
        (1, at(HOUSEHOLD, f"{V}-06"), "members"),
        (1, at(INCOME, f"{V}-01", "baseline"), "redate"),  # before its follow-up arrives
        (1, at(SESSION, f"T{V}-01"), "unheld"),  # nobody was trained by it
        (1, at(MATERIALS, f"{V}-01"), "delete"),
        (2, at(MATERIALS, f"{V}-01"), "restore"),
        (2, at(HOUSEHOLD, f"{V}-04"), "renumber"),  # no longer registered under its code
        (2, at(INCOME, f"{V}-08", "baseline"), "redate"),
        (2, at(SESSION, f"T{V}-03"), "absent"),
        (2, at(GROUP, f"G{V}-1"), "delete"),
    ),
)


@settings(
    max_examples=2,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(history=EVERYTHING)
@given(history=histories())
def test_nights_of_changes_end_where_one_full_sync_of_the_final_state_does(
    prefect_harness: None, central: Central, suite_runner: SuiteRunner, history: History
) -> None:
    central.reset()
    with tempfile.TemporaryDirectory() as incremental, tempfile.TemporaryDirectory() as full:
        for n in range(NIGHTS):
            apply(central, n, history)
            night(central, Path(incremental), suite_runner, n)
        night(central, Path(full), suite_runner, NIGHTS)
        nightly, once = contents(Path(incremental)), contents(Path(full))
        for table in once:
            assert nightly[table] == once[table], table
