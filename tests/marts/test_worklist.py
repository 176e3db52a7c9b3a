"""The officer's day: the `worklist` mart on a generated cohort and on the tiny district.

The cohort is 40 villages of Ubon Ratchathani as the demo generates them (1 March 2026);
off01 covers tambon ม่วงสามสิบ (341401), the rest goes to the district office.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest

from sammachip.marts import build_marts
from sammachip.marts.rules import AlertRules, Officer, WorklistRules
from sammachip.reports.entries import snooze_ids
from sammachip.schemas.tables import QUARANTINE
from sammachip.simulators.cohort import CohortSpec
from tests.marts.cohort import cohort_tables
from tests.marts.district import OFF01, RULES_, TODAY, build, district_tables, hh, session

PER_DAY = 12
ROSTER = AlertRules(
    roster=(Officer("off01", "นางสาวพรทิพย์ ศรีสุข", ("341401",)),),
    worklist=WorklistRules(per_day=PER_DAY),
)


@pytest.fixture(scope="module")
def cohort() -> dict[str, pa.Table]:
    return cohort_tables(CohortSpec(seed=2568, villages=40, today=TODAY, dirty=False))


@pytest.fixture(scope="module")
def day1(cohort: dict[str, pa.Table]) -> dict[str, pa.Table]:
    return build_marts(cohort, {}, TODAY, ROSTER)


def by_officer(worklist: pa.Table) -> dict[str, list[dict[str, Any]]]:
    lists: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in worklist.to_pylist():
        lists[row["officer_id"]].append(row)
    return lists


def today_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((e for e in entries if e["bucket"] == "today"), key=lambda e: e["visit_order"])


def test_each_officers_today_holds_at_most_per_day_entries(day1: dict[str, pa.Table]) -> None:
    lists = by_officer(day1["worklist"])
    assert set(lists) == {"off01", "district"}
    for officer, entries in lists.items():
        assert len(today_of(entries)) == min(PER_DAY, len(entries)), officer
        later = sorted(e["visit_order"] for e in entries if e["bucket"] == "later")
        assert later == list(range(1, len(later) + 1))


def test_one_entry_per_subject_with_every_open_reason_under_it(day1: dict[str, pa.Table]) -> None:
    worklist = day1["worklist"].to_pylist()
    item_ids = [e["item_id"] for e in worklist]
    assert len(item_ids) == len(set(item_ids))
    # a session's contact alerts are one reason: its call list names them one by one
    listed = {
        r["alert_id"]
        for e in worklist
        for r in e["reasons"]
        if r["rule_id"] != "R01_CONTACT_BEFORE_SESSION"
    }
    listed |= {c["alert_id"] for e in worklist for c in e["call_list"]}
    open_alerts = {a["alert_id"] for a in day1["alerts"].to_pylist() if a["status"] == "open"}
    assert listed == open_alerts
    for entry in worklist:
        priorities = [r["priority"] for r in entry["reasons"]]
        assert priorities == sorted(priorities) and entry["priority"] == priorities[0]
        assert entry["due_date"] == min(r["due_date"] for r in entry["reasons"])
        assert entry["item_id"] == f"{entry['subject_type']}:{entry['subject_id']}"


def test_every_household_entry_says_where_and_whom_to_call(day1: dict[str, pa.Table]) -> None:
    households = [e for e in day1["worklist"].to_pylist() if e["subject_type"] == "household"]
    assert len(households) > 100
    for entry in households:
        assert entry["village_name"] and entry["house_no"] and entry["phone"], entry["item_id"]
        assert entry["title_th"] and entry["tambon_name"].startswith("ต.")
        assert entry["moo"] == int(entry["village_code"][-2:])
    # the name the village's households wrote, most of them: บ้าน…
    assert sum(e["village_name"].startswith("บ้าน") for e in households) == len(households)
    located = [e for e in households if e["lat"] is not None]
    assert 0 < len(located) < len(households)  # the location is optional on the form
    e = located[0]
    assert e["geo_uri"].startswith(f"geo:{e['lat']:.6f},{e['lon']:.6f}?q={e['lat']:.6f},")
    assert all(e["geo_uri"] is None for e in households if e["lat"] is None)


def test_today_is_ordered_for_visiting_village_moo_house_number(
    day1: dict[str, pa.Table],
) -> None:
    def number(house_no: str | None) -> list[int]:
        return [int(p) for p in (house_no or "").split("/") if p.isdigit()]

    for officer, entries in by_officer(day1["worklist"]).items():
        today = [e for e in today_of(entries) if e["subject_type"] == "household"]
        route = [(e["tambon_code"], e["moo"], number(e["house_no"])) for e in today]
        assert route == sorted(route), officer
    district = today_of(by_officer(day1["worklist"])["district"])
    assert len({(e["tambon_code"], e["moo"]) for e in district}) > 1  # the route crosses villages


def test_overdue_entries_are_never_pushed_to_later_by_new_ones(
    cohort: dict[str, pa.Table], day1: dict[str, pa.Table]
) -> None:
    """Two weeks on, nothing of day 1 was done; today brings new data to fix (priority 1)."""
    later = TODAY + timedelta(days=14)
    tables = dict(cohort)
    villages = sorted(set(cohort["households"]["village_code"].to_pylist()))
    tables["quarantine"] = pa.Table.from_pylist(
        [
            {
                "submission_key": f"q{i}",
                "form_id": "sammachip_income",
                "submission_id": str(900 + i),
                "village_code": v,
                "tambon_code": v[:6],
                "reason_th": "วันที่สำรวจไม่ถูกต้อง",
                "reason_en": "bad survey date",
            }
            for i, v in enumerate(villages)
        ],
        schema=QUARANTINE.schema,
    )
    marts = build_marts(tables, {"alerts": day1["alerts"]}, later, ROSTER)
    for officer, entries in by_officer(marts["worklist"]).items():
        today = today_of(entries)
        waiting = [e for e in entries if e["bucket"] == "later"]
        assert min(e["overdue_days"] for e in today) >= max(e["overdue_days"] for e in waiting)
        new = [e for e in entries if e["first_seen"] == later and e["priority"] == 1]
        overdue = [e for e in entries if e["overdue_days"] > 0]
        assert new and len(overdue) >= PER_DAY, officer
        assert all(e["bucket"] == "later" for e in new), officer
        assert 7 in {e["overdue_days"] for e in today}  # day 1's, due 8 March, a week ago


def test_the_same_subject_keeps_its_item_id_from_day_to_day(
    cohort: dict[str, pa.Table], day1: dict[str, pa.Table]
) -> None:
    day2 = build_marts(cohort, {"alerts": day1["alerts"]}, TODAY + timedelta(days=1), ROSTER)
    ids = {e["item_id"] for e in day1["worklist"].to_pylist()}
    assert len(ids & {e["item_id"] for e in day2["worklist"].to_pylist()}) > 0.9 * len(ids)


# ---- on the tiny district (tests/marts/test_marts.py) ---------------------------------------


def entries(marts: dict[str, pa.Table]) -> dict[str, dict[str, Any]]:
    return {e["item_id"]: e for e in marts["worklist"].to_pylist()}


def test_contact_before_a_session_is_one_call_list_per_session() -> None:
    worklist = entries(build(district_tables()))
    t4 = worklist["session:T4"]  # 5 March: households 1 and 2 are invited
    assert t4["title_th"] == "โทรแจ้ง 2 ครัวเรือนก่อนวันที่ 02/03/2569"
    assert t4["title_en"] == "call 2 households before 2026-03-02"
    assert [(c["hh_code"], c["head_name"], c["phone"]) for c in t4["call_list"]] == [
        (hh(1), "ครัวเรือน 1", "0810000001"),
        (hh(2), "ครัวเรือน 2", "0810000002"),
    ]
    assert [r["rule_id"] for r in t4["reasons"]] == ["R01_CONTACT_BEFORE_SESSION"]
    assert t4["due_date"] == date(2026, 3, 2) and t4["officer_id"] == "off01"
    assert not any(i.startswith("household:") and "T4" in i for i in worklist)
    assert all(e["call_list"] == [] for i, e in worklist.items() if i != "session:T4")


def test_a_snoozed_household_leaves_the_call_list(tmp_path: Any) -> None:
    snoozes = tmp_path / "snoozes.csv"
    snoozes.write_text(
        f"alert_id,until,note\nR01_CONTACT_BEFORE_SESSION:T4/{hh(2)},2026-03-10,โทรแล้ว\n",
        encoding="utf-8",
    )
    rules = AlertRules(roster=(OFF01,), snooze_file=snoozes)
    t4 = entries(build(district_tables(), rules=rules))["session:T4"]
    assert [c["hh_code"] for c in t4["call_list"]] == [hh(1)]
    assert t4["title_th"].startswith("โทรแจ้ง 1 ครัวเรือน")


def test_a_call_list_snoozed_by_its_own_id_leaves_the_list_until_the_date(tmp_path: Any) -> None:
    """One line in the snooze file, with the id the officer's files show first for the list
    (snooze_ids), holds every household on it — not one line per household."""
    t4 = entries(build(district_tables()))["session:T4"]
    list_id = snooze_ids(t4)[0]
    assert list_id == "R01_CONTACT_BEFORE_SESSION:T4"
    assert snooze_ids(t4)[1:] == [c["alert_id"] for c in t4["call_list"]]  # one call alone
    led_by_another = {  # a session whose entry leads with a more urgent reason
        "reasons": [
            {"rule_id": "R02_SESSION_IN_FARM_SEASON", "alert_id": "R02_SESSION_IN_FARM_SEASON:T4"},
            {"rule_id": "R01_CONTACT_BEFORE_SESSION", "alert_id": list_id},
        ],
        "call_list": t4["call_list"],
    }
    assert snooze_ids(led_by_another)[:2] == [list_id, "R02_SESSION_IN_FARM_SEASON:T4"]
    snoozes = tmp_path / "snoozes.csv"
    snoozes.write_text(f"alert_id,until,note\n{list_id},04/03/2569,นัดใหม่\n", encoding="utf-8")
    rules = AlertRules(roster=(OFF01,), snooze_file=snoozes)
    held = build(district_tables(), rules=rules)
    assert "session:T4" not in entries(held)
    calls = [a for a in held["alerts"].to_pylist() if a["subject_id"].startswith("T4/")]
    assert {(a["status"], a["snoozed_until"], a["snooze_note"]) for a in calls} == {
        ("snoozed", date(2026, 3, 4), "นัดใหม่")
    }
    assert len(calls) == 2
    back = entries(build(district_tables(), today=date(2026, 3, 4), rules=rules))
    assert [c["hh_code"] for c in back["session:T4"]["call_list"]] == [hh(1), hh(2)]


def test_a_session_in_the_farm_season_and_its_call_list_are_one_entry() -> None:
    tables = district_tables()
    rows = tables["sessions"].to_pylist()
    extra, invited = session("T10", planned=date(2026, 5, 18), present={hh(3): None})
    tables["sessions"] = pa.Table.from_pylist([*rows, extra], schema=tables["sessions"].schema)
    tables["attendance"] = pa.Table.from_pylist(
        [*tables["attendance"].to_pylist(), *invited], schema=tables["attendance"].schema
    )
    t10 = entries(build(tables, today=date(2026, 5, 13)))["session:T10"]
    assert [r["rule_id"] for r in t10["reasons"]] == [
        "R01_CONTACT_BEFORE_SESSION",
        "R02_SESSION_IN_FARM_SEASON",
    ]
    assert [c["hh_code"] for c in t10["call_list"]] == [hh(3)]


def test_per_day_comes_from_the_rules() -> None:
    rules = AlertRules(roster=(OFF01,), worklist=WorklistRules(per_day=3))
    mine = build(district_tables(), rules=rules)["worklist"].to_pylist()
    assert sum(e["bucket"] == "today" and e["officer_id"] == "off01" for e in mine) == 3
    with pytest.raises(ValueError, match="per_day"):
        WorklistRules(per_day=0)


def test_the_default_rules_give_twenty_a_day() -> None:
    assert RULES_.worklist.per_day == 20


def test_a_household_whose_registration_waits_in_quarantine_can_still_be_found() -> None:
    tables = district_tables()
    held_back = {
        "submission_key": "q-hh-9",
        "form_id": "sammachip_household",
        "submission_id": "91",
        "business_key": hh(9),
        "subject_name": "นางสมร แสงทอง",
        "subject_house_no": "112/3",
        "subject_phone": "0812345678",
        "village_code": "34140105",
        "reason_th": "เลขประจำตัวประชาชนไม่ถูกต้อง",
        "reason_en": "bad national ID",
    }
    tables["quarantine"] = pa.Table.from_pylist(
        [*tables["quarantine"].to_pylist(), held_back], schema=QUARANTINE.schema
    )
    entry = entries(build(tables))[f"household:{hh(9)}"]
    assert (entry["title_th"], entry["house_no"], entry["phone"], entry["moo"]) == (
        "นางสมร แสงทอง",
        "112/3",
        "0812345678",
        5,
    )
    assert [r["rule_id"] for r in entry["reasons"]] == ["R09_DATA_TO_FIX"]
