"""Alert rules and OTOP readiness on a tiny village whose right answers are known."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from schemas.tables import CLEAN_TABLES, QUARANTINE
from warehouse.marts import AlertRules, Officer, build_alerts, build_otop_readiness

TODAY = date(2026, 3, 1)
V = "34140105"
RULES = AlertRules(roster=(Officer("off01", "นางสาวพรทิพย์ ศรีสุข", ("341401",)),))


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    spec = QUARANTINE if name == "quarantine" else CLEAN_TABLES[name]
    filled = [{col: r.get(col) for col in spec.column_names} for r in rows]
    return pa.Table.from_pylist(filled, schema=spec.schema)


def household(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "submission_key": f"h{n}",
        "hh_code": f"{V}-{n:02d}",
        "village_code": V,
        "tambon_code": V[:6],
        "head_name": f"ครัวเรือน {n}",
        "national_id": "3100600445635",
        **extra,
    }


def session(code: str, held: date | None, present: dict[int, bool]) -> tuple[dict, list[dict]]:
    key = f"s-{code}"
    att = [
        {
            "submission_key": key,
            "row_index": i,
            "session_code": code,
            "hh_code": f"{V}-{hh:02d}",
            "present": p,
        }
        for i, (hh, p) in enumerate(present.items())
    ]
    return {
        "submission_key": key,
        "session_code": code,
        "village_code": V,
        "held_date": held,
        "planned_date": held,
    }, att


@pytest.fixture
def village() -> dict[str, pa.Table]:
    s1, a1 = session("T1", date(2025, 9, 1), {1: True, 2: True, 3: True, 4: False})
    s2, a2 = session("T2", date(2025, 10, 1), {1: True, 2: False, 3: True, 4: False})
    s3, a3 = session("T3", date(2025, 11, 1), {1: True, 2: False, 3: True, 4: False})
    s4, a4 = session("T4", date(2026, 3, 10), {1: False, 2: False})  # planned, not held yet
    return {
        "households": table("households", [household(n) for n in (1, 2, 3, 4)]),
        "sessions": table("sessions", [s1, s2, s3, s4]),
        "attendance": table("attendance", a1 + a2 + a3 + a4),
        # hh 1 got materials long ago and was followed up; hh 3 got materials, no follow-up.
        "materials": table(
            "materials",
            [
                {"submission_key": "m1", "hh_code": f"{V}-01", "handout_date": date(2025, 9, 10)},
                {"submission_key": "m3", "hh_code": f"{V}-03", "handout_date": date(2025, 9, 10)},
            ],
        ),
        "income_surveys": table(
            "income_surveys",
            [
                {
                    "submission_key": "i1",
                    "hh_code": f"{V}-01",
                    "round": "followup",
                    "survey_date": date(2025, 12, 1),
                },
            ],
        ),
        "groups": table("groups", []),
        "group_members": table("group_members", []),
        "quarantine": table(
            "quarantine",
            [
                {
                    "submission_key": "q1",
                    "form_id": "sammachip_income",
                    "submission_id": "77",
                    "business_key": None,
                    "village_code": V,
                    "tambon_code": V[:6],
                    "reason_th": "เลขประจำตัวประชาชนไม่ถูกต้อง",
                    "reason_en": "bad national ID",
                },
            ],
        ),
    }


def fired(alerts: pa.Table) -> set[tuple[str, str]]:
    return {(r["rule_id"], r["subject_id"]) for r in alerts.to_pylist()}


def test_each_rule_fires_exactly_where_it_should(village: dict[str, pa.Table]) -> None:
    alerts = build_alerts(village, None, TODAY, RULES)
    assert fired(alerts) == {
        ("R03_LOW_ATTENDANCE", f"{V}-02"),  # 1 of 3 held sessions
        ("R03_LOW_ATTENDANCE", f"{V}-04"),  # never came
        ("R04_TRAINED_NO_MATERIALS", f"{V}-02"),  # trained 1 Sep, nothing since
        ("R05_NO_FOLLOWUP_INCOME", f"{V}-03"),  # materials 10 Sep, no follow-up by 1 Mar
        ("R09_DATA_TO_FIX", "sammachip_income:77"),
    }


def test_alerts_carry_thai_reasons_owner_and_due_date(village: dict[str, pa.Table]) -> None:
    alerts = {r["alert_id"]: r for r in build_alerts(village, None, TODAY, RULES).to_pylist()}
    low = alerts[f"R03_LOW_ATTENDANCE:{V}-02"]
    assert low["reason_th"] == "ขาดการอบรม 2 ครั้งติดต่อกัน; เข้าร่วม 1 จาก 3 ครั้ง (33%)"
    assert low["rule_th"] == "เข้าร่วมอบรมน้อย"
    assert low["subject_name"] == "ครัวเรือน 2"
    assert (low["officer_id"], low["tambon_code"]) == ("off01", "341401")
    assert low["due_date"] == date(2026, 3, 8)
    assert "01/09/2568" in alerts[f"R04_TRAINED_NO_MATERIALS:{V}-02"]["reason_th"]


def test_an_area_nobody_covers_goes_to_the_district_list(village: dict[str, pa.Table]) -> None:
    alerts = build_alerts(village, None, TODAY, AlertRules())
    assert set(alerts["officer_id"].to_pylist()) == {"district"}


def test_first_seen_is_kept_from_the_previous_day(village: dict[str, pa.Table]) -> None:
    yesterday = build_alerts(village, None, date(2026, 2, 28), RULES)
    today = build_alerts(village, yesterday, TODAY, RULES)
    assert set(today["first_seen"].to_pylist()) == {date(2026, 2, 28)}
    assert set(today["last_seen"].to_pylist()) == {TODAY}


def test_a_rejected_submission_never_reaches_a_mart(village: dict[str, pa.Table]) -> None:
    materials = village["materials"].to_pylist()
    materials[1]["review_status"] = "not_approved"  # hh 3's handout was not approved
    village["materials"] = table("materials", materials)
    alerts = fired(build_alerts(village, None, TODAY, RULES))
    assert ("R05_NO_FOLLOWUP_INCOME", f"{V}-03") not in alerts
    assert ("R04_TRAINED_NO_MATERIALS", f"{V}-03") in alerts


def test_otop_readiness_checklist_scores_and_missing_items(village: dict[str, pa.Table]) -> None:
    group = {
        "submission_key": "g1",
        "group_code": "G34140105-1",
        "group_name": "กลุ่มเพาะเห็ด",
        "village_code": V,
        "tambon_code": V[:6],
        "n_members": 4,
        "product_type": "food",
        "standards": ["tcps"],
        "packaging": True,
        "label": True,
        "local_materials": True,
        "monthly_sales": 12000,
        "months_recorded": 4,
    }
    members = [
        {
            "submission_key": "g1",
            "row_index": i,
            "group_code": "G34140105-1",
            "hh_code": f"{V}-{n:02d}",
        }
        for i, n in enumerate((1, 2, 3, 4))
    ]
    village["groups"] = table("groups", [group])
    village["group_members"] = table("group_members", members)
    row = build_otop_readiness(village, RULES).to_pylist()[0]
    assert (row["score"], row["max_score"], row["status"]) == (5, 7, "nearly_ready")
    assert row["missing_th"] == "สมาชิกไม่ถึง 7 คน; ยังไม่มีมาตรฐาน อย."
    assert row["officer_id"] == "off01"
