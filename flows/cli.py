"""`sammachip` — the command line: demo, nightly, query, tables, simulate."""

from __future__ import annotations

import csv as csv_module
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from sammachip.simulators.odk import OdkStore
    from sammachip.warehouse.store import Warehouse

from sammachip.flows.runtime import apply_prefect_defaults, prefect_start_errors
from sammachip.flows.summary import console, print_summary, said_once

apply_prefect_defaults()  # before anything imports Prefect

# Plain help (rich_markup_mode=None): rich markup would swallow "[run]" and "[dask]", print a
# "<bool>" beside every flag, and keep the docstrings' line breaks mid-sentence.
app = typer.Typer(
    help="sammachip: สัมมาชีพชุมชน forms → validated warehouse → officer lists.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
simulate = typer.Typer(help="Run a built-in server simulator on loopback.", rich_markup_mode=None)
app.add_typer(simulate, name="simulate")

# An error is one line whatever the terminal width: a path cut in two cannot be copied.
err_console = Console(stderr=True, soft_wrap=True)

_MAX_ROWS = 200
WarehouseOpt = Annotated[Path, typer.Option(help="Warehouse folder (the [warehouse] path).")]
PHONES_ON = "SAMMACHIP_PHONES_ENABLED"
DEMO_SERVER = "sammachip-demo"  # the simulators' server name: demo keys never meet real ones


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")  # [[kobo]] is not markup
    raise typer.Exit(code=1)


@contextmanager
def _storage_errors() -> Iterator[None]:
    """A warehouse that cannot be written, or a full disk, as one line saying what to do."""
    from sammachip.warehouse.storage import NO_ROOM, WarehouseError

    try:
        yield
    except WarehouseError as err:
        _fail(str(err))
    except OSError as err:
        if err.errno not in NO_ROOM:
            raise
        _fail(
            f"no room on the disk ({err}). The warehouse only ever shows whole runs, so it "
            "is as the last complete run left it, but officer files may be partly written: "
            "free space, then run `sammachip report` to write them again"
        )


def _existing_warehouse(path: Path | str, where: str) -> Warehouse:
    """The warehouse at `path`, or exit 1 saying how to make one: reading a warehouse that is
    not there would print empty tables (or write empty officer lists) as if all were well."""
    from sammachip.warehouse.load import open_warehouse

    with _storage_errors():
        wh = open_warehouse(str(path))
        if wh.snapshot().version == 0:
            _fail(
                f"no warehouse at {path} ({where}): run `sammachip nightly` (or `sammachip "
                "demo`) first, or point to the folder that holds it"
            )
    return wh


def _iso_day(value: str | None) -> str | None:
    """A date as officers write it, too: 2026-12-05, or 05/12/2569 (day/month/Buddhist-Era
    year), Thai digits allowed — given on as YYYY-MM-DD."""
    from sammachip.schemas.normalise import parse_date

    if value is None:
        return None
    try:
        day = parse_date(value)
    except ValueError:
        day = None
    if day is None:
        raise typer.BadParameter(
            f"{value!r} is not a date: write it as 2026-12-05 or "
            "05/12/2569 (day/month/year, Buddhist Era)"
        )
    return day.isoformat()


TodayOpt = Annotated[
    str | None,
    typer.Option(
        callback=_iso_day,
        metavar="<date>",
        help="Reference date: 2026-12-05 or 05/12/2569 "
        "(day/month/Buddhist-Era year; Thai digits too). Default: today in Bangkok.",
    ),
]


@app.command(short_help="Try it: a built-in simulator's forms, synced into ./data.")
def demo(
    workdir: Annotated[Path, typer.Option(help="Where data/ is written.")] = Path("."),
    villages: Annotated[
        int | None, typer.Option(help="Villages to generate (default: all of Muang Sam Sip).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Cohort seed.")] = 2568,
    today: TodayOpt = None,
    source: Annotated[str, typer.Option(help="Simulated server: kobo or odk.")] = "kobo",
) -> None:
    """Generate a cohort, serve it from a built-in simulator, run `nightly` against it.

    Run again in the same folder, it finds nothing new. The two simulators serve the same
    households, so the ODK demo runs in a folder of its own (--workdir odk-demo).
    """
    from sammachip.flows.nightly import bangkok_today, nightly
    from sammachip.simulators.cohort import CohortSpec, generate_cohort

    if source not in {"kobo", "odk"}:
        _fail(f"--source must be kobo or odk, not {source!r}")
    _demo_may_write(workdir, source)
    ref = date.fromisoformat(today) if today else bangkok_today()
    with console.status("Generating the cohort / สร้างข้อมูลตัวอย่าง …"):
        cohort = generate_cohort(CohortSpec(seed=seed, villages=villages, today=ref))
    console.print(cohort.summary())
    with said_once(), _simulated_server(source, cohort) as (env, odk), _phones_on(odk):
        os.environ.update(env)  # this process only; the secrets are throwaway
        url = env.get("SAMMACHIP_KOBO_URL") or env.get("SAMMACHIP_ODK_URL")
        console.print(f"{source} simulator listening on {url}")
        workdir.mkdir(parents=True, exist_ok=True)
        with prefect_start_errors(_fail):
            summary = nightly(workdir=str(workdir.resolve()), today=ref)
            if odk is not None:  # the lists went to the phones: a day in the field, night 2
                from sammachip.flows.field_demo import second_night

                print_summary(summary, workdir)
                summary = second_night(odk, str(url), workdir.resolve(), ref)
    print_summary(summary, workdir)
    if odk is not None:
        from sammachip.flows.field_demo import print_closed_by_visits

        print_closed_by_visits(workdir / "data" / "warehouse")
    if any(f.error for f in summary.forms) or any(p.error for p in summary.phones):
        raise typer.Exit(code=2)


@contextmanager
def _phones_on(odk: OdkStore | None) -> Iterator[None]:
    """The ODK demo pushes the officers' lists to its simulator's phones, for its own runs
    only: a later run of this process keeps the office's own `[phones]` setting."""
    if odk is None:
        yield
        return
    before = os.environ.get(PHONES_ON)
    os.environ[PHONES_ON] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PHONES_ON, None)
        else:
            os.environ[PHONES_ON] = before


