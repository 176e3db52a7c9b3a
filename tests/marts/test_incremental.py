"""Incremental marts equal a full rebuild: night after night of random changes to the tiny
district (tests/marts/district.py) — new households and surveys, edited attendance and session
dates, deletions, restores, rejections, submissions quarantined and back, follow-up visits
that close an open reason (and, days later, see it reopen), the date moving on (and back), a
snooze — each night's marts refreshed in a real warehouse transaction equal the
marts built whole from the same tables and the same previous alerts, table for table.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sammachip.marts import MART_SCHEMAS, build_marts, refresh_marts
from sammachip.schemas.tables import CLEAN_TABLES
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.store import Warehouse
from tests.marts.district import RULES_, TODAY, V, district_tables, hh, household, table

SOURCES = [*CLEAN_TABLES, "quarantine"]
DELETED = datetime(2026, 2, 1, tzinfo=UTC)
KINDS = (
    "new_household",
    "followup",
    "materials",
    "present",
    "held",
    "unheld",
    "delete",
    "restore",
    "reject",
    "quarantine",
    "release",
    "snooze",
    "visit",
)

Rows = dict[str, list[dict[str, Any]]]


def as_rows(tables: dict[str, pa.Table]) -> Rows:
    return {name: tables[name].to_pylist() if name in tables else [] for name in SOURCES}


class District:
    """The district's submissions as rows, changed one submission at a time and staged as
    the loader stages them: an upsert of every table by the submission's key."""

    def __init__(self, wh: Warehouse, snooze_file: Path) -> None:
        self.wh, self.rows, self.today = wh, as_rows(district_tables()), TODAY
        self.rules = replace(RULES_, snooze_file=snooze_file)
        self.held_back: dict[str, Rows] = {}  # quarantined submissions' clean rows
        self.serial = 0

    def keys(self, parent: bool = True) -> list[str]:
        names = [n for n, s in CLEAN_TABLES.items() if s.parent is None] if parent else SOURCES
        return sorted({r["submission_key"] for n in names for r in self.rows[n]})

    def night(
        self, changes: list[tuple[str, int]], days: int, touched: tuple[str, ...] = ()
    ) -> tuple[dict, dict, Any]:
        """Apply `changes` (and stage the submissions `touched` by hand), move the date by
        `days`; the refreshed marts and the full ones."""
        self.today += timedelta(days=days)
        with self.wh.transaction() as tx:
            staged = [key for kind, pick in changes for key in self.change(kind, pick)]
            for key in [*staged, *touched]:
                for name in SOURCES:
                    mine = [r for r in self.rows[name] if r["submission_key"] == key]
                    tx.upsert(name, table(name, mine), {key})
            previous = {"alerts": tx.read("alerts")}
            inputs = {name: tx.read(name) for name in SOURCES}
            done = refresh_marts(tx, self.today, self.rules)
        return done.marts, build_marts(inputs, previous, self.today, self.rules), done

    def change(self, kind: str, pick: int) -> list[str]:
        """One change to the submissions; the keys it touched."""
        rng = random.Random(pick)
        self.serial += 1
        if kind == "new_household":
            n = 10 + self.serial
            row = household(n, hh_code=hh(n), submission_key=f"h-new-{n}")
            self.rows["households"].append(row)
            session = rng.choice([r for r in self.rows["sessions"] if r["village_code"] == V])
            self.rows["attendance"].append(
                {
                    "submission_key": session["submission_key"],
                    "row_index": 100 + n,
                    "session_code": session["session_code"],
                    "hh_code": hh(n),
                    "present": rng.choice([True, False, None]),
                }
            )
            return [row["submission_key"], session["submission_key"]]
        if kind in ("followup", "materials"):
            code = rng.choice(self.rows["households"])["hh_code"]
            day = self.today + timedelta(days=rng.randint(-200, 20))
            key = f"{kind}-{self.serial}"
            if kind == "followup":
                self.rows["income_surveys"].append(
                    {
                        "submission_key": key,
                        "hh_code": code,
                        "round": "followup",
                        "survey_date": day,
                        "practising": rng.random() < 0.5,
                        "hh_income": rng.choice([9000, 10000, 12000]),
                    }
                )
            else:
                self.rows["materials"].append(
                    {"submission_key": key, "hh_code": code, "handout_date": day}
                )
            return [key]
        if kind == "present":
            if not self.rows["attendance"]:
                return []
            row = rng.choice(self.rows["attendance"])
            row["present"] = not row["present"]
            return [row["submission_key"]]
        if kind in ("held", "unheld"):
            row = rng.choice(self.rows["sessions"])
            if kind == "held":  # held on a day around today: a future one is still a plan
                row["held_date"] = self.today + timedelta(days=rng.randint(-30, 10))
            else:
                row["held_date"] = None
                row["planned_date"] = self.today + timedelta(days=rng.randint(-20, 20))
            return [row["submission_key"]]
        if kind == "snooze":
            self.rules.snooze_file.write_text(
                f"alert_id,until,note\nR05_NO_FOLLOWUP_INCOME:{hh(rng.randint(1, 6))},"
                f"{self.today + timedelta(days=rng.randint(1, 30))},later\n",
                encoding="utf-8",
            )
            return []
        if kind == "visit":  # an officer resolves one of last night's open reasons
            opened = [a for a in self.wh.read("alerts").to_pylist() if a["status"] == "open"]
            if not opened:
                return []
            alert = rng.choice(opened)
            key = f"visit-{self.serial}"
            day = self.today - timedelta(days=rng.randint(0, 2))
            item = f"{alert['subject_type']}:{alert['subject_id']}"
            self.rows["followup_visits"].append(
                {
                    "submission_key": key,
                    "submitted_at": datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
                    "item_id": item,
                    "subject_type": alert["subject_type"],
                    "subject_id": alert["subject_id"],
                    "officer_id": alert["officer_id"],
                    "visit_date": day,
                    "reached": rng.random() < 0.8,
                }
            )
            self.rows["followup_reasons"].append(
                {
                    "submission_key": key,
                    "row_index": 0,
                    "item_id": item,
                    "alert_id": alert["alert_id"],
                    "rule_id": alert["rule_id"],
                    "state": rng.choice(["resolved", "resolved", "in_progress"]),
                }
            )
            return [key]
        if kind == "release":
            if not self.held_back:
                return []
            key = rng.choice(sorted(self.held_back))
            for name, rows in self.held_back.pop(key).items():
                self.rows[name] += rows
            self.rows["quarantine"] = [
                r for r in self.rows["quarantine"] if r["submission_key"] != key
            ]
            return [key]
        key = rng.choice(self.keys())
        parents = [n for n, s in CLEAN_TABLES.items() if s.parent is None]
        mine = [r for n in parents for r in self.rows[n] if r["submission_key"] == key]
        if kind in ("delete", "restore", "reject"):
            for r in mine:
                if kind == "reject":
                    r["review_status"] = "rejected"
                else:
                    r["deleted_at"] = DELETED if kind == "delete" else None
            return [key]
        # quarantined: its rows leave the clean tables, a reason waits for the enumerator
        self.held_back[key] = {
            n: [r for r in self.rows[n] if r["submission_key"] == key] for n in CLEAN_TABLES
        }
        for n in CLEAN_TABLES:
            self.rows[n] = [r for r in self.rows[n] if r["submission_key"] != key]
        self.rows["quarantine"].append(
            {
                "submission_key": key,
                "form_id": "sammachip_household",
                "submission_id": key,
                "business_key": mine[0].get("hh_code") if mine else None,
                "village_code": V,
                "reason_th": "ข้อมูลไม่ถูกต้อง",
                "reason_en": "bad data",
            }
        )
        return [key]


