"""What each officer's morning list holds, split from the marts: the day's worklist (today and
later), the alerts behind it (all still open, recently resolved), the OTOP-readiness
list, and the KPIs and chart data of their tambons.

Every writer (CSV, XLSX, HTML, e-mail) reads these, so the lists agree across formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pyarrow as pa

from sammachip.marts.rules import AlertRules, Officer
from sammachip.reports.cells import be_date, phone_text
from sammachip.reports.entries import entry_row
from sammachip.reports.labels import ALERT_STATUS_TH, ALL_ISSUES_TH
from sammachip.warehouse.freshness import PhonesNotice, SyncNotice

Row = dict[str, Any]
OFFICE_TIME = ZoneInfo("Asia/Bangkok")


def sync_banner(notice: SyncNotice) -> list[str]:
    """The lines of the banner every officer file carries when the last sync failed, Thai
    with English beside."""
    as_of = (
        f"ข้อมูล ณ {office_time(notice.data_as_of)} (data as of)"
        if notice.data_as_of
        else "ยังไม่เคยดึงข้อมูลได้ครบ (no complete sync yet)"
    )
    return [
        f"⚠ ดึงข้อมูลครั้งล่าสุด {office_time(notice.attempted_at)} ไม่สำเร็จ (the last sync "
        f"failed) — {as_of}",
        "ดึงไม่ได้ (not fetched): " + "; ".join(notice.failed),
        "รายการนี้อาจไม่เป็นปัจจุบัน แจ้งผู้ดูแลระบบ (this list may be out of date: tell the data manager)",
    ]


def phones_banner(notice: PhonesNotice) -> list[str]:
    """The lines every officer file carries when the last push to the phones failed: the
    phones' lists are older than this file, since when, and what to do (the servers' answers
    and their fixes are for the data manager: the district's page)."""
    return [
        f"⚠ รายการบนโทรศัพท์ไม่ได้ปรับปรุง ส่งไม่สำเร็จตั้งแต่ {office_time(notice.since)} "
        "(the lists on the phones were not updated: the push has failed since then)",
        "ใช้รายการในไฟล์นี้ซึ่งใหม่กว่า และแจ้งผู้ดูแลระบบให้แก้ตามสรุปการรัน "
        "(use this file's list, it is newer; tell the data manager to fix what the run "
        "summary names)",
    ]


def office_time(moment: datetime) -> str:
    """A moment as the district office reads it: BE date and Bangkok time."""
    local = moment.astimezone(OFFICE_TIME)
    return f"{be_date(local.date())} {local:%H:%M} น."


@dataclass(frozen=True)
class OfficerReport:
    officer: Officer
    today: date
    open: list[Row] = field(default_factory=list)  # open and snoozed
    resolved: list[Row] = field(default_factory=list)  # cleared lately (kept a few days)
    otop: list[Row] = field(default_factory=list)
    kpis: list[Row] = field(default_factory=list)  # their area first, then each tambon
    methods: list[Row] = field(default_factory=list)  # kpis_by_method rows of their area
    attendance: list[Row] = field(default_factory=list)  # attendance_monthly rows
    outcomes: list[Row] = field(default_factory=list)  # household_outcomes rows
    followups: list[Row] = field(default_factory=list)  # their `followup_rows`
    notice: SyncNotice | None = None  # the last sync failed: shown on every file
    phones: PhonesNotice | None = None  # the last push to the phones failed: shown on every file
    # the `worklist` mart: one entry per subject; `today` is the day's visits in visit order,
    # `later` the rest by rank
    today_items: list[Row] = field(default_factory=list)
    later_items: list[Row] = field(default_factory=list)
    data_as_of: datetime | None = None  # the last complete sync (every file says it at the top)

    @property
    def officer_id(self) -> str:
        return self.officer.officer_id

    @cached_property
    def today_rows(self) -> list[Row]:
        """Today's entries flattened for a spreadsheet (the workbook's and the CSV's)."""
        return [entry_row(e) for e in self.today_items]

    @cached_property
    def later_rows(self) -> list[Row]:
        return [entry_row(e) for e in self.later_items]

    @property
    def snoozed(self) -> list[Row]:
        return [a for a in self.open if a["state"] == "snoozed"]

    @property
    def overdue(self) -> int:
        """Worklist entries past their due date."""
        return sum(1 for e in [*self.today_items, *self.later_items] if e["overdue_days"] > 0)


