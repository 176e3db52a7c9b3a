"""The alert rules on the tiny district whose right answers are known (tests/marts/district.py).

Village V (tambon 341401, officer off01) has six households, three sessions held last year,
sessions planned for the coming days and months, three sages and a group; village W
(tambon 341402, nobody covers it) trained one household long ago and formed no group.
Today is 1 March 2026 (01/03/2569).
"""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from sammachip.marts import MART_SCHEMAS, build_marts
from sammachip.marts.rules import RULES, AlertRules, SeasonWindow
from tests.marts.district import (
    OFF01,
    TODAY,
    V,
    W,
    build,
    by_id,
    district_tables,
    fired,
    followup,
    hh,
    put,
    session,
    table,
)

# ---- which rule fires where ------------------------------------------------------------------


def test_each_rule_fires_exactly_where_it_should(alerts_today: dict[str, Any]) -> None:
    assert {(a["rule_id"], a["subject_id"]) for a in alerts_today.values()} == {
        ("R01_CONTACT_BEFORE_SESSION", f"T4/{hh(1)}"),  # T4 in 4 days, invited
        ("R01_CONTACT_BEFORE_SESSION", f"T4/{hh(2)}"),
        ("R02_SESSION_IN_FARM_SEASON", "T6"),  # planned on 20 May: transplanting
        ("R03_LOW_ATTENDANCE", hh(2)),  # 1 of 3, absent twice running
        ("R03_LOW_ATTENDANCE", hh(4)),  # never came
        ("R04_TRAINED_NO_MATERIALS", hh(2)),  # trained 1 Sep, nothing since
        ("R05_NO_FOLLOWUP_INCOME", hh(3)),  # materials 10 Sep, no follow-up by 1 Mar
        ("R06_OUTCOME_BELOW_TARGET", hh(5)),  # not practising, income flat
        ("R07_VILLAGE_NO_GROUP", W),  # trained June 2025, no group
        ("R11_VILLAGE_NO_KICKOFF", W),  # … and no kickoff meeting either
        ("R08_SAGE_NOT_TRAINER", "S2"),  # never trained as a trainer
        ("R08_SAGE_NOT_TRAINER", "S3"),  # trainer course after the session
        ("R09_DATA_TO_FIX", "sammachip_income:77"),
    }


def test_every_rule_in_the_catalogue_has_thai_and_english_names() -> None:
    assert [r.rule_id[:3] for r in RULES] == [f"R{n:02d}" for n in range(1, 14)]
    assert all(r.rule_th and r.rule_en for r in RULES)


def test_alerts_carry_thai_reasons_owner_and_due_date(alerts_today: dict[str, Any]) -> None:
    alerts = alerts_today
    low = alerts[f"R03_LOW_ATTENDANCE:{hh(2)}"]
    assert low["reason_th"] == "ขาดการอบรม 2 ครั้งติดต่อกัน; เข้าร่วม 1 จาก 3 ครั้ง (33%)"
    assert (low["rule_th"], low["rule_en"]) == ("เข้าร่วมอบรมน้อย", "Low attendance")
    assert (low["subject_name"], low["phone"]) == ("ครัวเรือน 2", "0810000002")
    assert (low["officer_id"], low["tambon_code"]) == ("off01", "341401")
    assert low["due_date"] == TODAY + timedelta(days=7)  # no date of its own: act within 7
    assert "01/09/2568" in alerts[f"R04_TRAINED_NO_MATERIALS:{hh(2)}"]["reason_th"]


