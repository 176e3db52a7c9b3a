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
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows.runtime import apply_prefect_defaults, prefect_start_errors

apply_prefect_defaults()  # before anything imports Prefect

app = typer.Typer(
    help="sammachip: สัมมาชีพชุมชน forms → validated warehouse → officer lists.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
simulate = typer.Typer(help="Run a built-in server simulator on loopback.")
app.add_typer(simulate, name="simulate")
console = Console()
err_console = Console(stderr=True)

_MAX_ROWS = 200
WarehouseOpt = Annotated[Path, typer.Option(help="Warehouse folder.")]


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")  # [[kobo]] is not markup
    raise typer.Exit(code=1)


@contextmanager
def _storage_errors() -> Iterator[None]:
    """A warehouse that cannot be written, or a full disk, as one line saying what to do."""
    from warehouse.storage import NO_ROOM, WarehouseError

    try:
        yield
    except WarehouseError as err:
        _fail(str(err))
    except OSError as err:
        if err.errno not in NO_ROOM:
            raise
        _fail(f"no room on the disk ({err}). The warehouse only ever shows whole runs, so it "
              "is as the last complete run left it, but officer files may be partly written: "
              "free space, then run `sammachip report` to write them again")  # fmt: skip


def print_summary(summary: object, workdir: Path | None = None) -> None:
    """The run summary an officer or data manager reads: counts that reconcile, then outputs."""
    from flows.nightly import RunSummary

    assert isinstance(summary, RunSummary)
    forms = Table(title="ผลการดึงข้อมูล / sync result", title_justify="left")
    for col in ("form", "fetched", "new", "clean", "quarantined", "note"):
        forms.add_column(col, justify="left" if col in {"form", "note"} else "right")
    for f in summary.forms:
        note = (
            f"[red]{f.error}[/]"
            if f.error
            else (
                "ok" if f.new_versions == f.clean + f.quarantined else "[red]does not reconcile[/]"
            )
        )
        forms.add_row(
            f.form_id, str(f.fetched), str(f.new_versions), str(f.clean), str(f.quarantined), note
        )
    console.print(forms)
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
    console.print(
        f"Warehouse version {summary.warehouse_version}; query it with "
        f'[bold]sammachip query "select * from alerts limit 5"[/]'
        + (f" --warehouse {workdir / 'data' / 'warehouse'}" if workdir else "")
    )


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where data/ is written.")] = Path("."),
    villages: Annotated[
        int | None, typer.Option(help="Villages to generate (default: all of Muang Sam Sip).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Cohort seed.")] = 2568,
    today: Annotated[str | None, typer.Option(help="Reference date YYYY-MM-DD.")] = None,
    source: Annotated[str, typer.Option(help="Simulated server: kobo or odk.")] = "kobo",
) -> None:
    """Generate a cohort, serve it from a built-in simulator, run `nightly` against it."""
    from connectors.simulators.cohort import CohortSpec, generate_cohort
    from flows.nightly import bangkok_today, nightly

    if source not in {"kobo", "odk"}:
        _fail(f"--source must be kobo or odk, not {source!r}")
    ref = date.fromisoformat(today) if today else bangkok_today()
    with console.status("Generating the cohort / สร้างข้อมูลตัวอย่าง …"):
        cohort = generate_cohort(CohortSpec(seed=seed, villages=villages, today=ref))
    console.print(cohort.summary())
    with _simulated_server(source, cohort) as env:
        os.environ.update(env)  # this process only; the secrets are throwaway
        url = env.get("SAMMACHIP_KOBO_URL") or env.get("SAMMACHIP_ODK_URL")
        console.print(f"{source} simulator listening on {url}")
        workdir.mkdir(parents=True, exist_ok=True)
        with prefect_start_errors(_fail):
            summary = nightly(workdir=str(workdir.resolve()), today=ref)
    print_summary(summary, workdir)


@contextmanager
def _simulated_server(source: str, cohort: object) -> Iterator[dict[str, str]]:
    """Serve a cohort from the chosen simulator; yields the variables that point a run at it."""
    secret = secrets.token_hex(20)
    if source == "kobo":
        from connectors.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo

        store = KoboStore()
        seed_from_cohort(store, cohort)  # type: ignore[arg-type]
        with serve_kobo(store, secret) as url:
            yield {"SAMMACHIP_KOBO_URL": url, "SAMMACHIP_KOBO_TOKEN": secret}
        return
    from connectors.simulators.odk import OdkStore, seed_odk_from_cohort, serve_odk

    odk_store = OdkStore()
    seed_odk_from_cohort(odk_store, cohort)  # type: ignore[arg-type]
    with serve_odk(odk_store, "demo@sammachip.invalid", secret) as url:
        yield {"SAMMACHIP_ODK_URL": url, "SAMMACHIP_ODK_EMAIL": "demo@sammachip.invalid",
               "SAMMACHIP_ODK_PASSWORD": secret, "SAMMACHIP_ODK_PROJECT": "1"}  # fmt: skip


