"""Follow-up visits close the reasons they resolve (`alerts.closed_by_visit`): the reason leaves
the officer's worklist; if the data still show it `[alerts] reopen_after_days` after the visit
it is open again, with its first day; a visit older than the alert closes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from sammachip.marts.rules import AlertRules
from tests.marts.district import OFF01, TODAY, build, by_id, hh, table

R04 = f"R04_TRAINED_NO_MATERIALS:{hh(2)}"  # trained 1 Sep, nothing since
R03 = f"R03_LOW_ATTENDANCE:{hh(2)}"  # 1 of 3, absent twice running


def visited(
    tables: dict[str, pa.Table], day: date, states: dict[str, str], *, reached: bool = True
) -> str:
    """A follow-up visit to household 2 on `day`, each reason given its state."""
    key = f"odk:central:1/sammachip_followup:uuid:visit-{day.isoformat()}"
    visit: dict[str, Any] = {
        "submission_key": key,
        "submitted_at": datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
        "item_id": f"household:{hh(2)}",
        "subject_type": "household",
        "subject_id": hh(2),
        "officer_id": "off01",
        "visit_date": day,
        "reached": reached,
    }
    reasons = [
        {"submission_key": key, "row_index": i, "alert_id": a, "rule_id": a.split(":")[0]}
        | {"state": s, "item_id": visit["item_id"]}
        for i, (a, s) in enumerate(states.items())
    ]
    tables["followup_visits"] = table("followup_visits", [visit])
    tables["followup_reasons"] = table("followup_reasons", reasons)
    return key


def worklist_reasons(marts: dict[str, pa.Table]) -> set[str]:
    return {r["alert_id"] for row in marts["worklist"].to_pylist() for r in row["reasons"]}


def test_a_visit_closes_the_reasons_it_resolved_and_only_those(
    district: dict[str, pa.Table],
) -> None:
    day1 = build(district)
    assert {R04, R03} <= worklist_reasons(day1)
    key = visited(district, TODAY, {R04: "resolved", R03: "in_progress"})
    day2 = build(district, today=TODAY + timedelta(days=1), previous=day1["alerts"])
    alerts = by_id(day2["alerts"])
    assert (alerts[R04]["status"], alerts[R04]["resolved_on"]) == ("resolved", TODAY)
    assert alerts[R04]["closed_by_visit"] == key
    assert alerts[R04]["closed_at"] == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert (alerts[R03]["status"], alerts[R03]["closed_by_visit"]) == ("open", None)
    assert R04 not in worklist_reasons(day2) and R03 in worklist_reasons(day2)


def test_a_reason_the_data_still_show_is_open_again_after_the_window(
    district: dict[str, pa.Table],
) -> None:
    rules = AlertRules(roster=(OFF01,), reopen_after_days=14)
    day1 = build(district, rules=rules)["alerts"]
    visited(district, TODAY, {R04: "resolved"})
    days = [TODAY + timedelta(days=n) for n in (1, 13, 14)]
    previous, seen = day1, []
    for day in days:
        previous = build(district, today=day, rules=rules, previous=previous)["alerts"]
        seen.append(by_id(previous)[R04])
    assert [a["status"] for a in seen] == ["resolved", "resolved", "open"]
    reopened = seen[-1]
    assert (reopened["closed_by_visit"], reopened["resolved_on"]) == (None, None)
    assert reopened["first_seen"] == TODAY  # never resolved by the data: its first day stays


def test_a_visit_before_the_alert_was_first_seen_closes_nothing(
    district: dict[str, pa.Table],
) -> None:
    visited(district, TODAY - timedelta(days=3), {R04: "resolved"})
    alerts = by_id(build(district)["alerts"])
    assert (alerts[R04]["status"], alerts[R04]["closed_by_visit"]) == ("open", None)


def test_a_visit_that_did_not_reach_them_closes_nothing(district: dict[str, pa.Table]) -> None:
    day1 = build(district)["alerts"]
    visited(district, TODAY, {R04: "resolved"}, reached=False)
    alerts = by_id(build(district, today=TODAY + timedelta(days=1), previous=day1)["alerts"])
    assert alerts[R04]["status"] == "open"


def test_what_the_visits_achieved_per_officer_and_rule(district: dict[str, pa.Table]) -> None:
    day1 = build(district)
    visited(district, TODAY + timedelta(days=2), {R04: "resolved", R03: "in_progress"})
    day3 = build(district, today=TODAY + timedelta(days=3), previous=day1["alerts"])
    rows = {
        (r["scope"], r["scope_code"], r["rule_id"]): r
        for r in day3["followup_outcomes"].to_pylist()
    }
    officer = rows[("officer", "off01", None)]
    assert (officer["closed_by_visit"], officer["days_to_close"]) == (1, 2.0)
    items = {r["item_id"] for r in day3["worklist"].to_pylist() if r["officer_id"] == "off01"}
    assert (officer["items_open"], officer["items_visited"]) == (len(items), 1)  # hh 2: R03 left
    assert officer["coverage"] == 1 / len(items)
    per_rule = rows[("officer", "off01", "R04_TRAINED_NO_MATERIALS")]
    assert (per_rule["closed_by_visit"], per_rule["closed_by_data"]) == (1, 0)
    assert rows[("district", "district", None)]["closed_by_visit"] == 1
