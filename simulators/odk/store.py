"""An ODK Central simulator: an in-memory store and a Starlette app served by uvicorn.

It reproduces what an OData sync client meets on Central (v2026.x, see the research notes in
`/work/shared/reference/odk/NOTES.md`): session login and bearer tokens that expire, the project
form list, service document and a minimal `$metadata`, and the submissions feed with groups as
nested objects, repeats as navigation links (inlined by `$expand=*`, or read as
`Submissions.<repeat>` tables), typed numbers and GeoJSON points, `__id`/`__system`,
newest-first paging with `$top`, `$skip` and the opaque `$skiptoken` cursor, `$count`, the
limited `$filter` (metadata fields only, SQL null logic), `$orderby`, `$select`, soft deletes
hidden unless the filter names `__system/deletedAt`, edits that keep `__id` and bump `updatedAt`,
`edits` and the review state, and Central's problem JSON (`{"code": 404.1, "message": …}`).

Answers are stored the way Kobo sends them (flat `group/field` keys, strings) and typed when a
row is rendered, like Central parses the submission XML against the current form schema.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import string
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.serving import run_forever, serve_in_thread
from schemas.registry import FORMS
from simulators.cohort import (
    APPROVED,
    FORM_IDS,
    NOT_APPROVED,
    ON_HOLD,
    Cohort,
    paused_gc,
)
from simulators.faults import FaultPlan, with_faults
from simulators.kobo import derived_uuid

REVIEW_STATES = ("hasIssues", "edited", "approved", "rejected")
KOBO_TO_REVIEW = {APPROVED: "approved", NOT_APPROVED: "rejected", ON_HOLD: "hasIssues"}
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "!$"  # Central's generateToken
_FIRST_ACTOR_ID = 5  # ids below belong to the admin users every server has
PUBLIC_LINK = "ลิงก์สาธารณะ"  # the actor of anonymous web-form submissions (a Public Access Link)

# =========================================================================== form schema


@dataclass(frozen=True)
class OdkField:
    """One schema field, as Central's `GET …/fields` lists it (path without the leading /)."""

    path: str  # "hh/village_code"
    type: str  # structure, repeat, string, int, decimal, date, dateTime, geopoint, select, …

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FormDefinition:
    xml_form_id: str
    name: str
    version: str
    fields: tuple[OdkField, ...]
    instance_name: str | None = None  # XLSForm `instance_name` expression


def sanitize(name: str) -> str:
    """Central's sanitizeOdataIdentifier: every OData key and table name goes through it."""
    return re.sub(r"[^a-zA-Z0-9_]+", "_", re.sub(r"^([^a-zA-Z_])", r"_\1", name))


@dataclass(eq=False)
class _Node:
    name: str
    path: str
    type: str
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)

    @property
    def key(self) -> str:
        return sanitize(self.name)

    @property
    def odata_path(self) -> str:
        return self.key if self.parent is None else f"{self.parent.odata_path}/{self.key}"

    @property
    def lineage(self) -> list[_Node]:
        """From the top-level node down to this one."""
        return [*(self.parent.lineage if self.parent else []), self]

    @property
    def table(self) -> str:
        return ".".join(["Submissions", *(n.key for n in self.lineage)])

    def walk(self) -> Iterator[_Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def _tree(fields: Iterable[OdkField]) -> list[_Node]:
    """Nodes from a flat field list; undeclared parents become groups."""
    nodes: dict[str, _Node] = {}
    roots: list[_Node] = []
    for f in fields:
        parts = f.path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path in nodes:
                continue
            parent = nodes.get("/".join(parts[: depth - 1])) if depth > 1 else None
            kind = f.type if depth == len(parts) else "structure"
            node = nodes[path] = _Node(parts[depth - 1], path, kind, parent)
            (parent.children if parent else roots).append(node)
    return roots


_XLS_TYPES = {
    "text": "string", "integer": "int", "int": "int", "decimal": "decimal", "date": "date",
    "time": "time", "datetime": "dateTime", "dateTime": "dateTime", "start": "dateTime",
    "end": "dateTime", "today": "date", "geopoint": "geopoint", "geotrace": "geotrace",
    "geoshape": "geoshape", "select_one": "select1", "select_multiple": "select",
    "note": "string", "calculate": "string", "barcode": "barcode", "image": "binary",
    "audio": "binary", "video": "binary", "file": "binary", "deviceid": "string",
    "username": "string", "phonenumber": "string", "email": "string", "audit": "binary",
}  # fmt: skip


@cache  # definitions are immutable; tests and replays load the same workbooks again
def xlsform_definition(path: Path) -> FormDefinition:
    """The schema Central would derive from an XLSForm (what pyxform puts in the XForm)."""
    import openpyxl  # here: it pulls in numpy, and only seeding needs it

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        settings = _sheet(book["settings"])[0]
        rows = _sheet(book["survey"])
    finally:
        book.close()
    fields: list[OdkField] = []
    stack: list[str] = []
    for row in rows:
        kind = (
            str(row.get("type") or "").strip().replace("begin ", "begin_").replace("end ", "end_")
        )
        name = str(row.get("name") or "").strip()
        if kind in ("end_group", "end_repeat"):
            stack.pop()
        elif kind in ("begin_group", "begin_repeat"):
            stack.append(name)
            fields.append(
                OdkField("/".join(stack), kind.removeprefix("begin_").replace("group", "structure"))
            )
        elif kind and name:
            fields.append(
                OdkField("/".join([*stack, name]), _XLS_TYPES.get(kind.split()[0], "string"))
            )
    instance_name = settings.get("instance_name")
    fields += [OdkField("meta", "structure"), OdkField("meta/instanceID", "string")]
    if instance_name:
        fields.append(OdkField("meta/instanceName", "string"))
    return FormDefinition(
        xml_form_id=str(settings["form_id"]),
        name=str(settings.get("form_title") or settings["form_id"]),
        version=str(settings.get("version") or ""),
        fields=tuple(fields),
        instance_name=instance_name,
    )


def _sheet(sheet: Any) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(h) if h is not None else "" for h in rows[0]]
    return [dict(zip(header, r, strict=False)) for r in rows[1:] if any(v is not None for v in r)]


def _instance_name(
    expression: str | None, answers: Mapping[str, Any], paths: dict[str, str]
) -> str | None:
    """Evaluate the usual `concat(${a}, ' ', ${b})` (or a lone `${a}`) as Collect would."""
    if not expression:
        return None
    parts = re.findall(r"\$\{(\w+)\}|'([^']*)'|\"([^\"]*)\"", expression)
    text = "".join(
        str(answers.get(paths.get(ref, ""), "") or "") if ref else single or double
        for ref, single, double in parts
    )
    return text or None


# =========================================================================== typed values
# Central parses each value with JavaScript: parseInt/parseFloat read a leading ASCII number
# and give NaN (serialised as null) otherwise, so Thai digits in a number field become null.

_JS_INT = re.compile(r"\s*([+-]?\d+)", re.ASCII)
_JS_FLOAT = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.ASCII)


