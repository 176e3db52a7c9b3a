"""KPIs that do not flatter, computed by hand on the tiny district (tests/marts/district.py)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.marts.district import build

# ---- KPIs against the department's targets ---------------------------------------------------


def test_kpis_match_a_hand_computation(marts_today: dict[str, pa.Table]) -> None:
    """By hand, from the tiny district. Trained (present at a held session): V-01, V-02,
    V-03, V-05, V-06 and W-01 (V-04 never came) = 6. Followed up: V-01 practising
    (10,000 → 11,000), V-05 not practising (10,000 → 10,000), W-01 practising (8,000 → 8,800).
    Villages V and W; one group, in V."""
    kpis = {(k["scope"], k["scope_code"], k["kpi_id"]): k for k in marts_today["kpis"].to_pylist()}

    def district(kpi_id: str) -> tuple[Any, ...]:
        k = kpis[("district", "district", kpi_id)]
        return k["numerator"], k["denominator"], k["value"], k["target"], k["met"]

    # practising over every trained household, not over the 3 followed up (that was 2/3)
    assert district("K1_PRACTISING") == (2, 6, 2 / 6, 0.85, False)
    assert district("K1B_FOLLOWED_UP") == (3, 6, 0.5, None, None)  # coverage, shown apart
    # income over every household with a baseline and a follow-up, practising or not:
    # (11,000 + 10,000 + 8,800) − (10,000 + 10,000 + 8,000) = 1,800 on 28,000
    assert district("K2_INCOME_CHANGE") == (1800, 28000, pytest.approx(1800 / 28000), 0.03, True)
    # groups formed against 10% of the target villages: 1 group, 2 villages
    assert district("K3_GROUP_VILLAGES") == (1, 2, 0.5, 0.10, True)
    k1 = kpis[("district", "district", "K1_PRACTISING")]
    assert k1["detail_th"] == "ประกอบอาชีพ 2 จาก 6 ครัวเรือนที่ผ่านการอบรม (ติดตามแล้ว 3 ครัวเรือน)"
    assert kpis[("district", "district", "K1B_FOLLOWED_UP")]["detail_th"] == (
        "ติดตามแล้ว 3 จาก 6 ครัวเรือนที่ผ่านการอบรม"
    )
    assert "logi.cdd.go.th" in kpis[("district", "district", "K3_GROUP_VILLAGES")]["source_th"]
    assert kpis[("district", "district", "K1B_FOLLOWED_UP")]["source_th"] is None
    k2 = kpis[("district", "district", "K2_INCOME_CHANGE")]
    assert k2["detail_th"].startswith("รายได้เฉลี่ย 9,333 → 9,933 บาท/เดือน (3 ครัวเรือน")
    # off01 covers V only: trained 5, practising 1; tambon 341402 (W) has no group
    assert kpis[("officer", "off01", "K1_PRACTISING")]["value"] == 1 / 5
    assert kpis[("tambon", "341402", "K3_GROUP_VILLAGES")]["value"] == 0.0
    assert kpis[("tambon", "341402", "K3_GROUP_VILLAGES")]["scope_name"] == "ต.เหล่าบก"


def test_attendance_and_outcomes_by_teaching_method(district: dict[str, pa.Table]) -> None:
    """By hand: the kickoff T0 (lecture, Q&A; no sign-in sheet), T1 (lecture: 5 of 6 came),
    T2 (demonstration, Q&A: 4 of 6), T3 (lecture, video: 4 of 6). Trained at a lecture:
    V-01, 02, 03, 05, 06; at the others V-01, 03, 05, 06. Followed up: V-01 practising,
    10,000 → 11,000; V-05 not practising, 10,000 → 10,000."""
    methods = {"T0": ["lecture", "qa"], "T1": ["lecture"], "T2": ["demonstration", "qa"]}
    methods["T3"] = ["lecture", "video"]
    sessions = [{**s, "methods": methods.get(s["session_code"])} for s in
                district["sessions"].to_pylist()]  # fmt: skip
    district["sessions"] = pa.Table.from_pylist(sessions, schema=district["sessions"].schema)
    rows = build(district)["kpis_by_method"].to_pylist()
    got = {
        r["method"]: (
            r["sessions"],
            r["invited"],
            r["present"],
            r["trained"],
            r["followed"],
            r["practising"],
            r["income_change_numerator"],
            r["income_change_denominator"],
        )
        for r in rows
        if r["scope"] == "district"
    }
    assert got == {
        "lecture": (3, 12, 9, 5, 2, 1, 1000, 20000),
        "demonstration": (1, 6, 4, 4, 2, 1, 1000, 20000),
        "qa": (2, 6, 4, 4, 2, 1, 1000, 20000),
        "video": (1, 6, 4, 4, 2, 1, 1000, 20000),
    }
    lecture = next(r for r in rows if r["scope"] == "district" and r["method"] == "lecture")
    assert (lecture["method_th"], lecture["attendance_rate"], lecture["practising_rate"]) == (
        "บรรยาย",
        0.75,
        0.2,
    )
    assert next(r["method"] for r in rows if r["scope"] == "district") == "lecture"  # yardstick
    assert {r["scope_code"] for r in rows if r["scope"] == "officer"} == {"off01"}
