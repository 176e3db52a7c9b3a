"""A typed client for ODK Central's Entity Lists: what pushing each officer's list to the phones
needs (the push logic itself is elsewhere).

It keeps the session, retries and error style of `OdkClient`, and adds what Central v2026.2.2
was recorded doing (`/work/shared/reference/odk/samples/entities/README.md`):
- writes are retried like reads, so each one is made safe to repeat: a bulk create carries our
  own uuids, and a retry (or a re-run after a crash) that Central refuses with 409.3 is
  recognised as "already there" — the batch is all-or-nothing and names only the first existing
  uuid, so the existing ones are read back and the rest sent again, never doubled; a PATCH whose
  first attempt landed unseen is recognised by reading the entity back; an App User is looked up
  by name before one is created;
- a stale `baseVersion` (a phone changed the item) is an `EntityConflict` carrying the server's
  current version, never silently overwritten; a uuid of a deleted entity is `DeletedEntities`;
- an access filter is checked after it is set: Central answers 200 to a misspelt rule and
  silently removes the filter (every phone would then download the whole list);
- values are strings and property names ASCII identifiers, checked before anything is sent.
"""

from __future__ import annotations

import hashlib
import re
import uuid as uuidlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from sammachip.connectors.odk.client import OdkClient, OdkError, OdkServer
from sammachip.connectors.retry import call_with_retries, parse_utc

_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the subset every Central version takes
_RESERVED = {"name", "label"}
BATCH_SIZE = 5000  # entities per bulk create (~1 MB of JSON; Central takes up to 100 MB)


def entity_uuid(item_id: str) -> str:
    """The entity uuid of one of our items: stable (a re-run sends the same one, which Central
    refuses instead of doubling) and shaped like a version-4 UUID, the only kind it takes."""
    digest = hashlib.sha256(f"sammachip:{item_id}".encode()).digest()
    return str(uuidlib.UUID(bytes=digest[:16], version=4))


@dataclass(frozen=True)
class NewEntity:
    uuid: str
    label: str
    data: Mapping[str, str]


@dataclass(frozen=True)
class ServerEntity:
    """An entity as the server holds it now (properties never set read as "")."""

    uuid: str
    label: str
    version: int
    data: dict[str, str]
    created_at: datetime
    updated_at: datetime | None
    conflict: str | None  # "soft"/"hard" when a phone wrote over a version it had not seen


@dataclass(frozen=True)
class CreateResult:
    created: list[str]  # uuids this call created
    existing: list[str]  # uuids the server already held (an earlier or retried create)


@dataclass(frozen=True)
class AppUser:
    id: int
    display_name: str
    properties: dict[str, str]
    token: str = field(repr=False)  # the phone's key: never printed, never logged


class EntityConflict(OdkError):
    """409.15: the entity is no longer at the version the update started from (a phone, or
    another run, changed it): re-read it and decide."""

    def __init__(self, message: str, *, uuid: str, current: int, provided: int | None) -> None:
        super().__init__(message, status=409, code=409.15)
        self.uuid, self.current, self.provided = uuid, current, provided


class DeletedEntities(OdkError):
    """409.19: these uuids belong to deleted entities: restore them instead of creating."""

    def __init__(self, message: str, *, uuids: Sequence[str]) -> None:
        super().__init__(message, status=409, code=409.19)
        self.uuids = tuple(uuids)


class AccessFilterNotApplied(OdkError):
    """The server answered the filter change, but does not hold the filter asked for."""


class _Tries:
    count = 0


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        problem = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {"message": response.text[:200]}
    return problem if isinstance(problem, dict) else {"message": str(problem)[:200]}


def _check_names(properties: Sequence[str]) -> None:
    bad = [
        p
        for p in properties
        if not _PROPERTY.fullmatch(p) or p.lower() in _RESERVED or p.startswith("__")
    ]
    if bad:
        raise ValueError(
            f"entity property names {bad} will be refused: use ASCII letters, digits and _ "
            "(not starting with __, not name/label); Thai belongs in the values and labels"
        )


def _check_values(entity_id: str, data: Mapping[str, Any]) -> None:
    wrong = {k: v for k, v in data.items() if not isinstance(v, str)}
    if wrong:
        raise TypeError(f"{entity_id}: values must be strings (Central stores text): {wrong}")


def _listed(row: dict[str, Any]) -> ServerEntity:
    system = row["__system"]
    data = {k: v for k, v in row.items() if k not in ("__id", "label", "__system")}
    return ServerEntity(
        uuid=row["__id"],
        label=row.get("label", ""),
        version=int(system["version"]),
        data={k: "" if v is None else str(v) for k, v in data.items()},
        created_at=parse_utc(system["createdAt"]),
        updated_at=parse_utc(system["updatedAt"]) if system.get("updatedAt") else None,
        conflict=system.get("conflict"),
    )


