"""The marts of a run's transaction, recomputed for what changed where that is safe.

`household_outcomes` (one row per household) is recomputed only for the households whose
rows this transaction changed — registered, edited, deleted, restored, quarantined out, in
any table it reads, or a session naming them — and those whose dates came due since the last
marts (a session held or a follow-up survey dated between then and today); every other row
is kept from the last marts. The marts that read across households (alerts, the worklist,
KPIs, readiness …) are rebuilt from it, whole: each alert's `last_seen` and each worklist
entry's overdue days move with the date, so a new day touches nearly all their rows anyway.

A full rebuild instead when the marts' code, the rules, the roster or the snoozes changed,
when today is before the last marts' date, when a table's rows are not what the state
recorded with the last marts (they changed without them), when a clean table was rewritten
other than by upserts in this run, or when there is no state. The state is a cursor of the
same transaction, so it and the marts are committed together or not at all; it holds no file
names, so a re-run after a crash ends with the state an uninterrupted run leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from sammachip.marts.build import HOUSEHOLD_INPUTS, build_marts
from sammachip.marts.rules import AlertRules
from sammachip.schemas.tables import CLEAN_TABLES, MART_SCHEMAS
from sammachip.warehouse import scan
from sammachip.warehouse.store import Snapshot, Transaction

STATE_CURSOR = "marts_state"
_SOURCES = (*CLEAN_TABLES, "quarantine")
_CODE = sorted(
    [*Path(__file__).parent.glob("*.py"), *(Path(__file__).parent / "sql").glob("*.sql")]
)


@dataclass(frozen=True)
class Refresh:
    marts: dict[str, pa.Table]
    recomputed: int | None  # households recomputed; None after a full rebuild
    why_full: str | None = None  # the reason for a full rebuild


def refresh_marts(tx: Transaction, today: date, rules: AlertRules) -> Refresh:
    """Build every mart as of `today` inside `tx`, stage them and the state they were built
    from."""
    tables = {name: tx.dataset(name) for name in _SOURCES}
    previous = {"alerts": tx.read("alerts")}
    state = tx.cursor(STATE_CURSOR)
    stamp = fingerprint(rules)
    why = _why_full(tx, state, stamp, today)
    households = None
    if why is None:
        households = affected_households(tx, date.fromisoformat(state["as_of"]), today)
        previous["household_outcomes"] = tx.read("household_outcomes")
    built = build_marts(tables, previous, today, rules, households=households)
    for name, data in built.items():
        tx.replace(name, data)
    tx.set_cursor(
        STATE_CURSOR,
        {"fingerprint": stamp, "as_of": today.isoformat(), "rows": _rows(tx.rows)},
    )
    return Refresh(built, None if households is None else len(households), why)


def fingerprint(rules: AlertRules) -> str:
    """The marts' code (SQL and Python), their table definitions, the rules and roster, and
    the snooze file's content: any change means a full rebuild."""
    h = hashlib.sha256()
    for path in _CODE:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    h.update(repr(sorted((n, str(s)) for n, s in MART_SCHEMAS.items())).encode())
    h.update(repr(rules).encode())
    if rules.snooze_file is not None and rules.snooze_file.exists():
        h.update(rules.snooze_file.read_bytes())
    return h.hexdigest()


def _why_full(tx: Transaction, state: object, stamp: str, today: date) -> str | None:
    """Why the marts must be rebuilt whole (None: they may be refreshed)."""
    base = tx.base
    if not isinstance(state, dict) or "as_of" not in state:
        return "no state of the last marts"
    if state.get("fingerprint") != stamp:
        return "the marts' code, rules, roster or snoozes changed"
    if today < date.fromisoformat(state["as_of"]):
        return f"today ({today}) is before the last marts' date ({state['as_of']})"
    if state.get("rows") != _rows(_base_rows(base)):
        return "the clean tables or the last marts are not the ones the state describes"
    if any(tx.replaced.get(t, set()) is None for t in _SOURCES):
        return "a clean table was rewritten whole in this run"
    return None


def _rows(rows: Callable[[str], int]) -> dict[str, int]:
    """Rows of the tables the marts read and of `household_outcomes`: what the state checks
    the last marts against (file names would differ between a run and its re-run)."""
    return {t: rows(t) for t in [*_SOURCES, "household_outcomes"]}


def _base_rows(snapshot: Snapshot) -> Callable[[str], int]:
    return lambda t: snapshot.tables[t].rows if t in snapshot.tables else 0


def affected_households(tx: Transaction, since: date, today: date) -> pa.Array:
    """Households whose `household_outcomes` row may differ from the last marts': any row of
    theirs (before or after this transaction) in a submission it replaced — in any clean
    table: a session's attendance rows share its key — and any household with a session
    held or a follow-up survey dated in (`since`, `today`]."""
    keys = sorted({k for t in CLEAN_TABLES for k in tx.replaced.get(t) or ()})
    con = duckdb.connect()
    con.register("changed", pa.table({"submission_key": pa.array(keys, pa.string())}))
    parts = []
    for table in HOUSEHOLD_INPUTS:
        for when, data in (
            ("old", tx.warehouse.dataset(table, tx.base)),
            ("new", tx.dataset(table)),
        ):
            scan.register(con, f"{when}_{table}", data)
            parts.append(
                f"SELECT hh_code FROM {when}_{table} SEMI JOIN changed USING (submission_key)"
            )
    scan.register(con, "sessions", tx.dataset("sessions"))
    parts.append("""SELECT a.hh_code FROM new_attendance a JOIN sessions s USING (submission_key)
                    WHERE s.held_date > $since AND s.held_date <= $today""")
    parts.append("""SELECT hh_code FROM new_income_surveys
                    WHERE survey_date > $since AND survey_date <= $today""")
    sql = " UNION ".join(parts)
    found = con.sql(
        f"SELECT DISTINCT hh_code FROM ({sql}) WHERE hh_code IS NOT NULL ORDER BY 1",
        params={"since": since, "today": today},
    )
    return found.to_arrow_table().column(0).combine_chunks()
