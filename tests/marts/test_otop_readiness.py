"""OTOP readiness: each group's checklist, score, status, what is missing and what to do first."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from sammachip.marts import build_marts
from sammachip.marts.rules import AlertRules, Officer
from sammachip.reports.labels import OTOP_CHECKS
from sammachip.schemas.tables import CLEAN_TABLES

V = "34140105"
RULES = AlertRules(roster=(Officer("off01", "นางสาวพรทิพย์ ศรีสุข", ("341401",)),))
THAI_ID, FOREIGN_ID = "3100600445635", "6100600445631"


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    spec = CLEAN_TABLES[name]
    return pa.Table.from_pylist(
        [{col: r.get(col) for col in spec.column_names} for r in rows], schema=spec.schema
    )


def group(code: str, members: list[str | None], **product: Any) -> tuple[dict, list[dict]]:
    """A group in village V whose members have these national IDs (None: no ID on record)."""
    row = {
        "submission_key": code,
        "group_code": code,
        "group_name": f"กลุ่ม {code}",
        "village_code": V,
        "n_members": len(members),
        "product_name": "น้ำพริกเห็ด",
        "product_type": "food",
        "standards": ["fda"],
        "packaging": True,
        "label": True,
        "local_materials": True,
        "monthly_sales": 12000,
        "months_recorded": 4,
        "otop_status": "not_registered",
        **product,
    }
    rows = [
        {"submission_key": code, "row_index": i, "group_code": code, "hh_code": f"{code}-{i}"}
        for i in range(len(members))
    ]
    return row, rows


def households(
    groups: list[tuple[dict, list[dict]]], ids: dict[str, list[str | None]], away: set[str]
) -> list[dict[str, Any]]:
    """Members live in V, except those of the groups in `away` (another district)."""
    return [
        {
            "submission_key": m["hh_code"],
            "hh_code": m["hh_code"],
            "village_code": "34010101" if g["group_code"] in away else V,
            "national_id": ids[g["group_code"]][m["row_index"]],
        }
        for g, members in groups
        for m in members
    ]


@pytest.fixture(scope="module")
def readiness() -> dict[str, dict[str, Any]]:
    seven = [THAI_ID] * 7
    ids = {
        "READY": seven,
        "REGISTERED": seven,
        "FOOD_NO_FDA": [THAI_ID] * 4,  # small, and a food with a community standard only
        "FOREIGN": [*[THAI_ID] * 6, FOREIGN_ID],
        "BARE": [None] * 2,  # no IDs, members from elsewhere, nothing about the product
    }
    groups = [
        group("READY", ids["READY"]),
        group("REGISTERED", ids["REGISTERED"], otop_status="registered"),
        group("FOOD_NO_FDA", ids["FOOD_NO_FDA"], standards=["tcps"]),
        group("FOREIGN", ids["FOREIGN"], product_type="textile", standards=["tis"]),
        group(
            "BARE",
            ids["BARE"],
            product_type=None,
            standards=None,
            packaging=None,
            local_materials=None,
            months_recorded=None,
            monthly_sales=None,
        ),
    ]
    tables = {
        "households": table("households", households(groups, ids, away={"BARE"})),
        "groups": table("groups", [g for g, _ in groups]),
        "group_members": table("group_members", [m for _, ms in groups for m in ms]),
    }
    mart = build_marts(tables, {}, date(2026, 3, 1), RULES)["otop_readiness"]
    return {r["group_code"]: r for r in mart.to_pylist()}


def test_a_group_meeting_every_item_is_ready_and_told_to_apply(readiness: dict) -> None:
    ready = readiness["READY"]
    assert (ready["score"], ready["max_score"], ready["status"]) == (7, 7, "ready")
    assert ready["status_th"] == "พร้อมขึ้นทะเบียน"
    assert ready["missing_th"] == ""
    assert ready["next_step_th"] == "ยื่นขึ้นทะเบียน OTOP ที่ สนง.พัฒนาชุมชนอำเภอ"
    assert all(ready[col] for col, _ in OTOP_CHECKS)
    assert ready["officer_id"] == "off01"


def test_food_needs_the_fda_mark_and_missing_items_are_spelled_out(readiness: dict) -> None:
    row = readiness["FOOD_NO_FDA"]
    assert (row["score"], row["status"], row["status_th"]) == (5, "nearly_ready", "เกือบพร้อม")
    assert row["missing_th"] == "สมาชิกไม่ถึง 7 คน (มี 4 คน); ยังไม่มีมาตรฐาน อย."
    assert row["missing_en"] == "fewer than 7 members (4); no FDA (อย.) standard"
    assert row["next_step_th"] == "สมาชิกไม่ถึง 7 คน (มี 4 คน)"  # the first thing to help with


def test_every_member_must_be_thai_and_non_food_takes_tis_or_tcps(readiness: dict) -> None:
    row = readiness["FOREIGN"]
    assert row["standard_ok"]  # textile with มอก.
    assert not row["thai_members_ok"]
    assert row["missing_th"] == "สมาชิก 1 คนไม่ใช่สัญชาติไทยหรือไม่มีเลขบัตรในทะเบียน"
    assert row["product_type_th"] == "ผ้าและเครื่องแต่งกาย"


def test_unanswered_items_count_as_missing_not_as_unknown(readiness: dict) -> None:
    bare = readiness["BARE"]
    assert (bare["score"], bare["status"]) == (0, "not_ready")
    assert bare["missing_th"].split("; ") == [
        "สมาชิกไม่ถึง 7 คน (มี 2 คน)",
        "สมาชิก 2 คนไม่ใช่สัญชาติไทยหรือไม่มีเลขบัตรในทะเบียน",
        "ยังไม่เชื่อมโยงชุมชน (ใช้วัตถุดิบหรือแรงงานในท้องถิ่น)",
        "ประเภทผลิตภัณฑ์ไม่ตรง 5 ประเภท OTOP",
        "ยังไม่มีมาตรฐาน มผช. หรือ มอก.",
        "ยังไม่มีบรรจุภัณฑ์และฉลาก",
        "ยังไม่มีบันทึกการผลิตและยอดขายต่อเนื่อง (3 เดือนขึ้นไป)",
    ]


def test_groups_are_listed_in_the_order_to_help_them(readiness: dict) -> None:
    # ready but not applied (a quick win), nearly ready by score, not ready, already registered
    assert list(readiness) == ["READY", "FOREIGN", "FOOD_NO_FDA", "BARE", "REGISTERED"]
    assert readiness["REGISTERED"]["next_step_th"] == "ขึ้นทะเบียนแล้ว: เตรียมคัดสรรดาว OPC"
    assert readiness["REGISTERED"]["otop_status_th"] == "ขึ้นทะเบียนแล้ว"


def test_the_otop_list_carries_each_groups_market_link() -> None:
    selling = group(
        "G1",
        [THAI_ID] * 8,
        market_channel="shop",
        buyer="ร้านของฝากในตัวอำเภอ",
        sale_unit="ถุง",
        price_per_unit=45.0,
        cost_per_unit=28.0,
    )
    unknown_cost = group("G2", [THAI_ID] * 8, market_channel="local_market", price_per_unit=30.0)
    nowhere = group("G3", [THAI_ID] * 8, market_channel="none")
    never_asked = group("G4", [THAI_ID] * 8)  # sent with an older form version
    groups = [selling, unknown_cost, nowhere, never_asked]
    tables = {
        "groups": table("groups", [g for g, _ in groups]),
        "group_members": table("group_members", [m for _, ms in groups for m in ms]),
        "households": table(
            "households",
            households(groups, {g["group_code"]: [THAI_ID] * 8 for g, _ in groups}, set()),
        ),
    }
    rows = {
        r["group_code"]: r
        for r in build_marts(tables, {}, date(2026, 3, 1), RULES)["otop_readiness"].to_pylist()
    }
    g1 = rows["G1"]
    assert (g1["market_channel_th"], g1["margin_per_unit"]) == ("ร้านค้า/ร้านของฝาก", 17.0)
    assert g1["market_th"] == (
        "ขายผ่านร้านค้า/ร้านของฝาก (ร้านของฝากในตัวอำเภอ) ราคา 45.00 บาท/ถุง ต้นทุน 28.00 บาท "
        "กำไร 17.00 บาท/ถุง"
    )
    assert rows["G2"]["margin_per_unit"] is None
    assert rows["G2"]["market_th"] == "ขายผ่านตลาดในชุมชน/ตลาดนัด ราคา 30.00 บาท"
    assert rows["G3"]["market_th"] == "ยังไม่มีช่องทางขาย"
    assert rows["G4"]["market_th"] == "ยังไม่มีข้อมูลตลาด"
