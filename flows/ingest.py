"""The ingest flow: load what the Kobo webhook landed, through the same path as `nightly`.

Each run takes *every* waiting delivery (so one run absorbs a burst), maps each asset to its
server and form as the nightly does (`discover_forms`), and loads them with `load_batches` in
one transaction that also rebuilds the marts; the officer lists are then rewritten. Landing
files are removed only after that commit: a crash before it leaves them for the next run, and
a crash after it only means a replay, which the warehouse drops as known payload versions.

Two ways in. Under `sammachip serve` the receiver kicks a warm worker in serve's own process
(`flows/warm.py`): runs start a second after a delivery, with Prefect and GX already loaded and
the GX runner built once (`keep_warm`). With workers (prefect.yaml), the deployment's trigger
fires on the first `sammachip.submission.received` of a short window, ignores the rest of that
window, and schedules the run for the window's end (`schedule_after`). Every delivery is landed
before its event, so every ignored event's file is in the landing area when that run lists it —
provided the run does not list early, which is why the flow waits for its scheduled start
(runners and workers start runs up to ~10 s early).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from prefect import flow, get_run_logger

from sammachip.connectors.kobo import KoboForm, to_submission
from sammachip.connectors.landing import Landed, Landing
from sammachip.connectors.webhook import SOURCE, read_delivery
from sammachip.flows.nightly import (
    FormResult,
    RunSummary,
    bangkok_today,
    build_marts,
    discover_forms,
    load_batches,
    log_skipped,
    publish,
    start_validation,
)
from sammachip.flows.officer_files import files_behind
from sammachip.flows.settings import Settings, load_settings
from sammachip.schemas.records import Submission
from sammachip.schemas.validation import SuiteRunner
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.store import Warehouse

MAX_EARLY_START = 600.0  # never wait longer than this for a scheduled start

# A long-lived process (serve's warm worker) keeps one GX runner for every run it executes: a
# flow-run process of its own would spend seconds importing GX and building its context.
_warm: list[SuiteRunner] = []


def keep_warm(runner: SuiteRunner) -> None:
    """Ingest runs of this process validate through `runner` instead of building their own."""
    _warm[:] = [runner]


def warm_runner() -> SuiteRunner | None:
    return _warm[0] if _warm else None


# =========================================================================== the flow


@dataclass
class IngestSummary:
    run: RunSummary
    landed: int = 0  # deliveries found waiting
    removed: int = 0  # loaded, committed and removed from the landing area
    waiting: int = 0  # kept for a later run: asset not listed by any server, or its form failed
    set_aside: int = 0  # unreadable; moved to the landing area's _set_aside folder


def wait_for_scheduled_start(limit: float = MAX_EARLY_START) -> float:
    """Sleep until the run's scheduled start if it was started early; returns the wait."""
    from prefect.runtime import flow_run

    delay = (flow_run.scheduled_start_time - datetime.now(UTC)).total_seconds()
    if 0 < delay <= limit:
        time.sleep(delay)
        return delay
    return 0.0


@flow(name="ingest")
def ingest(
    config: str | None = None, workdir: str | None = None, today: date | None = None
) -> IngestSummary:
    """Load every submission the Kobo webhook landed: validate, load, rebuild the marts,
    rewrite the officer lists. Secrets are read inside the run, never flow parameters."""
    wait_for_scheduled_start()
    path = Path(config) if config else None
    settings = load_settings(path, base_dir=Path(workdir) if workdir else None)
    return ingest_landing(settings, Landing(settings.landing_path), today or bangkok_today())


