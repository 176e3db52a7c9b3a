"""Right reasons: data to fix names the person or household and the form's Thai title; a sage the
registry does not know is data to fix, not an untrained trainer (tiny district of
tests/marts/district.py)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from tests.marts.district import (
    V,
    build,
    by_id,
    hh,
    put,
    session,
)


def test_a_sage_missing_from_the_registry_is_data_to_fix(district: dict[str, pa.Table]) -> None:
    put(district, "sessions", session("T7", planned=date(2026, 4, 1), sage="S9")[0])
    marts = build(district)
    alerts = by_id(marts["alerts"])
    assert "R08_SAGE_NOT_TRAINER:S9" not in alerts  # not "untrained": unknown
    fix = alerts["R09_DATA_TO_FIX:sammachip_sage:S9"]
    assert fix["reason_th"] == (
        "แบบทะเบียนปราชญ์ชุมชน: ไม่พบปราชญ์รหัส S9 ในทะเบียน แต่เป็นผู้สอนใน"
        "การฝึกอบรมและศึกษาดูงาน T7 วันที่ 01/04/2569: ลงทะเบียนปราชญ์ หรือแก้รหัสปราชญ์ในแบบที่ส่ง"
    )
    assert (fix["subject_type"], fix["priority"], fix["due_date"]) == ("sage", 1, date(2026, 3, 29))
    worklist = {e["item_id"]: e for e in marts["worklist"].to_pylist()}
    assert [r["rule_id"] for r in worklist["sage:S9"]["reasons"]] == ["R09_DATA_TO_FIX"]


def test_a_sage_whose_registration_waits_in_quarantine_is_one_fix(
    district: dict[str, pa.Table],
) -> None:
    put(district, "sessions", session("T7", planned=date(2026, 4, 1), sage="S9")[0])
    put(
        district,
        "quarantine",
        {
            "submission_key": "q-s9",
            "form_id": "sammachip_sage",
            "submission_id": "81",
            "business_key": "S9",
            "subject_name": "นายบุญมี ใจดี",
            "village_code": V,
            "reason_th": "เลขประจำตัวประชาชนไม่ถูกต้อง",
            "reason_en": "bad national ID",
        },
    )
    fixes = [a for a in build(district)["alerts"].to_pylist() if a["subject_id"].endswith("S9")]
    assert [(a["alert_id"], a["subject_name"]) for a in fixes] == [
        ("R09_DATA_TO_FIX:sammachip_sage:S9", "นายบุญมี ใจดี")
    ]
    assert fixes[0]["reason_th"].startswith("แบบทะเบียนปราชญ์ชุมชน: นายบุญมี ใจดี (S9) — ")
    assert fixes[0]["reason_th"].endswith("(รหัสส่ง 81): เลขประจำตัวประชาชนไม่ถูกต้อง")


def test_data_to_fix_names_the_household_and_the_forms_thai_title(
    district: dict[str, pa.Table],
) -> None:
    put(
        district,
        "quarantine",
        {
            "submission_key": "q-income-2",
            "form_id": "sammachip_income",
            "submission_id": "90",
            "business_key": hh(2),  # the income survey names the household, not its head
            "village_code": V,
            "reason_th": "วันที่สำรวจอยู่ก่อนการสำรวจก่อนอบรม",
            "reason_en": "follow-up before baseline",
        },
        {
            "submission_key": "q-hh-9",
            "form_id": "sammachip_household",
            "submission_id": "91",
            "business_key": hh(9),
            "subject_name": "นางสมร แสงทอง",  # not registered: the name it was sent with
            "village_code": V,
            "reason_th": "เลขประจำตัวประชาชนไม่ถูกต้อง",
            "reason_en": "bad national ID",
        },
    )
    marts = build(district)
    alerts = by_id(marts["alerts"])
    income = alerts[f"R09_DATA_TO_FIX:sammachip_income:{hh(2)}"]
    assert income["reason_th"] == (
        f"แบบสำรวจรายได้ครัวเรือน: ครัวเรือน 2 ({hh(2)}) — (รหัสส่ง 90): วันที่สำรวจอยู่ก่อนการสำรวจก่อนอบรม"
    )
    assert income["reason_en"].startswith(f"Household income survey: ครัวเรือน 2 ({hh(2)}) — ")
    assert (income["subject_type"], income["phone"]) == ("household", "0810000002")
    assert alerts[f"R09_DATA_TO_FIX:sammachip_household:{hh(9)}"]["reason_th"].startswith(
        f"แบบทะเบียนครัวเรือนเป้าหมาย: นางสมร แสงทอง ({hh(9)}) — "
    )
    # the fix joins the household's other reasons on the officer's list
    entry = {e["item_id"]: e for e in marts["worklist"].to_pylist()}[f"household:{hh(2)}"]
    assert [r["rule_id"] for r in entry["reasons"]] == [
        "R09_DATA_TO_FIX",
        "R03_LOW_ATTENDANCE",
        "R04_TRAINED_NO_MATERIALS",
    ]
    # no code at all: the form's title and the submission, never the form id
    nameless = alerts["R09_DATA_TO_FIX:sammachip_income:77"]
    assert nameless["reason_th"].startswith("แบบสำรวจรายได้ครัวเรือน: ไม่ระบุรหัส — ")
    assert "sammachip" not in nameless["reason_th"]


def test_an_outcome_below_target_says_what_the_visit_found_and_agreed(
    district: dict[str, pa.Table],
) -> None:
    surveys = district["income_surveys"].to_pylist()
    for s in surveys:
        if s["hh_code"] == hh(5):
            s["problem"], s["action_agreed"] = "market", "พัฒนากรประสานร้านค้าในอำเภอภายใน 30 วัน"
    district["income_surveys"] = pa.Table.from_pylist(
        surveys, schema=district["income_surveys"].schema
    )
    alert = by_id(build(district)["alerts"])[f"R06_OUTCOME_BELOW_TARGET:{hh(5)}"]
    assert alert["reason_th"].endswith(
        "; ปัญหาที่พบ: ขายไม่ได้/ไม่มีตลาด — ตกลงว่า: พัฒนากรประสานร้านค้าในอำเภอภายใน 30 วัน"
    )
