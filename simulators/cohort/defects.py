"""The dirt injected on purpose, each recorded in the submission's `defects` so validation tests
have a ground truth: Thai digits, Buddhist-Era years, +66 phones, missing answers, bad ID
checksums (and duplicate registrations, made by the village builder); then what happens after
the fact: officers' edits and reviewers' validation statuses.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sammachip.simulators.cohort.model import (
    APPROVED,
    GROUP,
    HOUSEHOLD,
    INCOME,
    MATERIALS,
    NOT_APPROVED,
    ON_HOLD,
    SAGE,
    SESSION,
    Answers,
    GeneratedSubmission,
    decimal_text,
    instance_id,
    round_to,
)
from sammachip.simulators.cohort.people import new_phone

# Where injected dirt may land, per form: (kind, key).
_DIRT_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    HOUSEHOLD: (
        ("thai_digits", "head/national_id"),
        ("thai_digits", "head/phone"),
        ("thai_digits", "baseline_income"),
        ("thai_digits", "hh/village_code"),
        ("phone_plus66", "head/phone"),
        ("missing_required", "head/national_id"),
        ("missing_required", "occupation"),
    ),
    SAGE: (
        ("thai_digits", "sage/national_id"),
        ("thai_digits", "sage/phone"),
        ("phone_plus66", "sage/phone"),
        ("be_year", "trainer_course_date"),
        ("missing_required", "expertise"),
    ),
    SESSION: (
        ("be_year", "held_date"),
        ("be_year", "planned_date"),
        ("thai_digits", "village_code"),
        ("missing_required", "sage_code"),
    ),
    MATERIALS: (
        ("be_year", "handout_date"),
        ("thai_digits", "hh_code"),
        ("missing_required", "handout_date"),
    ),
    INCOME: (
        ("thai_digits", "hh_income"),
        ("thai_digits", "occ_income"),
        ("be_year", "survey_date"),
        ("missing_required", "hh_income"),
    ),
    GROUP: (
        ("be_year", "grp/formed_date"),
        ("thai_digits", "sales/monthly_sales"),
        ("missing_required", "otop_status"),
    ),
}
DIRTY_RATE = 0.025  # value-level dirt per submission
BAD_CHECKSUM_RATE = 0.01  # of people registered
DUPLICATE_RATE = 0.01  # of household registrations
EDIT_RATE = 0.02

_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


def _be(value: str) -> str:
    """Rewrite the year of an ISO date as a Buddhist-Era year (phones set to the BE calendar)."""
    return f"{int(value[:4]) + 543}{value[4:]}"


def _plus66(phone: str) -> str:
    return f"+66{phone[1:]}"


def bad_checksum(rng: random.Random, national_id: str) -> str:
    """The ID with a wrong check digit (a typo the checksum catches)."""
    wrong = (int(national_id[-1]) + rng.randint(1, 9)) % 10
    return f"{national_id[:-1]}{wrong}"


def add_dirt(rng: random.Random, sub: GeneratedSubmission) -> None:
    """One value of `sub` made dirty the way phones and people do, recorded in its defects."""
    answers = sub.answers
    targets = list(_DIRT_TARGETS[sub.form_id])
    rng.shuffle(targets)
    for kind, key in targets:
        value = answers.get(key)
        if not isinstance(value, str):
            continue
        if kind == "thai_digits":
            answers[key] = value.translate(_THAI_DIGITS)
        elif kind == "be_year":
            answers[key] = _be(value)
        elif kind == "phone_plus66":
            answers[key] = _plus66(value)
        else:  # missing_required
            del answers[key]
        sub.defects += (f"{kind}:{key}",)
        return


def edits_and_statuses(
    rng: random.Random, out: list[GeneratedSubmission], cutoff: datetime
) -> None:
    """Officers' corrections after the fact (some edited twice), then reviewers' statuses."""
    for sub in out:
        if rng.random() < EDIT_RATE:
            _edit(rng, sub, cutoff)
            if rng.random() < 0.1:
                _edit(rng, sub, cutoff)  # edited twice: the deprecatedID chain moves on
    statuses(rng, out, cutoff, dirty=True)


def _edit(rng: random.Random, sub: GeneratedSubmission, cutoff: datetime) -> None:
    last = sub.edits[-1][0] if sub.edits else sub.received_at
    edited_at = last + timedelta(days=rng.randint(1, 20), seconds=rng.randint(0, 36000))
    if edited_at > cutoff:
        return
    changes = _correction(rng, sub.form_id, sub.answers, new_phone(rng))
    if changes:
        changes["meta/instanceID"] = instance_id(rng)
        sub.edits.append((edited_at, changes))


def statuses(
    rng: random.Random, out: list[GeneratedSubmission], cutoff: datetime, *, dirty: bool
) -> None:
    """Validation statuses as reviewers set them: dirty submissions mostly rejected or on hold."""
    for sub in out:
        r = rng.random()
        if dirty and sub.defects:
            uid = NOT_APPROVED if r < 0.2 else ON_HOLD if r < 0.3 else None
        elif dirty:
            uid = (
                APPROVED
                if r < 0.1
                else ON_HOLD
                if r < 0.105
                else (NOT_APPROVED if r < 0.11 else None)
            )
        else:
            uid = APPROVED if r < 0.1 else None
        if uid is None:
            continue
        at = sub.received_at + timedelta(days=rng.randint(1, 14), seconds=rng.randint(0, 3600))
        if at <= cutoff:
            sub.validation_status, sub.validated_at = uid, at


def _correction(rng: random.Random, form_id: str, answers: Answers, phone: str) -> Answers:
    """What an officer typically corrects after the fact (a phone, an income, a count)."""
    if form_id == HOUSEHOLD:
        return {"head/phone": phone}
    if form_id == SAGE:
        return {"sage/phone": phone}
    if form_id == INCOME and "hh_income" in answers:
        fixed = answers["hh_income"].translate(str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789"))
        return {"hh_income": str(round_to(int(fixed) * rng.uniform(0.8, 1.2), 100))}
    if form_id == MATERIALS:
        items = [dict(line) for line in answers["items"]]
        first = items[0]
        qty = float(first["items/quantity"]) + rng.randint(1, 5)
        unit_price = float(first["items/value_thb"]) / float(first["items/quantity"])
        first["items/quantity"], first["items/value_thb"] = (
            decimal_text(qty),
            decimal_text(round(qty * unit_price)),
        )
        return {"items": items}
    if form_id == SESSION and "held_date" in answers:
        rows = [dict(r) for r in answers["attendees"]]
        absent = [r for r in rows if r.get("attendees/present") == "no"]
        if not absent:
            return {}
        rng.choice(absent)["attendees/present"] = "yes"  # late sign-in sheet
        return {"attendees": rows}
    if form_id == GROUP:
        return {"sales/months_recorded": str(rng.randint(0, 6))}
    return {}
