"""Row-level validation with Great Expectations: one suite per clean table, stored as JSON in
`schemas/expectations/` (GX's own suite format), run on each batch.

`critical` failures quarantine the whole submission (with every failed expectation and the
offending values); `warning` failures keep the row and add a flag to its `dq_flags`. An answer
that was typed but could not be read is said as such (`explain_unreadable`), never "missing".
GX costs ~3–5 s to import, so it is imported when a `SuiteRunner` is built, once per run —
in the background (`background=True`) while a run lists its forms and fetches the first pages.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from sammachip.schemas.normalise import Unreadable

EXPECTATIONS_DIR = Path(__file__).parent / "expectations"
ROW_ID = "_row"  # surrogate index: business keys may repeat, rows may not
_NOT_NULL = "expect_column_values_to_not_be_null"


@dataclass(frozen=True)
class Failure:
    table: str
    submission_key: str
    expectation: str
    column: str | None
    value: str | None
    severity: str  # "critical" | "warning"
    reason_th: str
    reason_en: str


@dataclass
class SuiteResult:
    table: str
    rows_in: int
    failures: list[Failure]
    expectation_counts: dict[str, int]  # expectation type + column → unexpected rows


def _describe(config: Any) -> tuple[str, str | None, dict[str, Any]]:
    kwargs = dict(config.kwargs)
    column = kwargs.get("column") or kwargs.get("column_A")
    meta = config.meta or {}
    return config.type, column, meta


class SuiteRunner:
    """Holds one GX context and every suite for the length of a run.

    A run builds one and hands it down to whatever validates. A GX context cannot cross
    processes: handed to another process (a Dask worker), a runner arrives as that process's
    own (`process_runner`), built once and shared by every task the process runs.

    With `background=True` GX is imported and the context built on a thread of its own, and
    the constructor returns at once: a run starts fetching meanwhile, and what needs GX waits
    for it (a failure to build is raised there)."""

    def __init__(self, suites_dir: Path = EXPECTATIONS_DIR, *, background: bool = False) -> None:
        self._suites_dir = suites_dir
        self._lock = threading.Lock()  # one validation (or Data Docs build) at a time
        self.batches_validated = 0
        self._started = threading.Event()
        self._error: BaseException | None = None
        if background:
            threading.Thread(target=self._build, name="gx-start", daemon=True).start()
        else:
            self._start_gx()
            self._started.set()

    def _build(self) -> None:
        try:
            self._start_gx()
        except BaseException as err:  # said to whoever needs GX, on their thread
            self._error = err
        finally:
            self._started.set()

    def _ready(self) -> None:
        """Wait until GX is ready; raise what stopped it."""
        self._started.wait()
        if self._error is not None:
            raise RuntimeError(f"Great Expectations could not start: {self._error}") from (
                self._error
            )

    def _start_gx(self) -> None:
        logging.getLogger("great_expectations").setLevel(logging.WARNING)  # no INFO chatter
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        import sammachip.schemas.expectations_thai  # noqa: F401  (registers the Thai expectations)

        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self._context.data_sources.add_pandas("sammachip")
        self._definitions: dict[str, Any] = {}
        for path in sorted(self._suites_dir.glob("*.json")):
            self._add_suite(path.stem, json.loads(path.read_text(encoding="utf-8")))

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return process_runner, (self._suites_dir,)

    @property
    def context(self) -> Any:
        self._ready()
        return self._context

    def _add_suite(self, table: str, suite_json: dict[str, Any]) -> None:
        gx = self._gx
        suite_json.pop("id", None)
        suite = self._context.suites.add(gx.ExpectationSuite(**suite_json))
        batch = self._source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(
            "batch"
        )
        self._definitions[table] = self._context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{table}_validation", data=batch, suite=suite)
        )

    def build_data_docs(self, folder: Path) -> Path:
        """GX Data Docs (suites and this run's validation results) as static HTML in `folder`."""
        self._ready()
        folder.mkdir(parents=True, exist_ok=True)
        site = f"sammachip_{abs(hash(folder))}"
        self._context.add_data_docs_site(
            site_name=site,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(folder),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        with self._lock:
            self._context.build_data_docs(site_names=[site])
        return folder / "index.html"

    def tables(self) -> list[str]:
        self._ready()
        return list(self._definitions)

    def validate(self, table: str, frame: pd.DataFrame) -> SuiteResult:
        """Validate one table's batch; `frame` must carry `submission_key` and `_row`."""
        self._ready()
        if table not in self._definitions or frame.empty:
            return SuiteResult(table, len(frame), [], {})
        with self._lock:  # GX's pandas engine holds one active batch per context
            self.batches_validated += 1
            result = self._run(table, frame)
        return self._failures(table, frame, result)

    def _run(self, table: str, frame: pd.DataFrame) -> Any:
        return self._definitions[table].run(
            batch_parameters={"dataframe": frame},
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": [ROW_ID],
                "return_unexpected_index_query": False,
                # GX keeps each result for its Data Docs: only row ids, never the values (a
                # mistyped national ID would be shown whole); values are read from `frame`.
                "exclude_unexpected_values": True,
            },
        )

    def _failures(self, table: str, frame: pd.DataFrame, result: Any) -> SuiteResult:
        rows = frame.set_index(ROW_ID)
        failures: list[Failure] = []
        counts: dict[str, int] = {}
        for r in result.results:
            kind, column, meta = _describe(r.expectation_config)
            if problem := _raised(r.exception_info):
                raise RuntimeError(
                    f"expectation {kind} on {table}.{column} could not run: {problem}"
                )
            unexpected = _unexpected_rows(r.result)
            counts[f"{kind}:{column}"] = len(unexpected)
            severity = str(r.expectation_config.severity.value)
            for row in unexpected:
                value = rows.at[row, column] if column else None
                failures.append(
                    Failure(
                        table=table,
                        submission_key=str(rows.at[row, "submission_key"]),
                        expectation=kind,
                        column=column,
                        value=None if _is_missing(value) else str(value),
                        severity=severity,
                        reason_th=meta.get("reason_th", kind),
                        reason_en=meta.get("reason_en", kind),
                    )
                )
        return SuiteResult(table, len(frame), failures, counts)


def process_runner(suites_dir: Path = EXPECTATIONS_DIR) -> SuiteRunner:
    """This process's runner, for tasks that a run's own runner cannot reach (another
    process): what a `SuiteRunner` becomes when it is unpickled."""
    with _BUILDING:  # two threads arriving first must not build two
        return _built(suites_dir)


_BUILDING = threading.Lock()


@cache  # one per process (and suites folder): GX loads in seconds
def _built(suites_dir: Path) -> SuiteRunner:
    return SuiteRunner(suites_dir)


def _unexpected_rows(result: dict[str, Any]) -> list[Any]:
    """Row ids of the failing rows: with `exclude_unexpected_values` GX lists them as one
    `{ROW_ID: [...]}` entry (none when every row passed)."""
    return [row for entry in result.get("unexpected_index_list") or [] for row in entry[ROW_ID]]


def _raised(info: Any) -> str | None:
    """GX reports an expectation that could not run either at the top of `exception_info` or
    per failed metric beneath it; a silent failure would look like a pass."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    return next((m for v in info.values() if (m := _raised(v))), None)


def _is_missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def explain_unreadable(
    failures: list[Failure], parents: Mapping[str, Mapping[str, Any]]
) -> list[Failure]:
    """Say of each value that was typed but could not be read what was wrong with it.

    Flattening leaves such a value null and lists it in the parent row's `unreadable`, so the
    suites fail twice: the check that every answer could be read (one reason for them all)
    and the column's not-null check ("… is missing", which is untrue). Both give way to one
    failure per unreadable answer: its key, the value as typed and why, in Thai and English.
    An answer fills the column named by the last part of its key (`hh/house_no` → house_no,
    `attendees[2]/attendees/present` → present); within a submission, no not-null failure is
    kept for a column an unreadable answer fills (the submission is quarantined either way).
    """
    explained: list[Failure] = []
    for f in failures:
        unread = (parents.get(f.submission_key) or {}).get("unreadable") or []
        if not unread:
            explained.append(f)
        elif f.column == "parse_errors":
            explained.extend(_unreadable_failure(f, key, why) for key, why in unread)
        elif f.expectation != _NOT_NULL or f.column not in {_column_of(k) for k, _ in unread}:
            explained.append(f)
    return explained


def _unreadable_failure(f: Failure, key: str, why: Unreadable) -> Failure:
    reason_th, reason_en = why.reasons(key)
    return replace(
        f, column=_column_of(key), value=str(why.value), reason_th=reason_th, reason_en=reason_en
    )


def _column_of(answer_key: str) -> str:
    return answer_key.rsplit("/", 1)[-1]
