"""A small district for the deliverable writers (CSV, XLSX, HTML, charts, e-mail).

Seven villages in four tambons (off01 covers two, off02 one, the district office the rest),
six months of sessions, materials, incomes, groups, one snooze, and hostile text where
officers' files are most exposed: names, group names and quarantine reasons.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from sammachip.marts import build_marts
from sammachip.marts.rules import AlertRules, Officer
from sammachip.reports.deliverables import write_deliverables
from sammachip.schemas.tables import CLEAN_TABLES, QUARANTINE
from tests.reports.worklist_fixture import worklist_table

REPORT_DAY = date(2026, 3, 1)
DATA_AS_OF = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # the night's sync: 08:00 in Bangkok
FORMULA = '=HYPERLINK("http://evil.example","คลิก")'
SCRIPT = "<script>alert('x')</script>"
PIPE = "+cmd|' /C calc'!A0"
NATIONAL_ID = "3100600445635"
SNOOZED = "R03_LOW_ATTENDANCE:34140102-04"
VILLAGES = ["34140101", "34140102", "34140103", "34140201", "34140202", "34140301", "34140401"]


def _table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    spec = QUARANTINE if name == "quarantine" else CLEAN_TABLES[name]
    return pa.Table.from_pylist(
        [{c: r.get(c) for c in spec.column_names} for r in rows], schema=spec.schema
    )


def _village(rng: random.Random, v: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    codes = [f"{v}-{n:02d}" for n in range(1, 6)]
    for n, code in enumerate(codes, start=1):
        name = {1: FORMULA, 2: SCRIPT, 3: PIPE}.get(n) if v == VILLAGES[0] else None
        rows["households"].append(
            {
                "submission_key": f"h{code}",
                "hh_code": code,
                "village_code": v,
                "head_name": name or f"นางสมศรี บ้าน{n}",
                "phone": f"08{n}1234567",
                "national_id": NATIONAL_ID,
                "baseline_income": 8000 + 500 * n,
            }
        )
    for m in range(6):  # monthly sessions, Sep 2025 - Feb 2026
        held = date(2025, 9, 5) + timedelta(days=30 * m)
        key = f"s{v}-{m}"
        rows["sessions"].append(
            {
                "submission_key": key,
                "session_code": f"T{v}-{m}",
                "village_code": v,
                "sage_code": f"S{v}",
                "held_date": held,
                "planned_date": held,
                "activity_type": "training",
            }
        )
        rows["attendance"] += [
            {"submission_key": key, "row_index": i, "hh_code": c, "present": rng.random() < 0.8}
            for i, c in enumerate(codes)
        ]
    rows["sages"].append(
        {
            "submission_key": f"g{v}",
            "sage_code": f"S{v}",
            "name": "ปราชญ์",
            "trained_trainer": v != VILLAGES[1],
        }
    )
    for n, code in enumerate(codes[:3], start=1):
        rows["materials"].append(
            {"submission_key": f"m{code}", "hh_code": code, "handout_date": date(2025, 10, 1)}
        )
        if n < 3:
            rows["income_surveys"].append(
                {
                    "submission_key": f"i{code}",
                    "hh_code": code,
                    "round": "followup",
                    "survey_date": date(2026, 1, 15),
                    "practising": rng.random() < 0.85,
                    "hh_income": round((8000 + 500 * n) * rng.uniform(0.97, 1.25)),
                }
            )


def _groups(rows: dict[str, list[dict[str, Any]]]) -> None:
    specs = [  # village, name, standards, packaging, months recorded
        (VILLAGES[0], FORMULA, ["fda"], True, 4),
        (VILLAGES[1], "กลุ่มทอผ้าไหม", ["tcps"], True, 2),
        (VILLAGES[3], "กลุ่มจักสาน", [], False, 0),
    ]
    for i, (v, name, standards, packaging, months) in enumerate(specs):
        code = f"G{v}-1"
        rows["groups"].append(
            {
                "submission_key": code,
                "group_code": code,
                "group_name": name,
                "village_code": v,
                "n_members": 5,
                "product_name": "ผลิตภัณฑ์",
                "product_type": "food" if i == 0 else "textile" if i == 1 else "decor",
                "standards": standards,
                "packaging": packaging,
                "label": packaging,
                "local_materials": True,
                "monthly_sales": 9000,
                "months_recorded": months,
            }
        )
        rows["group_members"] += [
            {"submission_key": code, "row_index": n, "hh_code": f"{v}-{n + 1:02d}"}
            for n in range(5)
        ]


def report_tables(today_news: bool = True) -> dict[str, pa.Table]:
    """The district's tables; without `today_news`, as they were the day before (no plan
    for the coming session yet, nothing quarantined)."""
    rng = random.Random(6)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in CLEAN_TABLES}
    for v in VILLAGES:
        _village(rng, v, rows)
    _groups(rows)
    if not today_news:
        return {name: _table(name, r) for name, r in rows.items()}
    # in three days: the invited households must be told today
    rows["sessions"].append(
        {
            "submission_key": "plan",
            "session_code": "TPLAN",
            "village_code": VILLAGES[0],
            "sage_code": f"S{VILLAGES[0]}",
            "planned_date": REPORT_DAY + timedelta(days=3),
        }
    )
    rows["attendance"] += [
        {"submission_key": "plan", "row_index": i, "hh_code": f"{VILLAGES[0]}-0{i + 1}"}
        for i in range(3)
    ]
    tables = {name: _table(name, r) for name, r in rows.items()}
    tables["quarantine"] = _table(
        "quarantine",
        [
            {
                "submission_key": "q1",
                "form_id": "sammachip_household",
                "submission_id": "901",
                "village_code": VILLAGES[0],
                "reason_th": f"เลขประจำตัวประชาชน {NATIONAL_ID} ไม่ถูกต้อง {SCRIPT}",
                "reason_en": f"bad national ID {NATIONAL_ID}",
            }
        ],
    )
    return tables


@pytest.fixture(scope="session")
def hostile() -> SimpleNamespace:
    """The hostile strings planted in the district's data."""
    return SimpleNamespace(
        formula=FORMULA,
        script=SCRIPT,
        pipe=PIPE,
        national_id=NATIONAL_ID,
        snoozed=SNOOZED,
        day=REPORT_DAY,
        data_as_of=DATA_AS_OF,
    )