def _demo_may_write(workdir: Path, source: str) -> None:
    """The demo writes only into a new warehouse or its own earlier one (same simulator):
    never invented households into an office's real data, nor the two simulators' copies of
    the same households into one warehouse (each would be the other's duplicate)."""
    from sammachip.connectors.sources import parse_cursor_key
    from sammachip.flows.settings import ConfigError, load_settings
    from sammachip.warehouse.load import open_warehouse

    try:
        path = load_settings(base_dir=workdir, servers=False).warehouse_path
    except ConfigError as err:
        _fail(str(err))
    with _storage_errors():
        cursors = open_warehouse(str(path)).snapshot().cursors
    held = {p[:2] for key in cursors if (p := parse_cursor_key(key))}
    others = sorted(
        f"the {kind} demo" if name == DEMO_SERVER else f"{kind} server '{name}'"
        for kind, name in held - {(source, DEMO_SERVER)}
    )
    if others:
        _fail(
            f"{path} holds data from {' and '.join(others)}: the {source} demo writes only "
            f"into a new warehouse or its own. Run it in a folder of its own: sammachip demo "
            f"--source {source} --workdir {source}-demo"
        )


@contextmanager
def _simulated_server(
    source: str, cohort: object
) -> Iterator[tuple[dict[str, str], OdkStore | None]]:
    """Serve a cohort from the chosen simulator; yields the variables that point a run at it
    (and the ODK simulator's store, whose phones get the officers' lists)."""
    secret = secrets.token_hex(20)
    if source == "kobo":
        from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo

        store = KoboStore()
        seed_from_cohort(store, cohort)  # type: ignore[arg-type]
        with serve_kobo(store, secret) as url:
            yield (
                {
                    "SAMMACHIP_KOBO_URL": url,
                    "SAMMACHIP_KOBO_TOKEN": secret,
                    "SAMMACHIP_KOBO_NAME": DEMO_SERVER,
                },
                None,
            )
        return
    from sammachip.flows.field_demo import publish_followup
    from sammachip.simulators.odk import OdkStore, seed_odk_from_cohort, serve_odk

    odk_store = OdkStore()
    seed_odk_from_cohort(odk_store, cohort)  # type: ignore[arg-type]
    publish_followup(odk_store)
    with serve_odk(odk_store, "demo@sammachip.invalid", secret) as url:
        yield (
            {
                "SAMMACHIP_ODK_URL": url,
                "SAMMACHIP_ODK_EMAIL": "demo@sammachip.invalid",
                "SAMMACHIP_ODK_PASSWORD": secret,
                "SAMMACHIP_ODK_PROJECT": "1",
                "SAMMACHIP_ODK_NAME": DEMO_SERVER,
            },
            odk_store,
        )


