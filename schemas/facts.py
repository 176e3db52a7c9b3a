"""Facts one form tells the warehouse that other forms' answers are checked against, and the
checks that read them.

A form declares its checks on its registry entry (`schemas.registry.FormSpec.checks`); each
check names the fact it reads, and each fact the form it is read from. Everything else is
derived from that one declaration: which facts a form's validation gathers, which forms are
validated again when a fact changes, and the order in which forms may load in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

Row = dict[str, Any]
Flag = bool | None  # None: not checked (the row's date, or the fact, is not known)


@dataclass(frozen=True)
class Fact:
    """What some of a form's tables say about households, as the warehouse holds it now."""

    name: str
    source: str  # the form whose tables it is read from
    reads: tuple[str, ...]  # those tables
    sql: str  # DuckDB over `reads`: one row per household, hh_code first (then its value)
    schema: pa.Schema  # the columns the SQL gives

    def empty(self) -> pa.Table:
        """The fact with no household in it yet."""
        return self.schema.empty_table()


@dataclass(frozen=True)
class Check:
    """A validation-only column of one of a form's tables: whether the row agrees with a fact
    (the suites warn where it does not — the other form may come later)."""

    table: str
    column: str
    fact: Fact
    flag: Callable[[list[Row], pa.Table], list[Flag]]  # rows, the fact → the column's values
    applies: str = "true"  # which rows of `table` the check reads the fact for (SQL)


def household_in(rows: list[Row], fact: pa.Table) -> list[Flag]:
    """Whether each row's household is among the fact's."""
    households = pa.array([r["hh_code"] for r in rows], pa.string())
    return pc.is_in(households, value_set=fact.column(0).combine_chunks()).to_pylist()


def followup_after_baseline(rows: list[Row], firsts: pa.Table) -> list[Flag]:
    """Whether each follow-up survey is dated on or after its household's first baseline."""
    asked = pa.array([r["hh_code"] for r in rows], pa.string())
    hit = firsts.filter(pc.is_in(firsts["hh_code"], value_set=asked))
    first = dict(zip(hit["hh_code"].to_pylist(), hit["first"].to_pylist(), strict=True))
    flags: list[Flag] = []
    for r in rows:
        baseline = first.get(r["hh_code"])
        late_enough = None
        if r["round"] == "followup" and baseline and r["survey_date"]:
            late_enough = r["survey_date"] >= baseline
        flags.append(late_enough)
    return flags


_HOUSEHOLDS = pa.schema([("hh_code", pa.string())])

REGISTERED = Fact(
    "registered",
    "sammachip_household",
    ("households",),
    "select distinct hh_code from households where deleted_at is null and hh_code is not null",
    _HOUSEHOLDS,
)
TRAINED = Fact(
    "trained",
    "sammachip_session",
    ("sessions", "attendance"),
    """select distinct a.hh_code from attendance a join sessions s using (submission_key)
       where a.present and s.held_date is not null and s.deleted_at is null""",
    _HOUSEHOLDS,
)
BASELINE_DATES = Fact(
    "baseline_dates",
    "sammachip_income",
    ("income_surveys",),
    """select hh_code, min(survey_date) as first from income_surveys
       where round = 'baseline' and deleted_at is null and survey_date is not null
       group by hh_code""",
    pa.schema([("hh_code", pa.string()), ("first", pa.date32())]),
)
