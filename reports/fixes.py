"""The data manager's page: what each enumerator must correct, in which submission.

Every quarantined submission has an enumerator: whoever the server says sent it — Kobo's
`_submitted_by` (empty for the anonymous data-collector link), ODK Central's
`__system/submitterName`. Only the raw payload says it, so the latest raw version of each
quarantined submission is read (`Senders`: a process remembers what each raw file said, so a
delivery reads only what it added). Written beside the officers' files:

    data_manager.html         per enumerator: the form's Thai title, the person or household,
                              when it was sent, which answer and why it was held back
    fixes_<enumerator>.csv    the same list, one file per enumerator, to send them

Like the officers' files, a second run the same day (the ingest after each delivery) rewrites
only the enumerators' files whose rows changed, and the page only when what it says did
(`.enumerators.json` in the day's folder records what each was made from).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sammachip.reports.cells import be_date
from sammachip.reports.csv_files import write_csv
from sammachip.reports.files import (
    CODE_VERSION,
    Held,
    file_stem,
    read_held,
    write_held,
    write_text,
)
from sammachip.reports.html_report import as_of_line, html_page
from sammachip.reports.html_worklist import esc
from sammachip.reports.officer_lists import office_time
from sammachip.schemas.admin_codes import village_label
from sammachip.schemas.registry import FORMS

if TYPE_CHECKING:
    from sammachip.warehouse.store import Snapshot, Warehouse

Row = dict[str, Any]
PAGE = "data_manager.html"
HELD_FILES = ".enumerators.json"  # this folder's record of what each file was made from
ANONYMOUS = "ไม่ทราบผู้ส่ง (anonymous link)"
FIX_COLUMNS: list[tuple[str, str]] = [
    ("form_th", "แบบฟอร์ม (form)"),
    ("who", "ครัวเรือน/บุคคล/กลุ่ม (who)"),
    ("village", "หมู่บ้าน (village)"),
    ("sent", "ส่งเมื่อ (submitted)"),
    ("submission_id", "รหัสส่ง (submission)"),
    ("field", "คำถาม (question)"),
    ("value", "คำตอบที่ส่ง (answer sent)"),
    ("reason_th", "ต้องแก้ไข (what to fix)"),
]


def submitter(payload: dict[str, Any]) -> str | None:
    """Who the server says sent a submission (Kobo or ODK Central), if anyone."""
    by = payload.get("_submitted_by")
    if by:
        return str(by)
    system = payload.get("__system")
    name = system.get("submitterName") if isinstance(system, dict) else None
    return str(name) if name else None


def enumerator_fixes(wh: Warehouse, snapshot: Snapshot | None = None) -> list[Row]:
    """One row per answer to fix, with its enumerator, from a committed version."""
    snapshot = snapshot or wh.snapshot()
    quarantine = wh.read("quarantine", snapshot).to_pylist()
    keys: dict[str, set[str]] = defaultdict(set)
    for q in quarantine:
        keys[q["form_id"]].add(q["submission_key"])
    by = SENDERS.of(wh.storage.fs, wh.files("raw_submissions", snapshot), keys)
    rows = [_fix(q, by.get(q["submission_key"])) for q in quarantine]
    return sorted(rows, key=lambda r: (r["enumerator"], r["sent_at"] or datetime.min, r["field"]))


_VERSION_COLUMNS = ["submission_key", "ingested_at", "deleted", "payload"]


@dataclass
class _FileSenders:
    """What one raw data file says of the submissions asked of it so far."""

    keys: pa.Array  # every submission key the file holds
    asked: set[str] = field(default_factory=set)
    # key → its versions in this file (submission_key, ingested_at, deleted, sender)
    versions: dict[str, list[Row]] = field(default_factory=dict)


class Senders:
    """Who sent each submission's latest raw version, remembered per raw data file.

    Raw data files are written once under a name of their own and never rewritten
    (warehouse/store.py), so what a file said of a key stays true while a version names the
    file. After a delivery only its new raw file is read; an older file is read again only for
    a key never asked of it (a submission quarantined anew by a re-validation), and then only
    its rows of that key. Files no version names any more (compacted) are forgotten."""

    def __init__(self) -> None:
        self._files: dict[str, _FileSenders] = {}
        self._lock = threading.Lock()

    def of(
        self, fs: Any, files: Iterable[str], keys_by_form: Mapping[str, set[str]]
    ) -> dict[str, str | None]:
        """Submission key → who sent its latest raw version (None: nobody the server names),
        for the keys of each form."""
        from sammachip.warehouse.load import latest_versions  # not in the officer-file workers

        files = list(files)
        with self._lock:
            versions: list[Row] = []
            for form_id, keys in keys_by_form.items():
                for path in (p for p in files if f"/form={form_id}/" in p):
                    versions += self._read(fs, path, keys)
            named = set(files)
            self._files = {p: f for p, f in self._files.items() if p in named}
        return {key: row["sender"] for key, row in latest_versions(versions).items()}

    def _read(self, fs: Any, path: str, keys: set[str]) -> list[Row]:
        """The versions of `keys` in one raw file, in the file's order."""
        import pyarrow.parquet as pq  # not in the officer-file workers (~4 MB each)

        held = self._files.get(path)
        if held is None:
            held = self._files[path] = _FileSenders(
                pq.read_table(path, columns=["submission_key"], filesystem=fs)["submission_key"]
            )
        new = keys - held.asked
        if new:
            hit = pc.is_in(held.keys, value_set=pa.array(sorted(new), pa.string()))
            if pc.any(hit).as_py():
                data = pq.read_table(path, columns=_VERSION_COLUMNS, filesystem=fs).filter(hit)
                for row in data.to_pylist():
                    row["sender"] = submitter(orjson.loads(row.pop("payload")))
                    held.versions.setdefault(row["submission_key"], []).append(row)
            held.asked |= new
        return [v for k in keys for v in held.versions.get(k, ())]


