"""The run summary the `sammachip` command prints: counts per form that reconcile, each failure
said once, the alerts and OTOP readiness, and where the officer files and the warehouse are."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from sammachip.flows.nightly import RunSummary

console = Console()


class SaidInSummary(logging.Filter):
    """Leaves out of this terminal what the run summary prints anyway, once and in full: the
    flow's "skipped" lines, and the traceback and final state Prefect's task engine logs for a
    server error before the flow handles it."""

    def __init__(self) -> None:
        super().__init__()
        from sammachip.connectors.discovery import SourceError
        from sammachip.connectors.retry import TransientError
        from sammachip.flows.nightly import IN_SUMMARY

        self.marker = IN_SUMMARY
        self.handled = (*SourceError, TransientError)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, self.marker, False):
            return False
        if record.exc_info and isinstance(record.exc_info[1], self.handled):
            return False
        message = record.getMessage()
        if not message.startswith("Finished in state Failed("):
            return True
        return not any(f"exception {e.__name__}:" in message for e in self.handled)


@contextmanager
def said_once() -> Iterator[None]:
    """While a run's summary is to be printed here: a failed form or server is said once, in
    the summary, not after two tracebacks."""
    said = SaidInSummary()
    loggers = [logging.getLogger(n) for n in ("prefect.task_runs", "prefect.flow_runs")]
    for logger in loggers:
        logger.addFilter(said)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(said)


def print_summary(summary: object, workdir: Path | None = None, *, deletions: bool = False) -> None:
    """The run summary an officer or data manager reads: counts that reconcile, then outputs.

    The table fits 80 columns: a failed form is marked in it and its error printed in full,
    once, below it. `deletions`: a reconcile's table also counts what it tombstoned (and
    restored, where the run says).
    """
    from sammachip.flows.nightly import RunSummary

    assert isinstance(summary, RunSummary)
    console.print(forms_table(summary, deletions))
    for n, f in enumerate((f for f in summary.forms if f.error), 1):
        where = f"server {f.server}" if f.form_id == "*" else f.form_id  # errors name the uid
        console.print(f"[red]✗ {n}[/] {escape(where)}: {escape(f.error or '')}", overflow="fold")
    for f in (f for f in summary.forms if f.warning and not f.error):
        console.print(f"[yellow]![/] {escape(f.warning or '')}", overflow="fold")
    print_phones(summary)
    alerts = Table(title="การแจ้งเตือน / alerts by rule", title_justify="left")
    alerts.add_column("rule")
    alerts.add_column("count", justify="right")
    for rule, n in summary.alerts_by_rule.items():
        alerts.add_row(rule, str(n))
    console.print(alerts)
    ready = ", ".join(f"{k}: {v}" for k, v in summary.otop_by_status.items()) or "no groups yet"
    console.print(f"OTOP readiness of groups / ความพร้อม OTOP: {ready}")
    if summary.report_files:
        folder = summary.report_files[0].parent
        console.print(
            f"Officer lists / รายการสำหรับพัฒนากร ({len(summary.report_files)} files): "
            f"[bold]{folder}[/] — open [bold]{folder / 'index.html'}[/] in a browser"
        )
    elif any(f.error for f in summary.forms):
        console.print(
            "[red]Officer lists not written[/]: the sync failed and the warehouse "
            "holds no submission yet — fix the errors above and run again"
        )
    console.print(
        f"Warehouse version {summary.warehouse_version}; query it with "
        f'[bold]sammachip query "select * from alerts limit 5"[/]'
        + (f" --warehouse {workdir / 'data' / 'warehouse'}" if workdir else "")
    )


def forms_table(summary: RunSummary, deletions: bool) -> Table:
    """One row per form: its counts and a short note (errors follow the table, numbered)."""
    counts = ["fetched", "new_versions", "clean", "quarantined"]
    if deletions:
        counts += [
            "deleted",
            *(["restored"] if any(hasattr(f, "restored") for f in summary.forms) else []),
        ]
    table = Table(title="ผลการดึงข้อมูล / sync result", title_justify="left")
    table.add_column("form", no_wrap=True)
    for col in counts:
        table.add_column(col.removesuffix("_versions"), justify="right")
    table.add_column("note", no_wrap=True)
    several = len({f.server for f in summary.forms}) > 1
    failed = 0
    for f in summary.forms:
        name = f.form_id.removeprefix("sammachip_")
        if f.server and (several or f.form_id == "*"):  # whose form, when it is not obvious
            name = f"{f.server}: {name}"
        if f.error:
            failed += 1
            note = f"[red]✗ {failed} failed[/]"
        elif f.warning:
            note = "[yellow]! warning[/]"
        else:
            note = "ok" if f.new_versions == f.clean + f.quarantined else "[red]≠ counts[/]"
        table.add_row(escape(name), *(str(getattr(f, c)) for c in counts), note)
    return table


def print_phones(summary: RunSummary) -> None:
    """One line per server the lists were pushed to (or why not), under the sync's."""
    for p in summary.phones:
        if p.error:
            console.print(f"[red]✗ phones[/] {escape(p.error)}", overflow="fold")
            continue
        console.print(
            f"Lists on the phones / รายการบนโทรศัพท์ {escape(p.server)}: {p.officers} officers, "
            f"{p.created} new, {p.updated} changed, {p.deleted} closed, {p.restored} back, "
            f"{p.unchanged} unchanged"
            + (f"; {p.field_kept} kept the visit's status" if p.field_kept else "")
        )
        if p.warning:
            console.print(f"[yellow]![/] {escape(p.warning)}", overflow="fold")