def _js_number(value: float) -> int | float:
    """JSON.stringify has no 20.0: integral numbers print as integers."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _parse_int(text: str) -> int | None:
    match = _JS_INT.match(text)
    return int(match.group(1)) if match else None


def _parse_float(text: str) -> float | None:
    match = _JS_FLOAT.match(text)
    return float(match.group(1)) if match else None


def _geo_parts(text: str) -> list[float | None]:
    return [_parse_float(p) for p in text.split()]


def _geopoint(text: str, wkt: bool) -> Any:
    lat, lon, alt, acc = [*_geo_parts(text), None, None, None, None][:4]
    if lat is None or lon is None:
        return None
    coordinates = [_js_number(lon), _js_number(lat)] + (
        [_js_number(alt)] if alt is not None else []
    )
    if wkt:
        return f"POINT ({' '.join(str(c) for c in coordinates)})"
    point: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
    if acc is not None:
        point["properties"] = {"accuracy": _js_number(acc)}
    return point


def _geoline(text: str, kind: str, wkt: bool) -> Any:
    coordinates: list[list[int | float]] = []
    accuracies: list[int | float | None] = []
    for chunk in re.split(r"; ?", text):
        lat, lon, alt, acc = [*_geo_parts(chunk), None, None, None, None][:4]
        if lat is None or lon is None:
            continue  # a trailing ";"
        coordinates.append(
            [_js_number(lon), _js_number(lat)] + ([_js_number(alt)] if alt is not None else [])
        )
        accuracies.append(_js_number(acc) if acc else None)
    if not coordinates:
        return None
    if wkt:
        points = ",".join(" ".join(str(c) for c in p) for p in coordinates)
        return f"LINESTRING ({points})" if kind == "geotrace" else f"POLYGON (({points}))"
    shape: dict[str, Any] = (
        {"type": "LineString", "coordinates": coordinates}
        if kind == "geotrace"
        else {"type": "Polygon", "coordinates": [coordinates]}
    )
    if any(a is not None for a in accuracies):
        shape["properties"] = {"accuracies": accuracies}
    return shape


def _typed(kind: str, raw: Any, wkt: bool) -> Any:
    """One answer as Central's OData JSON shows it."""
    if raw is None or isinstance(raw, list | dict):
        return None
    text = raw if isinstance(raw, str) else str(raw)
    if text == "":
        return None  # an empty element has no text: null
    if kind == "int":
        return _parse_int(text)
    if kind == "decimal":
        number = _parse_float(text)
        return None if number is None else _js_number(number)
    if kind == "geopoint":
        return _geopoint(text, wkt)
    if kind in ("geotrace", "geoshape"):
        return _geoline(text, kind, wkt)
    if kind == "dateTime":
        trimmed = text.strip()
        return f"{trimmed}:00" if re.search(r"[+-]\d\d$", trimmed) else trimmed
    return text  # strings, selects (space-separated), dates, times, booleans, file names


# =========================================================================== store


def _ms(moment: datetime) -> datetime:
    """Aware UTC, truncated to milliseconds like Central's timestamps (naive means UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class _Record:
    root_id: str  # __id: the first version's instanceID
    seq: int  # submissions.id: tie-break of the newest-first order
    created_at: datetime
    form_version: str
    answers: dict[str, Any]  # the current version, Kobo-style
    instance_id: str  # the current version's instanceID
    submitter_id: int | None
    submitter_name: str | None
    device_id: str | None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    review_state: str | None = None
    edits: int = 0
    cache: dict[bool, bytes] = field(default_factory=dict)  # rendered rows by $expand

    @property
    def order_key(self) -> tuple[datetime, int]:
        return (self.created_at, self.seq)


@dataclass(eq=False)
class HostedForm:
    project_id: int
    xml_form_id: str
    name: str
    version: str
    fields: tuple[OdkField, ...]
    instance_name: str | None
    created_at: datetime
    state: str = "open"
    records: dict[str, _Record] = field(default_factory=dict)  # by __id
    by_instance: dict[str, str] = field(default_factory=dict)  # any version's id → __id
    order: list[_Record] = field(default_factory=list)  # oldest first by (createdAt, id)
    tree: list[_Node] = field(init=False)
    name_paths: dict[str, str] = field(init=False)  # `${name}` → path, for instance names

    def __post_init__(self) -> None:
        self.set_schema(self.fields, self.version)

    def set_schema(self, fields: Iterable[OdkField], version: str) -> None:
        self.fields, self.version = tuple(fields), version
        self.tree = _tree(self.fields)
        self.name_paths = {}
        for f in self.fields:
            if f.type not in ("structure", "repeat"):
                self.name_paths.setdefault(f.name, f.path)
        for record in self.records.values():
            record.cache.clear()

    def nodes(self) -> Iterator[_Node]:
        for node in self.tree:
            yield from node.walk()

    def repeats(self) -> list[_Node]:
        return [n for n in self.nodes() if n.type == "repeat"]


@dataclass
class _Project:
    name: str
    readable: bool  # False: our user has no role on it (403)


class OdkStore:
    """Thread-safe in-memory ODK Central: projects, forms, submissions and sessions."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        session_lifetime: timedelta = timedelta(days=1),
    ) -> None:
        self._lock = threading.RLock()
        self._clock, self._lifetime = clock, session_lifetime
        self.reset()

    def reset(self) -> None:
        """Back to an empty server (a served store can be reused by many tests)."""
        with self._lock:
            self._projects: dict[int, _Project] = {}
            self._forms: dict[tuple[int, str], HostedForm] = {}
            self._actors: dict[str, int] = {}
            self._sessions: dict[str, datetime] = {}  # token → expiresAt
            self._seq = 0
            self.clock: Callable[[], datetime] = self._clock or (lambda: datetime.now(UTC))
            self.session_lifetime = self._lifetime
            self.logins = 0  # sessions opened so far
            self.rejected_tokens = 0  # requests refused for an expired or unknown token
            self.faults = FaultPlan()  # tests queue failures here
            # False: a server before v2024.3, whose OData knows no __system/deletedAt (a filter
            # naming it is refused with 501.5) — its deletions only an id scan can find.
            self.deleted_at_filter = True

    def now(self) -> datetime:
        return _ms(self.clock())

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold writers off while one response is assembled from many reads."""
        with self._lock:
            yield

    # -- projects and forms

    def add_project(self, project_id: int, name: str = "", *, readable: bool = True) -> None:
        with self._lock:
            self._projects[project_id] = _Project(name or f"Project {project_id}", readable)

    def project(self, project_id: int) -> _Project | None:
        return self._projects.get(project_id)

    def add_form(
        self,
        project_id: int,
        xml_form_id: str,
        fields: Iterable[OdkField],
        *,
        name: str = "",
        version: str = "",
        instance_name: str | None = None,
        state: str = "open",
    ) -> HostedForm:
        with self._lock:
            if project_id not in self._projects:
                self.add_project(project_id)
            if (project_id, xml_form_id) in self._forms:
                raise ValueError(f"form {xml_form_id} exists in project {project_id}")
            form = HostedForm(
                project_id,
                xml_form_id,
                name or xml_form_id,
                version,
                tuple(fields),
                instance_name,
                self.now(),
                state,
            )
            self._forms[(project_id, xml_form_id)] = form
            return form

    def add_definition(self, project_id: int, definition: FormDefinition) -> HostedForm:
        return self.add_form(
            project_id,
            definition.xml_form_id,
            definition.fields,
            name=definition.name,
            version=definition.version,
            instance_name=definition.instance_name,
        )

    def publish(
        self, form: str, fields: Iterable[OdkField], version: str, *, project_id: int = 1
    ) -> None:
        """A new form version. OData shows every submission through the current schema: removed
        fields vanish from old rows, new ones are null, a field downcast to text reads as text.
        `formVersion` keeps the version each submission was created with."""
        with self._lock:
            self._require(project_id, form).set_schema(fields, version)

    def form(self, project_id: int, xml_form_id: str) -> HostedForm | None:
        return self._forms.get((project_id, xml_form_id))

    def forms(self, project_id: int) -> list[HostedForm]:
        with self._lock:
            return [f for (p, _), f in self._forms.items() if p == project_id]

    def _require(self, project_id: int, xml_form_id: str) -> HostedForm:
        form = self.form(project_id, xml_form_id)
        if form is None:
            raise KeyError(f"{project_id}/{xml_form_id}")
        return form

    def _record(self, form: HostedForm, instance_id: str) -> _Record:
        """By __id or by any version's instanceID."""
        return form.records[form.by_instance.get(instance_id, instance_id)]

    def actor_id(self, name: str) -> int:
        with self._lock:
            return self._actors.setdefault(name, _FIRST_ACTOR_ID + len(self._actors))

    # -- submissions

    def submit(
        self,
        form: str,
        answers: Mapping[str, Any],
        received_at: datetime,
        *,
        project_id: int = 1,
        submitter: str | None = None,
        submitter_id: int | None = None,
        device_id: str | None = None,
    ) -> str:
        """Store a new submission (Kobo-style answers) received at `received_at` (naive = UTC);
        returns its `__id`. Raises ValueError where Central answers 409."""
        with self._lock:
            hosted = self._require(project_id, form)
            self._seq += 1
            instance_id = str(
                answers.get("meta/instanceID") or derived_uuid(f"odk:{form}:{self._seq}")
            )
            existing = hosted.records.get(hosted.by_instance.get(instance_id, instance_id))
            if existing is not None:
                state = "was deleted" if existing.deleted_at else "exists"
                raise ValueError(f"instanceID {instance_id} {state}")  # Central: 409.3 / 409.18
            if submitter is not None and submitter_id is None:
                submitter_id = self.actor_id(submitter)
            record = _Record(
                root_id=instance_id,
                seq=self._seq,
                created_at=_ms(received_at),
                form_version=hosted.version,
                answers=self._with_meta(hosted, answers, instance_id),
                instance_id=instance_id,
                submitter_id=submitter_id,
                submitter_name=submitter,
                device_id=device_id,
            )
            hosted.records[instance_id] = record
            hosted.by_instance[instance_id] = instance_id
            _insort(hosted.order, record)
            return instance_id

    @staticmethod
    def _with_meta(
        form: HostedForm, answers: Mapping[str, Any], instance_id: str
    ) -> dict[str, Any]:
        stored = dict(answers)
        stored["meta/instanceID"] = instance_id
        name = _instance_name(form.instance_name, stored, form.name_paths)
        if name is not None:
            stored["meta/instanceName"] = name
        return stored

    def edit(
        self,
        form: str,
        instance_id: str,
        changes: Mapping[str, Any],
        *,
        project_id: int = 1,
        at: datetime | None = None,
    ) -> str:
        """A new version (None in `changes` removes an answer): `__id` and submissionDate stay,
        updatedAt moves, edits += 1, reviewState becomes "edited". Returns the new instanceID."""
        with self._lock:
            hosted = self._require(project_id, form)
            record = self._record(hosted, instance_id)
            answers = {k: v for k, v in record.answers.items() if not k.startswith("meta/")}
            for key, value in changes.items():
                if value is None:
                    answers.pop(key, None)
                elif not key.startswith("meta/"):
                    answers[key] = value
            new_id = str(changes.get("meta/instanceID") or derived_uuid(record.instance_id))
            if new_id in hosted.by_instance:
                raise ValueError(f"instanceID {new_id} exists")  # Central: 409.8
            record.answers = self._with_meta(hosted, answers, new_id)
            record.instance_id = new_id
            record.edits += 1
            record.review_state = "edited"
            record.updated_at = _ms(at) if at else self.now()
            record.cache.clear()
            hosted.by_instance[new_id] = record.root_id
            return new_id

    def set_review_state(
        self,
        form: str,
        instance_id: str,
        state: str,
        *,
        project_id: int = 1,
        at: datetime | None = None,
    ) -> None:
        """PATCH reviewState: also moves updatedAt."""
        if state not in REVIEW_STATES:
            raise ValueError(f"review state must be one of {REVIEW_STATES}")
        with self._lock:
            record = self._record(self._require(project_id, form), instance_id)
            record.review_state = state
            record.updated_at = _ms(at) if at else self.now()
            record.cache.clear()

    def delete(
        self, form: str, instance_id: str, *, project_id: int = 1, at: datetime | None = None
    ) -> None:
        """Soft delete: deletedAt is set, updatedAt is not; the row leaves the default feed."""
        with self._lock:
            record = self._record(self._require(project_id, form), instance_id)
            record.deleted_at = _ms(at) if at else self.now()
            record.cache.clear()

    def restore(self, form: str, instance_id: str, *, project_id: int = 1) -> None:
        """Undo a soft delete (again without touching updatedAt)."""
        with self._lock:
            record = self._record(self._require(project_id, form), instance_id)
            record.deleted_at = None
            record.cache.clear()

    def purge(self, form: str, instance_id: str, *, project_id: int = 1) -> None:
        """What Central does 30 days after a delete: the submission vanishes without a trace
        and its instanceID may be submitted again."""
        with self._lock:
            hosted = self._require(project_id, form)
            record = self._record(hosted, instance_id)
            del hosted.records[record.root_id]
            hosted.order.remove(record)
            hosted.by_instance = {
                i: root for i, root in hosted.by_instance.items() if root != record.root_id
            }

    def row(
        self, form: str, instance_id: str, *, project_id: int = 1, expand: bool = True
    ) -> dict[str, Any]:
        """The submission as the OData feed shows it."""
        with self._lock:
            hosted = self._require(project_id, form)
            return orjson.loads(_root_bytes(hosted, self._record(hosted, instance_id), expand))

    def count(self, form: str, *, project_id: int = 1, deleted: bool = False) -> int:
        with self._lock:
            records = self._require(project_id, form).records.values()
            return sum(1 for r in records if (r.deleted_at is not None) == deleted)

    # -- sessions

    def open_session(self) -> dict[str, str]:
        with self._lock:
            token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(64))
            created = self.now()
            expires = created + self.session_lifetime
            self._sessions[token] = expires
            self.logins += 1
            csrf = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(64))
            return {
                "createdAt": _iso(created),
                "expiresAt": _iso(expires),
                "token": token,
                "csrf": csrf,
            }

    def session_valid(self, token: str) -> bool:
        expires = self._sessions.get(token)
        return expires is not None and expires > self.now()

    def active_sessions(self) -> int:
        now = self.now()
        return sum(1 for expires in self._sessions.values() if expires > now)

    def end_session(self, token: str) -> bool:
        with self._lock:
            return self._sessions.pop(token, None) is not None

    def expire_sessions(self) -> None:
        """Every token expires now (as if a day had passed)."""
        with self._lock:
            past = self.now() - timedelta(milliseconds=1)
            self._sessions = dict.fromkeys(self._sessions, past)

    def end_sessions(self) -> None:
        """Every token is revoked (an administrator logged the user out)."""
        with self._lock:
            self._sessions.clear()