def _run_flow(name: str, config: Path | None, today: str | None, dask: bool = False) -> None:
    from flows import nightly as flows
    from flows.settings import ConfigError, load_settings

    try:
        settings = load_settings(config)  # fail fast, before Prefect starts, on a config error
    except ConfigError as err:
        _fail(str(err))
    run = getattr(flows, name)
    if dask:
        run = run.with_options(task_runner=_dask_runner(settings.workers))
    with _storage_errors(), prefect_start_errors(_fail):
        summary = run(config=str(config) if config else None,
                      today=date.fromisoformat(today) if today else None)  # fmt: skip
    print_summary(summary)
    if not summary.reconciles or any(f.error for f in summary.forms):
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
TodayOpt = Annotated[str | None, typer.Option(help="Reference date YYYY-MM-DD.")]
DaskOpt = Annotated[bool, typer.Option(
    "--dask", help="Fetch and validate forms on a local Dask cluster of `[run] workers` "
    "processes (pip install 'sammachip[dask]'); without it, workers are threads.")]  # fmt: skip


@app.command(name="nightly")
def nightly_cmd(config: ConfigOpt = None, today: TodayOpt = None, dask: DaskOpt = False) -> None:
    """Sync every configured server, validate, load, build marts and officer lists."""
    _run_flow("nightly", config, today, dask)


@app.command(name="reconcile")
def reconcile_cmd(config: ConfigOpt = None, today: TodayOpt = None, dask: DaskOpt = False
                  ) -> None:  # fmt: skip
    """Weekly: re-read everything (old edits) and tombstone what servers deleted."""
    _run_flow("reconcile", config, today, dask)


@app.command()
def report(
    config: Annotated[Path | None, typer.Option(help="Config TOML (default: bundled).")] = None,
    today: Annotated[str | None, typer.Option(help="Date of the lists, YYYY-MM-DD.")] = None,
) -> None:
    """Write the officer deliverables again from the committed marts (and mail them if the
    config enables it) — without syncing; `nightly` does this at its end."""
    from flows.nightly import bangkok_today, write_reports
    from flows.settings import ConfigError, load_settings

    try:
        settings = load_settings(config, require_sources=False)
    except ConfigError as err:
        _fail(str(err))
    day = date.fromisoformat(today) if today else bangkok_today()
    with _storage_errors():
        files = write_reports.fn(settings, day)
    console.print(f"{len(files)} files in [bold]{files[0].parent if files else '—'}[/]")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the tables, e.g. 'from alerts limit 5'.")],
    warehouse: WarehouseOpt = Path("data/warehouse"),
    csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of a table.")] = False,
) -> None:
    """Run DuckDB SQL over the warehouse; every table is a view by its name."""
    import duckdb

    from warehouse.load import open_warehouse
    from warehouse.query import connect

    con = connect(open_warehouse(str(warehouse)))
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
    from warehouse.load import open_warehouse
    from warehouse.query import table_stats

    out = Table()
    for col in ("table", "rows", "bytes", "files", "last_commit"):
        out.add_column(col, justify="right" if col in {"rows", "bytes", "files"} else "left")
    for s in table_stats(open_warehouse(str(warehouse))):
        out.add_row(
            str(s["table"]),
            str(s["rows"]),
            f"{s['bytes']:,}",
            str(s["files"]),
            str(s["last_commit"] or "—"),
        )
    console.print(out)


@app.command()
def compact(
    warehouse: WarehouseOpt = Path("data/warehouse"),
    min_files: Annotated[int, typer.Option(help="Merge a partition from this many files.")] = 8,
) -> None:
    """Merge the many small files that event-driven ingest leaves (same rows, fewer files)."""
    from warehouse.housekeeping import compact as compact_tables
    from warehouse.load import open_warehouse

    results = compact_tables(open_warehouse(str(warehouse)), min_files=min_files)
    for r in results:
        console.print(f"{r.table}: {r.files_before} → {r.files_after} files")
    if not results:
        console.print("nothing to compact")


@app.command()
def vacuum(
    warehouse: WarehouseOpt = Path("data/warehouse"),
    keep_versions: Annotated[int, typer.Option(help="Versions whose files are kept.")] = 10,
    min_age_hours: Annotated[float, typer.Option(help="Only delete files older than this.")] = 24,
) -> None:
    """Delete file versions no recent version reads; the latest state is never touched."""
    from warehouse.housekeeping import vacuum as vacuum_files
    from warehouse.load import open_warehouse

    r = vacuum_files(open_warehouse(str(warehouse)), keep_versions=keep_versions,
                     min_age_seconds=min_age_hours * 3600)  # fmt: skip
    console.print(f"deleted {r.files_deleted} files ({r.bytes_freed:,} bytes) and "
                  f"{r.manifests_deleted} old manifests")  # fmt: skip


