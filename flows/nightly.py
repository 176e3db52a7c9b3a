"""The nightly and reconcile flows: sync every registered form, validate, load, build marts,
write the officer lists.

Flows orchestrate only: connectors fetch, `schemas` flattens and validates, `warehouse`
stores, builds the marts and writes the officer files. One transaction per run makes every
form's rows, the sync cursors and the marts visible together.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from sammachip import marts
from sammachip.connectors.discovery import SourceError, discover, held_under_other_names
from sammachip.connectors.odk import NoDeletedFeed
from sammachip.connectors.retry import TransientError
from sammachip.connectors.sources import DeletionFeed, FormSource
from sammachip.flows.officer_files import mail_reports, phones_told, write_reports
from sammachip.flows.progress import FetchProgress
from sammachip.flows.runtime import settle_heap
from sammachip.flows.settings import Settings, load_settings
from sammachip.phones.odk import PushResult
from sammachip.phones.push import push_lists
from sammachip.reports.data_docs import make_offline
from sammachip.schemas.batch import CrossFormContext, StreamState, validate_stream
from sammachip.schemas.followup_form import FORM_ID as FOLLOWUP_FORM
from sammachip.schemas.records import Submission
from sammachip.schemas.registry import FORMS, WAVES
from sammachip.schemas.validation import SuiteRunner
from sammachip.warehouse.freshness import (
    lists_would_mislead,
    record_sync,
)
from sammachip.warehouse.load import (
    FormLoader,
    LoadStats,
    cross_form_context,
    open_warehouse,
    tombstone,
)
from sammachip.warehouse.recheck import refreshing_dependents
from sammachip.warehouse.store import Transaction, Warehouse

BANGKOK = ZoneInfo("Asia/Bangkok")


@dataclass
class FormResult:
    form_id: str
    form_uid: str  # Kobo asset uid, ODK "project/xmlFormId", or the server for a server error
    fetched: int = 0
    new_versions: int = 0
    clean: int = 0
    quarantined: int = 0
    deleted: int = 0  # submissions tombstoned: the server deleted them
    restored: int = 0  # of the new versions, submissions tombstoned before: live again
    # Submissions of other forms (or this one) validated again because this form changed
    # a fact they are checked against: form id → count.
    rechecked: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    warning: str | None = None  # said in the summary; the run still succeeds
    server: str = ""  # the server's name (`[[kobo]]`/`[[odk]]` name)

    @classmethod
    def of(
        cls, form: FormSource, stats: LoadStats | None = None, *, error: str | None = None
    ) -> FormResult:
        """A form's line of the run summary: what its load counted, or why it was skipped."""
        result = cls(form.form_id, form.form_uid, error=error, server=form.server_name)
        if stats is not None:
            result.fetched, result.new_versions = stats.fetched, stats.new_versions
            result.clean, result.quarantined = stats.clean, stats.quarantined
            result.restored, result.rechecked = stats.restored, dict(stats.rechecked)
        return result

    def add_rechecked(self, counts: dict[str, int]) -> None:
        for form_id, count in counts.items():
            self.rechecked[form_id] = self.rechecked.get(form_id, 0) + count


@dataclass
class RunSummary:
    run_id: str
    today: date
    forms: list[FormResult] = field(default_factory=list)
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    otop_by_status: dict[str, int] = field(default_factory=dict)
    report_files: list[Path] = field(default_factory=list)
    warehouse_version: int = 0
    attachments: tuple[int, int] = (0, 0)  # downloaded, failed
    data_docs: Path | None = None
    phones: list[PushResult] = field(default_factory=list)  # the lists pushed to the phones

    @property
    def reconciles(self) -> bool:
        return all(f.new_versions == f.clean + f.quarantined for f in self.forms if not f.error)


@task(name="discover-forms", cache_policy=NO_CACHE)
def discover_forms(settings: Settings) -> tuple[list[FormSource], list[FormResult]]:
    """List every server's forms and keep those the registry recognises; what is skipped
    becomes a result of its own (an error, or a warning)."""
    found, skipped = discover(settings.kobo, settings.odk, settings.http)
    cursors = open_warehouse(str(settings.warehouse_path)).snapshot().cursors
    found, held = held_under_other_names(found, cursors, settings.kobo, settings.odk)
    return found, [
        *(
            FormResult(
                s.form_id,
                s.where,
                server=s.server,
                error=None if s.warning else s.message,
                warning=s.message if s.warning else None,
            )
            for s in skipped
        ),
        *(FormResult.of(form, error=err) for form, err in held),
    ]