def _from_rest(body: dict[str, Any]) -> ServerEntity:
    current = body["currentVersion"]
    return ServerEntity(
        uuid=body["uuid"],
        label=current["label"],
        version=int(current["version"]),
        data=dict(current.get("data") or {}),
        created_at=parse_utc(body["createdAt"]),
        updated_at=parse_utc(body["updatedAt"]) if body.get("updatedAt") else None,
        conflict=body.get("conflict"),
    )


def _app_user(body: dict[str, Any]) -> AppUser:
    return AppUser(
        int(body["id"]),
        body["displayName"],
        dict(body.get("properties") or {}),
        body.get("token") or "",
    )


class EntityClient(OdkClient):
    """Entity Lists, actor properties and App Users of one project (a Web User who is Project
    Manager there). Close it (or use `with`) to end the session."""

    def __init__(self, server: OdkServer, *, batch_size: int = BATCH_SIZE, **options: Any) -> None:
        super().__init__(server, **options)  # page size, timeout, retries: as `OdkClient`
        self.batch_size = batch_size

    # ---- HTTP ------------------------------------------------------------------------------
    def _error(self, response: httpx.Response, form: str | None) -> OdkError:
        """Central's problem as a typed error whose message says what to do (`form` here is
        what the request was about, e.g. "entity list followups")."""
        problem, status = _problem(response), response.status_code
        code, details = problem.get("code"), problem.get("details") or {}
        where = f"{form or 'entity lists'} (project {self.server.project_id}, {self.server.host})"
        said = f"HTTP {status} {problem.get('message', '')}"
        if code == 409.15:
            provided = details.get("provided")
            return EntityConflict(
                f"{where}: {said} — a phone or another run changed it: re-read it and decide",
                uuid="",
                current=int(details.get("current", 0)),  # `update` names the entity
                provided=int(provided) if provided not in (None, "undefined") else None,
            )
        if code == 409.19:
            return DeletedEntities(
                f"{where}: {said} — restore them rather than create them",
                uuids=details.get("entityUuids") or [],
            )
        hints = {
            401: f"Central refused the login of {self.server.email}: check the email/password",
            403: f"{self.server.email} needs the Project Manager role on project "
            f"{self.server.project_id} to manage Entity Lists and App Users",
            404: "not on the server (or the server is older than Central v2024.1; actor "
            "properties and access filters need v2026.2)",
        }
        return OdkError(
            f"{where}: {said} — {hints.get(status, 'see the server message')}",
            status=status,
            code=code,
        )

    def _call(
        self,
        method: str,
        target: str,
        what: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        tries: _Tries | None = None,
        retry: bool = True,
    ) -> Any:
        """One JSON request with the session, the 401 re-login and (unless `retry` is off, for
        a create that cannot tell a repeat) the retries of reads."""
        content = None if body is None else orjson.dumps(body)
        headers = dict(headers or {})
        if content is not None:
            headers["Content-Type"] = "application/json"

        def once() -> Any:
            if tries is not None:
                tries.count += 1
            self._ensure_session(what)
            send = {"params": params, "content": content, "headers": {**headers, **self._auth()}}
            response = self._send(method, target, **send)
            if response.status_code == 401:
                self._login(what)
                send["headers"] = {**headers, **self._auth()}
                response = self._send(method, target, **send)
            return self._decode(response, what)

        base, cap = self._backoff
        return call_with_retries(once, attempts=self._attempts if retry else 1, base=base, cap=cap)

    def _project(self) -> str:
        return f"/v1/projects/{self.server.project_id}"

    def _list(self, name: str) -> str:
        return f"{self._project()}/datasets/{quote(name, safe='')}"

    def _odata(self, name: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of the `Entities` feed, following `@odata.nextLink` re-based onto our URL."""
        path, what = f"{self._list(name)}.svc/Entities", f"entity list {name}"
        target, query, followed = path, params, set()
        while True:
            doc = self._get(target, query, form=what)
            if doc.get("value"):
                yield doc["value"]
            link = doc.get("@odata.nextLink")
            if not link:
                return
            next_query = urlsplit(link).query
            if next_query in followed:
                raise OdkError(f"{what}: the server sent the same next page twice")
            followed.add(next_query)
            target, query = f"{path}?{next_query}", None

    # ---- lists and properties -----------------------------------------------------------------
    def ensure_list(self, name: str, properties: Sequence[str]) -> list[str]:
        """Create the list and whichever properties it lacks (repeatable); returns the
        properties added now."""
        _check_names(properties)
        what = f"entity list {name}"
        try:
            detail = self._get(self._list(name), form=what)
        except OdkError as err:
            if err.status != 404:
                raise
            detail = self._create_once(f"{self._project()}/datasets", {"name": name}, what)
            detail = detail or self._get(self._list(name), form=what)
        have = {p["name"] for p in detail.get("properties") or []}
        added = [p for p in properties if p not in have]
        for prop in added:
            self._create_once(f"{self._list(name)}/properties", {"name": prop}, what)
        return added

    def _create_once(self, target: str, body: dict[str, Any], what: str) -> Any:
        """POST something named; 409.3 (it exists: a retry or a concurrent run) is success."""
        try:
            return self._call("POST", target, what, body=body)
        except OdkError as err:
            if err.code != 409.3:
                raise
            return None

    # ---- entities ----------------------------------------------------------------------------
    def create(self, name: str, entities: Sequence[NewEntity], *, source: str) -> CreateResult:
        """Bulk-create in batches; uuids the server already holds are reported, not doubled.
        `source` names the batch in Central's audit log (e.g. the run id)."""
        uuids = [e.uuid for e in entities]
        if len(set(uuids)) != len(uuids):
            raise ValueError(f"entity list {name}: the same uuid twice in one create")
        for e in entities:
            _check_values(f"entity {e.uuid}", e.data)
        created: list[str] = []
        existing: list[str] = []
        for start in range(0, len(entities), self.batch_size):
            batch = list(entities[start : start + self.batch_size])
            done, held = self._create_batch(name, batch, source)
            created += done
            existing += held
        return CreateResult(created, existing)

    def _create_batch(
        self, name: str, batch: list[NewEntity], source: str
    ) -> tuple[list[str], list[str]]:
        what, held = f"entity list {name}", set[str]()
        while batch:
            body = {
                "entities": [
                    {"uuid": e.uuid, "label": e.label, "data": dict(e.data)} for e in batch
                ],
                "source": {"name": source, "size": len(batch)},
            }
            try:
                self._call("POST", f"{self._list(name)}/entities", what, body=body)
                return [e.uuid for e in batch], sorted(held)
            except OdkError as err:
                if err.code != 409.3:
                    raise
            # Nothing of the batch was created; Central named one uuid it holds: learn them all.
            live = self.ids(name)
            present = {e.uuid for e in batch} & live
            if not present:
                raise OdkError(f"{what}: the server refused a uuid it does not list (409.3)")
            held |= present
            batch = [e for e in batch if e.uuid not in present]
        return [], sorted(held)

    def ids(self, name: str) -> set[str]:
        """The uuids of the list's live (not deleted) entities."""
        return {
            r["__id"]
            for page in self._odata(name, {"$select": "__id", "$top": self.page_size})
            for r in page
        }

    def entities(self, name: str) -> list[ServerEntity]:
        """Every live entity with its version and data, newest first."""
        return [_listed(r) for page in self._odata(name, {"$top": self.page_size}) for r in page]

    def deleted(self, name: str) -> dict[str, datetime]:
        """uuid → when it was deleted, for the list's deleted entities (Central purges them
        30 days on). Deletion does not move `updatedAt`, hence a query of its own."""
        params = {
            "$filter": "__system/deletedAt ne null",
            "$select": "__id,__system",
            "$top": self.page_size,
        }
        return {
            r["__id"]: parse_utc(r["__system"]["deletedAt"])
            for page in self._odata(name, params)
            for r in page
        }

    def get(self, name: str, uuid: str) -> ServerEntity:
        """One live entity as the server holds it now (re-read after a refused update)."""
        target = f"{self._list(name)}/entities/{uuid}"
        return _from_rest(self._get(target, form=f"entity list {name}: entity {uuid}"))

    def update(
        self,
        name: str,
        uuid: str,
        *,
        base_version: int,
        data: Mapping[str, str] | None = None,
        label: str | None = None,
    ) -> ServerEntity:
        """Change some properties (and/or the label) of the entity at `base_version`. Central
        makes a version even when nothing changes: send only what differs. `""` empties a
        property. A server-side change since `base_version` raises `EntityConflict`."""
        if not data and label is None:
            raise ValueError(f"entity {uuid}: nothing to update")
        _check_values(f"entity {uuid}", data or {})
        body: dict[str, Any] = {"data": dict(data)} if data else {}
        if label is not None:
            body["label"] = label
        what, tries = f"entity list {name}: entity {uuid}", _Tries()
        target = f"{self._list(name)}/entities/{uuid}"
        try:
            doc = self._call(
                "PATCH", target, what, body=body, params={"baseVersion": base_version}, tries=tries
            )
            return _from_rest(doc)
        except EntityConflict as conflict:
            if tries.count > 1:  # our first attempt may have landed, its answer lost
                now = self.get(name, uuid)
                mine = all(now.data.get(k) == v for k, v in (data or {}).items())
                if now.version == base_version + 1 and mine and label in (None, now.label):
                    return now
            conflict.uuid = uuid
            raise conflict from None

    def delete(self, name: str, uuid: str) -> bool:
        """Soft-delete (phones drop it at their next sync); False if it was not there (already
        deleted, e.g. by this call's own retried request)."""
        return self._absent_ok(
            "DELETE", f"{self._list(name)}/entities/{uuid}", f"entity list {name}: entity {uuid}"
        )

    def restore(self, name: str, uuid: str) -> bool:
        """Undo a delete (an item that came back); False if it was not deleted."""
        return self._absent_ok(
            "POST",
            f"{self._list(name)}/entities/{uuid}/restore",
            f"entity list {name}: entity {uuid}",
        )

    def _absent_ok(self, method: str, target: str, what: str) -> bool:
        try:
            self._call(method, target, what)
        except OdkError as err:
            if err.status != 404:
                raise
            return False
        return True

    # ---- who sees what -----------------------------------------------------------------------
    def set_access_filter(self, name: str, dataset_property: str, actor_property: str) -> None:
        """Phones of App Users download only the entities whose `dataset_property` equals their
        own `actor_property` (Central v2026.2+). One rule only: Central ORs several."""
        rule = {"datasetProperty": dataset_property, "actorProperty": actor_property}
        wanted = {"type": "property", "rules": [rule]}
        what = f"entity list {name}"
        answer = self._call("PATCH", self._list(name), what, body={"accessFilter": wanted})
        if answer.get("accessFilter") != wanted:
            raise AccessFilterNotApplied(
                f"{what}: the server did not keep the access filter {dataset_property} = "
                f"{actor_property} (it holds {answer.get('accessFilter')}), so every phone "
                f"downloads the whole list — check that '{dataset_property}' is a property of "
                f"the list and '{actor_property}' a registered actor property (or the server "
                "is older than Central v2026.2)",
                status=200,
            )

    def clear_access_filter(self, name: str) -> None:
        self._call("PATCH", self._list(name), f"entity list {name}", body={"accessFilter": None})

    def ensure_actor_property(self, name: str) -> bool:
        """Register an actor property (v2026.2+); False if it was there already."""
        _check_names([name])
        target = f"{self._project()}/actor-properties"
        return self._create_once(target, {"name": name}, f"actor property {name}") is not None

    def app_users(self) -> list[AppUser]:
        listing = self._call(
            "GET",
            f"{self._project()}/app-users",
            "app users",
            headers={"X-Extended-Metadata": "true"},
        )
        return [_app_user(u) for u in listing]

    def ensure_app_user(self, display_name: str, properties: Mapping[str, str]) -> AppUser:
        """The App User of that name, created if missing, with these actor properties; a
        create whose answer is lost is found again by name, never made twice."""
        user = self._find_or_create_app_user(display_name)
        if any(user.properties.get(k) != v.strip() for k, v in properties.items()):
            user = self.set_app_user_properties(user.id, properties)
        return user

    def _find_or_create_app_user(self, display_name: str) -> AppUser:
        """Each attempt first looks for the user (an earlier attempt may have made it) and
        then creates it once: a POST is never repeated blindly."""
        target, what = f"{self._project()}/app-users", f"app user {display_name}"

        def once() -> AppUser:
            found = [u for u in self.app_users() if u.display_name == display_name]
            if found:
                return found[0]
            body = {"displayName": display_name}
            return _app_user(self._call("POST", target, what, body=body, retry=False))

        base, cap = self._backoff
        return call_with_retries(once, attempts=self._attempts, base=base, cap=cap)

    def assign_form(self, xml_form_id: str, app_user_id: int) -> None:
        """Let an App User's phone download a form (Central's `app-user` role on it);
        assigning it again changes nothing."""
        target = (
            f"{self._project()}/forms/{quote(xml_form_id, safe='')}/assignments/app-user/"
            f"{app_user_id}"
        )
        self._create_once(target, {}, f"form {xml_form_id}: app user {app_user_id}")

    def set_app_user_properties(self, app_user_id: int, properties: Mapping[str, str]) -> AppUser:
        """Set (or, with "", unset) actor properties of an App User and check the server
        kept them."""
        _check_values(f"app user {app_user_id}", properties)
        what = f"app user {app_user_id}"
        answer = _app_user(
            self._call(
                "PATCH",
                f"{self._project()}/app-users/{app_user_id}",
                what,
                body={"properties": dict(properties)},
            )
        )
        wanted = {k: v.strip() for k, v in properties.items() if v.strip()}
        if any(answer.properties.get(k) != v for k, v in wanted.items()):
            raise OdkError(
                f"{what}: the server did not keep the properties {wanted} (it holds "
                f"{answer.properties}) — actor properties need Central v2026.2",
                status=200,
            )
        return answer