SENDERS = Senders()  # one per process: serve's warm ingest keeps it between deliveries


def _fix(q: Row, by: str | None) -> Row:
    form = FORMS.get(q["form_id"])
    who = " ".join(p for p in (q.get("subject_name"), q.get("business_key")) if p)
    sent_at = q.get("submitted_at")
    return {
        "enumerator": by or ANONYMOUS,
        "form_th": form.title_th if form else q["form_id"],
        "who": who or "ไม่ระบุ (not given)",
        "village": village_label(q.get("village_code")),
        "sent_at": sent_at,
        "sent": office_time(sent_at) if sent_at else None,
        "submission_id": q.get("submission_id"),
        "field": q.get("column_name") or "",
        "value": q.get("value"),
        "reason_th": q.get("reason_th"),
    }


def fixes_file(enumerator: str) -> str:
    """fixes_<name>.csv; a name that is not plain ASCII (a Thai display name) keeps a short
    hash of itself, so two enumerators never share a file."""
    if enumerator == ANONYMOUS:
        return "fixes_anonymous.csv"
    stem = file_stem(enumerator)
    if stem != enumerator:
        readable = re.sub(r"_+", "_", stem).strip("_")
        stem = "_".join(
            p for p in (readable, hashlib.sha256(enumerator.encode()).hexdigest()[:6]) if p
        )
    return f"fixes_{stem}.csv"