@task(name="start-validation", cache_policy=NO_CACHE)
def start_validation() -> SuiteRunner:
    """The run's GX context, handed down to every task that validates: tasks on threads of
    this process validate through it (their batches then appear in the run's Data Docs); a
    Dask worker process gets its own (see `SuiteRunner.__reduce__`). GX starts on a thread
    of its own while the run lists its forms and fetches the first pages: the first
    validation waits for it."""
    return SuiteRunner(background=True)


def load_batches(
    tx: Transaction,
    form_id: str,
    batches: Iterable[list[Submission]],
    runner: SuiteRunner,
    now: datetime,
) -> LoadStats:
    """The one path from submissions to the warehouse, whatever brought them (a nightly
    pull, a reconcile rescan, webhook deliveries): drop known versions, validate, stage,
    then re-check what other forms said about the facts this one changed."""
    with refreshing_dependents(tx, form_id, runner, now=now) as rechecked:
        loader = FormLoader(tx, form_id, batch=tx.run_id, now=now)
        context = cross_form_context(tx, form_id)
        results = validate_stream(
            form_id,
            batches,
            runner,
            state=loader.stream_state(),
            batch=tx.run_id,
            now=now,
            context=context,
        )
        for validated, fresh, fetched in results:
            loader.add(validated, fresh, fetched)
        stats = loader.finish()
    stats.rechecked = rechecked
    return stats


@task(name="sync-form", cache_policy=NO_CACHE)
def sync_form(
    tx: Transaction,
    form: FormSource,
    runner: SuiteRunner,
    settings: Settings,
    now: datetime,
    progress: FetchProgress,
    full_rescan: bool = False,
) -> FormResult:
    """Fetch what may have changed and load it; the cursor moves with the data it covers."""
    cursor = dict(tx.cursor(form.cursor_key) or {})

    def batches() -> Iterator[list[Submission]]:
        for subs, remaining in form.batches(cursor, settings.sync, now, full_rescan):
            yield subs
            progress.advance(form.form_id, len(subs), remaining)

    stats = load_batches(tx, form.form_id, batches(), runner, now)
    # The cursor advanced while pages streamed; it is staged with the data it covers.
    tx.set_cursor(form.cursor_key, cursor)
    return FormResult.of(form, stats)


@task(name="find-deletions", cache_policy=NO_CACHE)
def find_deletions(
    tx: Transaction,
    form: FormSource,
    runner: SuiteRunner,
    settings: Settings,
    now: datetime,
    full: bool,
) -> tuple[int, dict[str, int]]:
    """Tombstone what the server deleted; returns (how many, submissions re-checked per form).

    Nightly, a server with a deletion feed (ODK Central) is asked what it deleted since the
    feed's own watermark. The reconcile (`full`) also scans every id the server still holds:
    whatever we hold that it lacks was deleted (Kobo deletes without a trace) or purged.
    """
    if not (full or isinstance(form, DeletionFeed)):
        return 0, {}
    cursor = dict(tx.cursor(form.cursor_key) or {})
    gone: dict[str, datetime | None] = {}
    if isinstance(form, DeletionFeed):
        try:
            gone.update(form.deletions(cursor, settings.sync, full))
        except NoDeletedFeed as err:  # an old server: its data still syncs, the id scan remains
            get_run_logger().warning("%s", err)
    if full:
        spec = FORMS[form.form_id]
        held: set[str] = set()
        for table in (spec.table, "quarantine"):
            held.update(tx.read(table, columns=["submission_key"])["submission_key"].to_pylist())
        gone.update((key, gone.get(key)) for key in form.deleted_keys(held))
    with refreshing_dependents(tx, form.form_id, runner, now=now) as rechecked:
        deleted = tombstone(tx, form.form_id, gone, batch=tx.run_id, now=now)
    tx.set_cursor(form.cursor_key, cursor)
    return deleted, rechecked


