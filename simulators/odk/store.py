"""The simulated Central's store: projects, forms, submissions (their versions, review states,
soft deletes and purges) and sessions, thread-safe and in memory.

Answers are stored the way Kobo sends them (flat `group/field` keys, strings) and typed when a
row is rendered (`render.py`), like Central parses the submission XML against the current form
schema.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sammachip.simulators.faults import FaultPlan
from sammachip.simulators.kobo import derived_uuid
from sammachip.simulators.odk.forms import (
    FormDefinition,
    Node,
    OdkField,
    evaluate_instance_name,
    field_tree,
)
from sammachip.simulators.odk.render import root_bytes
from sammachip.simulators.odk.values import REVIEW_STATES, iso

_TOKEN_ALPHABET = string.ascii_letters + string.digits + "!$"  # Central's generateToken
_FIRST_ACTOR_ID = 5  # ids below belong to the admin users every server has


def new_token() -> str:
    """A session, CSRF or App User token as Central's generateToken makes it."""
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(64))


def _ms(moment: datetime) -> datetime:
    """Aware UTC, truncated to milliseconds like Central's timestamps (naive means UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


@dataclass(slots=True)
class Record:
    """A submission: its first version's id, its current version and what Central keeps of it."""

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
    records: dict[str, Record] = field(default_factory=dict)  # by __id
    by_instance: dict[str, str] = field(default_factory=dict)  # any version's id → __id
    order: list[Record] = field(default_factory=list)  # oldest first by (createdAt, id)
    tree: list[Node] = field(init=False)
    name_paths: dict[str, str] = field(init=False)  # `${name}` → path, for instance names

    def __post_init__(self) -> None:
        self.set_schema(self.fields, self.version)

    def set_schema(self, fields: Iterable[OdkField], version: str) -> None:
        self.fields, self.version = tuple(fields), version
        self.tree = field_tree(self.fields)
        self.name_paths = {}
        for f in self.fields:
            if f.type not in ("structure", "repeat"):
                self.name_paths.setdefault(f.name, f.path)
        for record in self.records.values():
            record.cache.clear()

    def nodes(self) -> Iterator[Node]:
        for node in self.tree:
            yield from node.walk()

    def repeats(self) -> list[Node]:
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

    def _record(self, form: HostedForm, instance_id: str) -> Record:
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
            record = Record(
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
        name = evaluate_instance_name(form.instance_name, stored, form.name_paths)
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
            return orjson.loads(root_bytes(hosted, self._record(hosted, instance_id), expand))

    def count(self, form: str, *, project_id: int = 1, deleted: bool = False) -> int:
        with self._lock:
            records = self._require(project_id, form).records.values()
            return sum(1 for r in records if (r.deleted_at is not None) == deleted)

    # -- sessions

    def open_session(self) -> dict[str, str]:
        with self._lock:
            token = new_token()
            created = self.now()
            expires = created + self.session_lifetime
            self._sessions[token] = expires
            self.logins += 1
            csrf = new_token()
            return {
                "createdAt": iso(created),
                "expiresAt": iso(expires),
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


def _insort(order: list[Record], record: Record) -> None:
    i = len(order)
    while i > 0 and order[i - 1].order_key > record.order_key:  # arrivals are mostly in order
        i -= 1
    order.insert(i, record)