def test_contact_alert_is_due_three_days_before_the_session(
    district: dict[str, pa.Table], alerts_today: dict[str, Any]
) -> None:
    alert = alerts_today[f"R01_CONTACT_BEFORE_SESSION:T4/{hh(1)}"]
    assert alert["due_date"] == date(2026, 3, 2)  # session 5 March, 3 days' notice
    assert alert["priority"] == 2
    assert "05/03/2569" in alert["reason_th"]
    assert alert["subject_name"] == "ครัวเรือน 1"
    # two days before: the lead time is short, so it is urgent; its due date does not slide
    # with the days, it passed yesterday — and it is the same alert as on the first day
    late = build(district, today=date(2026, 3, 3), previous=build(district)["alerts"])
    alert = by_id(late["alerts"])[f"R01_CONTACT_BEFORE_SESSION:T4/{hh(1)}"]
    assert (alert["priority"], alert["due_date"], alert["first_seen"]) == (
        1,
        date(2026, 3, 2),
        TODAY,
    )
    call_list = {e["item_id"]: e for e in late["worklist"].to_pylist()}["session:T4"]
    assert (call_list["due_date"], call_list["overdue_days"]) == (date(2026, 3, 2), 1)
    # once the session day has passed there is nobody left to call: the alert resolves
    on_the_day = by_id(build(district, today=date(2026, 3, 6), previous=late["alerts"])["alerts"])
    assert on_the_day[f"R01_CONTACT_BEFORE_SESSION:T4/{hh(1)}"]["status"] == "resolved"


def test_a_plan_without_invitation_list_means_every_household_of_the_village(
    district: dict[str, pa.Table],
) -> None:
    put(district, "sessions", session("T9", planned=date(2026, 3, 6), village=W)[0])
    assert ("R01_CONTACT_BEFORE_SESSION", f"T9/{hh(1, W)}") in fired(build(district)["alerts"])


def test_the_look_ahead_window_is_configurable(district: dict[str, pa.Table]) -> None:
    longer = AlertRules(roster=(OFF01,), upcoming_within_days=21)
    alerts = fired(build(district, rules=longer)["alerts"])
    assert ("R01_CONTACT_BEFORE_SESSION", f"T5/{hh(1)}") in alerts
    with pytest.raises(ValueError, match="at least contact_lead_days"):
        AlertRules(upcoming_within_days=2)


def test_farm_season_alert_for_a_session_just_held_in_the_harvest(
    district: dict[str, pa.Table],
) -> None:
    held = session("T8", held=date(2025, 11, 25), present={hh(1): True, hh(2): False}, sage="S1")
    put(district, "sessions", held[0])
    put(district, "attendance", *held[1])
    alert = by_id(build(district, today=date(2025, 12, 10))["alerts"])[
        "R02_SESSION_IN_FARM_SEASON:T8"
    ]
    assert alert["priority"] == 3
    assert "ช่วงเก็บเกี่ยวข้าว" in alert["reason_th"] and "มาร่วม 1 จาก 2" in alert["reason_th"]
    # a month after, the session is history: the alert clears
    assert "R02_SESSION_IN_FARM_SEASON:T8" not in by_id(
        build(district, today=date(2026, 1, 20))["alerts"]
    )


def test_a_province_can_have_its_own_farm_calendar(district: dict[str, pa.Table]) -> None:
    # a made-up calendar for Ubon (34): sugar-cane cutting December to March (wraps the year)
    cane = SeasonWindow("cane", "ช่วงตัดอ้อย", "cane cutting", (12, 1), (3, 31))
    rules = AlertRules(roster=(OFF01,), province_seasons=(("34", (cane,)),))
    found = fired(build(district, rules=rules)["alerts"])
    assert ("R02_SESSION_IN_FARM_SEASON", "T4") in found  # 5 March
    assert ("R02_SESSION_IN_FARM_SEASON", "T6") not in found  # Isan planting no longer applies


def test_income_threshold_is_configurable(district: dict[str, pa.Table]) -> None:
    put(district, "income_surveys", followup(hh(6), date(2026, 2, 20), True, 10200))  # +2%
    assert ("R06_OUTCOME_BELOW_TARGET", hh(6)) not in fired(build(district)["alerts"])
    strict = AlertRules(roster=(OFF01,), min_income_change=0.03)
    alert = by_id(build(district, rules=strict)["alerts"])[f"R06_OUTCOME_BELOW_TARGET:{hh(6)}"]
    assert alert["reason_th"] == "รายได้ครัวเรือน 10,000 → 10,200 บาท/เดือน (+2.0%) ไม่เพิ่มขึ้น"


def test_not_practising_is_spelled_out(alerts_today: dict[str, Any]) -> None:
    alert = alerts_today[f"R06_OUTCOME_BELOW_TARGET:{hh(5)}"]
    assert alert["reason_th"].startswith("ไม่ได้ประกอบอาชีพที่อบรม (สำรวจเมื่อ 10/01/2569)")