def _run_flow(name: str, config: Path | None, today: str | None, dask: bool = False) -> None:
    from sammachip.flows import nightly as flows
    from sammachip.flows.settings import ConfigError, load_settings

    try:
        settings = load_settings(config)  # fail fast, before Prefect starts, on a config error
    except ConfigError as err:
        _fail(str(err))
    run = getattr(flows, name)
    if dask:
        run = run.with_options(task_runner=_dask_runner(settings.workers))
    with said_once(), _storage_errors(), prefect_start_errors(_fail):
        summary = run(
            config=str(config) if config else None,
            today=date.fromisoformat(today) if today else None,
        )
    print_summary(summary, deletions=name == "reconcile")
    failed = any(f.error for f in summary.forms) or any(p.error for p in summary.phones)
    if not summary.reconciles or failed:
        raise typer.Exit(code=2)


def _dask_runner(workers: int) -> object:
    """A local Dask cluster of `[run] workers` processes for the forms' fetch + validation."""
    if workers < 2:
        _fail("--dask runs forms on `[run] workers` processes: set workers = 2 or more")
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        _fail("--dask needs prefect-dask: pip install 'sammachip[dask]'")
    cluster = {"n_workers": workers, "processes": True, "threads_per_worker": 1}
    return DaskTaskRunner(cluster_kwargs=cluster)


ConfigOpt = Annotated[Path | None, typer.Option(help="Config TOML (default: bundled).")]
DaskOpt = Annotated[
    bool,
    typer.Option(
        "--dask",
        help="Fetch and validate forms on a local Dask cluster of `[run] workers` "
        "processes (pip install 'sammachip[dask]'); without it, workers are threads.",
    ),
]


@app.command(name="nightly", short_help="Sync every server; write the officer lists.")
def nightly_cmd(config: ConfigOpt = None, today: TodayOpt = None, dask: DaskOpt = False) -> None:
    """Sync every configured server, validate, load, build marts and officer lists."""
    _run_flow("nightly", config, today, dask)


@app.command(name="reconcile", short_help="Weekly: re-read everything, find deletions.")
def reconcile_cmd(config: ConfigOpt = None, today: TodayOpt = None, dask: DaskOpt = False) -> None:
    """Weekly: re-read everything (old edits) and tombstone what servers deleted."""
    _run_flow("reconcile", config, today, dask)


@app.command(short_help="Write the officer lists again, without syncing.")
def report(config: ConfigOpt = None, today: TodayOpt = None) -> None:
    """Write the officer deliverables again from the committed marts (and mail them if the
    config enables it) — without syncing, so without any server's password or token;
    `nightly` does this at its end."""
    from sammachip.flows.nightly import bangkok_today
    from sammachip.flows.officer_files import mail_reports, write_reports
    from sammachip.flows.settings import ConfigError, load_settings
    from sammachip.reports.officer_lists import sync_banner
    from sammachip.warehouse.freshness import sync_notice

    try:
        settings = load_settings(config, servers=False)
    except ConfigError as err:
        _fail(str(err))
    wh = _existing_warehouse(settings.warehouse_path, "the config's [warehouse] path")
    day = date.fromisoformat(today) if today else bangkok_today()
    with _storage_errors():
        files = write_reports.fn(settings, day)
        mail_reports.fn(settings, day)
        notice = sync_notice(wh.snapshot().cursors)
    console.print(f"{len(files)} files in [bold]{files[0].parent if files else '—'}[/]")
    if notice:
        for line in sync_banner(notice):
            err_console.print(f"[yellow]{escape(line)}[/]")