def _rows(marts: Mapping[str, pa.Table], name: str) -> list[Row]:
    table = marts.get(name)
    return table.to_pylist() if table is not None else []


def _alert_row(row: Row) -> Row:
    """Status in Thai and the phone with its dashes for the lists; the code stays under
    `state`."""
    status = ALERT_STATUS_TH.get(row["status"], row["status"])
    return {**row, "status": status, "phone": phone_text(row.get("phone"))}


def _owner_of(rules: AlertRules) -> dict[str, str]:
    owner: dict[str, str] = {}
    for officer in rules.roster:
        for tambon in officer.tambons:
            owner.setdefault(tambon, officer.officer_id)
    return owner


# Each mart an officer's report reads, and whose rows are theirs: by the officer's id, by the
# officer covering the row's tambon, or by an officer-scope row's code. `kpis` go by both.
BY_OFFICER = ("alerts", "otop_readiness", "worklist")
BY_TAMBON = ("attendance_monthly", "household_outcomes")
BY_SCOPE = ("kpis_by_method", "followup_outcomes")


@dataclass(frozen=True)
class OfficerRows:
    """Everything one officer's report is made from but the day and the notices: the officer
    and their rows of each mart, in the mart's order (`officer_report` builds the report)."""

    officer: Officer
    tables: dict[str, pa.Table]

    def __reduce__(self) -> tuple[Any, ...]:
        """To a worker process as Arrow IPC: only these rows (a slice's pickle holds every
        row of the table it was cut from)."""
        return (_rows_from_ipc, (self.officer, {k: arrow_ipc(t) for k, t in self.tables.items()}))


def arrow_ipc(table: pa.Table) -> pa.Buffer:
    """`table` as an Arrow IPC stream: its rows only, and the same bytes for the same data."""
    sink = pa.BufferOutputStream()
    table = table.combine_chunks()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _rows_from_ipc(officer: Officer, tables: dict[str, pa.Buffer]) -> OfficerRows:
    return OfficerRows(officer, {k: pa.ipc.open_stream(v).read_all() for k, v in tables.items()})


class OfficerCounts(NamedTuple):
    """What the district's page says of an officer's lists."""

    today: int
    later: int
    overdue: int
    groups: int

    @classmethod
    def of(cls, report: OfficerReport) -> OfficerCounts:
        return cls(
            len(report.today_items), len(report.later_items), report.overdue, len(report.otop)
        )


def _column(marts: Mapping[str, pa.Table], name: str, column: str) -> list[Any]:
    table = marts.get(name)
    return table.column(column).to_pylist() if table is not None else []


def _indices(keys: Iterable[Any]) -> dict[Any, list[int]]:
    out: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return out