def _insort(order: list[_Record], record: _Record) -> None:
    i = len(order)
    while i > 0 and order[i - 1].order_key > record.order_key:  # arrivals are mostly in order
        i -= 1
    order.insert(i, record)


# =========================================================================== rendering rows


@dataclass(frozen=True)
class _Render:
    root_id: str
    expand: bool
    wkt: bool


Stack = tuple[tuple[_Node, int | None], ...]  # (group or repeat, iteration) from the top down


def _hash_id(root_id: str, stack: Stack) -> str:
    """Central's repeat `__id`: sha1 of the path with 0-based iterations (positional)."""
    if not stack:
        return root_id
    parts = [f"Submissions#{root_id}"]
    parts += [f"{n.name}#" if i is None else f"{n.name}#{i}" for n, i in stack]
    return hashlib.sha1("%%".join(parts).encode()).hexdigest()


def _nav_link(root_id: str, stack: Stack) -> str:
    parts = [f"Submissions('{quote(root_id, safe='')}')"]
    for depth, (node, _i) in enumerate(stack):
        if node.type == "repeat" and depth < len(stack) - 1:
            parts.append(f"{node.key}('{_hash_id(root_id, stack[: depth + 1])}')")
        else:
            parts.append(node.key)
    return "/".join(parts)


