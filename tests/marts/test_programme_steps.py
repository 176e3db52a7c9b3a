"""The programme's own steps as alerts (tiny district of tests/marts/district.py, today 1 March
2026): a plan that slips, a village trained without a kickoff, a group that never visited a
successful one, a sage teaching outside their expertise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from sammachip.marts import build_marts
from sammachip.marts.rules import AlertRules
from sammachip.simulators.cohort import CohortSpec
from tests.marts.cohort import cohort_tables
from tests.marts.district import OFF01, TODAY, V, W, build, by_id, fired, hh, put, session


def test_a_planned_session_not_held_by_its_date_is_a_slipping_plan(
    district: dict[str, pa.Table],
) -> None:
    put(district, "sessions", session("T11", planned=date(2026, 2, 20))[0])
    alert = by_id(build(district)["alerts"])["R10_SESSION_NOT_HELD:T11"]
    assert alert["reason_th"] == (
        "วางแผนจัดการฝึกอบรม T11 วันที่ 20/02/2569 เลยกำหนดมา 9 วัน แต่ยังไม่มีบันทึกการจัด: "
        "จัดให้ได้หรือกำหนดวันใหม่ในแบบการฝึกอบรม"
    )
    assert (alert["priority"], alert["due_date"]) == (2, date(2026, 2, 27))  # a week to act
    # recorded as held in a second submission of the same session: the plan is kept
    held = {**session("T11", held=date(2026, 2, 22))[0], "submission_key": "s-T11-held"}
    put(district, "sessions", held)
    assert ("R10_SESSION_NOT_HELD", "T11") not in fired(build(district)["alerts"])


def test_a_plan_moved_to_a_later_date_is_not_slipping(district: dict[str, pa.Table]) -> None:
    first = session("T11", planned=date(2026, 2, 20))[0]
    sent = datetime(2026, 2, 10, tzinfo=UTC)
    moved = {**first, "submission_key": "s-T11-moved", "planned_date": date(2026, 3, 10)}
    put(district, "sessions", {**first, "submitted_at": sent})
    put(district, "sessions", {**moved, "submitted_at": sent + timedelta(days=9)})
    assert ("R10_SESSION_NOT_HELD", "T11") not in fired(build(district)["alerts"])


def test_a_village_trained_without_a_kickoff_meeting(district: dict[str, pa.Table]) -> None:
    alerts = by_id(build(district)["alerts"])
    assert f"R11_VILLAGE_NO_KICKOFF:{V}" not in alerts  # V held its kickoff (T0)
    alert = alerts[f"R11_VILLAGE_NO_KICKOFF:{W}"]
    assert alert["reason_th"] == (
        "อบรมครัวเรือนแล้ว 1 ครัวเรือน ตั้งแต่ 01/06/2568 แต่ไม่มีบันทึกการประชุมชี้แจงโครงการในหมู่บ้าน"
    )
    assert alert["officer_id"] == "district"  # W: nobody covers it


def group_formed(district: dict[str, pa.Table], day: date) -> None:
    groups = [{**g, "formed_date": day, "group_name": "กลุ่มเพาะเห็ดบ้านนา"} for g in
              district["groups"].to_pylist()]  # fmt: skip
    district["groups"] = pa.Table.from_pylist(groups, schema=district["groups"].schema)


def test_a_group_that_never_visited_a_successful_group(district: dict[str, pa.Table]) -> None:
    group_formed(district, date(2025, 11, 1))
    alert = by_id(build(district)["alerts"])[f"R12_GROUP_NO_STUDY_VISIT:G{V}-1"]
    assert alert["subject_name"] == "กลุ่มเพาะเห็ดบ้านนา"
    assert alert["reason_th"] == (
        "กลุ่มตั้งเมื่อ 01/11/2568 แต่สมาชิกยังไม่ได้ศึกษาดูงานกลุ่มที่ประสบความสำเร็จ (เกิน 90 วัน)"
    )
    # a member (household 3) went on a study visit organised by another village
    visit, rows = session("TW2", held=date(2026, 1, 15), present={hh(3): True}, village=W)
    put(district, "sessions", {**visit, "activity_type": "study_visit"})
    put(district, "attendance", *rows)
    assert ("R12_GROUP_NO_STUDY_VISIT", f"G{V}-1") not in fired(build(district)["alerts"])


def test_a_young_group_has_time_for_its_study_visit(district: dict[str, pa.Table]) -> None:
    group_formed(district, TODAY - timedelta(days=60))
    assert ("R12_GROUP_NO_STUDY_VISIT", f"G{V}-1") not in fired(build(district)["alerts"])
    longer = AlertRules(roster=(OFF01,), study_visit_within_days=30)
    assert ("R12_GROUP_NO_STUDY_VISIT", f"G{V}-1") in fired(build(district, rules=longer)["alerts"])


def test_a_sage_teaching_outside_their_recorded_expertise(district: dict[str, pa.Table]) -> None:
    sages = [
        {**s, "expertise": "mushroom" if s["sage_code"] != "S2" else "weaving"}
        for s in district["sages"].to_pylist()
    ]
    district["sages"] = pa.Table.from_pylist(sages, schema=district["sages"].schema)
    alerts = by_id(build(district)["alerts"])
    alert = alerts["R13_SAGE_OUTSIDE_EXPERTISE:S2"]  # a weaver to teach mushrooms on 5 March
    assert alert["reason_th"] == (
        "ความเชี่ยวชาญที่บันทึกไว้: ทอผ้า แต่สอน เพาะเห็ด (T4 วันที่ 05/03/2569): "
        "ตรวจสอบผู้สอน หรือแก้ความเชี่ยวชาญในทะเบียนปราชญ์"
    )
    assert (alert["priority"], alert["due_date"], alert["phone"]) == (
        2,
        date(2026, 3, 2),
        "0899999999",
    )
    assert not [a for a in alerts if a.startswith("R13") and not a.endswith("S2")]


def test_the_demos_cohort_exercises_every_step_rule() -> None:
    cohort = cohort_tables(CohortSpec(seed=2568, villages=40, today=TODAY, dirty=False))
    found = set(build_marts(cohort, {}, TODAY, AlertRules())["alerts"]["rule_id"].to_pylist())
    assert {
        "R10_SESSION_NOT_HELD",
        "R11_VILLAGE_NO_KICKOFF",
        "R12_GROUP_NO_STUDY_VISIT",
        "R13_SAGE_OUTSIDE_EXPERTISE",
    } <= found