@app.command(short_help="DuckDB SQL over the warehouse.")
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the tables, e.g. 'from alerts limit 5'.")],
    warehouse: WarehouseOpt = Path("data/warehouse"),
    csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of a table.")] = False,
) -> None:
    """Run DuckDB SQL over the warehouse; every table is a view by its name."""
    import duckdb

    from sammachip.warehouse.query import connect

    con = connect(_existing_warehouse(warehouse, "--warehouse"))
    try:
        cursor = con.execute(sql)
    except duckdb.Error as err:
        _fail(f"{err}\nTables: see `sammachip tables`.")
    if cursor.description is None:
        return
    columns = [d[0] for d in cursor.description]
    if csv:
        writer = csv_module.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(cursor.fetchall())
        return
    table = Table(show_lines=False)
    for col in columns:
        table.add_column(col)
    rows = cursor.fetchmany(_MAX_ROWS + 1)
    for row in rows[:_MAX_ROWS]:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    if len(rows) > _MAX_ROWS:
        err_console.print(f"(first {_MAX_ROWS} rows shown; use --csv for all)")


@app.command()
def tables(warehouse: WarehouseOpt = Path("data/warehouse")) -> None:
    """Every table: rows, bytes on disk, files and last commit."""
    from sammachip.warehouse.query import table_stats

    wh = _existing_warehouse(warehouse, "--warehouse")
    out = Table()
    for col in ("table", "rows", "bytes", "files", "last_commit"):
        out.add_column(col, justify="right" if col in {"rows", "bytes", "files"} else "left")
    for s in table_stats(wh):
        out.add_row(
            str(s["table"]),
            str(s["rows"]),
            f"{s['bytes']:,}",
            str(s["files"]),
            str(s["last_commit"] or "—"),
        )
    console.print(out)


@app.command(short_help="Merge small files (same rows, fewer files).")
def compact(
    warehouse: WarehouseOpt = Path("data/warehouse"),
    min_files: Annotated[int, typer.Option(help="Merge a partition from this many files.")] = 8,
) -> None:
    """Merge the many small files that event-driven ingest leaves (same rows, fewer files)."""
    from sammachip.warehouse.housekeeping import compact as compact_tables

    results = compact_tables(_existing_warehouse(warehouse, "--warehouse"), min_files=min_files)
    for r in results:
        console.print(f"{r.table}: {r.files_before} → {r.files_after} files")
    if not results:
        console.print("nothing to compact")


@app.command(short_help="Delete files no recent version reads.")
def vacuum(
    warehouse: WarehouseOpt = Path("data/warehouse"),
    keep_versions: Annotated[int, typer.Option(help="Versions whose files are kept.")] = 10,
    min_age_hours: Annotated[float, typer.Option(help="Only delete files older than this.")] = 24,
) -> None:
    """Delete file versions no recent version reads; the latest state is never touched."""
    from sammachip.warehouse.housekeeping import vacuum as vacuum_files

    r = vacuum_files(
        _existing_warehouse(warehouse, "--warehouse"),
        keep_versions=keep_versions,
        min_age_seconds=min_age_hours * 3600,
    )
    console.print(
        f"deleted {r.files_deleted} files ({r.bytes_freed:,} bytes) and "
        f"{r.manifests_deleted} old manifests"
    )


@simulate.command("odk")
def simulate_odk(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8383,
    villages: Annotated[int | None, typer.Option(help="Villages to generate.")] = None,
    seed: Annotated[int, typer.Option(help="Cohort seed.")] = 2568,
    email: Annotated[
        str, typer.Option(help="Web User e-mail to accept.")
    ] = "demo@sammachip.invalid",
    password: Annotated[
        str | None,
        typer.Option(envvar="SAMMACHIP_ODK_PASSWORD", help="Password to accept (default: random)."),
    ] = None,
) -> None:
    """Serve a generated cohort through the ODK Central simulator until Ctrl-C."""
    from sammachip.flows.nightly import bangkok_today
    from sammachip.simulators.cohort import CohortSpec, generate_cohort
    from sammachip.simulators.odk import OdkStore, run_odk_forever, seed_odk_from_cohort

    cohort = generate_cohort(CohortSpec(seed=seed, villages=villages, today=bangkok_today()))
    store = OdkStore()
    seed_odk_from_cohort(store, cohort)
    password = password or secrets.token_hex(12)
    console.print(cohort.summary())
    console.print(
        f"ODK Central simulator on http://127.0.0.1:{port}  project 1  {email} / {password}"
    )
    run_odk_forever(store, email, password, "127.0.0.1", port)