def first_night(district: District) -> None:
    with district.wh.transaction() as tx:
        for name in SOURCES:
            data = table(name, district.rows[name])
            tx.upsert(name, data, set(data["submission_key"].to_pylist()))
        refresh_marts(tx, district.today, district.rules)


def assert_same(refreshed: dict[str, pa.Table], full: dict[str, pa.Table]) -> None:
    for name, schema in MART_SCHEMAS.items():
        assert refreshed[name].schema == schema
        got, want = refreshed[name].to_pylist(), full[name].to_pylist()
        assert got == want, f"{name} differs from a full rebuild"


NIGHTS = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 10**6)), max_size=4),
        st.sampled_from([0, 0, 1, 1, 3, 10, 45, -2]),
    ),
    min_size=1,
    max_size=4,
)
VISIT_RESOLVED = 2  # a pick whose visit reached the subject and resolved the reason
EVERY_KIND = [([(k, i)], 1) for i, k in enumerate(KINDS)] + [([], -1), ([], 40)]


def test_every_kind_of_change_night_by_night_equals_a_full_rebuild(tmp_path: Path) -> None:
    district = District(open_warehouse(str(tmp_path / "warehouse")), tmp_path / "snoozes.csv")
    first_night(district)
    for changes, days in EVERY_KIND:
        refreshed, full, _ = district.night(changes, days)
        assert_same(refreshed, full)