def _entries(scope: Mapping[str, Any], node: _Node) -> list[dict[str, Any]]:
    value = scope.get(node.path)
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _fill(
    nodes: list[_Node],
    scope: Mapping[str, Any],
    stack: Stack,
    ctx: _Render,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Central's data frame: every field (null when missing), groups nested; then `extra`
    (ids); then, for repeats that have instances, a navigation link and, expanded, the rows."""
    out: dict[str, Any] = {}
    repeats = []
    for node in nodes:
        if node.type == "structure":
            out[node.key] = _fill(node.children, scope, (*stack, (node, None)), ctx)
        elif node.type == "repeat":
            repeats.append(node)
        else:
            out[node.key] = _typed(node.type, scope.get(node.path), ctx.wkt)
    out.update(extra or {})
    for node in repeats:
        entries = _entries(scope, node)
        if not entries:
            continue
        out[f"{node.key}@odata.navigationLink"] = _nav_link(ctx.root_id, (*stack, (node, None)))
        if ctx.expand:
            out[node.key] = [
                _fill(
                    node.children,
                    e,
                    (*stack, (node, i)),
                    ctx,
                    {"__id": _hash_id(ctx.root_id, (*stack, (node, i)))},
                )
                for i, e in enumerate(entries)
            ]
    return out


def _system(record: _Record) -> dict[str, Any]:
    return {
        "submissionDate": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
        "submitterId": None if record.submitter_id is None else str(record.submitter_id),
        "submitterName": record.submitter_name,
        "attachmentsPresent": 0,
        "attachmentsExpected": 0,
        "status": None,
        "reviewState": record.review_state,
        "deviceId": record.device_id,
        "edits": record.edits,
        "formVersion": record.form_version,
        "deletedAt": _iso(record.deleted_at),
    }


def _root_row(form: HostedForm, record: _Record, expand: bool, wkt: bool = False) -> dict[str, Any]:
    ctx = _Render(record.root_id, expand, wkt)
    return _fill(
        form.tree, record.answers, (), ctx, {"__id": record.root_id, "__system": _system(record)}
    )


def _root_bytes(form: HostedForm, record: _Record, expand: bool) -> bytes:
    cached = record.cache.get(expand)
    if cached is None:
        cached = record.cache[expand] = orjson.dumps(_root_row(form, record, expand))
    return cached


def _instances(
    lineage: list[_Node], scope: Mapping[str, Any], stack: Stack
) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """Every instance of the repeat at the end of `lineage`, with its stack."""
    node, rest = lineage[0], lineage[1:]
    if node.type == "structure":
        yield from _instances(rest, scope, (*stack, (node, None)))
        return
    for i, entry in enumerate(_entries(scope, node)):
        here = (*stack, (node, i))
        if rest:
            yield from _instances(rest, entry, here)
        else:
            yield here, entry


def _parent_key(stack: Stack) -> tuple[str, Stack]:
    """Name and stack of a repeat row's parent: the root or the enclosing repeat instance."""
    cut = max((d for d, (n, _) in enumerate(stack[:-1]) if n.type == "repeat"), default=-1) + 1
    parent = stack[:cut]
    return "-".join(["__Submissions", *(n.key for n, _ in parent), "id"]), parent


def _subtable_rows(
    target: _Node, records: Iterable[_Record], query: _Query, parent_ids: Mapping[int, str]
) -> Iterator[dict[str, Any]]:
    """Rows of a repeat table, newest submission first and in document order within one;
    `parent_ids` pins enclosing repeat instances by depth (for navigation links)."""
    for record in records:
        ctx = _Render(record.root_id, query.expand, query.wkt)
        for stack, entry in _instances(target.lineage, record.answers, ()):
            if any(_hash_id(record.root_id, stack[: d + 1]) != h for d, h in parent_ids.items()):
                continue
            key, parent = _parent_key(stack)
            ids = {"__id": _hash_id(record.root_id, stack), key: _hash_id(record.root_id, parent)}
            yield _fill(target.children, entry, stack, ctx, ids)


# =========================================================================== $filter


class ODataProblem(Exception):
    """A request Central refuses: HTTP status and its problem code and message."""

    def __init__(self, code: float, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}

    @property
    def status(self) -> int:
        return int(self.code)


def _not_supported(feature: str) -> ODataProblem:
    return ODataProblem(501.1, f"The requested feature {feature} is not supported by this server.")


def _not_acceptable(allowed: str) -> ODataProblem:
    return ODataProblem(406.1, f"Requested format not acceptable; this resource allows: {allowed}.")


def _not_parseable(reason: str) -> ODataProblem:
    return ODataProblem(
        400.18, f"The OData filter expression you provided could not be parsed: {reason}"
    )


_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<paren>[(),])
    | (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?)
    | (?P<date>\d{4}-\d\d-\d\d)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>[$A-Za-z_][\w$]*(?:/[$A-Za-z_][\w$]*)*)
    )""",
    re.VERBOSE | re.ASCII,
)
_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
_KEYWORDS = {"and", "or", "not", "null", "true", "false", *_COMPARE}
_ROOT = "$root/Submissions/"
_FIELD_NOT_SUPPORTED = (
    "The given OData filter expression references fields not supported by this server"
)
FILTERABLE = frozenset({"__id", "__system/submissionDate", "__system/updatedAt",
                        "__system/submitterId", "__system/reviewState",
                        "__system/deletedAt"})  # fmt: skip
BEFORE_DELETED_AT = FILTERABLE - {"__system/deletedAt"}  # Central before v2024.3
_EXTRACT = {"year", "month", "day", "hour", "minute", "second"}
_ODATA_FUNCTIONS = {"contains", "startswith", "endswith", "length", "indexof", "substring",
                    "tolower", "toupper", "trim", "concat", "round", "floor", "ceiling", "date",
                    "time", "totaloffsetminutes", "fractionalseconds", "maxdatetime",
                    "mindatetime", "totalseconds", "cast", "isof", "geo.distance",
                    "geo.intersects", "geo.length", "matchespattern"}  # fmt: skip
_ARITHMETIC = {"add", "sub", "mul", "div", "divby", "mod", "has", "in"}

Expr = tuple[Any, ...]  # a filter syntax tree: ("cmp", "gt", left, right), ("field", name), …


@dataclass
class _Token:
    kind: str
    text: str
    at: int


def _tokens(expression: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(expression):
        if expression[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(expression, pos)
        if match is None or match.end() == pos:
            raise _not_parseable(f"unexpected character at {pos}")
        kind = match.lastgroup or "name"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class _FilterParser:
    """Recursive descent over Central's subset: comparisons, and/or/not, parentheses, null,
    string/number/date literals, now() and the date-part functions, filterable fields only."""

    def __init__(self, expression: str, subtable: bool, filterable: frozenset[str]) -> None:
        self.tokens, self.i, self.subtable = _tokens(expression), 0, subtable
        self.filterable = filterable

    def parse(self) -> Expr:
        if not self.tokens:
            raise _not_parseable("empty expression")
        node = self.or_expr()
        if self.i < len(self.tokens):
            token = self.tokens[self.i]
            if token.text in _ARITHMETIC:
                raise self.unsupported(token, "ArithmeticExpression")
            raise _not_parseable(f"unexpected '{token.text}' at {token.at}")
        return node

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise _not_parseable("unexpected end of expression")
        self.i += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind in ("name", "paren") and token.text == text:
            self.i += 1
            return True
        return False

    @staticmethod
    def unsupported(token: _Token, kind: str) -> ODataProblem:
        return ODataProblem(
            501.4,
            "The given OData filter expression uses features not supported by this server: "
            f'{kind} at {token.at} ("{token.text}")',
        )

    def or_expr(self) -> Expr:
        node = self.and_expr()
        while self.accept("or"):
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Expr:
        node = self.not_expr()
        while self.accept("and"):
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> Expr:
        if self.accept("not"):
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in _COMPARE:
            self.i += 1
            return ("cmp", token.text, left, self.operand())
        if token is not None and token.text in _ARITHMETIC:
            raise self.unsupported(token, "ArithmeticExpression")
        if left[0] in ("or", "and", "not", "cmp"):
            return left
        raise _not_parseable("expected a comparison")

    def operand(self) -> Expr:
        token = self.take()
        if token.text == "(":
            node = self.or_expr()
            if not self.accept(")"):
                raise _not_parseable(f"missing ')' for '(' at {token.at}")
            return node
        if token.kind == "string":
            return ("lit", token.text[1:-1].replace("''", "'"))
        if token.kind == "datetime":
            return ("lit", _datetime_literal(token.text))
        if token.kind == "date":
            return ("lit", datetime.combine(date.fromisoformat(token.text), time(), UTC))
        if token.kind == "number":
            return (
                "lit",
                float(token.text) if re.search(r"[.eE]", token.text) else int(token.text),
            )
        if token.kind == "name":
            return self.name(token)
        raise _not_parseable(f"unexpected '{token.text}' at {token.at}")

    def name(self, token: _Token) -> Expr:
        text = token.text
        if text in ("null", "true", "false"):
            return ("lit", {"null": None, "true": True, "false": False}[text])
        if text in _KEYWORDS:
            raise _not_parseable(f"unexpected '{text}' at {token.at}")
        if self.accept("("):
            return self.call(token)
        field_name = text.removeprefix(_ROOT)
        rooted = text.startswith(_ROOT)
        if field_name not in self.filterable or (self.subtable and not rooted):
            raise ODataProblem(501.5, f"{_FIELD_NOT_SUPPORTED}: {text} at {token.at}")
        return ("field", field_name)

    def call(self, token: _Token) -> Expr:
        fn = token.text.lower()
        if fn in _ODATA_FUNCTIONS:
            raise self.unsupported(token, "MethodCallExpression")
        if fn not in _EXTRACT and fn != "now":
            raise _not_parseable(f"unknown function '{token.text}' at {token.at}")
        args = []
        if not self.accept(")"):
            args.append(self.operand())
            if not self.accept(")"):
                raise _not_parseable(f"missing ')' for {token.text} at {token.at}")
        if len(args) != (0 if fn == "now" else 1):
            raise _not_parseable(f"wrong number of arguments for {token.text}")
        return ("call", fn, *args)


def _datetime_literal(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # Central hands zone-less literals to PostgreSQL, whose session zone is UTC in Docker.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_filter(
    expression: str, *, subtable: bool = False, filterable: frozenset[str] = FILTERABLE
) -> Expr:
    return _FilterParser(expression, subtable, filterable).parse()


def _mentions_deleted(node: Expr) -> bool:
    if node[0] == "field":
        return node[1] == "__system/deletedAt"
    return any(_mentions_deleted(n) for n in node[1:] if isinstance(n, tuple))


def _field_value(record: _Record, name: str) -> Any:
    return {
        "__id": record.root_id,
        "__system/submissionDate": record.created_at,
        "__system/updatedAt": record.updated_at,
        "__system/submitterId": record.submitter_id,
        "__system/reviewState": record.review_state,
        "__system/deletedAt": record.deleted_at,
    }[name]


def _value(node: Expr, record: _Record, now: datetime) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "field":
        return _field_value(record, node[1])
    if kind == "call":
        if node[1] == "now":
            return now
        inner = _value(node[2], record, now)
        if inner is None:
            return None
        if not isinstance(inner, datetime):
            raise _not_parseable(f"{node[1]}() needs a date")
        return getattr(inner, node[1])
    return _truth(node, record, now)


def _coerce(a: Any, b: Any) -> tuple[Any, Any]:
    """What PostgreSQL would compare: text literals cast to the column's type."""
    try:
        if isinstance(a, datetime) and isinstance(b, str):
            return a, _datetime_literal(b)
        if isinstance(b, datetime) and isinstance(a, str):
            return _datetime_literal(a), b
    except ValueError:
        raise _not_parseable(f"not a timestamp: {b if isinstance(b, str) else a}") from None
    if isinstance(a, int) and isinstance(b, str) and b.lstrip("-").isdigit():
        return a, int(b)
    if isinstance(b, int) and isinstance(a, str) and a.lstrip("-").isdigit():
        return int(a), b
    if type(a) is not type(b) and not (isinstance(a, int | float) and isinstance(b, int | float)):
        raise _not_parseable(f"cannot compare {a!r} with {b!r}")
    return a, b


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}  # fmt: skip