@simulate.command("kobo")
def simulate_kobo(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8787,
    villages: Annotated[int | None, typer.Option(help="Villages to generate.")] = None,
    seed: Annotated[int, typer.Option(help="Cohort seed.")] = 2568,
    token: Annotated[
        str | None,
        typer.Option(envvar="SAMMACHIP_KOBO_TOKEN", help="Token to accept (default: random)."),
    ] = None,
) -> None:
    """Serve a generated cohort through the KoboToolbox API v2 simulator until Ctrl-C."""
    from sammachip.flows.nightly import bangkok_today
    from sammachip.simulators.cohort import CohortSpec, generate_cohort
    from sammachip.simulators.kobo import KoboStore, run_kobo_forever, seed_from_cohort

    cohort = generate_cohort(CohortSpec(seed=seed, villages=villages, today=bangkok_today()))
    store = KoboStore()
    seed_from_cohort(store, cohort)
    token = token or secrets.token_hex(20)
    console.print(cohort.summary())
    console.print(f"Kobo simulator on http://127.0.0.1:{port}  token: {token}")
    run_kobo_forever(store, token, "127.0.0.1", port)


@app.command(short_help="Everything on one machine: schedules, receiver, Prefect.")
def serve(
    config: Annotated[Path | None, typer.Option(help="Config TOML (default: bundled).")] = None,
    workdir: Annotated[
        Path, typer.Option(envvar="SAMMACHIP_HOME", help="Where data/ lives.")
    ] = Path("."),
    webhook_host: Annotated[
        str | None, typer.Option(help="Receiver address (default: [webhook] host, 127.0.0.1).")
    ] = None,
    webhook_port: Annotated[
        int | None, typer.Option(help="Receiver port, 0: any free (default: [webhook] port, 8788).")
    ] = None,
    prefect_port: Annotated[
        int, typer.Option(help="Port of the local Prefect server started when none is set.")
    ] = 4200,
    prefect_home: Annotated[
        Path | None,
        typer.Option(
            help="PREFECT_HOME of that server, its SQLite database (default: Prefect's, "
            "~/.prefect)."
        ),
    ] = None,
) -> None:
    """Run everything on one machine: Prefect server (unless PREFECT_API_URL is set), the
    nightly/ingest/reconcile schedules and triggers, and the Kobo webhook receiver."""
    from sammachip.connectors.webhook import WebhookConfigError
    from sammachip.flows.serve import ServeOptions, run_serve
    from sammachip.flows.settings import ConfigError, load_settings

    options = ServeOptions(config, workdir, webhook_host, webhook_port, prefect_port, prefect_home)
    try:
        settings = load_settings(config, base_dir=workdir.resolve())
        run_serve(settings, options, say=lambda line: print(line, flush=True))
    except (ConfigError, WebhookConfigError) as err:
        _fail(str(err))


@app.command(short_help="Only the Kobo webhook receiver.")
def webhook(
    config: Annotated[Path | None, typer.Option(help="Config TOML (default: bundled).")] = None,
    workdir: Annotated[
        Path, typer.Option(envvar="SAMMACHIP_HOME", help="Where data/ lives.")
    ] = Path("."),
    host: Annotated[
        str | None, typer.Option(help="Receiver address (default: [webhook] host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Receiver port (default: [webhook] port, 8788).")
    ] = None,
) -> None:
    """Run only the Kobo webhook receiver (events go to PREFECT_API_URL; workers run ingest)."""
    from sammachip.connectors.webhook import WebhookConfigError
    from sammachip.flows.serve import run_webhook
    from sammachip.flows.settings import ConfigError, load_settings

    try:
        settings = load_settings(config, base_dir=workdir.resolve())
        run_webhook(settings, host, port, say=lambda line: print(line, flush=True))
    except (ConfigError, WebhookConfigError) as err:
        _fail(str(err))


if __name__ == "__main__":
    app()