def test_a_village_whose_trained_households_joined_a_group_elsewhere_is_fine(
    district: dict[str, pa.Table],
) -> None:
    put(district, "groups", {"submission_key": "gr2", "group_code": "G-x", "village_code": V})
    put(district, "group_members", {"submission_key": "gr2", "row_index": 0, "hh_code": hh(1, W)})
    assert ("R07_VILLAGE_NO_GROUP", W) not in fired(build(district)["alerts"])


def test_sage_alerts_name_the_next_session(alerts_today: dict[str, Any]) -> None:
    alerts = alerts_today
    s2 = alerts["R08_SAGE_NOT_TRAINER:S2"]
    assert s2["reason_th"] == "ยังไม่ผ่านการอบรมวิทยากร; กำหนดสอนอีก 1 ครั้ง ครั้งถัดไป 05/03/2569"
    assert (s2["priority"], s2["due_date"], s2["phone"]) == (1, date(2026, 3, 2), "0899999999")
    assert alerts["R08_SAGE_NOT_TRAINER:S3"]["reason_th"].startswith(
        "อบรมวิทยากรเมื่อ 01/04/2569 หลังวันสอน"
    )


def test_an_area_nobody_covers_goes_to_the_district_list(
    district: dict[str, pa.Table], alerts_today: dict[str, Any]
) -> None:
    alerts = build(district, rules=AlertRules())["alerts"]
    assert set(alerts["officer_id"].to_pylist()) == {"district"}
    assert alerts_today[f"R07_VILLAGE_NO_GROUP:{W}"]["officer_id"] == "district"


def test_a_rejected_submission_never_reaches_a_mart(district: dict[str, pa.Table]) -> None:
    materials = district["materials"].to_pylist()
    materials[1]["review_status"] = "not_approved"  # hh 3's handout was not approved
    district["materials"] = table("materials", materials)
    alerts = fired(build(district)["alerts"])
    assert ("R05_NO_FOLLOWUP_INCOME", hh(3)) not in alerts
    assert ("R04_TRAINED_NO_MATERIALS", hh(3)) in alerts


def test_a_household_whose_registration_was_rejected_leaves_the_marts(
    district: dict[str, pa.Table],
) -> None:
    households = district["households"].to_pylist()
    households[1]["review_status"] = "rejected"  # hh 2
    district["households"] = table("households", households)
    marts = build(district)
    assert not [a for a in fired(marts["alerts"]) if hh(2) in a[1]]
    assert hh(2) not in marts["household_outcomes"]["hh_code"].to_pylist()


def test_marts_build_from_nothing() -> None:
    marts = build_marts({}, {}, TODAY)
    assert {name: m.num_rows for name, m in marts.items() if name != "kpis"} == dict.fromkeys(
        [n for n in MART_SCHEMAS if n != "kpis"], 0
    )
    assert all(marts[name].schema == schema for name, schema in MART_SCHEMAS.items())