@dataclass(frozen=True, eq=False)
class OfficerCut:
    """Which rows of each mart are one officer's (positions, in the mart's order): their
    `OfficerRows` before they are copied out, which `take` does when they are needed."""

    officer: Officer
    marts: Mapping[str, pa.Table] = field(repr=False)
    rows: dict[str, pa.Array]

    def take(self, columns: Mapping[str, list[str]] | None = None) -> OfficerRows:
        """Their rows: of every mart, or only the given columns of the marts named."""
        if columns is None:
            return OfficerRows(
                self.officer, {n: self.marts[n].take(i) for n, i in self.rows.items()}
            )
        return OfficerRows(
            self.officer,
            {
                n: self.marts[n].select(c).take(self.rows[n])
                for n, c in columns.items()
                if n in self.rows
            },
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """To a worker process: their rows alone (not the marts)."""
        return self.take().__reduce__()


def officer_cuts(marts: Mapping[str, pa.Table], rules: AlertRules) -> list[OfficerCut]:
    """Whose rows of the marts are whose: one per officer on the roster, the district office
    (areas nobody covers), and anyone else the marts name (an officer since removed from the
    roster keeps their list). Columnar: nothing is copied or turned into Python rows here."""
    owner = _owner_of(rules)
    district = rules.district_officer.officer_id
    keys = {name: _column(marts, name, "officer_id") for name in BY_OFFICER}
    for name in BY_TAMBON:
        keys[name] = [owner.get(t or "", district) for t in _column(marts, name, "tambon_code")]
    for name in BY_SCOPE:
        scopes = zip(_column(marts, name, "scope"), _column(marts, name, "scope_code"), strict=True)
        keys[name] = [code if scope == "officer" else None for scope, code in scopes]
    rows_of = {name: _indices(k) for name, k in keys.items() if name in marts}

    officers = {o.officer_id: o for o in rules.officers()}
    names: dict[str, str] = {}
    for name in BY_OFFICER:
        names.update(zip(keys[name], _column(marts, name, "officer_name"), strict=True))
    for officer_id in sorted(set().union(*(keys[n] for n in BY_OFFICER)) - set(officers)):
        officers.setdefault(officer_id, Officer(officer_id, names.get(officer_id, officer_id), ()))

    scope_codes = zip(
        _column(marts, "kpis", "scope"), _column(marts, "kpis", "scope_code"), strict=True
    )
    kpis = _indices(scope_codes)
    outcome_tambons = _column(marts, "household_outcomes", "tambon_code")
    out = []
    for officer_id, officer in officers.items():
        rows = {name: rows.get(officer_id, []) for name, rows in rows_of.items()}
        if "kpis" in marts:  # their area first, then each tambon they cover or have rows of
            tambons = set(officer.tambons)
            tambons |= {outcome_tambons[i] for i in rows.get("household_outcomes", [])}
            mine = kpis.get(("officer", officer_id), [])
            mine += [i for t in tambons for i in kpis.get(("tambon", t), [])]
            rows["kpis"] = sorted(mine)
        positions = {name: pa.array(r, pa.int64()) for name, r in rows.items()}
        out.append(OfficerCut(officer, marts, positions))
    return out


def officer_report(
    rows: OfficerRows,
    today: date,
    notice: SyncNotice | None = None,
    data_as_of: datetime | None = None,
    phones: PhonesNotice | None = None,
) -> OfficerReport:
    """One officer's lists, from their rows (`OfficerCut.take`)."""
    mine = [_alert_row(r) | {"state": r["status"]} for r in _rows(rows.tables, "alerts")]
    entries = sorted(_rows(rows.tables, "worklist"), key=lambda r: r["visit_order"])
    return OfficerReport(
        officer=rows.officer,
        today=today,
        open=[r for r in mine if r["state"] in ("open", "snoozed")],
        resolved=[r for r in mine if r["state"] == "resolved"],
        otop=_rows(rows.tables, "otop_readiness"),
        kpis=_rows(rows.tables, "kpis"),
        methods=_rows(rows.tables, "kpis_by_method"),
        attendance=_rows(rows.tables, "attendance_monthly"),
        outcomes=_rows(rows.tables, "household_outcomes"),
        followups=followup_rows(rows.tables),
        notice=notice,
        phones=phones,
        today_items=[e for e in entries if e["bucket"] == "today"],
        later_items=[e for e in entries if e["bucket"] != "today"],
        data_as_of=data_as_of,
    )


def officer_reports(
    marts: Mapping[str, pa.Table],
    today: date,
    rules: AlertRules,
    notice: SyncNotice | None = None,
    data_as_of: datetime | None = None,
    phones: PhonesNotice | None = None,
) -> list[OfficerReport]:
    """One report per officer (`officer_cuts` says who and with which rows)."""
    return [
        officer_report(cut.take(), today, notice, data_as_of, phones)
        for cut in officer_cuts(marts, rules)
    ]


def district_kpis(marts: Mapping[str, pa.Table]) -> list[Row]:
    return [k for k in _rows(marts, "kpis") if k["scope"] == "district"]


def district_methods(marts: Mapping[str, pa.Table]) -> list[Row]:
    """Attendance and outcomes per teaching method, for the whole district."""
    return [m for m in _rows(marts, "kpis_by_method") if m["scope"] == "district"]


def followup_rows(marts: Mapping[str, pa.Table]) -> list[Row]:
    """The `followup_outcomes` mart as officers read it: all issues first, then each rule;
    the share closed by a visit beside what it is made of (closed by a visit, closed in all)."""
    rows = []
    for r in _rows(marts, "followup_outcomes"):
        closed = r["closed_by_visit"] + r["closed_by_data"]
        rows.append(
            {
                **r,
                "rule_th": r["rule_th"] if r["rule_id"] else ALL_ISSUES_TH,
                "closed": closed,
                "visit_share": r["closed_by_visit"] / closed if closed else None,
            }
        )
    return rows


def district_followups(marts: Mapping[str, pa.Table]) -> list[Row]:
    return [f for f in followup_rows(marts) if f["scope"] == "district"]