def ingest_landing(settings: Settings, landing: Landing, today: date) -> IngestSummary:
    """The body of `ingest`: landing area → warehouse → landing files removed → reports."""
    logger = get_run_logger()
    summary = IngestSummary(RunSummary(run_id=uuid.uuid4().hex[:12], today=today))
    landing.clean_temp(SOURCE)
    files = landing.pending(SOURCE)
    summary.landed = len(files)
    if not files:
        logger.info("nothing waiting in %s", landing.root)
        wh = open_warehouse(str(settings.warehouse_path))
        if files_behind(settings, wh):
            logger.warning(
                "the officer files are older than the warehouse (a run stopped between its "
                "commit and its files): writing them now"
            )
            publish(wh, settings, [], summary.run, mail=False)
        return summary
    found, failed = discover_forms(settings)
    summary.run.forms.extend(failed)
    for f in failed:
        if f.error:
            log_skipped(f)
    forms = [f for f in found if isinstance(f, KoboForm)]  # the webhook is Kobo's
    plan = _plan(files, {f.form_uid: f for f in forms}, landing, summary)
    if plan:
        wh = open_warehouse(str(settings.warehouse_path))
        loading = [f for f in forms if f.form_uid in plan]
        done = _load(wh, settings, loading, plan, summary)
        summary.removed = landing.remove(done)  # only now: the commit holds their rows
        publish(wh, settings, loading, summary.run, mail=False)  # the nightly mails
    logger.info(
        "%s: landed %d: loaded and removed %d, waiting %d, set aside %d",
        landing.root,
        summary.landed,
        summary.removed,
        summary.waiting,
        summary.set_aside,
    )
    return summary


Plan = dict[str, list[tuple[Landed, Submission]]]  # asset uid → deliveries, oldest first


def _plan(
    files: list[Landed], forms: dict[str, KoboForm], landing: Landing, summary: IngestSummary
) -> Plan:
    """Read each delivery as the nightly would have fetched it (same server name, so the
    same submission key); unknown assets wait, unreadable files are set aside."""
    logger = get_run_logger()
    plan: Plan = defaultdict(list)
    unknown: set[str] = set()
    for f in files:
        form = forms.get(f.asset)
        if form is None:
            unknown.add(f.asset)
            summary.waiting += 1
            continue
        try:  # the receiver's own test of a delivery: what it accepted reads here
            raw = read_delivery(f.read_bytes(), f.asset)
            sub = to_submission(
                raw, server=form.server_name, asset_uid=f.asset, form_id=form.form_id
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            landing.set_aside(f, f"unreadable delivery: {type(err).__name__}: {err}")
            logger.error("set aside %s: %s", f.path.name, err)
            summary.set_aside += 1
            continue
        plan[f.asset].append((f, sub))
    if unknown:
        logger.warning(
            "%d deliveries for assets no configured server lists (%s): kept for a later run",
            summary.waiting,
            ", ".join(sorted(unknown)),
        )
    return plan


def _chunks(subs: list[Submission], size: int) -> Iterator[list[Submission]]:
    for start in range(0, len(subs), size):
        yield subs[start : start + size]


def _load(
    wh: Warehouse, settings: Settings, forms: list[KoboForm], plan: Plan, summary: IngestSummary
) -> list[Landed]:
    """One transaction: every form's deliveries, then the marts. Returns the files it holds.

    A form that fails is rolled back to its savepoint and its files wait; the others load.
    """
    logger = get_run_logger()
    runner = warm_runner() or start_validation()
    done: list[Landed] = []
    with wh.transaction(summary.run.run_id) as tx:
        now = datetime.now(UTC)
        for form in forms:
            items = plan[form.form_uid]
            batches = _chunks([s for _, s in items], settings.sync.batch_size)
            try:
                with tx.savepoint():
                    stats = load_batches(tx, form.form_id, batches, runner, now)
            except Exception as err:  # one form's bad payloads must not block the others
                logger.exception(
                    "form %s (%s): %d deliveries kept for a later run",
                    form.form_id,
                    form.form_uid,
                    len(items),
                )
                summary.run.forms.append(FormResult.of(form, error=str(err)))
                summary.waiting += len(items)
                continue
            summary.run.forms.append(FormResult.of(form, stats))
            done.extend(f for f, _ in items)
        build_marts(tx, settings, summary.run.today)
    return done
