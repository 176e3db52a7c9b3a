"""Everything officers receive from one run, written into one folder (the nightly flow's
last step and `sammachip report`):

    <officer>_worklist.csv, <officer>_alerts.csv, <officer>_otop.csv  lists as CSV (UTF-8, BOM)
    <officer>.xlsx                                                  the same lists in Excel
    <officer>.html                                                  phone page with charts
    index.html, district_kpis.csv                                   the district's overview
and, when mail settings are given, each officer's XLSX and HTML by e-mail.

Charts are the slow part; their SVGs are kept in a cache folder next to the day folders
(`<reports>/.charts/`), so a run re-renders only the charts whose data changed. With many
officers and `workers` > 1, officers' files are written in that many processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from sammachip.marts.rules import AlertRules
from sammachip.reports.cells import forget_texts
from sammachip.reports.charts import SvgCache, start_engine
from sammachip.reports.csv_files import write_kpi_csv, write_report_csvs
from sammachip.reports.files import file_stem, write_text
from sammachip.reports.fixes import PAGE as FIXES_PAGE
from sammachip.reports.fixes import write_fixes
from sammachip.reports.html_report import district_charts, index_page, officer_charts, officer_page
from sammachip.reports.mailer import MailResult, MailSettings, send_reports
from sammachip.reports.officer_lists import (
    OfficerReport,
    PhonesNotice,
    SyncNotice,
    district_followups,
    district_kpis,
    district_methods,
    officer_reports,
)
from sammachip.reports.processes import spawn_pool
from sammachip.reports.workbook import write_workbook

log = logging.getLogger(__name__)

CHART_CACHE = ".charts"  # next to the day folders: one cache for every day's run
# Fewer officers are written sooner in this process than worker processes start (~1 s each).
PARALLEL_FROM = 16
# This folder's record of which officer files were made from what (see `write_deliverables`).
HELD_FILES = ".officers.json"


def _code_version() -> str:
    """A new release may lay the lists out anew (a checkout run without installing: "dev")."""
    try:
        return version("sammachip")
    except PackageNotFoundError:
        return "dev"


_CODE_VERSION = _code_version()


class _OfficerFiles(NamedTuple):
    paths: list[Path]
    charts_rendered: int
    charts_cached: int


def _officer_files(report: OfficerReport, out_dir: Path, cache_dir: Path) -> _OfficerFiles:
    """One officer's files (run in a worker process when there are many officers)."""
    cache = SvgCache(cache_dir)
    stem = file_stem(report.officer_id)
    csvs = write_report_csvs(report, out_dir, stem)
    xlsx = write_workbook(report, out_dir / f"{stem}.xlsx")
    page = officer_page(report, officer_charts(report, cache))
    paths = [write_text(out_dir / f"{stem}.html", page), xlsx, *csvs]
    return _OfficerFiles(paths, cache.misses, cache.hits)


def _warm_worker() -> None:
    """A worker's start, done while this process reads the marts: the report modules imported
    (unpickling this function imports this module and so all of them) and the chart engine
    running."""
    start_engine()


def _early_pool(workers: int, rules: AlertRules, out_dir: Path) -> ProcessPoolExecutor | None:
    """Worker processes started now, when a run will write many officers' files: the folder's
    first run (nothing held yet) with a roster of at least PARALLEL_FROM. They start (~1-2 s)
    while this process reads and lays out the lists, instead of after."""
    if workers <= 1 or len(rules.officers()) < PARALLEL_FROM or (out_dir / HELD_FILES).exists():
        return None
    return spawn_pool(workers - 1, _warm_worker)


