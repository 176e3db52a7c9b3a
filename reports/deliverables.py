"""Everything officers receive from one run, written into one folder (the nightly flow's
last step and `sammachip report`):

    <officer>_worklist.csv, <officer>_alerts.csv, <officer>_otop.csv  lists as CSV (UTF-8, BOM)
    <officer>.xlsx                                                  the same lists in Excel
    <officer>.html                                                  phone page with charts
    index.html, district_kpis.csv                                   the district's overview
and `mail_deliverables` sends each officer their XLSX and HTML from that folder by e-mail.

Charts are the slow part; their SVGs are kept in a cache folder next to the day folders
(`<reports>/.charts/`), so a run re-renders only the charts whose data changed. With many
officers and `workers` > 1, officers' files are written in that many processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from sammachip.marts.rules import AlertRules
from sammachip.reports.cells import forget_texts
from sammachip.reports.charts import SvgCache, start_engine
from sammachip.reports.csv_files import write_kpi_csv, write_report_csvs
from sammachip.reports.files import CODE_VERSION, Held, file_stem, read_held, write_held, write_text
from sammachip.reports.fixes import PAGE as FIXES_PAGE
from sammachip.reports.fixes import write_fixes
from sammachip.reports.html_report import (
    DISTRICT_CHART_COLUMNS,
    district_charts,
    index_page,
    officer_charts,
    officer_page,
)
from sammachip.reports.mailer import MailResult, MailSettings, send_reports
from sammachip.reports.officer_lists import (
    OfficerCounts,
    OfficerCut,
    OfficerReport,
    OfficerRows,
    PhonesNotice,
    SyncNotice,
    arrow_ipc,
    district_followups,
    district_kpis,
    district_methods,
    officer_cuts,
    officer_report,
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


class _OfficerFiles(NamedTuple):
    paths: list[Path]
    counts: OfficerCounts  # what the district's page says of them
    charts_rendered: int
    charts_cached: int


class _Facts(NamedTuple):
    """What every officer's files say besides their rows."""

    today: date
    notice: SyncNotice | None
    data_as_of: datetime | None
    phones: PhonesNotice | None


def _officer_files(
    rows: OfficerCut | OfficerRows, out_dir: Path, cache_dir: Path, facts: _Facts
) -> _OfficerFiles:
    """One officer's report laid out and written (in a worker process when there are many
    officers: it is handed their rows, and their report lives only there)."""
    report = officer_report(rows.take() if isinstance(rows, OfficerCut) else rows, *facts)
    cache = SvgCache(cache_dir)
    stem = file_stem(report.officer_id)
    csvs = write_report_csvs(report, out_dir, stem)
    xlsx = write_workbook(report, out_dir / f"{stem}.xlsx")
    page = officer_page(report, officer_charts(report, cache))
    paths = [write_text(out_dir / f"{stem}.html", page), xlsx, *csvs]
    return _OfficerFiles(paths, OfficerCounts.of(report), cache.misses, cache.hits)


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
        return iter(_SharedMap(fn, list(items), started, keep=workers - 1))

    try:
        yield shared_map
    except BaseException:
        started.shutdown(cancel_futures=True)  # the run failed: write no more officers' files
        raise
    finally:
        started.shutdown()


class _SharedMap:
    """`fn` of each item, in order, shared between a pool's workers and this process. A
    feeder thread hands the workers items from the front, two each ahead, from the moment the
    map is made (they work while this process does the district's page); this process takes
    items from the back once it asks for the results, so both finish together however long
    the workers took to start or their items to write. Items are handed out as workers
    finish, never submitted all at once and cancelled back: a cancel racing a dying worker's
    breaking of the pool can stop the pool from failing the other futures, and the run would
    wait on them forever. A worker that dies (the OOM killer) leaves its items to this one."""

    def __init__(
        self, fn: Callable[[Any], Any], todo: list[Any], pool: ProcessPoolExecutor, keep: int
    ) -> None:
        self.fn, self.todo, self.pool, self.keep = fn, todo, pool, keep
        self.lock = threading.Lock()
        self.front, self.back = 0, len(todo) - 1
        self.handed: dict[int, Future[Any]] = {}  # index → its finished future
        self.lost: list[int] = []  # handed to a worker that died
        self.feeder = threading.Thread(target=self._feed, name="officer-files", daemon=True)
        self.feeder.start()

    def _take(self, from_front: bool) -> int | None:
        with self.lock:
            if self.front > self.back:
                return None
            if from_front:
                self.front += 1
                return self.front - 1
            self.back -= 1
            return self.back + 1

    def _feed(self) -> None:
        running: dict[Future[Any], int] = {}
        broken = False
        while True:
            while not broken and len(running) < 2 * self.keep:
                i = self._take(from_front=True)
                if i is None:
                    break
                try:
                    running[self.pool.submit(self.fn, self.todo[i])] = i
                except RuntimeError:  # broken, or shut down as the run failed meanwhile
                    self.lost.append(i)
                    broken = True
                    break
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                if future.cancelled():  # the run failed: no more officers' files
                    continue
                if isinstance(future.exception(), BrokenProcessPool):
                    broken = True
                    self.lost.append(i)
                else:
                    self.handed[i] = future

    def __iter__(self) -> Iterator[Any]:
        mine: dict[int, Any] = {}
        while (i := self._take(from_front=False)) is not None:
            mine[i] = self.fn(self.todo[i])
        self.feeder.join()
        if self.lost:
            log.warning("an officer-file worker process died: this process wrote its officers")
            mine |= {i: self.fn(self.todo[i]) for i in self.lost}
        for i in range(len(self.todo)):
            yield mine.pop(i) if i in mine else self.handed.pop(i).result()