def write_fixes(
    fixes: Sequence[Row], out_dir: Path, today: date, data_as_of: datetime | None = None
) -> list[Path]:
    """The data manager's page and one CSV per enumerator; returns the page first.

    A file this folder holds already, made from the same rows (an enumerator a delivery did not
    touch), keeps its bytes: only what changed is written."""
    by_enumerator: dict[str, list[Row]] = defaultdict(list)
    for row in fixes:
        by_enumerator[row["enumerator"]].append(row)
    held = read_held(out_dir / HELD_FILES)
    now: dict[str, Held] = {}
    for name, rows in by_enumerator.items():
        now[name] = _kept_or_written(
            held.get(name),
            out_dir / fixes_file(name),
            _print(name, rows),
            partial(write_csv, rows=rows, columns=FIX_COLUMNS),
        )
    docs = (out_dir / "data_docs" / "index.html").exists()
    page = _print(PAGE, [today, data_as_of, docs, [h.fingerprint for h in now.values()]])
    # no enumerator is named "" (one the server does not name is ANONYMOUS)
    now[""] = _kept_or_written(
        held.get(""),
        out_dir / PAGE,
        page,
        lambda p: write_text(p, fixes_page(by_enumerator, today, data_as_of, docs)),
    )
    write_held(out_dir / HELD_FILES, now)
    return [now.pop("").paths[0], *(h.paths[0] for h in now.values())]


def _kept_or_written(
    held: Held | None, path: Path, fingerprint: str, write: Callable[[Path], object]
) -> Held:
    """`path` written, unless the folder holds it already made from the same content."""
    if held is None or held.paths != [path] or not held.current(fingerprint):
        write(path)
    return Held(fingerprint, [path], [])


def _print(name: str, content: Any) -> str:
    """What a file is made from: its name, its content and the code that lays it out."""
    made_of = CODE_VERSION.encode() + orjson.dumps([name, content], default=str)
    return hashlib.sha256(made_of).hexdigest()


def fixes_page(
    by_enumerator: dict[str, list[Row]], today: date, data_as_of: datetime | None, docs: bool
) -> str:
    header = (
        "<h1>ข้อมูลที่ต้องแก้ไข รายผู้เก็บข้อมูล</h1><p>data to fix, per enumerator</p>"
        f"<p>ประจำวันที่ {esc(be_date(today))} · {sum(map(len, by_enumerator.values()))} รายการ</p>"
        f'<p class="asof">{esc(as_of_line(data_as_of))}</p>'
    )
    summary = "".join(
        f'<tr><td><a href="#e{i}">{esc(name)}</a></td><td>{len(rows)}</td>'
        f'<td><a href="{esc(fixes_file(name))}">CSV</a></td></tr>'
        for i, (name, rows) in enumerate(by_enumerator.items())
    )
    sections = "".join(
        _enumerator(i, name, rows) for i, (name, rows) in enumerate(by_enumerator.items())
    )
    docs = (
        '<p><a href="data_docs/index.html">รายงานการตรวจข้อมูล GX (validation reports)</a></p>'
        if docs
        else ""
    )
    empty = '<p class="empty">ไม่มีข้อมูลที่ต้องแก้ไข (nothing to fix)</p>'
    body = (
        f'<section id="who"><h2>ผู้เก็บข้อมูล (enumerators)</h2>{docs}'
        + (
            f"<table><tr><th>ผู้เก็บข้อมูล</th><th>ต้องแก้ไข</th><th>ไฟล์ส่งให้</th></tr>{summary}</table>"
            if summary
            else empty
        )
        + f"</section>{sections}"
    )
    return html_page(f"ข้อมูลที่ต้องแก้ไข {be_date(today)}", header, [("who", "ผู้เก็บข้อมูล")], body)


def _enumerator(i: int, name: str, rows: Sequence[Row]) -> str:
    items = "".join(
        "<tr>" + "".join(f"<td>{esc(r.get(col))}</td>" for col, _ in FIX_COLUMNS) + "</tr>"
        for r in rows
    )
    head = "".join(f"<th>{esc(h)}</th>" for _, h in FIX_COLUMNS)
    return (
        f'<section id="e{i}"><h2>{esc(name)} · {len(rows)}</h2>'
        f'<div class="scroll"><table><tr>{head}</tr>{items}</table></div></section>'
    )