@pytest.mark.slow
@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nights=NIGHTS)
def test_refreshed_marts_equal_a_full_rebuild_night_after_night(
    tmp_path_factory: Any, nights: list[tuple[list[tuple[str, int]], int]]
) -> None:
    root = tmp_path_factory.mktemp("incremental")
    district = District(open_warehouse(str(root / "warehouse")), root / "snoozes.csv")
    first_night(district)
    for changes, days in nights:
        refreshed, full, _ = district.night(changes, days)
        assert_same(refreshed, full)


def test_a_quiet_night_recomputes_only_the_households_whose_dates_came_due(
    tmp_path: Path,
) -> None:
    district = District(open_warehouse(str(tmp_path / "warehouse")), tmp_path / "snoozes.csv")
    first_night(district)
    refreshed, full, done = district.night([], 1)
    assert (done.why_full, done.recomputed) == (None, 0)
    assert_same(refreshed, full)
    # T4 (households 1 and 2 invited) is recorded as held in three days: still a plan
    t4 = next(r for r in district.rows["sessions"] if r["session_code"] == "T4")
    t4["held_date"] = district.today + timedelta(days=3)
    refreshed, full, done = district.night([], 0, touched=(t4["submission_key"],))
    assert (done.why_full, done.recomputed) == (None, 2)
    assert_same(refreshed, full)
    refreshed, full, done = district.night([], 1)  # nothing due yet
    assert (done.why_full, done.recomputed) == (None, 0)
    refreshed, full, done = district.night([], 5)  # held meanwhile: its households come due
    assert (done.why_full, done.recomputed) == (None, 2)
    assert_same(refreshed, full)


def test_a_full_rebuild_when_the_rules_change_or_the_date_goes_back(tmp_path: Path) -> None:
    district = District(open_warehouse(str(tmp_path / "warehouse")), tmp_path / "snoozes.csv")
    first_night(district)
    district.rules = replace(district.rules, min_attendance=0.5)
    *_, done = district.night([], 1)
    assert done.why_full == "the marts' code, rules, roster or snoozes changed"
    *_, done = district.night([], -3)
    assert done.why_full is not None and "before the last marts' date" in done.why_full
    *_, done = district.night([], 0)
    assert done.why_full is None
    with district.wh.transaction() as tx:  # rows changed by a run that built no marts
        tx.upsert("materials", table("materials", []), {"m-" + hh(1)})
    refreshed, full, done = district.night([], 1)
    assert done.why_full is not None and "not the ones the state describes" in done.why_full
    assert_same(refreshed, full)


def test_marts_and_their_state_are_committed_together(tmp_path: Path) -> None:
    """A run that fails before its commit leaves the last marts and their state; the next
    run refreshes from them and equals a full rebuild."""
    district = District(open_warehouse(str(tmp_path / "warehouse")), tmp_path / "snoozes.csv")
    first_night(district)
    before = district.wh.snapshot()
    try:
        with district.wh.transaction() as tx:
            refresh_marts(tx, district.today + timedelta(days=1), district.rules)
            raise RuntimeError("killed before the commit")
    except RuntimeError:
        pass
    assert district.wh.snapshot() == before
    refreshed, full, done = district.night([("followup", 7)], 1)
    assert done.why_full is None
    assert_same(refreshed, full)


def test_a_visit_closes_a_reason_and_it_reopens_as_a_full_rebuild_says(tmp_path: Path) -> None:
    district = District(open_warehouse(str(tmp_path / "warehouse")), tmp_path / "snoozes.csv")
    first_night(district)
    refreshed, full, _ = district.night([("visit", VISIT_RESOLVED)], 1)
    assert_same(refreshed, full)
    closed = [a for a in refreshed["alerts"].to_pylist() if a["closed_by_visit"]]
    assert [a["status"] for a in closed] == ["resolved"]
    refreshed, full, _ = district.night([], 20)  # past [alerts] reopen_after_days
    assert_same(refreshed, full)
    again = {a["alert_id"]: a for a in refreshed["alerts"].to_pylist()}[closed[0]["alert_id"]]
    assert (again["status"], again["first_seen"]) == ("open", closed[0]["first_seen"])
