"""A tiny district whose right answers are known, for the marts' tests.

Village V (tambon 341401, officer off01) has six households, three sessions held last year,
sessions planned for the coming days and months, three sages and a group; village W
(tambon 341402, nobody covers it) trained one household long ago and formed no group.
Today is 1 March 2026 (01/03/2569).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa

from sammachip.marts import build_marts
from sammachip.marts.rules import AlertRules, Officer
from sammachip.schemas.tables import CLEAN_TABLES, QUARANTINE

TODAY = date(2026, 3, 1)
V, W = "34140105", "34140201"
OFF01 = Officer("off01", "นางสาวพรทิพย์ ศรีสุข", ("341401",))
RULES_ = AlertRules(roster=(OFF01,))


def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    spec = QUARANTINE if name == "quarantine" else CLEAN_TABLES[name]
    return pa.Table.from_pylist(
        [{col: r.get(col) for col in spec.column_names} for r in rows], schema=spec.schema
    )


def hh(n: int, village: str = V) -> str:
    return f"{village}-{n:02d}"


def household(n: int, village: str = V, **extra: Any) -> dict[str, Any]:
    return {
        "submission_key": f"h-{hh(n, village)}",
        "hh_code": hh(n, village),
        "village_code": village,
        "tambon_code": village[:6],
        "head_name": f"ครัวเรือน {n}",
        "phone": f"08100000{n:02d}",
        "national_id": "3100600445635",
        "baseline_income": 10000,
        **extra,
    }


def session(
    code: str,
    *,
    held: date | None = None,
    planned: date | None = None,
    present: dict[str, bool | None] | None = None,
    sage: str | None = None,
    village: str = V,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    key = f"s-{code}"
    rows = [
        {"submission_key": key, "row_index": i, "session_code": code, "hh_code": h, "present": p}
        for i, (h, p) in enumerate((present or {}).items())
    ]
    return {
        "submission_key": key,
        "session_code": code,
        "village_code": village,
        "sage_code": sage,
        "activity_type": "training",
        "occupation": "mushroom",
        "held_date": held,
        "planned_date": planned or held,
    }, rows


def followup(h: str, day: date, practising: bool, income: int) -> dict[str, Any]:
    return {
        "submission_key": f"i-{h}",
        "hh_code": h,
        "round": "followup",
        "survey_date": day,
        "practising": practising,
        "hh_income": income,
    }


def build(
    tables: dict[str, pa.Table],
    today: date = TODAY,
    rules: AlertRules = RULES_,
    previous: pa.Table | None = None,
) -> dict[str, pa.Table]:
    return build_marts(tables, {"alerts": previous} if previous is not None else {}, today, rules)


def fired(alerts: pa.Table) -> set[tuple[str, str]]:
    return {
        (r["rule_id"], r["subject_id"]) for r in alerts.to_pylist() if r["status"] != "resolved"
    }


def by_id(alerts: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["alert_id"]: r for r in alerts.to_pylist()}


def put(tables: dict[str, pa.Table], name: str, *rows: dict[str, Any]) -> None:
    tables[name] = table(name, [*tables[name].to_pylist(), *rows])


def district_tables() -> dict[str, pa.Table]:
    all_v = {hh(n): True for n in (1, 2, 3, 5, 6)} | {hh(4): False}
    kickoff = session("T0", held=date(2025, 8, 15), sage="S1")  # no sign-in sheet kept
    sessions = [
        ({**kickoff[0], "activity_type": "kickoff"}, kickoff[1]),
        session("T1", held=date(2025, 9, 1), present=all_v, sage="S1"),
        session("T2", held=date(2025, 10, 1), present=all_v | {hh(2): False}, sage="S1"),
        # in the harvest, but long enough ago not to matter any more
        session("T3", held=date(2025, 11, 1), present=all_v | {hh(2): False}, sage="S1"),
        # in 4 days: tell the invited households (they must hear at least 3 days ahead)
        session("T4", planned=date(2026, 3, 5), present={hh(1): None, hh(2): None}, sage="S2"),
        session("T5", planned=date(2026, 3, 20), present={hh(1): None}, sage="S3"),  # > 7 days
        session("T6", planned=date(2026, 5, 20), sage="S1"),  # rice planting time
        session("TW1", held=date(2025, 6, 1), present={hh(1, W): True}, village=W),
    ]
    return {
        "households": table(
            "households",
            [household(n) for n in range(1, 7)] + [household(1, W, baseline_income=8000)],
        ),
        "sessions": table("sessions", [s for s, _ in sessions]),
        "attendance": table("attendance", [a for _, rows in sessions for a in rows]),
        "sages": table(
            "sages",
            [
                {
                    "submission_key": "g1",
                    "sage_code": "S1",
                    "name": "ปราชญ์หนึ่ง",
                    "trained_trainer": True,
                    "trainer_course_date": date(2020, 1, 15),
                },
                {
                    "submission_key": "g2",
                    "sage_code": "S2",
                    "name": "ปราชญ์สอง",
                    "phone": "0899999999",
                    "trained_trainer": False,
                },
                # trained, but only after the session they are to teach
                {
                    "submission_key": "g3",
                    "sage_code": "S3",
                    "name": "ปราชญ์สาม",
                    "trained_trainer": True,
                    "trainer_course_date": date(2026, 4, 1),
                },
            ],
        ),
        "materials": table(
            "materials",
            [
                {"submission_key": f"m-{h}", "hh_code": h, "handout_date": d}
                for h, d in [
                    (hh(1), date(2025, 9, 10)),
                    (hh(3), date(2025, 9, 10)),
                    (hh(5), date(2025, 9, 15)),
                    (hh(6), date(2026, 2, 15)),
                    (hh(1, W), date(2025, 6, 10)),
                ]
            ],
        ),
        "income_surveys": table(
            "income_surveys",
            [
                followup(hh(1), date(2025, 12, 1), True, 11000),  # +10%: fine
                followup(hh(5), date(2026, 1, 10), False, 10000),  # gave up, income flat
                followup(hh(1, W), date(2025, 9, 1), True, 8800),
            ],
        ),
        "groups": table(
            "groups", [{"submission_key": "gr1", "group_code": f"G{V}-1", "village_code": V}]
        ),
        "group_members": table(
            "group_members",
            [
                {"submission_key": "gr1", "row_index": i, "group_code": f"G{V}-1", "hh_code": hh(n)}
                for i, n in enumerate((1, 3, 5))
            ],
        ),
        "quarantine": table(
            "quarantine",
            [
                {
                    "submission_key": "q1",
                    "form_id": "sammachip_income",
                    "submission_id": "77",
                    "village_code": V,
                    "tambon_code": V[:6],
                    "reason_th": "เลขประจำตัวประชาชนไม่ถูกต้อง",
                    "reason_en": "bad national ID",
                }
            ],
        ),
    }
