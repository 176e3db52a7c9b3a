"""The cross-form facts a load checks forms against follow every change a transaction stages,
however often they are asked for: a fact is read once per set of data files, and read again as
soon as one of its tables gains, loses or rewrites a file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from sammachip.schemas.facts import BASELINE_DATES, REGISTERED
from sammachip.schemas.tables import CLEAN_TABLES
from sammachip.warehouse.load import cross_form_context, open_warehouse
from sammachip.warehouse.store import Transaction


def rows(name: str, *records: dict[str, Any]) -> pa.Table:
    spec = CLEAN_TABLES[name]
    return pa.Table.from_pylist(
        [{col: r.get(col) for col in spec.column_names} for r in records], schema=spec.schema
    )


def household(n: int, **extra: Any) -> dict[str, Any]:
    return {"submission_key": f"h-{n}", "hh_code": f"34140105-{n:02d}", **extra}


def baseline(n: int, day: date) -> dict[str, Any]:
    return {
        "submission_key": f"b-{n}-{day}",
        "hh_code": f"34140105-{n:02d}",
        "round": "baseline",
        "survey_date": day,
    }


def registered(tx: Transaction) -> list[str]:
    return sorted(cross_form_context(tx).fact(REGISTERED)["hh_code"].to_pylist())


def firsts(tx: Transaction) -> dict[str, date]:
    fact = cross_form_context(tx).fact(BASELINE_DATES)
    return dict(zip(fact["hh_code"].to_pylist(), fact["first"].to_pylist(), strict=True))


def test_a_fact_asked_for_again_sees_what_was_staged_since(tmp_path: Path) -> None:
    wh = open_warehouse(str(tmp_path / "warehouse"))
    with wh.transaction() as tx:
        assert registered(tx) == []
        tx.upsert("households", rows("households", household(1), household(2)), set())
        assert registered(tx) == registered(tx) == ["34140105-01", "34140105-02"]
        tx.upsert("households", rows("households", household(3)), set())  # a file added
        assert registered(tx) == ["34140105-01", "34140105-02", "34140105-03"]
        # household 1's registration is edited to another code: its file is rewritten
        tx.upsert("households", rows("households", household(1, hh_code="34140105-09")), {"h-1"})
        assert registered(tx) == ["34140105-02", "34140105-03", "34140105-09"]
    with wh.transaction() as tx:  # committed, then read by the next run
        tx.upsert("households", rows("households"), {"h-2"})  # deleted from the clean table
        assert registered(tx) == ["34140105-03", "34140105-09"]


def test_a_fact_with_a_value_follows_an_edited_value(tmp_path: Path) -> None:
    wh = open_warehouse(str(tmp_path / "warehouse"))
    with wh.transaction() as tx:
        tx.upsert("income_surveys", rows("income_surveys", baseline(1, date(2026, 3, 2))), set())
        assert firsts(tx) == {"34140105-01": date(2026, 3, 2)}
        earlier = baseline(1, date(2026, 2, 1))
        tx.upsert("income_surveys", rows("income_surveys", earlier), set())
        assert firsts(tx) == {"34140105-01": date(2026, 2, 1)}
        tx.upsert("income_surveys", rows("income_surveys"), {earlier["submission_key"]})
        assert firsts(tx) == {"34140105-01": date(2026, 3, 2)}