@task(name="download-attachments", cache_policy=NO_CACHE)
def download_attachments(settings: Settings, forms: list[FormSource]) -> tuple[int, int]:
    """Fetch media files not downloaded yet (after the commit: files never block data).
    Returns (downloaded, failed); a failure is logged and retried by the next run."""
    if settings.attachments_path is None:
        return 0, 0
    logger = get_run_logger()
    table = open_warehouse(str(settings.warehouse_path)).read("attachments")
    rows = table.filter(pc.invert(table["is_deleted"])).to_pylist()
    done = failed = 0
    for form in forms:
        prefix = form.key_prefix
        for row in (r for r in rows if r["submission_key"].startswith(prefix)):
            if not row["download_url"]:
                continue
            name = f"{row['attachment_uid']}-{Path(row['basename']).name}"  # no path tricks
            folder = settings.attachments_path / form.form_uid.replace("/", "-")
            dest = folder / row["submission_key"][len(prefix) :] / name
            try:
                done += form.download(row["download_url"], dest)
            except (*SourceError, TransientError) as err:
                failed += 1
                logger.warning("attachment %s not downloaded: %s", dest, err)
    return done, failed


@task(name="build-data-docs", cache_policy=NO_CACHE)
def build_data_docs(runner: SuiteRunner, settings: Settings, today: date) -> Path | None:
    """GX's own report of the suites and of this run's validations, beside the officer files
    (a run that validated nothing leaves the last report in place)."""
    if not runner.batches_validated:
        return None
    index = runner.build_data_docs(settings.reports_path / today.isoformat() / "data_docs")
    make_offline(index.parent)  # the office opens them without internet
    return index


@task(name="build-marts", cache_policy=NO_CACHE)
def build_marts(tx: Transaction, settings: Settings, today: date) -> None:
    """Every mart as of `today`, in the run's transaction: the households this run touched
    or whose dates came due recomputed, or all of them (`marts.incremental` says when)."""
    done = marts.refresh_marts(tx, today, settings.rules)
    try:
        logger = get_run_logger()
    except MissingContextError:  # called outside a run: the benchmarks time it bare
        return
    if done.why_full:
        logger.info("marts rebuilt from every household: %s", done.why_full)
    else:
        logger.info("marts: %d households recomputed", done.recomputed)


@task(name="push-to-phones", cache_policy=NO_CACHE)
def push_to_phones(
    wh: Warehouse, settings: Settings, forms: list[FormSource], run_id: str
) -> list[PushResult]:
    """Each officer's committed worklist to the phones (`[phones]`), after the commit: a
    server that fails is said in the summary and pushed again by the next run; the data
    stand either way."""
    if not settings.phones.enabled:
        return []
    if not any(f.form_id == FOLLOWUP_FORM for f in forms):  # a run that loaded other forms
        forms = discover_forms.fn(settings)[0]
    results = push_lists(
        wh, settings.phones, settings.server_names, forms, datetime.now(UTC), run_id
    )
    for r in results:
        if r.error:
            get_run_logger().error("%s", r.error, extra={IN_SUMMARY: True})
        elif r.warning:
            get_run_logger().warning("%s", r.warning)
    return results


def bangkok_today() -> date:
    return datetime.now(BANGKOK).date()