def write_deliverables(
    marts: Mapping[str, pa.Table],
    out_dir: Path,
    today: date,
    rules: AlertRules | None = None,
    *,
    cache_dir: Path | None = None,
    workers: int = 1,
    notice: SyncNotice | None = None,
    data_as_of: datetime | None = None,
    fixes: Sequence[dict[str, Any]] | None = None,
    phones: PhonesNotice | None = None,
) -> list[Path]:
    """Write every officer's lists and the district index. Returns the officers' current
    files (index first).

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
        everyone = officer_cuts(marts, rules)
        held = _held_files(out_dir)
        facts = _Facts(today, notice, data_as_of, phones)
        prints = _fingerprints(everyone, marts, _context(facts))
        files = {
            k: _OfficerFiles(h.paths, counts, 0, 0)
            for k, (h, counts) in held.items()
            if k in prints and h.current(prints[k])
        }
        # Only the officers whose rows (or day, or notices) changed are laid out again, each
        # report built where its files are written.
        todo = [r for r in everyone if r.officer.officer_id not in files]
        officer_files = partial(
            _officer_files, out_dir=out_dir, cache_dir=cache.folder, facts=facts
        )
        with _mapper(workers if len(todo) >= PARALLEL_FROM else 1, pool) as map_:
            results = map_(officer_files, todo)
            # the district's page, in this process while the workers write officers' files
            kpis = district_kpis(marts)
            kpi_csv = write_kpi_csv(kpis, out_dir / "district_kpis.csv")
            overview = district_charts([_charted(everyone, marts, today)], cache)
            files |= {r.officer.officer_id: f for r, f in zip(todo, results, strict=True)}
        officers = [r.officer for r in everyone]  # the roster's order
        files = {o.officer_id: files[o.officer_id] for o in officers}
        index = index_page(
            [(o, files[o.officer_id].counts) for o in officers],
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
    write_held(
        out_dir / HELD_FILES,
        {k: Held(prints[k], v.paths, list(v.counts)) for k, v in files.items()},
    )
    log.info(
        "officers: %d written, %d unchanged since this folder's last run; charts: %d rendered, "
        "%d from the cache; %d unused entries pruned",
        len(todo),
        len(everyone) - len(todo),
        cache.misses + sum(r.charts_rendered for r in files.values()),
        cache.hits + sum(r.charts_cached for r in files.values()),
        cache.prune(),
    )
    return written


def _charted(cuts: list[OfficerCut], marts: Mapping[str, pa.Table], today: date) -> OfficerReport:
    """What the district's charts read, as one report: the columns they use of every
    officer's attendance, outcomes and groups, officer after officer in the roster's order
    (each officer's whole report is laid out where their files are written, if they
    changed). One take per mart: a take per officer cost ~0.2 s a delivery at province."""

    def listed(name: str) -> list[dict[str, Any]]:
        if name not in marts:
            return []
        rows = pa.concat_arrays([c.rows[name] for c in cuts])
        return marts[name].select(DISTRICT_CHART_COLUMNS[name]).take(rows).to_pylist()

    return OfficerReport(
        cuts[0].officer,
        today,
        otop=listed("otop_readiness"),
        attendance=listed("attendance_monthly"),
        outcomes=listed("household_outcomes"),
    )


_DUMP = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


def _context(facts: _Facts) -> bytes:
    """What every officer's files are made from besides their rows: the day, what the files
    say of the last sync and push, and the code that lays them out."""
    return CODE_VERSION.encode() + orjson.dumps(list(facts), default=_fields_only, option=_DUMP)


def _fingerprints(
    cuts: list[OfficerCut], marts: Mapping[str, pa.Table], context: bytes
) -> dict[str, str]:
    """What each officer's files are made from: `context`, the officer, and their rows of each
    mart, hashed as Arrow IPC (columnar: no row becomes a Python object). Equal data give equal
    bytes; a layout that differed for equal data would only write the files again. One mart
    at a time is copied (grouped by officer), so no second copy of all the marts is held."""
    digests = {
        c.officer.officer_id: hashlib.sha256(
            context + orjson.dumps(c.officer, default=_fields_only, option=_DUMP)
        )
        for c in cuts
    }
    for name in sorted({name for c in cuts for name in c.rows}):
        grouped = marts[name].take(pa.concat_arrays([c.rows[name] for c in cuts]))
        start = 0
        for c in cuts:
            digest, size = digests[c.officer.officer_id], len(c.rows[name])
            digest.update(name.encode())
            digest.update(arrow_ipc(grouped.slice(start, size)))
            start += size
        del grouped
    return {k: d.hexdigest() for k, d in digests.items()}


def _fields_only(value: Any) -> Any:
    """A dataclass by its fields alone (orjson would also write what its cached properties
    hold)."""
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return str(value)


def _held_files(out_dir: Path) -> dict[str, tuple[Held, OfficerCounts]]:
    """Officer id → what this folder's last run wrote for them, with what the index says of
    them; nothing if the record is unreadable (every officer is written again)."""
    try:
        return {k: (h, OfficerCounts(*h.noted)) for k, h in read_held(out_dir / HELD_FILES).items()}
    except TypeError:
        return {}


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