def _truth(node: Expr, record: _Record, now: datetime) -> bool | None:
    """SQL three-valued logic: None is 'unknown' and a WHERE keeps only True."""
    kind = node[0]
    if kind == "not":
        inner = _truth(node[1], record, now)
        return None if inner is None else not inner
    if kind in ("and", "or"):
        left, right = _truth(node[1], record, now), _truth(node[2], record, now)
        if kind == "and":
            return False if False in (left, right) else (None if None in (left, right) else True)
        return True if True in (left, right) else (None if None in (left, right) else False)
    if kind == "cmp":
        op, left_node, right_node = node[1], node[2], node[3]
        left, right = _value(left_node, record, now), _value(right_node, record, now)
        if op in ("eq", "ne") and (right_node == ("lit", None) or left_node == ("lit", None)):
            is_null = (left if right_node == ("lit", None) else right) is None
            return is_null if op == "eq" else not is_null  # `eq null` is IS NULL
        if left is None or right is None:
            return None
        return _OPS[op](*_coerce(left, right))
    value = _value(node, record, now)
    return None if value is None else bool(value)


# =========================================================================== $orderby


def _order(records: list[_Record], orderby: str | None) -> list[_Record]:
    """Newest first by default; `$orderby` on filterable fields (asc: nulls first, desc: nulls
    last, ties by submission id)."""
    if not orderby:
        return records[::-1]
    ordered = sorted(records, key=lambda r: r.seq)
    for term in reversed([t.strip() for t in orderby.split(",") if t.strip()]):
        name, _, direction = term.partition(" ")
        name, direction = name.removeprefix(_ROOT), direction.strip().lower() or "asc"
        if name not in FILTERABLE or direction not in ("asc", "desc"):
            raise ODataProblem(501.5, f"{_FIELD_NOT_SUPPORTED}: {term} at 0")
        # null sorts lowest: first ascending, last once reversed (Python's sort stays stable)
        ordered.sort(
            key=lambda r, n=name: (0, 0) if (v := _field_value(r, n)) is None else (1, v),
            reverse=direction == "desc",
        )
    return ordered


# =========================================================================== HTTP app

_SUPPORTED_PARAMS = {"$format", "$count", "$skip", "$top", "$filter", "$wkt", "$expand",
                     "$select", "$skiptoken", "$orderby", "$search"}  # fmt: skip
_SINGLE = re.compile(r"^Submissions\('((?:uuid:)?[a-z0-9-]+)'\)(?:/(.*))?$", re.I)
_NAV_STEP = re.compile(r"^([A-Za-z_]\w*)(?:\('([0-9a-f]{40})'\))?$")
ODATA_HEADERS = {"OData-Version": "4.0"}
JSON = "application/json; charset=utf-8"
NOT_FOUND = ODataProblem(404.1, "Could not find the resource you were looking for.")
AUTH_FAILED = ODataProblem(401.2, "Could not authenticate with the provided credentials.")
FORBIDDEN = ODataProblem(
    403.1, "The authentication you provided does not have rights to perform that action."
)


def _problem_response(problem: ODataProblem) -> Response:
    return Response(
        orjson.dumps({"message": problem.message, "code": problem.code}),
        problem.status,
        problem.headers,
        JSON,
    )


def _json(body: Any, *, headers: dict[str, str] | None = None, media_type: str = JSON) -> Response:
    return Response(orjson.dumps(body), 200, headers, media_type)


def skiptoken(payload: Mapping[str, Any]) -> str:
    """Central's cursor: "01" + base64(JSON); clients must treat it as opaque."""
    return "01" + base64.b64encode(orjson.dumps(payload)).decode()


def _read_skiptoken(token: str) -> dict[str, Any]:
    try:
        if not token.startswith("01"):
            raise ValueError(token)
        decoded = orjson.loads(base64.b64decode(token[2:], validate=True))
        if not isinstance(decoded, dict):
            raise ValueError(token)
        return decoded
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise ODataProblem(400.35, "Invalid $skiptoken") from None


def _int_param(raw: str | None) -> int | None:
    """parseInt semantics: a bad `$top` means no limit, a bad `$skip` means 0."""
    if raw is None:
        return None
    value = _parse_int(raw)
    return None if value is None else max(0, value)