def run_sync(
    settings: Settings,
    today: date,
    progress: FetchProgress | None = None,
    *,
    reconcile: bool = False,
) -> RunSummary:
    """The body shared by `nightly` and `reconcile`: one transaction, then the officer files.

    A permanent error on one form (a revoked token, a deleted asset) skips that form with a
    clear message and leaves its cursor where it was; the other forms still sync.
    """
    logger = get_run_logger()
    progress = progress or FetchProgress.quiet()
    summary = RunSummary(run_id=uuid.uuid4().hex[:12], today=today)
    settle_heap()
    runner = start_validation()  # GX starts meanwhile
    forms, failed = discover_forms(settings)
    summary.forms.extend(failed)
    for f in failed:
        if f.error:
            log_skipped(f)
        else:
            logger.warning("%s", f.warning)
    wh = open_warehouse(str(settings.warehouse_path))
    with wh.transaction(summary.run_id) as tx:
        now = datetime.now(UTC)
        if settings.workers > 1:
            results = _sync_parallel(tx, forms, runner, settings, now, reconcile)
        else:
            results = (_sync_one(tx, f, runner, settings, now, progress, reconcile) for f in forms)
        for result in results:
            if result.error:
                log_skipped(result)
            else:
                logger.info(
                    "%s: fetched %d, new %d, clean %d, quarantined %d, tombstoned %d, restored %d",
                    result.form_id,
                    result.fetched,
                    result.new_versions,
                    result.clean,
                    result.quarantined,
                    result.deleted,
                    result.restored,
                )
                if result.rechecked:
                    logger.info(
                        "%s changed facts other answers are checked against: validated again %s",
                        result.form_id,
                        ", ".join(f"{n} of {f}" for f, n in sorted(result.rechecked.items())),
                    )
            summary.forms.append(result)
        record_sync(tx, settings.server_names, summary.forms, now)
        build_marts(tx, settings, today)
    summary.data_docs = build_data_docs(runner, settings, today)
    publish(wh, settings, forms, summary, mail=not reconcile)
    return summary


# Marks a log record the run summary repeats (a form or server skipped): a terminal that
# prints the summary may leave the record out, so each failure is said once.
IN_SUMMARY = "sammachip_in_summary"


def log_skipped(result: FormResult) -> None:
    what = (
        f"server {result.server}"
        if result.form_id == "*"
        else f"form {result.form_id} ({result.form_uid})"
    )
    get_run_logger().error("%s skipped: %s", what, result.error, extra={IN_SUMMARY: True})


def publish(
    wh: Warehouse, settings: Settings, forms: list[FormSource], run: RunSummary, *, mail: bool
) -> None:
    """After a commit (nightly, reconcile, ingest): media files, officer lists, the counts.

    Officers get their lists by e-mail once a day, from the nightly (`mail`): the weekly
    reconcile and the ingest runs during the day rewrite the files without mailing them again.
    The mail leaves after the push, so the files it carries say what the phones now hold.
    """
    snapshot = wh.snapshot()
    run.warehouse_version = snapshot.version
    run.attachments = download_attachments(settings, forms)
    if lists_would_mislead(snapshot):
        get_run_logger().error(
            "officer lists not written: the sync failed and the warehouse holds no submission "
            "yet, so every list would be empty — fix what the summary names and run again",
            extra={IN_SUMMARY: True},
        )
    else:
        run.report_files = write_reports(settings, run.today)
    run.phones = push_to_phones(wh, settings, forms, run.run_id)
    if run.report_files and phones_told(settings, snapshot) != phones_told(settings, wh.snapshot()):
        # the push failed, or succeeded again: the files say what the phones now hold
        run.report_files = write_reports(settings, run.today)
    if run.report_files and mail:
        mail_reports(settings, run.today)
    run.alerts_by_rule = _counts(wh.read("alerts", columns=["rule_id"])["rule_id"])
    run.otop_by_status = _counts(wh.read("otop_readiness", columns=["status"])["status"])


def _sync_one(
    tx: Transaction,
    form: FormSource,
    runner: SuiteRunner,
    settings: Settings,
    now: datetime,
    progress: FetchProgress,
    reconcile: bool,
) -> FormResult:
    """One form, in this process; a permanent error leaves nothing of it staged."""
    try:
        with tx.savepoint():
            result = sync_form(tx, form, runner, settings, now, progress, reconcile)
            result.deleted, rechecked = find_deletions(tx, form, runner, settings, now, reconcile)
            result.add_rechecked(rechecked)
            return result
    except (*SourceError, TransientError) as err:  # retries exhausted: skip this form only
        return FormResult.of(form, error=_form_error(form, err))


def _form_error(form: FormSource, err: Exception) -> str:
    if isinstance(err, TransientError):  # permanent errors already name the form and the fix
        return (
            f"form {form.form_uid}: the server still failed after every retry ({err}); "
            "nothing of this form was committed — the next run tries again"
        )
    return str(err)