def test_building_the_marts_warns_of_nothing(district: dict[str, pa.Table]) -> None:
    """The marts take DuckDB's rows through `execute` on purpose; the copy DuckDB warns
    about is chosen there, and a run's log must not repeat that warning for every mart."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(district)
    assert [str(w.message) for w in caught] == []


def test_marts_read_from_parquet_files_equal_marts_from_memory(
    tmp_path: Path, marts_today: dict[str, pa.Table]
) -> None:
    """The warehouse hands the marts lazy datasets of Parquet files (DuckDB reads local ones
    itself); an older file without a column the code added later reads as null there."""
    tables = district_tables()
    datasets: dict[str, ds.Dataset] = {}
    for name, data in tables.items():
        old, new = data.slice(0, data.num_rows // 2), data.slice(data.num_rows // 2)
        if name == "households":  # written before `phone` existed: those rows have none
            old = old.drop_columns(["phone"])
            tables[name] = pa.concat_tables(
                [old.append_column("phone", pa.nulls(old.num_rows, pa.string())), new],
                promote_options="permissive",
            ).select(data.schema.names)
        files = [str(tmp_path / f"{name}-{i}.parquet") for i in (1, 2)]
        pq.write_table(old, files[0])
        pq.write_table(new, files[1])
        datasets[name] = ds.dataset(files, schema=data.schema, format="parquet")
    from_files = build(datasets)  # type: ignore[arg-type]
    assert from_files == build(tables)
    assert from_files != marts_today  # the missing phones made a difference


def test_no_mart_carries_a_national_id(marts_today: dict[str, pa.Table]) -> None:
    for name, mart in marts_today.items():
        assert "national_id" not in mart.schema.names, name
        assert "3100600445635" not in str(mart.to_pylist()), name


# ---- lifecycle: new today, still open, resolved, snoozed -------------------------------------


def test_first_seen_is_kept_so_new_today_stands_apart(district: dict[str, pa.Table]) -> None:
    yesterday = build(district, today=TODAY - timedelta(days=1))["alerts"]
    put(
        district,
        "quarantine",
        {
            "submission_key": "q2",
            "form_id": "sammachip_group",
            "submission_id": "78",
            "village_code": V,
            "reason_th": "x",
        },
    )
    today = by_id(build(district, previous=yesterday)["alerts"])
    new = {a for a, r in today.items() if r["first_seen"] == TODAY}
    assert new == {"R09_DATA_TO_FIX:sammachip_group:78"}
    assert {r["first_seen"] for a, r in today.items() if a not in new} == {date(2026, 2, 28)}
    assert {r["last_seen"] for r in today.values()} == {TODAY}
    assert {r["status"] for r in today.values()} == {"open"}


def test_an_alert_resolves_when_its_condition_clears_and_is_new_if_it_returns(
    district: dict[str, pa.Table],
) -> None:
    key = f"R04_TRAINED_NO_MATERIALS:{hh(2)}"
    day1 = build(district)["alerts"]
    put(
        district,
        "materials",
        {"submission_key": "m-late", "hh_code": hh(2), "handout_date": date(2026, 3, 1)},
    )
    day2 = build(district, today=TODAY + timedelta(days=1), previous=day1)["alerts"]
    gone = by_id(day2)[key]
    assert (gone["status"], gone["resolved_on"]) == ("resolved", TODAY + timedelta(days=1))
    assert (gone["first_seen"], gone["last_seen"]) == (TODAY, TODAY)
    assert key not in {a for a, r in by_id(day2).items() if r["status"] != "resolved"}
    # the handout is struck off: the condition is back, and the alert starts afresh
    district["materials"] = table(
        "materials",
        [m for m in district["materials"].to_pylist() if m["submission_key"] != "m-late"],
    )
    day3 = by_id(build(district, today=TODAY + timedelta(days=2), previous=day2)["alerts"])[key]
    assert (day3["status"], day3["first_seen"], day3["resolved_on"]) == (
        "open",
        TODAY + timedelta(days=2),
        None,
    )


def test_resolved_alerts_are_kept_for_a_while_then_dropped() -> None:
    def resolved(alert_id: str, on: date) -> dict[str, Any]:
        return {
            "alert_id": alert_id,
            "rule_id": "R03_LOW_ATTENDANCE",
            "subject_id": alert_id,
            "village_code": V,
            "status": "resolved",
            "resolved_on": on,
            "first_seen": on - timedelta(days=30),
            "last_seen": on - timedelta(days=1),
        }

    previous = pa.Table.from_pylist(
        [
            resolved("kept", TODAY - timedelta(days=14)),
            resolved("dropped", TODAY - timedelta(days=15)),
        ],
        schema=MART_SCHEMAS["alerts"],
    )
    alerts = by_id(build({}, previous=previous)["alerts"])
    assert set(alerts) == {"kept"}
    assert alerts["kept"]["officer_id"] == "off01"  # ownership still follows the roster


def test_snoozed_alerts_wait_until_the_date_the_officer_set(
    district: dict[str, pa.Table], tmp_path: Path
) -> None:
    snooze_file = tmp_path / "snoozes.csv"  # as Excel saves it: BOM, Thai, BE date
    snooze_file.write_text(
        "alert_id,until,note\n"
        f"R03_LOW_ATTENDANCE:{hh(2)},05/03/2569,โทรแล้ว ลูกป่วย จะมาครั้งหน้า\n"
        "R03_LOW_ATTENDANCE:nobody,2026-04-01,an alert that does not exist is ignored\n",
        encoding="utf-8-sig",
    )
    rules = AlertRules(roster=(OFF01,), snooze_file=snooze_file)
    day1 = build(district, rules=rules)["alerts"]
    alert = by_id(day1)[f"R03_LOW_ATTENDANCE:{hh(2)}"]
    assert (alert["status"], alert["snoozed_until"]) == ("snoozed", date(2026, 3, 5))
    assert alert["snooze_note"] == "โทรแล้ว ลูกป่วย จะมาครั้งหน้า"
    assert "R03_LOW_ATTENDANCE:nobody" not in by_id(day1)
    back = by_id(build(district, today=date(2026, 3, 5), rules=rules, previous=day1)["alerts"])
    again = back[f"R03_LOW_ATTENDANCE:{hh(2)}"]
    assert (again["status"], again["snoozed_until"], again["first_seen"]) == ("open", None, TODAY)


def test_yesterdays_mart_from_an_older_version_still_carries_first_seen(
    district: dict[str, pa.Table],
) -> None:
    old_columns = ["alert_id", "rule_id", "subject_id", "first_seen", "last_seen", "status"]
    yesterday = build(district, today=TODAY - timedelta(days=1))["alerts"].select(old_columns)
    today = build(district, previous=yesterday)["alerts"]
    assert set(today["first_seen"].to_pylist()) == {TODAY - timedelta(days=1)}


def test_a_repeated_alert_in_yesterdays_mart_comes_out_once(
    district: dict[str, pa.Table],
) -> None:
    # marts built before the R09 tie fix could hold one alert id twice
    yesterday = build(district, today=TODAY - timedelta(days=1))["alerts"]
    doubled = pa.concat_tables([yesterday, yesterday.slice(0, 1)])
    today = build(district, previous=doubled)["alerts"]
    ids = today["alert_id"].to_pylist()
    assert len(ids) == len(set(ids)) == yesterday.num_rows
    assert by_id(today)[ids[0]]["first_seen"] == TODAY - timedelta(days=1)


def test_an_alert_found_twice_is_listed_once_the_same_whatever_the_row_order(
    district: dict[str, pa.Table],
) -> None:
    # plan T8 sent twice as two submissions (moved from 6 to 2 March): household 1 is to be
    # told about it twice; the officer sees one alert, the more urgent one
    first, invited = session("T8", planned=date(2026, 3, 6), present={hh(1): None})
    again = {**first, "submission_key": "s-T8-moved", "planned_date": date(2026, 3, 2)}
    moved = [{**r, "submission_key": "s-T8-moved"} for r in invited]
    alert_id = f"R01_CONTACT_BEFORE_SESSION:T8/{hh(1)}"
    kept = []
    for order in (1, -1):
        tables = dict(district)
        put(tables, "sessions", *[first, again][::order])
        put(tables, "attendance", *[*invited, *moved][::order])
        alerts = build(tables)["alerts"]
        ids = alerts["alert_id"].to_pylist()
        assert ids.count(alert_id) == 1 and len(ids) == len(set(ids))
        kept.append(by_id(alerts)[alert_id])
    assert kept[0] == kept[1]
    assert kept[0]["priority"] == 1 and kept[0]["due_date"] == date(2026, 2, 27)  # 2 March − 3


def test_village_names_in_alerts_and_kpis_are_thai(
    alerts_today: dict[str, Any], marts_today: dict[str, pa.Table]
) -> None:
    assert alerts_today[f"R07_VILLAGE_NO_GROUP:{W}"]["subject_name"] == "หมู่ 1 ต.เหล่าบก"
    tambons = {
        r["scope_code"]: r["scope_name"]
        for r in marts_today["kpis"].to_pylist()
        if r["scope"] == "tambon"
    }
    assert tambons == {"341401": "ต.ม่วงสามสิบ", "341402": "ต.เหล่าบก"}