@dataclass(frozen=True)
class _Query:
    top: int | None
    skip: int
    skiptoken: dict[str, Any] | None
    count: bool
    expand: bool
    wkt: bool
    filter: Expr | None
    orderby: str | None
    select: list[str] | None

    @classmethod
    def parse(
        cls, params: Mapping[str, str], *, subtable: bool,
        filterable: frozenset[str] = FILTERABLE,
    ) -> _Query:  # fmt: skip
        for key in params:
            if key not in _SUPPORTED_PARAMS:
                raise _not_supported(key)
        expand = params.get("$expand")
        if expand is not None and expand != "*":
            raise ODataProblem(
                501.6,
                f'The given OData expand expression is not supported by this server: "{expand}".'
                ' Currently, only "$expand=*" is supported.',
            )
        select = params.get("$select")
        if select is not None and expand is not None:
            raise ODataProblem(
                501.11, "This server doesn't support $select query parameter with $expand."
            )
        if select is not None and subtable:
            raise _not_supported("$select on repeat tables")  # Central has it; not simulated
        if params.get("$format") not in (None, "json", "application/json"):
            raise _not_acceptable("application/json,json")
        token = params.get("$skiptoken")
        if token is not None and params.get("$orderby"):
            raise _not_supported("using $orderby and $skiptoken together")
        raw_filter = params.get("$filter")
        return cls(
            top=_int_param(params.get("$top")),
            skip=_int_param(params.get("$skip")) or 0,
            skiptoken=_read_skiptoken(token) if token is not None else None,
            count=params.get("$count") == "true",
            expand=expand == "*",
            wkt=params.get("$wkt") == "true",
            filter=parse_filter(raw_filter, subtable=subtable, filterable=filterable)
            if raw_filter
            else None,
            orderby=params.get("$orderby"),
            select=None
            if select in (None, "*")
            else [s.strip() for s in select.split(",") if s.strip()],
        )

    def matches(self, record: _Record, now: datetime) -> bool:
        if self.filter is None:
            return record.deleted_at is None
        if record.deleted_at is not None and not _mentions_deleted(self.filter):
            return False
        return _truth(self.filter, record, now) is True


@dataclass(frozen=True)
class _Window:
    start: int
    stop: int
    count: int  # the whole selection, whatever the paging
    next_token: dict[str, Any] | None


def _window(ids: list[str], query: _Query, cursor_key: str, cursor_at: int | None) -> _Window:
    """One page of `ids`. After a cursor, paging resumes there (`$skip` is then ignored). Like
    Central, `$skip` is not subtracted when deciding whether a next page exists, so a `$skip`
    request may link to one empty page."""
    if query.skiptoken is not None:
        start = len(ids) if cursor_at is None else cursor_at
        remaining = len(ids) - start
    else:
        start, remaining = min(query.skip, len(ids)), len(ids)
    stop = len(ids) if query.top is None else min(len(ids), start + query.top)
    more = query.top is not None and remaining > query.top and stop > start
    return _Window(start, stop, len(ids), {cursor_key: ids[stop - 1]} if more else None)


def _envelope(rows: list[bytes], context: str, next_link: str | None, count: int | None) -> bytes:
    """Central streams `value` first, then the context, nextLink and count."""
    tail: dict[str, Any] = {"@odata.context": context}
    if next_link is not None:
        tail["@odata.nextLink"] = next_link
    if count is not None:
        tail["@odata.count"] = count
    return b'{"value":[' + b",".join(rows) + b"]," + orjson.dumps(tail)[1:]


