"""The demo's second night on the ODK simulator: the loop closed in the field. After night 1
pushed each officer's list to the phones, two officers visit some of their items from their
phones (some resolving every reason, some not, one not reached); night 2 loads the visits,
closes the reasons they resolved, and the phones' lists get shorter."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from sammachip.flows.nightly import RunSummary, nightly
from sammachip.flows.summary import console
from sammachip.schemas.followup_form import ODK_FILE
from sammachip.simulators.odk import OdkStore, entity_store, xlsform_definition
from sammachip.simulators.odk.field import Visit, field_day, phones
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect

OUTCOME_TH = {
    "resolved": "แก้ไขแล้วทุกเหตุ (all resolved)",
    "in_progress": "กำลังดำเนินการ (in progress)",
    "not_reached": "ไม่พบตัว (not reached)",
}


def publish_followup(store: OdkStore) -> None:
    """The follow-up form on the simulated Central, as an office publishes it."""
    entity_store(store).publish_form(1, xlsform_definition(ODK_FILE))


def second_night(store: OdkStore, url: str, workdir: Path, day1: date) -> RunSummary:
    """The next day: visits from the phones of the two officers with the longest lists,
    then that night's run."""
    day2 = day1 + timedelta(days=1)
    officers = phones(url, entity_store(store))
    busiest = sorted(officers.values(), key=lambda p: -len(p.open_items()))[:2]
    before = {p.officer_id: len(p.open_items()) for p in busiest}
    visits = [v for p in busiest for v in field_day(p, day2)]
    _print_visits(visits)
    summary = nightly(workdir=str(workdir), today=day2)
    after = {p.officer_id: len(p.open_items()) for p in busiest}
    console.print(
        "Lists on the officers' phones / รายการบนโทรศัพท์: "
        + ", ".join(f"{o}: {before[o]} → {after[o]}" for o in before)
    )
    return summary


def _print_visits(visits: list[Visit]) -> None:
    table = Table(title="เยี่ยมติดตาม (visits sent from the phones)", title_justify="left")
    for col in ("officer", "item", "outcome"):
        table.add_column(col)
    for v in visits:
        table.add_row(v.officer_id, escape(v.label.split(" · ")[0]), OUTCOME_TH[v.outcome])
    console.print(table)


def print_closed_by_visits(warehouse: Path) -> None:
    """The alerts the visits closed, with their time to close."""
    rows = (
        connect(open_warehouse(str(warehouse)))
        .execute(
            "SELECT officer_id, rule_th, subject_name, first_seen, resolved_on, "
            "resolved_on - first_seen FROM alerts WHERE closed_by_visit IS NOT NULL "
            "ORDER BY officer_id, rule_id, subject_id"
        )
        .fetchall()
    )
    table = Table(title="ปิดโดยการเยี่ยม (alerts closed by a visit)", title_justify="left")
    for col in ("officer", "rule", "subject", "first seen", "closed", "days"):
        table.add_column(col)
    for officer, rule, subject, first, closed, days in rows:
        table.add_row(officer, rule, escape(subject or ""), str(first), str(closed), str(days))
    console.print(table)
    console.print(
        'Ask the warehouse: [bold]sammachip query "select count(*) from alerts '
        'where closed_by_visit is not null"[/]'
    )
