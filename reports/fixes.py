"""The data manager's page: what each enumerator must correct, in which submission.

Every quarantined submission has an enumerator: whoever the server says sent it — Kobo's
`_submitted_by` (empty for the anonymous data-collector link), ODK Central's
`__system/submitterName`. Only the raw payload says it, so the latest raw version of each
quarantined submission is read. Written beside the officers' files:

    data_manager.html         per enumerator: the form's Thai title, the person or household,
                              when it was sent, which answer and why it was held back
    fixes_<enumerator>.csv    the same list, one file per enumerator, to send them
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sammachip.reports.cells import be_date
from sammachip.reports.csv_files import write_csv
from sammachip.reports.files import file_stem, write_text
from sammachip.reports.html_report import as_of_line, html_page
from sammachip.reports.html_worklist import esc
from sammachip.reports.officer_lists import office_time
from sammachip.schemas.admin_codes import village_label
from sammachip.schemas.registry import FORMS

if TYPE_CHECKING:
    from sammachip.warehouse.store import Snapshot, Warehouse

Row = dict[str, Any]
PAGE = "data_manager.html"
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
    quarantine = wh.read("quarantine", snapshot).to_pylist()
    keys: dict[str, set[str]] = defaultdict(set)
    for q in quarantine:
        keys[q["form_id"]].add(q["submission_key"])
    from sammachip.warehouse.load import latest_raw  # not in the officer-file workers

    raw = latest_raw(wh, keys, snapshot)
    rows = []
    for q in quarantine:
        held = raw.get(q["submission_key"])
        by = submitter(orjson.loads(held["payload"])) if held else None
        rows.append(_fix(q, by))
    return sorted(rows, key=lambda r: (r["enumerator"], r["sent_at"] or datetime.min, r["field"]))


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
    """The data manager's page and one CSV per enumerator; returns the page first."""
    by_enumerator: dict[str, list[Row]] = defaultdict(list)
    for row in fixes:
        by_enumerator[row["enumerator"]].append(row)
    files = []
    for name, rows in by_enumerator.items():
        files.append(out_dir / fixes_file(name))
        write_csv(files[-1], rows, FIX_COLUMNS)
    page = write_text(out_dir / PAGE, fixes_page(by_enumerator, today, data_as_of, out_dir))
    return [page, *files]


def fixes_page(
    by_enumerator: dict[str, list[Row]], today: date, data_as_of: datetime | None, out_dir: Path
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
        if (out_dir / "data_docs" / "index.html").exists()
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