class _OdkApi:
    """Request handlers bound to a store, one Web User and the server's configured domain."""

    def __init__(self, store: OdkStore, email: str, password: str, domain: str | None) -> None:
        self.store, self.email, self.password, self.domain = store, email, password, domain

    # -- shared steps

    def base(self, request: Request) -> str:
        """`env.domain`: Central writes it into links whatever host the request came to."""
        return self.domain or f"{request.url.scheme}://{request.url.netloc}"

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if not header:
            raise FORBIDDEN  # anonymous: Central refuses the action, not the credentials
        if scheme.lower() == "bearer":
            if not self.store.session_valid(credentials.strip()):
                self.store.rejected_tokens += 1
                raise AUTH_FAILED
            return
        if scheme.lower() == "basic":
            https = (
                request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
            )
            if not https:
                raise ODataProblem(401.3, "This authentication method is only available over HTTPS")
            try:
                user, _, password = base64.b64decode(credentials).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise AUTH_FAILED from None
            if (user, password) != (self.email, self.password):
                raise AUTH_FAILED
            return
        raise AUTH_FAILED

    def project_of(self, request: Request) -> int:
        project_id = request.path_params["project_id"]
        project = self.store.project(project_id)
        if project is None:
            raise NOT_FOUND
        if not project.readable:
            raise FORBIDDEN
        return project_id

    def form_of(self, request: Request) -> HostedForm:
        form = self.store.form(self.project_of(request), request.path_params["xml_form_id"])
        if form is None:
            raise NOT_FOUND
        return form

    def query(self, request: Request, *, subtable: bool) -> _Query:
        filterable = FILTERABLE if self.store.deleted_at_filter else BEFORE_DELETED_AT
        return _Query.parse(request.query_params, subtable=subtable, filterable=filterable)

    def service_root(self, request: Request, form: HostedForm) -> str:
        form_path = quote(form.xml_form_id, safe="")
        return f"{self.base(request)}/v1/projects/{form.project_id}/forms/{form_path}.svc"

    def next_link(self, request: Request, token: dict[str, Any]) -> str:
        """The request's own query with `$skip` dropped and `$skiptoken` set, form-encoded."""
        params = [
            (k, v)
            for k, v in request.query_params.multi_items()
            if k not in ("$skip", "$skiptoken")
        ]
        params.append(("$skiptoken", skiptoken(token)))
        return f"{self.base(request)}{request.url.path}?{urlencode(params, safe='*')}"

    # -- sessions

    async def session_create(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise ODataProblem(400.1, "Could not parse the given data as json.") from None
        if not isinstance(body, dict) or not body.get("email") or not body.get("password"):
            raise ODataProblem(400.3, "Required parameters missing. Expected (email, password).")
        if (body["email"], body["password"]) != (self.email, self.password):
            raise AUTH_FAILED
        return _json(self.store.open_session())

    async def session_delete(self, request: Request) -> Response:
        self.authenticate(request)
        token = request.path_params["token"]
        if token == "current":
            token = request.headers.get("authorization", "").partition(" ")[2].strip()
        if not self.store.end_session(token):
            raise NOT_FOUND
        return _json({"success": True})

    # -- forms

    def form_summary(self, form: HostedForm) -> dict[str, Any]:
        stamp = _iso(form.created_at)
        return {
            "projectId": form.project_id,
            "xmlFormId": form.xml_form_id,
            "state": form.state,
            "enketoId": hashlib.sha1(form.xml_form_id.encode()).hexdigest()[:12],
            "name": form.name,
            "version": form.version,
            "keyId": None,
            "hash": hashlib.md5(repr(form.fields).encode()).hexdigest(),
            "publishedAt": stamp,
            "createdAt": stamp,
            "updatedAt": None,
        }

    async def forms(self, request: Request) -> Response:
        self.authenticate(request)
        project_id = self.project_of(request)
        return _json([self.form_summary(f) for f in self.store.forms(project_id)])

    async def form_detail(self, request: Request) -> Response:
        self.authenticate(request)
        return _json(self.form_summary(self.form_of(request)))

    async def fields(self, request: Request) -> Response:
        self.authenticate(request)
        form = self.form_of(request)
        odata = request.query_params.get("odata") == "true"
        listed = []
        for n in form.nodes():
            entry: dict[str, Any] = {
                "name": n.key if odata else n.name,
                "path": "/" + (n.odata_path if odata else n.path),
                "type": n.type,
            }
            if n.type == "binary":
                entry["binary"] = True
            listed.append(entry)
        return _json(listed)

    # -- OData

    async def service_document(self, request: Request) -> Response:
        self.authenticate(request)
        form = self.form_of(request)
        tables = ["Submissions", *(n.table for n in form.repeats())]
        body = {
            "@odata.context": f"{self.service_root(request, form)}/$metadata",
            "value": [{"name": t, "kind": "EntitySet", "url": t} for t in tables],
        }
        return _json(body, headers=ODATA_HEADERS, media_type=f"{JSON}; odata.metadata=minimal")

    async def odata(self, request: Request) -> Response:
        self.authenticate(request)
        form = self.form_of(request)
        rest = request.path_params["rest"]
        if rest == "$metadata":
            return self.metadata(request, form)
        with self.store.snapshot():
            if rest == "Submissions":
                return self.root_feed(request, form)
            if rest.startswith("Submissions."):
                target = next((n for n in form.repeats() if n.table == rest), None)
                if target is None:
                    raise NOT_FOUND
                return self.subtable_feed(request, form, target, None, {})
            single = _SINGLE.match(rest)
            if single is None:
                raise NOT_FOUND
            return self.single(request, form, single.group(1), single.group(2))

    def metadata(self, request: Request, form: HostedForm) -> Response:
        accept = request.headers.get("accept", "")
        if request.query_params.get("$format") == "json" or (
            "json" in accept and "xml" not in accept and "*/*" not in accept
        ):
            raise _not_acceptable("application/xml,xml")
        return Response(_edmx(form), 200, ODATA_HEADERS, "application/xml")

    def visible(self, form: HostedForm, query: _Query) -> list[_Record]:
        now = self.store.now()
        return _order([r for r in form.order if query.matches(r, now)], query.orderby)

    def root_feed(self, request: Request, form: HostedForm) -> Response:
        query = self.query(request, subtable=False)
        records = self.visible(form, query)
        cursor_at = None
        if query.skiptoken is not None:
            # Rows strictly older than the cursor row, which may since have been deleted; an
            # unknown instanceId gives an empty page rather than an error.
            cursor = form.records.get(str(query.skiptoken.get("instanceId")))
            if cursor is not None:
                older = (i for i, r in enumerate(records) if r.order_key < cursor.order_key)
                cursor_at = next(older, len(records))
        window = _window([r.root_id for r in records], query, "instanceId", cursor_at)
        rows = [self.render(form, r, query) for r in records[window.start : window.stop]]
        return self.data_response(request, form, "Submissions", rows, window, query)

    def render(self, form: HostedForm, record: _Record, query: _Query) -> bytes:
        if query.select is None and not query.wkt:
            return _root_bytes(form, record, query.expand)
        row = _root_row(form, record, query.expand, query.wkt)
        return orjson.dumps(row if query.select is None else _select(form, row, query.select))

    def subtable_feed(
        self,
        request: Request,
        form: HostedForm,
        target: _Node,
        root: _Record | None,
        parent_ids: dict[int, str],
    ) -> Response:
        query = self.query(request, subtable=True)
        records = [root] if root is not None else self.visible(form, query)
        rows = list(_subtable_rows(target, records, query, parent_ids))
        ids = [r["__id"] for r in rows]
        cursor_at = None
        if query.skiptoken is not None:
            wanted = query.skiptoken.get("repeatId")
            if wanted not in ids:
                raise ODataProblem(
                    400.34, "Record associated with the provided $skiptoken not found."
                )
            cursor_at = ids.index(wanted) + 1
        window = _window(ids, query, "repeatId", cursor_at)
        page = [orjson.dumps(r) for r in rows[window.start : window.stop]]
        return self.data_response(request, form, target.table, page, window, query)

    def single(
        self, request: Request, form: HostedForm, instance_id: str, nav: str | None
    ) -> Response:
        record = form.records.get(instance_id)
        if record is None or record.deleted_at is not None:
            raise NOT_FOUND
        if nav is None:
            query = self.query(request, subtable=False)
            window = _Window(0, 1, 1, None)
            return self.data_response(
                request, form, "Submissions", [self.render(form, record, query)], window, query
            )
        target, parent_ids = _navigate(form, nav)
        return self.subtable_feed(request, form, target, record, parent_ids)

    def data_response(
        self,
        request: Request,
        form: HostedForm,
        table: str,
        rows: list[bytes],
        window: _Window,
        query: _Query,
    ) -> Response:
        context = f"{self.service_root(request, form)}/$metadata#{table}"
        link = self.next_link(request, window.next_token) if window.next_token else None
        body = _envelope(rows, context, link, window.count if query.count else None)
        return Response(body, 200, ODATA_HEADERS, JSON)


def _navigate(form: HostedForm, nav: str) -> tuple[_Node, dict[int, str]]:
    """Resolve `children/child('…')/toys/toy` to its repeat node and the pinned instances."""
    nodes, node, parent_ids = form.tree, None, {}
    for depth, step in enumerate(nav.split("/")):
        match = _NAV_STEP.match(step)
        node = next((n for n in nodes if match and n.key == match.group(1)), None)
        if node is None or (match and match.group(2) and node.type != "repeat"):
            raise NOT_FOUND
        if match and match.group(2):
            parent_ids[depth] = match.group(2)
        nodes = node.children
    if node is None or node.type != "repeat":
        raise NOT_FOUND
    return node, parent_ids


def _select(form: HostedForm, row: dict[str, Any], select: list[str]) -> dict[str, Any]:
    """`$select`: fields and whole groups, `__system` or some of its properties; `__id` always."""
    nodes = {n.odata_path: n for n in form.nodes()}
    system = {"__id", "__system", *(f"__system/{k}" for k in row["__system"])}
    props = [s.removeprefix("__system/") for s in select if s.startswith("__system/")]
    for item in select:
        node = nodes.get(item)
        if item in system:
            continue
        if node is None:
            raise ODataProblem(400.23, f"Could not find a property named '{item}'")
        if any(a.type == "repeat" for a in node.lineage[:-1]):
            raise ODataProblem(
                400.24,
                f"The given OData select property '{item}' uses features not supported by this "
                "server.",
            )
    out = _prune(row, form.tree, set(select))
    out["__id"] = row["__id"]
    if "__system" in select:
        out["__system"] = row["__system"]
    elif props:
        out["__system"] = {k: v for k, v in row["__system"].items() if k in props}
    return out


def _prune(data: dict[str, Any], nodes: list[_Node], wanted: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in nodes:
        if node.odata_path in wanted:
            for key in (node.key, f"{node.key}@odata.navigationLink"):
                if key in data:
                    out[key] = data[key]
        elif node.type == "structure" and any(w.startswith(node.odata_path + "/") for w in wanted):
            out[node.key] = _prune(data.get(node.key) or {}, node.children, wanted)
    return out


_EDM = {"int": "Edm.Int64", "decimal": "Edm.Decimal", "boolean": "Edm.Boolean",
        "geopoint": "Edm.GeographyPoint", "geotrace": "Edm.GeographyLineString",
        "geoshape": "Edm.GeographyPolygon", "date": "Edm.Date",
        "dateTime": "Edm.DateTimeOffset"}  # fmt: skip
_EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
_SYSTEM_NS = "org.opendatakit.submission"
_SYSTEM_TYPES = {
    "submissionDate": "Edm.DateTimeOffset", "updatedAt": "Edm.DateTimeOffset",
    "deletedAt": "Edm.DateTimeOffset", "submitterId": "Edm.String", "submitterName": "Edm.String",
    "attachmentsPresent": "Edm.Int64", "attachmentsExpected": "Edm.Int64",
    "status": f"{_SYSTEM_NS}.Status", "reviewState": f"{_SYSTEM_NS}.ReviewState",
    "deviceId": "Edm.String", "edits": "Edm.Int64", "formVersion": "Edm.String",
}  # fmt: skip


def _edm_properties(parent: ET.Element, nodes: list[_Node], ns: str) -> None:
    for n in nodes:
        if n.type == "repeat":
            ET.SubElement(
                parent, "NavigationProperty", Name=n.key, Type=f"Collection({ns}.{n.table})"
            )
        elif n.type == "structure":
            ET.SubElement(
                parent, "Property", Name=n.key, Type=f"{ns}.{n.odata_path.replace('/', '.')}"
            )
        else:
            ET.SubElement(parent, "Property", Name=n.key, Type=_EDM.get(n.type, "Edm.String"))


def _edm_entity(schema: ET.Element, name: str, extra: tuple[str, str]) -> ET.Element:
    entity = ET.SubElement(schema, "EntityType", Name=name)
    ET.SubElement(ET.SubElement(entity, "Key"), "PropertyRef", Name="__id")
    ET.SubElement(entity, "Property", Name="__id", Type="Edm.String")
    ET.SubElement(entity, "Property", Name=extra[0], Type=extra[1])
    return entity


def _edmx(form: HostedForm) -> bytes:
    """A minimal CSDL: groups as complex types, repeats as entity types, no annotations."""
    ns = f"org.opendatakit.user.{sanitize(form.xml_form_id)}"
    edmx = ET.Element("edmx:Edmx", {"xmlns:edmx": "http://docs.oasis-open.org/odata/ns/edmx",
                                    "Version": "4.0"})  # fmt: skip
    services = ET.SubElement(edmx, "edmx:DataServices")
    system = ET.SubElement(services, "Schema", xmlns=_EDM_NS, Namespace=_SYSTEM_NS)
    metadata = ET.SubElement(system, "ComplexType", Name="metadata")
    for name, kind in _SYSTEM_TYPES.items():
        ET.SubElement(metadata, "Property", Name=name, Type=kind)
    for enum, members in (("Status", ("notDecrypted", "missingEncryptedFormData")),
                          ("ReviewState", REVIEW_STATES)):  # fmt: skip
        element = ET.SubElement(system, "EnumType", Name=enum)
        for member in members:
            ET.SubElement(element, "Member", Name=member)
    user = ET.SubElement(services, "Schema", xmlns=_EDM_NS, Namespace=ns)
    root = _edm_entity(user, "Submissions", ("__system", f"{_SYSTEM_NS}.metadata"))
    _edm_properties(root, form.tree, ns)
    for n in form.repeats():
        parent_key = _parent_key(tuple((a, 0) for a in n.lineage))[0]
        _edm_properties(_edm_entity(user, n.table, (parent_key, "Edm.String")), n.children, ns)
    for n in form.nodes():
        if n.type == "structure":
            group = ET.SubElement(user, "ComplexType", Name=n.odata_path.replace("/", "."))
            _edm_properties(group, n.children, ns)
    container = ET.SubElement(user, "EntityContainer", Name=sanitize(form.xml_form_id))
    for table in ["Submissions", *(n.table for n in form.repeats())]:
        ET.SubElement(container, "EntitySet", Name=table, EntityType=f"{ns}.{table}")
    return ET.tostring(edmx, encoding="utf-8", xml_declaration=True)


def create_app(
    store: OdkStore, email: str, password: str, *, domain: str | None = None
) -> Starlette:
    api = _OdkApi(store, email, password, domain)

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ODataProblem as problem:
                return _problem_response(problem)

        return with_faults(lambda: store.faults, answer)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Central's problem JSON for router errors too."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return _problem_response(NOT_FOUND)
        return _problem_response(ODataProblem(float(status), str(getattr(exc, "detail", "Error"))))

    form_path = "/v1/projects/{project_id:int}/forms/{xml_form_id}"
    routes = [
        Route("/v1/sessions", guarded(api.session_create), methods=["POST"]),
        Route("/v1/sessions/{token}", guarded(api.session_delete), methods=["DELETE"]),
        Route("/v1/projects/{project_id:int}/forms", guarded(api.forms)),
        Route(f"{form_path}.svc", guarded(api.service_document)),
        Route(f"{form_path}.svc/{{rest:path}}", guarded(api.odata)),
        Route(f"{form_path}/fields", guarded(api.fields)),
        Route(form_path, guarded(api.form_detail)),
    ]
    from simulators.odk.entities_api import entity_routes  # it imports this module

    routes += entity_routes(store, api)
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


# =========================================================================== seeding


def _device_id(submitter: str | None) -> str | None:
    """Collect's `collect:<16 chars>`; None for web-form (Enketo) submissions."""
    if submitter is None:
        return None
    return "collect:" + hashlib.sha1(submitter.encode()).hexdigest()[:16]


@dataclass(frozen=True, order=True)
class _Event:
    at: datetime
    n: int  # generation order breaks ties
    xml_form_id: str = field(compare=False)
    root: str = field(compare=False)
    changes: dict[str, Any] | None = field(compare=False)  # an edit, or else a review
    review: str | None = field(compare=False, default=None)


def seed_odk_from_cohort(
    store: OdkStore,
    cohort: Cohort,
    project_id: int = 1,
    *,
    after: datetime | None = None,
    as_of: datetime | None = None,
) -> dict[str, str]:
    """Load a cohort into the store; returns {form_id: xmlFormId}.

    Forms come from the programme's XLSForms. Only what happened in (after, as_of] is applied:
    submissions by receive time, then edits and reviews in time order (a review after an edit
    wins, an edit after a review sets "edited"), so a cohort can be replayed in steps. Kobo
    validation statuses map to review states: not approved → rejected, on hold → hasIssues.
    """

    def in_window(moment: datetime | None) -> bool:
        return (
            moment is not None
            and (after is None or moment > after)
            and (as_of is None or moment <= as_of)
        )

    if store.project(project_id) is None:
        store.add_project(project_id, "สัมมาชีพชุมชน")
    xml_ids: dict[str, str] = {}
    for form_id in FORM_IDS:
        definition = xlsform_definition(FORMS[form_id].xlsform)
        if store.form(project_id, definition.xml_form_id) is None:
            store.add_definition(project_id, definition)
        xml_ids[form_id] = definition.xml_form_id
    events: list[_Event] = []
    with paused_gc():
        for n, sub in enumerate(cohort.submissions):  # already in received_at order
            xml_id, root = xml_ids[sub.form_id], str(sub.answers.get("meta/instanceID"))
            if in_window(sub.received_at):
                store.submit(
                    xml_id,
                    sub.answers,
                    sub.received_at,
                    project_id=project_id,
                    submitter=sub.submitted_by or PUBLIC_LINK,
                    device_id=_device_id(sub.submitted_by),
                )
            events += [
                _Event(at, n, xml_id, root, changes) for at, changes in sub.edits if in_window(at)
            ]
            review = KOBO_TO_REVIEW.get(sub.validation_status or "")
            if review and sub.validated_at and in_window(sub.validated_at):
                events.append(_Event(sub.validated_at, n, xml_id, root, None, review))
        for event in sorted(events):
            _apply(store, project_id, event)
    return xml_ids


def _apply(store: OdkStore, project_id: int, event: _Event) -> None:
    try:
        if event.changes is not None:
            store.edit(
                event.xml_form_id, event.root, event.changes, project_id=project_id, at=event.at
            )
        elif event.review is not None:
            store.set_review_state(
                event.xml_form_id, event.root, event.review, project_id=project_id, at=event.at
            )
    except KeyError:  # received before `after`, in a replay step this store never saw
        pass


# =========================================================================== serving


@contextmanager
def serve_odk(
    store: OdkStore,
    email: str,
    password: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    domain: str | None = None,
) -> Iterator[str]:
    """Serve the store on loopback in a background thread; yields the base URL. `domain` is
    what Central writes into `@odata.nextLink`/`@odata.context` (default: the served URL)."""
    with serve_in_thread(
        lambda url: create_app(store, email, password, domain=domain or url),
        host=host, port=port, name="odk-simulator",
    ) as url:  # fmt: skip
        yield url


def run_odk_forever(
    store: OdkStore,
    email: str,
    password: str,
    host: str = "127.0.0.1",
    port: int = 8383,
    *,
    domain: str | None = None,
) -> None:
    """Run the simulator in the foreground until interrupted (for a CLI command)."""
    app = create_app(store, email, password, domain=domain or f"http://{host}:{port}")
    run_forever(app, host, port)
