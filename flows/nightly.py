"""The nightly flow: sync every registered form, validate, load, build marts, write lists.

Flows orchestrate only: connectors fetch, `schemas` flattens and validates, `warehouse`
stores, builds the marts and writes the officer files. One transaction per run makes every
form's rows, the sync cursors and the marts visible together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from connectors.kobo import KoboClient, KoboError, to_submission
from flows.progress import FetchProgress
from flows.settings import KoboSource, Settings, load_settings
from schemas.batch import validate_form
from schemas.records import Submission
from schemas.registry import FORMS, form_for_asset
from schemas.validation import SuiteRunner
from warehouse.load import existing_codes, load_form, new_versions, open_warehouse
from warehouse.marts import build_alerts, build_otop_readiness
from warehouse.reports import write_officer_files
from warehouse.store import Transaction

BANGKOK = ZoneInfo("Asia/Bangkok")


@dataclass(frozen=True)
class FormSource:
    source: KoboSource
    asset_uid: str
    asset_name: str
    form_id: str

    @property
    def cursor_key(self) -> str:
        return f"kobo:{self.source.server.host}:{self.asset_uid}"


@dataclass
class FormResult:
    form_id: str
    asset_uid: str
    fetched: int = 0
    new_versions: int = 0
    clean: int = 0
    quarantined: int = 0
    error: str | None = None


@dataclass
class RunSummary:
    run_id: str
    today: date
    forms: list[FormResult] = field(default_factory=list)
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    otop_by_status: dict[str, int] = field(default_factory=dict)
    report_files: list[Path] = field(default_factory=list)
    warehouse_version: int = 0

    @property
    def reconciles(self) -> bool:
        return all(f.new_versions == f.clean + f.quarantined for f in self.forms if not f.error)


@task(name="discover-forms", cache_policy=NO_CACHE)
def discover_forms(settings: Settings) -> tuple[list[FormSource], list[FormResult]]:
    """List every server's assets and keep those the registry recognises."""
    found: list[FormSource] = []
    failed: list[FormResult] = []
    for src in settings.kobo:
        with KoboClient(src.server, page_size=src.page_size) as client:
            try:
                assets = client.assets()
            except KoboError as err:
                failed.append(FormResult("*", src.server.host, error=str(err)))
                continue
        for asset in assets:
            spec = form_for_asset(asset.name, src.assets, asset.uid)
            if spec and asset.deployed:
                found.append(FormSource(src, asset.uid, asset.name, spec.form_id))
    return found, failed


@task(name="fetch-form", cache_policy=NO_CACHE)
def fetch_form(form: FormSource, after_id: int, progress: FetchProgress) -> list[Submission]:
    """Every submission above the cursor, as source-agnostic records."""
    subs: list[Submission] = []
    with KoboClient(form.source.server, page_size=form.source.page_size) as client:
        for page, total in client.pages(form.asset_uid, after_id=after_id):
            subs.extend(
                to_submission(
                    r,
                    server=form.source.server.host,
                    asset_uid=form.asset_uid,
                    form_id=form.form_id,
                )
                for r in page
            )
            progress.advance(form.form_id, len(page), total)
    return subs


@task(name="start-validation", cache_policy=NO_CACHE)
def start_validation() -> SuiteRunner:
    return SuiteRunner()


@task(name="stage-form", cache_policy=NO_CACHE)
def stage_form(
    tx: Transaction, form: FormSource, subs: list[Submission], runner: SuiteRunner, now: datetime
) -> FormResult:
    """Validate what is new and stage it (raw, clean, quarantine, cursor) in the transaction."""
    fresh = new_versions(tx, subs)
    validated = validate_form(
        form.form_id,
        fresh,
        runner,
        batch=tx.run_id,
        now=now,
        existing_codes=existing_codes(tx, form.form_id),
    )
    last_id = max((int(s.submission_id) for s in subs), default=None)
    cursor = (form.cursor_key, {"last_id": last_id}) if last_id is not None else None
    load_form(tx, validated, fresh, batch=tx.run_id, now=now, cursor=cursor)
    return FormResult(
        form.form_id,
        form.asset_uid,
        len(subs),
        validated.fetched,
        len(validated.clean_keys),
        len(validated.quarantined_keys),
    )


@task(name="build-marts", cache_policy=NO_CACHE)
def build_marts(tx: Transaction, settings: Settings, today: date) -> None:
    tables = {
        name: tx.read(name)
        for name in (
            "households",
            "sessions",
            "attendance",
            "materials",
            "income_surveys",
            "groups",
            "group_members",
            "quarantine",
        )
    }
    tx.replace("alerts", build_alerts(tables, tx.read("alerts"), today, settings.rules))
    tx.replace("otop_readiness", build_otop_readiness(tables, settings.rules))


@task(name="write-reports", cache_policy=NO_CACHE)
def write_reports(settings: Settings, today: date) -> list[Path]:
    wh = open_warehouse(str(settings.warehouse_path))
    return write_officer_files(
        wh.read("alerts"), wh.read("otop_readiness"), settings.reports_path / today.isoformat()
    )


def bangkok_today() -> date:
    return datetime.now(BANGKOK).date()


def run_nightly(
    settings: Settings, today: date, progress: FetchProgress | None = None
) -> RunSummary:
    """The body of the flow, callable from other flows (ingest, demo) with ready settings."""
    logger = get_run_logger()
    progress = progress or FetchProgress.quiet()
    summary = RunSummary(run_id=uuid.uuid4().hex[:12], today=today)
    forms, failed = discover_forms(settings)
    summary.forms.extend(failed)
    runner = start_validation()
    wh = open_warehouse(str(settings.warehouse_path))
    with wh.transaction(summary.run_id) as tx:
        now = datetime.now(UTC)
        for form in sorted(forms, key=lambda f: list(FORMS).index(f.form_id)):
            cursor = tx.cursor(form.cursor_key) or {}
            try:
                subs = fetch_form(form, int(cursor.get("last_id") or 0), progress)
            except KoboError as err:
                logger.error("form %s (%s) skipped: %s", form.form_id, form.asset_uid, err)
                summary.forms.append(FormResult(form.form_id, form.asset_uid, error=str(err)))
                continue
            result = stage_form(tx, form, subs, runner, now)
            logger.info(
                "%s: fetched %d, new %d, clean %d, quarantined %d",
                form.form_id,
                result.fetched,
                result.new_versions,
                result.clean,
                result.quarantined,
            )
            summary.forms.append(result)
        build_marts(tx, settings, today)
    summary.warehouse_version = wh.snapshot().version
    summary.report_files = write_reports(settings, today)
    alerts = wh.read("alerts", columns=["rule_id"])["rule_id"].to_pylist()
    summary.alerts_by_rule = {r: alerts.count(r) for r in sorted(set(alerts))}
    statuses = wh.read("otop_readiness", columns=["status"])["status"].to_pylist()
    summary.otop_by_status = {s: statuses.count(s) for s in sorted(set(statuses))}
    return summary


@flow(name="nightly")
def nightly(
    config: str | None = None, workdir: str | None = None, today: date | None = None
) -> RunSummary:
    """Nightly sync of every configured server. Secrets are read from the environment or
    Prefect Secret blocks inside the run; they are never flow parameters."""
    settings = load_settings(
        Path(config) if config else None, base_dir=Path(workdir) if workdir else None
    )
    progress = FetchProgress.for_terminal()
    try:
        return run_nightly(settings, today or bangkok_today(), progress)
    finally:
        progress.stop()
