"""The synthetic cohort: deterministic, shaped like the six Kobo forms, dirty on purpose."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from stdnum.th import pin

from sammachip.simulators.cohort import (
    FORM_IDS,
    Cohort,
    CohortSpec,
    GeneratedSubmission,
    generate_cohort,
    select_villages,
)

TODAY = date(2026, 2, 20)  # mid dry season: the programme year spans a harvest and a planting
FORMS_MD = Path(__file__).resolve().parents[2] / "docs" / "forms.md"
META_KEYS = {"start", "end", "today", "meta/instanceID"}


@cache
def cohort(villages: int = 3, seed: int = 2568, dirty: bool = True) -> Cohort:
    return generate_cohort(CohortSpec(seed=seed, villages=villages, today=TODAY, dirty=dirty))


@cache
def documented_keys() -> dict[str, set[str]]:
    """Kobo JSON keys per form_id, read from the `| key | type | notes |` tables of forms.md."""
    keys: dict[str, set[str]] = {}
    current = None
    for line in FORMS_MD.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"## \w+ — `(\w+)`", line):
            current = keys.setdefault(heading.group(1), set())
        elif current is not None and (row := re.match(r"\| `([^`]+)` \|", line)):
            current.add(row.group(1))
    return keys


def _fingerprint(c: Cohort) -> list[tuple[Any, ...]]:
    return [
        (
            s.form_id,
            s.answers,
            s.received_at,
            s.validation_status,
            s.validated_at,
            s.edits,
            s.submitted_by,
            s.defects,
        )
        for s in c.submissions
    ]


def _households(c: Cohort) -> list[GeneratedSubmission]:
    return [s for s in c.by_form("sammachip_household") if "duplicate:hh/hh_code" not in s.defects]


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_output() -> None:
    spec = CohortSpec(seed=11, villages=4, today=TODAY)
    assert _fingerprint(generate_cohort(spec)) == _fingerprint(generate_cohort(spec))


def test_different_seed_gives_different_output() -> None:
    assert _fingerprint(cohort(seed=1)) != _fingerprint(cohort(seed=2))


def test_a_village_looks_the_same_whatever_the_cohort_size() -> None:
    small, large = cohort(villages=3), cohort(villages=20)
    code = small.villages[0].code

    def of_village(c: Cohort) -> list[tuple[Any, ...]]:
        return [f for f in _fingerprint(c) if code in str(f[1])]

    assert of_village(small) == of_village(large)


# ---------------------------------------------------------------- geography


def test_small_cohorts_spread_over_tambons_of_muang_sam_sip() -> None:
    villages = select_villages(2568, 3)
    assert len({v.tambon for v in villages}) == 3
    assert all(v.code.startswith("3414") and v.code.startswith(v.tambon) for v in villages)
    assert all(re.fullmatch(r"บ้าน\S+ หมู่ \d+", v.name) for v in villages)


def test_default_is_every_village_of_muang_sam_sip() -> None:
    villages = select_villages(2568, None)
    per_tambon = Counter(v.tambon for v in villages)
    assert sorted(per_tambon) == [f"3414{n:02d}" for n in range(1, 15)]
    assert all(8 <= n <= 16 for n in per_tambon.values())
    for tambon, n in per_tambon.items():  # moo numbers run 1..n
        assert sorted(v.moo for v in villages if v.tambon == tambon) == list(range(1, n + 1))


def test_province_scale_reaches_beyond_the_district() -> None:
    villages = select_villages(2568, 2700)
    assert len({v.code for v in villages}) == 2700
    assert {v.code[:2] for v in villages} == {"34"}
    assert len({v.code[:4] for v in villages}) == 25
    with pytest.raises(ValueError):
        select_villages(2568, 10**6)


def test_an_intake_brings_villages_no_earlier_cohort_has() -> None:
    intake = select_villages(2568, 70, intake=True)
    assert len(intake) == 70
    assert not {v.code for v in intake} & {v.code for v in select_villages(2568, 2700)}
    # the same villages whatever the history: a district and a province receive the same data
    assert intake == select_villages(2568, 70, intake=True)


# ---------------------------------------------------------------- Kobo shape


def test_every_key_is_a_documented_key_of_its_form() -> None:
    documented = documented_keys()
    assert set(documented) == set(FORM_IDS)
    for sub in cohort(villages=6).submissions:
        allowed = documented[sub.form_id]
        assert set(sub.answers) <= allowed | META_KEYS, sub.answers.keys() - allowed
        for key, value in sub.answers.items():
            if isinstance(value, list):  # a repeat: rows keyed by full paths
                for row in value:
                    assert all(k.startswith(f"{key}/") and k in allowed for k in row)


def test_answers_are_strings_and_device_times_carry_the_bangkok_offset() -> None:
    device = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+07:00")
    for sub in cohort().submissions:
        a = sub.answers
        assert device.fullmatch(a["start"]) and device.fullmatch(a["end"])
        assert a["start"] < a["end"] and a["today"] == a["end"][:10]
        assert re.fullmatch(r"uuid:[0-9a-f-]{36}", a["meta/instanceID"])
        leaves = [v for k, v in a.items() if not isinstance(v, list)] + [
            v for rows in a.values() if isinstance(rows, list) for row in rows for v in row.values()
        ]
        assert all(isinstance(v, str) for v in leaves)
        # Server receive time (UTC, naive) comes after the device's end time (UTC+7).
        end_utc = datetime.fromisoformat(a["end"]).replace(tzinfo=None) - timedelta(hours=7)
        assert sub.received_at.tzinfo is None and sub.received_at >= end_utc


def test_instance_ids_are_unique() -> None:
    ids = [s.answers["meta/instanceID"] for s in cohort(villages=10).submissions]
    assert len(ids) == len(set(ids))


def test_nothing_reaches_the_server_after_the_reference_date() -> None:
    cutoff = datetime.combine(TODAY, datetime.max.time()) - timedelta(hours=7)
    c = cohort(villages=10)
    assert all(s.received_at <= cutoff for s in c.submissions)
    assert all(at <= cutoff for s in c.submissions for at, _ in s.edits)


def test_planned_sessions_lie_ahead_and_have_no_attendance_yet() -> None:
    planned = [
        s
        for s in cohort(villages=20).by_form("sammachip_session")
        if "held_date" not in s.answers and not s.defects
    ]
    days = [date.fromisoformat(sub.answers["planned_date"]) for sub in planned]
    assert [d for d in days if d > TODAY]
    # a few plans slipped: their date passed in the last 20 days and they were not held
    slipped = [d for d in days if d <= TODAY]
    assert 0 < len(slipped) < len(days) / 2
    assert all(TODAY - timedelta(days=20) <= d <= TODAY + timedelta(days=14) for d in days)
    for sub in planned:
        assert all(set(row) == {"attendees/hh_code"} for row in sub.answers["attendees"])


# ---------------------------------------------------------------- counts


def test_counts_are_plausible_for_three_villages() -> None:
    c = cohort(villages=3)
    forms = Counter(s.form_id for s in c.submissions)
    assert 60 <= forms["sammachip_household"] <= 63  # 20 per village, plus rare duplicates
    assert 3 <= forms["sammachip_sage"] <= 9
    assert 12 <= forms["sammachip_session"] <= 21  # kickoff, 3-5 trainings, maybe a visit
    assert 30 <= forms["sammachip_materials"] <= 60
    assert 40 <= forms["sammachip_income"] <= 110
    assert forms["sammachip_group"] <= 3
    assert "3 villages" in c.summary()


def test_national_ids_pass_the_checksum_unless_flagged() -> None:
    for sub in cohort(villages=30).submissions:
        for key in ("head/national_id", "sage/national_id"):
            value = sub.answers.get(key)
            if value is None or not value.isascii():
                continue  # missing or typed with Thai digits
            assert pin.is_valid(value) != any(d.startswith("bad_checksum") for d in sub.defects)


# ---------------------------------------------------------------- dirt


def test_dirty_share_is_within_bounds() -> None:
    c = cohort(villages=40)
    share = sum(1 for s in c.submissions if s.defects) / len(c.submissions)
    assert 0.02 <= share <= 0.05
    kinds = Counter(d.split(":")[0] for s in c.submissions for d in s.defects)
    assert set(kinds) == {
        "thai_digits",
        "be_year",
        "bad_checksum",
        "duplicate",
        "phone_plus66",
        "missing_required",
    }
    edited = sum(1 for s in c.submissions if s.edits)
    assert 0.01 <= edited / len(c.submissions) <= 0.03
    statuses = Counter(s.validation_status for s in c.submissions)
    assert statuses["validation_status_not_approved"] and statuses["validation_status_on_hold"]


def test_dirt_is_visible_in_the_answers() -> None:
    c = cohort(villages=40)
    thai_digit = re.compile("[๐-๙]")
    for sub in c.submissions:
        for defect in sub.defects:
            kind, key = defect.split(":")
            value = sub.answers.get(key)
            if kind == "thai_digits":
                assert thai_digit.search(value)
            elif kind == "be_year":
                assert value[:2] == "25" and int(value[:4]) > 2500
            elif kind == "phone_plus66":
                assert value.startswith("+66")
            elif kind == "missing_required":
                assert value is None


def test_clean_cohort_has_no_dirt_edits_or_rejections() -> None:
    c = cohort(villages=20, dirty=False)
    assert not any(s.defects or s.edits for s in c.submissions)
    assert {s.validation_status for s in c.submissions} <= {None, "validation_status_approved"}


# ---------------------------------------------------------------- something for the alerts


def test_some_households_fall_below_80_percent_attendance_or_miss_twice_in_a_row() -> None:
    history: dict[str, list[bool]] = defaultdict(list)
    sessions = sorted(
        (s.answers for s in cohort().by_form("sammachip_session") if "held_date" in s.answers),
        key=lambda a: a["planned_date"],
    )
    for a in sessions:
        for row in a["attendees"]:
            history[row["attendees/hh_code"]].append(row["attendees/present"] == "yes")
    below = [h for h, seen in history.items() if sum(seen) / len(seen) < 0.8]
    twice = [h for h, seen in history.items() if any(not a and not b for a, b in pairwise(seen))]
    assert below and twice
    assert len(below) < len(history) / 2


def test_some_trained_households_got_no_materials() -> None:
    c = cohort()
    trained = {
        row["attendees/hh_code"]
        for s in c.by_form("sammachip_session")
        if s.answers.get("activity_type") == "training"
        for row in s.answers["attendees"]
        if row.get("attendees/present") == "yes"
    }
    handed = {s.answers.get("hh_code") for s in c.by_form("sammachip_materials")}
    assert trained - handed
    assert len(trained & handed) > len(trained) / 2


def test_some_materials_have_no_follow_up_income_yet() -> None:
    c = cohort()
    handed = {s.answers.get("hh_code") for s in c.by_form("sammachip_materials")}
    followed = {
        s.answers.get("hh_code")
        for s in c.by_form("sammachip_income")
        if s.answers.get("round") == "followup"
    }
    assert handed - followed
    assert followed


def test_follow_up_incomes_mostly_rise_but_not_always() -> None:
    c = cohort(villages=30, dirty=False)
    baseline = {s.answers["hh/hh_code"]: int(s.answers["baseline_income"]) for s in _households(c)}
    changes = [
        int(s.answers["hh_income"]) / baseline[s.answers["hh_code"]] - 1
        for s in c.by_form("sammachip_income")
        if s.answers["round"] == "followup"
    ]
    assert changes
    rising = sum(1 for g in changes if g >= 0.03) / len(changes)
    assert 0.55 <= rising <= 0.9
    assert any(g <= 0 for g in changes)


def test_groups_vary_in_otop_readiness() -> None:
    groups = [s.answers for s in cohort(villages=40).by_form("sammachip_group")]
    assert 8 <= len(groups) <= 24  # about 40% of villages, once the group had time to form
    assert len({g.get("otop_status") for g in groups}) >= 2
    assert len({g["product/standards"] for g in groups}) >= 2
    for g in groups:
        assert 5 <= len(g["members"]) <= 15
        assert [r["members/role"] for r in g["members"]].count("chair") == 1


def test_groups_have_market_links_and_follow_ups_record_problems_and_actions() -> None:
    c = cohort(villages=40)
    groups = [s.answers for s in c.by_form("sammachip_group")]
    selling = [g for g in groups if g["market/channel"] != "none"]
    assert selling and len(selling) < len(groups)  # some groups sell nowhere yet
    assert all(float(g["market/price_per_unit"]) > 0 and g["market/buyer"] for g in selling)
    costs = [g for g in selling if "market/cost_per_unit" in g]
    assert 0 < len(costs) < len(selling)  # the cost is not always known
    assert all(float(g["market/cost_per_unit"]) < float(g["market/price_per_unit"]) for g in costs)
    followups = [
        s.answers for s in c.by_form("sammachip_income") if s.answers["round"] == "followup"
    ]
    problems = [f for f in followups if f["problem"] != "none"]
    assert 0 < len(problems) < len(followups)
    assert all(f.get("action_agreed") for f in problems if "action_agreed" in f)
    assert [f for f in problems if "action_agreed" not in f]  # dirty: some agreed nothing