@contextmanager
def _mapper(
    workers: int, pool: ProcessPoolExecutor | None = None
) -> Iterator[Callable[..., Iterator[Any]]]:
    """`map` over `workers` processes — this one and `workers - 1` others (`pool`, when they
    were started early) — or the built-in (lazy) one for a single worker.

    Processes, not threads: the work is Python and vl-convert, both holding the GIL. Spawned,
    not forked: forking a process that runs threads (Prefect's, DuckDB's) can deadlock. This
    process takes its share rather than waiting: one process fewer (~230 MB) for the same pace.
    """
    if workers <= 1:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        yield map
        return
    started = pool or spawn_pool(workers - 1, _warm_worker)

    def shared_map(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return _shared_results(fn, list(items), started, keep=workers - 1)

    try:
        yield shared_map
    except BaseException:
        started.shutdown(cancel_futures=True)  # the run failed: write no more officers' files
        raise
    finally:
        started.shutdown()


def _shared_results(
    fn: Callable[[Any], Any], todo: list[Any], pool: ProcessPoolExecutor, keep: int
) -> Iterator[Any]:
    """`fn` of each item, in order. The workers are handed items from the front, two each
    ahead, this process takes them from the back, so both finish together however long the
    workers took to start or their items to write. Items are handed out as the workers
    finish rather than all at once and taken back: a future cancelled while a dying worker
    breaks the pool can stop the pool from failing the others, and the run would wait on
    them forever. A worker that dies (the OOM killer) leaves its items to this process."""
    done: dict[int, Any] = {}
    handed: dict[int, Future[Any]] = {}
    front, back, broken = 0, len(todo) - 1, False

    def hand_out() -> None:
        nonlocal front
        while not broken and len(handed) < 2 * keep and front <= back:
            handed[front] = pool.submit(fn, todo[front])
            front += 1

    def collect(i: int, future: Future[Any]) -> None:
        nonlocal broken
        try:
            done[i] = future.result()
        except BrokenProcessPool as err:
            if not broken:
                log.warning(
                    "an officer-file worker process died (%s): this one writes the rest", err
                )
            broken = True
            done[i] = fn(todo[i])

    hand_out()
    while front <= back:
        done[back] = fn(todo[back])
        back -= 1
        for i in [i for i, future in handed.items() if future.done()]:
            collect(i, handed.pop(i))
        hand_out()
    for i, future in handed.items():
        collect(i, future)
    for i in range(len(todo)):
        yield done.pop(i)


def write_deliverables(
    marts: Mapping[str, pa.Table],
    out_dir: Path,
    today: date,
    rules: AlertRules | None = None,
    *,
    mail: MailSettings | None = None,
    cache_dir: Path | None = None,
    workers: int = 1,
    notice: SyncNotice | None = None,
    data_as_of: datetime | None = None,
    fixes: Sequence[dict[str, Any]] | None = None,
    phones: PhonesNotice | None = None,
) -> list[Path]:
    """Write every officer's lists and the district index; mail them if `mail` is given.
    Returns the officers' current files (index first).

    An officer whose lists are what this folder already holds for them (a second run the same
    day: the ingest after each delivery) keeps their files: only officers whose lists changed
    are written again. The district's index and KPIs are always written.

    cache_dir: where rendered charts are kept between runs (default `<out_dir>/../.charts`).
    workers: processes writing officers' files when there are at least PARALLEL_FROM to write.
    notice: the last sync failed: the workbooks, phone pages and the index carry a banner.
    data_as_of: the last complete sync (`warehouse.freshness.data_as_of`), said at the top of
    every file.
    phones: the last push to the phones failed (`warehouse.freshness.phones_notice`): every
    officer's files and the index carry a banner.
    fixes: the answers to correct (`fixes.enumerator_fixes`): the data manager's page and a
    file per enumerator are written too.
    """
    rules = rules or AlertRules()
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = SvgCache(cache_dir or out_dir.parent / CHART_CACHE)
    pool = _early_pool(workers, rules, out_dir)
    try:
        reports = officer_reports(marts, today, rules, notice, data_as_of, phones)
        held = _held_files(out_dir)
        prints = {r.officer_id: _fingerprint(r) for r in reports}
        files = {
            r.officer_id: _OfficerFiles(held[r.officer_id][1], 0, 0)
            for r in reports
            if _unchanged(held.get(r.officer_id), prints[r.officer_id])
        }
        todo = [r for r in reports if r.officer_id not in files]
        officer_files = partial(_officer_files, out_dir=out_dir, cache_dir=cache.folder)
        with _mapper(workers if len(todo) >= PARALLEL_FROM else 1, pool) as map_:
            results = map_(officer_files, todo)
            # the district's page, in this process while the workers write officers' files
            kpis = district_kpis(marts)
            kpi_csv = write_kpi_csv(kpis, out_dir / "district_kpis.csv")
            overview = district_charts(reports, cache)
            files |= {r.officer_id: result for r, result in zip(todo, results, strict=True)}
        files = {r.officer_id: files[r.officer_id] for r in reports}  # the roster's order
        index = index_page(
            reports,
            kpis,
            overview,
            today,
            rules.district_officer.name,
            {k: [p.name for p in v.paths] for k, v in files.items()},
            notice,
            data_as_of,
            FIXES_PAGE if fixes is not None else None,
            district_methods(marts),
            phones,
            district_followups(marts),
        )
    finally:
        if pool is not None:  # started early: ended here too if the run failed before using it
            pool.shutdown(cancel_futures=True)
        forget_texts()  # officers' data stays no longer in memory than the run needs
    written = [write_text(out_dir / "index.html", index), kpi_csv]
    if fixes is not None:
        written += write_fixes(fixes, out_dir, today, data_as_of)
    written += [p for result in files.values() for p in result.paths]
    held_now = {k: [prints[k], [p.name for p in v.paths]] for k, v in files.items()}
    write_text(out_dir / HELD_FILES, json.dumps(held_now, indent=1))
    log.info(
        "officers: %d written, %d unchanged since this folder's last run; charts: %d rendered, "
        "%d from the cache; %d unused entries pruned",
        len(todo),
        len(reports) - len(todo),
        cache.misses + sum(r.charts_rendered for r in files.values()),
        cache.hits + sum(r.charts_cached for r in files.values()),
        cache.prune(),
    )
    if mail is not None:
        mail_deliverables(marts, out_dir, today, rules, mail)
    return written


def _fingerprint(report: OfficerReport) -> str:
    """What an officer's files are made from: their lists, and the code that lays them out."""
    options = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
    data = orjson.dumps(report, default=_fields_only, option=options)
    return hashlib.sha256(_CODE_VERSION.encode() + data).hexdigest()


def _fields_only(value: Any) -> Any:
    """A dataclass by its fields alone (orjson would also write what its cached properties
    hold, so a report's fingerprint would change once its rows were laid out)."""
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return str(value)


def _held_files(out_dir: Path) -> dict[str, tuple[str, list[Path]]]:
    """Officer id → (fingerprint, files) as this folder's last run wrote them; nothing if the
    record is missing or unreadable (every officer is written again)."""
    try:
        doc = json.loads((out_dir / HELD_FILES).read_text(encoding="utf-8"))
        return {k: (v[0], [out_dir / Path(n).name for n in v[1]]) for k, v in doc.items()}
    except (OSError, ValueError, TypeError, IndexError, AttributeError):
        return {}


def _unchanged(held: tuple[str, list[Path]] | None, fingerprint: str) -> bool:
    return held is not None and held[0] == fingerprint and all(p.exists() for p in held[1])


def mail_deliverables(
    marts: Mapping[str, pa.Table],
    out_dir: Path,
    today: date,
    rules: AlertRules,
    mail: MailSettings,
) -> MailResult:
    """Mail each officer with an address their workbook and page from `out_dir` (written by
    `write_deliverables`); the district office also gets the index."""
    district = rules.district_officer.officer_id

    def attachments(report: OfficerReport) -> list[Path]:
        stem = file_stem(report.officer_id)
        mine = [out_dir / f"{stem}.xlsx", out_dir / f"{stem}.html"]
        if report.officer_id == district:
            mine.insert(0, out_dir / "index.html")
        return [p for p in mine if p.exists()]

    reports = officer_reports(marts, today, rules)
    result = send_reports(((r, attachments(r)) for r in reports), mail)
    log.info(
        "mail: sent %d, skipped %d (no address), failed %d",
        len(result.sent),
        len(result.skipped),
        len(result.failed),
    )
    return result