@task(name="fetch-and-validate", cache_policy=NO_CACHE)
def fetch_and_validate(
    form: FormSource,
    cursor: dict[str, Any],
    settings: Settings,
    now: datetime,
    full_rescan: bool,
    state: StreamState,
    context: CrossFormContext,
    batch: str,
    runner: SuiteRunner,
) -> tuple[list[tuple[Any, list[Submission], int]], dict[str, Any], str | None]:
    """The heavy half of a form's sync (fetch, normalise, validate), runnable on a Dask worker:
    it reads no warehouse and returns Arrow tables for the flow's process to stage."""
    try:
        pages = (subs for subs, _ in form.batches(cursor, settings.sync, now, full_rescan))
        results = list(
            validate_stream(
                form.form_id, pages, runner, state=state, batch=batch, now=now, context=context
            )
        )
    except (*SourceError, TransientError) as err:  # retries exhausted: skip this form only
        return [], cursor, _form_error(form, err)
    return results, cursor, None


def _sync_parallel(
    tx: Transaction,
    forms: list[FormSource],
    runner: SuiteRunner,
    settings: Settings,
    now: datetime,
    reconcile: bool,
) -> Iterator[FormResult]:
    """Fetch and validate the forms of a wave concurrently on the flow's task runner (threads,
    or Dask worker processes), then stage each result here: one writer, one commit."""
    # Cross-form checks read what earlier forms staged (registered households, who attended),
    # so forms load in the registry's waves; within a wave, all run at once.
    waves = [[f for f in forms if f.form_id in wave] for wave in WAVES]
    for wave in waves:
        context = cross_form_context(tx)
        submitted = []
        for form in wave:
            loader = FormLoader(tx, form.form_id, batch=tx.run_id, now=now)
            cursor = dict(tx.cursor(form.cursor_key) or {})
            state = loader.stream_state()
            future = fetch_and_validate.submit(
                form, cursor, settings, now, reconcile, state, context, tx.run_id, runner
            )
            submitted.append((form, loader, future))
        for form, loader, future in submitted:
            results, cursor, error = future.result()
            if error:
                yield FormResult.of(form, error=error)
                continue
            try:
                yield _stage(tx, form, loader, results, cursor, runner, settings, now, reconcile)
            except (*SourceError, TransientError) as err:  # its deletions could not be read
                yield FormResult.of(form, error=_form_error(form, err))


def _stage(
    tx: Transaction,
    form: FormSource,
    loader: FormLoader,
    results: list[tuple[Any, list[Submission], int]],
    cursor: dict[str, Any],
    runner: SuiteRunner,
    settings: Settings,
    now: datetime,
    reconcile: bool,
) -> FormResult:
    """A form's validated batches and its deletions, staged here, in the flow's process; a
    permanent error leaves nothing of it staged."""
    with tx.savepoint():
        with refreshing_dependents(tx, form.form_id, runner, now=now) as rechecked:
            for validated, fresh, fetched in results:
                loader.add(validated, fresh, fetched)
            stats = loader.finish(cursor=(form.cursor_key, cursor))
        stats.rechecked = rechecked
        result = FormResult.of(form, stats)
        result.deleted, more = find_deletions(tx, form, runner, settings, now, reconcile)
        result.add_rechecked(more)
        return result


def _counts(column: object) -> dict[str, int]:
    values = column.to_pylist()  # type: ignore[attr-defined]
    return {v: values.count(v) for v in sorted(set(values))}


def _settings(config: str | None, workdir: str | None) -> Settings:
    return load_settings(
        Path(config) if config else None, base_dir=Path(workdir) if workdir else None
    )


@flow(name="nightly")
def nightly(
    config: str | None = None, workdir: str | None = None, today: date | None = None
) -> RunSummary:
    """Nightly incremental sync of every configured server. Secrets are read from the
    environment or Prefect Secret blocks inside the run; they are never flow parameters."""
    progress = FetchProgress.for_terminal()
    try:
        return run_sync(_settings(config, workdir), today or bangkok_today(), progress)
    finally:
        progress.stop()


@flow(name="reconcile")
def reconcile(
    config: str | None = None, workdir: str | None = None, today: date | None = None
) -> RunSummary:
    """Weekly: re-read every submission (edits the look-back window missed) and tombstone
    those the server no longer has (Kobo deletes without a trace)."""
    progress = FetchProgress.for_terminal()
    try:
        return run_sync(
            _settings(config, workdir), today or bangkok_today(), progress, reconcile=True
        )
    finally:
        progress.stop()
