"""The push: after a run's commit, each officer's worklist to the phones of every server that
hosts the follow-up form and allows it (`PhoneSettings`), then what each server holds into the
warehouse. A server that fails is one line of the run summary naming the fix; the data commit
before it stands, and the next run pushes again from what the server then holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

from sammachip.connectors.discovery import SourceError
from sammachip.connectors.kobo import KoboForm
from sammachip.connectors.odk import OdkForm
from sammachip.connectors.retry import TransientError
from sammachip.connectors.sources import FormSource
from sammachip.phones.items import VisitWindow, phone_items
from sammachip.phones.kobo import push_kobo
from sammachip.phones.odk import PushResult, push_odk
from sammachip.phones.record import record_failures, record_held
from sammachip.schemas.followup_form import FORM_ID, KOBO_FILE, ODK_FILE
from sammachip.warehouse.failpoints import failpoint
from sammachip.warehouse.store import Warehouse, WarehouseError

BANGKOK = ZoneInfo("Asia/Bangkok")  # the officers' day


@dataclass(frozen=True)
class PhoneSettings:
    """`[phones]`: whether the officers' lists go to the phones, and to which servers."""

    enabled: bool = False
    servers: tuple[str, ...] = ()  # server names; empty: every server that has the form
    reopen_after_days: int = 14  # a visited item the data still list is back after this
    # (the marts' `[alerts] reopen_after_days`: a visit's closing and the phone's agree)


def push_lists(
    wh: Warehouse,
    settings: PhoneSettings,
    servers: Sequence[str],
    forms: Sequence[FormSource],
    now: datetime,
    run_id: str,
) -> list[PushResult]:
    """Push the committed worklist to each allowed server in `servers` (the configured ones,
    by name) through the follow-up form `forms` found there."""
    if not settings.enabled:
        return []
    hosting = {f.server_name: f for f in forms if f.form_id == FORM_ID}
    # named servers must have the form; unnamed, every server that has it gets the lists
    allowed = list(settings.servers) or [s for s in servers if s in hosting]
    if not allowed:
        results = [_without_form("(every server)" if servers else "(none configured)")]
    else:
        worklist = wh.read("worklist")
        window = VisitWindow(now.astimezone(BANGKOK).date(), settings.reopen_after_days)
        results = [
            _push_one(wh, hosting[server], worklist, window, now, run_id)
            if server in hosting
            else _without_form(server)
            for server in allowed
        ]
    return [*results, *_record_failures(wh, results, now, run_id)]


def _record_failures(
    wh: Warehouse, results: Sequence[PushResult], now: datetime, run_id: str
) -> list[PushResult]:
    """The servers whose phones did not get the lists, for the officers' banner. A result
    built on a failed push names no target; one whose push reached the server but whose
    record failed does, and its phones hold the lists."""
    failed = {r.server: r.error for r in results if r.error and not r.target}
    try:
        record_failures(wh, failed, now, run_id)
    except (WarehouseError, OSError) as err:
        error = (
            f"the phones' push was not recorded in the warehouse ({err}): the officers' "
            "files may not say which phones hold old lists — the next run records it"
        )
        return [PushResult("(warehouse)", "", target="phones_status", error=error)]
    return []


def last_visits(wh: Warehouse) -> dict[str, date]:
    """item_id → the day of its last visit that reached them (live, not rejected)."""
    last: dict[str, date] = {}
    for v in wh.read("followup_visits").to_pylist():
        live = v["deleted_at"] is None and v["review_status"] not in ("not_approved", "rejected")
        if live and v["reached"] and v["visit_date"]:
            last[v["item_id"]] = max(v["visit_date"], last.get(v["item_id"], date.min))
    return last


def _without_form(server: str) -> PushResult:
    return PushResult(
        server,
        "",
        error=(
            f"server {server}: the follow-up form ({FORM_ID}) is not there, so no phone gets "
            f"a list — deploy schemas/forms/{ODK_FILE.name} (ODK Central) or "
            f"{KOBO_FILE.name} (KoboToolbox), or name the servers that have it in "
            "[phones] servers"
        ),
    )


def _push_one(
    wh: Warehouse,
    form: FormSource,
    worklist: pa.Table,
    window: VisitWindow,
    now: datetime,
    run_id: str,
) -> PushResult:
    server = form.server_name
    try:
        items = phone_items(worklist)
    except ValueError as err:
        return PushResult(server, "", error=f"server {server}: lists not pushed: {err}")
    try:
        if isinstance(form, OdkForm):
            result = push_odk(form, items, window, source_name=f"sammachip-{run_id}.csv")
        elif isinstance(form, KoboForm):
            result = push_kobo(form, items, last_visits(wh), window)
        else:
            raise TypeError(f"no phones' lists for {type(form).__name__}")
    except (*SourceError, TransientError) as err:
        return PushResult(
            server,
            "",
            error=f"server {server}: lists not pushed ({err}); the next run pushes again",
        )
    failpoint("phones-before-record")  # the servers hold the lists; the record does not yet
    try:
        record_held(wh, server, result.source, result.target, result.held, now, run_id)
    except (WarehouseError, OSError) as err:  # the phones have their lists all the same
        result.error = (
            f"server {server}: lists pushed, but what it holds was not recorded in the "
            f"warehouse ({err}); the next run records it"
        )
    return result