@pytest.fixture(scope="session")
def report_rules(tmp_path_factory: pytest.TempPathFactory) -> AlertRules:
    snoozes = tmp_path_factory.mktemp("snooze") / "snoozes.csv"
    snoozes.write_text(
        f"alert_id,until,note\n{SNOOZED},15/03/2569,{PIPE}\n",
        encoding="utf-8-sig",
    )
    return AlertRules(
        roster=(
            Officer("off01", "นางสาวพรทิพย์ ศรีสุข", ("341401", "341402"), "off01@example.org"),
            Officer("off02", "นายสมชาย บุญมา", ("341403",)),
        ),
        district_officer=Officer("district", "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ", (), "d@x.org"),
        snooze_file=snoozes,
    )


@pytest.fixture(scope="session")
def report_marts(report_rules: AlertRules) -> dict[str, pa.Table]:
    """Marts as of REPORT_DAY, after a run the day before (so some alerts are not new); the
    worklist is the contract's fixture table (`worklist_fixture`)."""
    day_before = report_tables(today_news=False)
    yesterday = build_marts(day_before, {}, REPORT_DAY - timedelta(days=1), report_rules)
    marts = build_marts(report_tables(), yesterday, REPORT_DAY, report_rules)
    return {**marts, "worklist": worklist_table(REPORT_DAY, FORMULA, SCRIPT, NATIONAL_ID, PIPE)}


@pytest.fixture(scope="session")
def report_dir(
    report_marts: dict[str, pa.Table], report_rules: AlertRules, tmp_path_factory: Any
) -> Path:
    out = tmp_path_factory.mktemp("reports") / REPORT_DAY.isoformat()
    write_deliverables(report_marts, out, REPORT_DAY, report_rules, data_as_of=DATA_AS_OF)
    return out


from tests.smtp import smtp  # noqa: E402, F401  (a fixture: a real SMTP server on loopback)