@simulate.command("odk")
def simulate_odk(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8383,
    villages: Annotated[int | None, typer.Option(help="Villages to generate.")] = None,
    seed: Annotated[int, typer.Option()] = 2568,
    email: Annotated[
        str, typer.Option(help="Web User e-mail to accept.")
    ] = "demo@sammachip.invalid",
    password: Annotated[
        str | None,
        typer.Option(envvar="SAMMACHIP_ODK_PASSWORD", help="Password to accept (default: random)."),
    ] = None,
) -> None:
    """Serve a generated cohort through the ODK Central simulator until Ctrl-C."""
    from connectors.simulators.cohort import CohortSpec, generate_cohort
    from connectors.simulators.odk import OdkStore, run_odk_forever, seed_odk_from_cohort
    from flows.nightly import bangkok_today

    cohort = generate_cohort(CohortSpec(seed=seed, villages=villages, today=bangkok_today()))
    store = OdkStore()
    seed_odk_from_cohort(store, cohort)
    password = password or secrets.token_hex(12)
    console.print(cohort.summary())
    console.print(f"ODK Central simulator on http://127.0.0.1:{port}  project 1  "
                  f"{email} / {password}")  # fmt: skip
    run_odk_forever(store, email, password, "127.0.0.1", port)


@simulate.command("kobo")
def simulate_kobo(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8787,
    villages: Annotated[int | None, typer.Option(help="Villages to generate.")] = None,
    seed: Annotated[int, typer.Option()] = 2568,
    token: Annotated[
        str | None,
        typer.Option(envvar="SAMMACHIP_KOBO_TOKEN", help="Token to accept (default: random)."),
    ] = None,
) -> None:
    """Serve a generated cohort through the KoboToolbox API v2 simulator until Ctrl-C."""
    from connectors.simulators.cohort import CohortSpec, generate_cohort
    from connectors.simulators.kobo import KoboStore, run_kobo_forever, seed_from_cohort
    from flows.nightly import bangkok_today

    cohort = generate_cohort(CohortSpec(seed=seed, villages=villages, today=bangkok_today()))
    store = KoboStore()
    seed_from_cohort(store, cohort)
    token = token or secrets.token_hex(20)
    console.print(cohort.summary())
    console.print(f"Kobo simulator on http://127.0.0.1:{port}  token: {token}")
    run_kobo_forever(store, token, "127.0.0.1", port)


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option(help="Config TOML (default: bundled).")] = None,
    workdir: Annotated[
        Path, typer.Option(envvar="SAMMACHIP_HOME", help="Where data/ lives.")
    ] = Path("."),
    webhook_host: Annotated[str | None, typer.Option(help="Receiver address.")] = None,
    webhook_port: Annotated[int | None, typer.Option(help="Receiver port (0: any free).")] = None,
    prefect_port: Annotated[
        int, typer.Option(help="Port of the local Prefect server started when none is set.")
    ] = 4200,
    prefect_home: Annotated[
        Path | None, typer.Option(help="PREFECT_HOME of that server (its SQLite database).")
    ] = None,
) -> None:
    """Run everything on one machine: Prefect server (unless PREFECT_API_URL is set), the
    nightly/ingest/reconcile schedules and triggers, and the Kobo webhook receiver."""
    from connectors.webhook import WebhookConfigError
    from flows.serve import ServeOptions, run_serve
    from flows.settings import ConfigError

    options = ServeOptions(config, workdir, webhook_host, webhook_port, prefect_port, prefect_home)
    try:
        run_serve(options, say=lambda line: print(line, flush=True))
    except (ConfigError, WebhookConfigError) as err:
        _fail(str(err))


@app.command()
def webhook(
    config: Annotated[Path | None, typer.Option(help="Config TOML (default: bundled).")] = None,
    workdir: Annotated[
        Path, typer.Option(envvar="SAMMACHIP_HOME", help="Where data/ lives.")
    ] = Path("."),
    host: Annotated[str | None, typer.Option(help="Receiver address.")] = None,
    port: Annotated[int | None, typer.Option(help="Receiver port.")] = None,
) -> None:
    """Run only the Kobo webhook receiver (events go to PREFECT_API_URL; workers run ingest)."""
    from connectors.webhook import WebhookConfigError
    from flows.serve import run_webhook
    from flows.settings import ConfigError

    try:
        run_webhook(config, workdir, host, port, say=lambda line: print(line, flush=True))
    except (ConfigError, WebhookConfigError) as err:
        _fail(str(err))


if __name__ == "__main__":
    app()
