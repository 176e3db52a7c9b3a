"""The officer files of the committed warehouse: written, mailed, and known to be behind.

Every run that commits (nightly, reconcile, ingest) ends by writing them (`flows.nightly.publish`);
each day's folder records what its files were written from, so a run that stopped between its
commit and its files is caught up by the next one (`files_behind`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from sammachip import marts
from sammachip.flows.settings import Settings
from sammachip.reports.deliverables import mail_deliverables, write_deliverables
from sammachip.reports.files import write_text
from sammachip.reports.fixes import enumerator_fixes
from sammachip.warehouse.freshness import PhonesNotice, data_as_of, phones_notice, sync_notice
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.store import Snapshot, Warehouse


@task(name="write-reports", cache_policy=NO_CACHE)
def write_reports(settings: Settings, today: date) -> list[Path]:
    """Officer deliverables of the committed marts: XLSX, CSV, phone page, district index,
    and the data manager's page of what each enumerator must fix (`mail_reports` mails
    them). When the last sync failed, every file carries a banner saying
    so and how old the data are; when the last push to the phones failed (`[phones]` on), one
    saying the phones hold older lists (`publish` writes the files again when its push
    changed that)."""
    wh = open_warehouse(str(settings.warehouse_path))
    snapshot = wh.snapshot()
    out = settings.reports_path / today.isoformat()
    written = write_deliverables(
        committed_marts(wh, snapshot),
        out,
        today,
        settings.rules,
        workers=settings.report_processes,
        notice=sync_notice(snapshot.cursors),
        data_as_of=data_as_of(snapshot.cursors),
        fixes=enumerator_fixes(wh, snapshot),
        phones=phones_told(settings, snapshot),
    )
    write_text(out / WRITTEN_FROM, written_from(settings, snapshot))
    return written


# In each day's folder of officer files: what they were written from (`files_behind`).
WRITTEN_FROM = ".written_from"


def written_from(settings: Settings, snapshot: Snapshot) -> str:
    """What officer files written from `snapshot` show of it: the marts' data files (never
    rewritten under the same name) and what the files say of the last sync and push."""
    marts_files = {n: snapshot.tables[n].files for n in marts.MART_SCHEMAS if n in snapshot.tables}
    said = (
        sync_notice(snapshot.cursors),
        data_as_of(snapshot.cursors),
        phones_told(settings, snapshot),
    )
    text = json.dumps([marts_files, repr(said)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def files_behind(settings: Settings, wh: Warehouse) -> bool:
    """True when the latest officer files were written from other data than `wh` holds: a
    run stopped between its commit and its files (killed, or failed writing them)."""
    records = sorted(settings.reports_path.glob(f"*/{WRITTEN_FROM}"))  # folders are ISO days
    if not records:
        return False
    return records[-1].read_text(encoding="utf-8") != written_from(settings, wh.snapshot())


@task(name="mail-reports", cache_policy=NO_CACHE)
def mail_reports(settings: Settings, today: date) -> None:
    """Mail each officer the files `write_reports` left in today's folder (`[mail]` on)."""
    if settings.mail is None:
        return
    wh = open_warehouse(str(settings.warehouse_path))
    marts_now = committed_marts(wh, wh.snapshot())
    out = settings.reports_path / today.isoformat()
    mail_deliverables(marts_now, out, today, settings.rules, settings.mail)


def committed_marts(wh: Warehouse, snapshot: Snapshot) -> dict[str, pa.Table]:
    return {name: wh.read(name, snapshot) for name in marts.MART_SCHEMAS}


def phones_told(settings: Settings, snapshot: Snapshot) -> PhonesNotice | None:
    """What the officers' files say of their phones' lists (nothing with `[phones]` off)."""
    return phones_notice(snapshot.cursors) if settings.phones.enabled else None
