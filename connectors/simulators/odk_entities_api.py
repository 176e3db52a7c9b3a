"""The simulated Central's Entity List API over HTTP: lists, properties, entities (REST, the
OData `Entities` feed and `entities.csv`), actor properties, App Users and form assignments,
plus the phone's downloads (`odk_entities_phone.py`). `entity_routes` is what the ODK
simulator's app registers; the state lives in `odk_entities.EntityStore`.

OData on entities as Central v2026.2.2 answers it: `$filter` only on `__id` and
`__system/{createdAt, updatedAt, deletedAt, creatorId, conflict}` (anything else 501.5, a
function 501.4), deleted entities only when the filter names `deletedAt`, unset properties as
`""`, `label` not `$select`able (400.23), newest first, paged with `$top` and a `$skiptoken`
on the uuid. The filter grammar and its SQL-like evaluation are the submissions feed's.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.simulators.faults import with_faults
from connectors.simulators.odk import (
    _FIELD_NOT_SUPPORTED,
    _KEYWORDS,
    JSON,
    ODATA_HEADERS,
    Expr,
    ODataProblem,
    OdkStore,
    _envelope,
    _FilterParser,
    _int_param,
    _iso,
    _json,
    _mentions_deleted,
    _not_supported,
    _read_skiptoken,
    _truth,
    _window,
)
from connectors.simulators.odk_entities import (
    Actor,
    AppUser,
    Dataset,
    Entity,
    EntityProblem,
    EntityStore,
    EntityVersion,
    entity_store,
)
from connectors.simulators.odk_entities_phone import PhoneApi, csv_response, write_csv

if TYPE_CHECKING:
    from connectors.simulators.odk import _OdkApi

JSON_LIMIT = 250_000  # bytes: Central's body limit, but for creating entities
ENTITIES_LIMIT = 100_000_000
APP_USER_EXPIRY = "9999-12-31T23:59:59.000Z"
# Entity fields → the submissions feed's names, so its filter evaluator serves.
_AS_SUBMISSION = {
    "__id": "__id", "__system/createdAt": "__system/submissionDate",
    "__system/updatedAt": "__system/updatedAt", "__system/deletedAt": "__system/deletedAt",
    "__system/creatorId": "__system/submitterId", "__system/conflict": "__system/reviewState",
}  # fmt: skip
_PARAMS = {"$format", "$count", "$skip", "$top", "$filter", "$select", "$skiptoken", "$orderby",
           "$search"}  # fmt: skip


def _unsupported_field(text: str, at: int) -> EntityProblem:
    return EntityProblem(501.5, f"{_FIELD_NOT_SUPPORTED}: {text} at {at}", {"at": at, "text": text})


class _EntityFilter(_FilterParser):
    """The submissions grammar with the entity fields Central can filter on."""

    def __init__(self, expression: str) -> None:
        super().__init__(expression, subtable=False)
        self.expression = expression

    def unsupported(self, token: Any, kind: str) -> EntityProblem:  # type: ignore[override]
        """As the submissions feed says it, with Central's details (the whole call's text)."""
        text, depth, quoted = token.text, 0, False
        for end, c in enumerate(self.expression[token.at :], token.at):
            quoted = quoted != (c == "'")
            depth += 0 if quoted else (c == "(") - (c == ")")
            if depth == 0 and c == ")":
                text = self.expression[token.at : end + 1]
                break
        return EntityProblem(
            501.4,
            "The given OData filter expression uses features not supported by this server: "
            f'{kind} at {token.at} ("{text}")',
            {"at": token.at, "type": kind, "text": text},
        )

    def name(self, token: Any) -> Expr:
        following = self.peek()
        if token.text in _KEYWORDS or (following is not None and following.text == "("):
            return super().name(token)
        if token.text not in _AS_SUBMISSION:
            raise _unsupported_field(token.text, token.at)
        return ("field", _AS_SUBMISSION[token.text])


def _words(text: str) -> set[str]:
    """Postgres `simple` text-search tokens: runs of letters, marks and digits, lower-cased
    (Thai has no spaces, so only a whole run matches)."""
    words, word = set(), []
    for c in text.lower() + " ":
        if unicodedata.category(c)[0] in "LMN":
            word.append(c)
        elif word:
            words.add("".join(word))
            word = []
    return words


@dataclass(frozen=True)
class _EntityQuery:
    top: int | None
    skip: int
    skiptoken: dict[str, Any] | None
    count: bool
    filter: Expr | None
    orderby: list[tuple[str, bool]] | None
    select: list[str] | None
    search: set[str] | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> _EntityQuery:
        for key in params:
            if key.startswith("$") and key not in _PARAMS:
                raise _not_supported(key)
        token, orderby = params.get("$skiptoken"), params.get("$orderby")
        if token is not None and orderby:
            raise _not_supported("using $orderby and $skiptoken together")
        raw_filter, select, search = (params.get(k) for k in ("$filter", "$select", "$search"))
        return cls(
            top=_int_param(params.get("$top")),
            skip=_int_param(params.get("$skip")) or 0,
            skiptoken=_read_skiptoken(token) if token is not None else None,
            count=params.get("$count") == "true",
            filter=_EntityFilter(raw_filter).parse() if raw_filter else None,
            orderby=_ordered_terms(orderby) if orderby else None,
            select=None if select in (None, "*") else [s.strip() for s in select.split(",")],
            search=_words(search) if search else None,
        )

    def matches(self, entity: Entity, now: datetime) -> bool:
        if self.search is not None:
            text = " ".join([entity.current.label, *entity.current.data.values()])
            if not self.search <= _words(text):
                return False
        if self.filter is None:
            return entity.deleted_at is None
        if entity.deleted_at is not None and not _mentions_deleted(self.filter):
            return False
        return _truth(self.filter, entity, now) is True  # type: ignore[arg-type]


_SORT_KEYS: dict[str, Callable[[Entity], Any]] = {
    "__id": lambda e: e.uuid, "__system/createdAt": lambda e: e.created_at,
    "__system/updatedAt": lambda e: e.updated_at, "__system/deletedAt": lambda e: e.deleted_at,
    "__system/creatorId": lambda e: e.creator_id, "__system/conflict": lambda e: e.conflict,
}  # fmt: skip


def _ordered_terms(orderby: str) -> list[tuple[str, bool]]:
    """`$orderby` as (field, descending) pairs, on the filterable fields only."""
    terms = []
    for term in (t.strip() for t in orderby.split(",") if t.strip()):
        name, _, direction = term.partition(" ")
        direction = direction.strip().lower() or "asc"
        if name not in _SORT_KEYS or direction not in ("asc", "desc"):
            raise _unsupported_field(name, 0)
        terms.append((name, direction == "desc"))
    return terms


def _sorted(oldest_first: list[Entity], terms: list[tuple[str, bool]] | None) -> list[Entity]:
    """Newest first by default. With `$orderby`, ties go by creation in the first term's
    direction (Central appends its id column that way); null sorts lowest."""
    if not terms:
        return oldest_first[::-1]
    ordered = sorted(oldest_first, key=lambda e: e.seq, reverse=terms[0][1])
    for name, descending in reversed(terms):
        get = _SORT_KEYS[name]
        ordered.sort(key=lambda e: (0, 0) if (v := get(e)) is None else (1, v), reverse=descending)
    return ordered


# =========================================================================== JSON shapes


def _ordered(data: Mapping[str, str], dataset: Dataset) -> dict[str, str]:
    return {p: data[p] for p in dataset.properties if p in data}


def _version_json(v: EntityVersion, dataset: Dataset, *, data: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"current": True, "label": v.label, "creatorId": v.creator_id,
                           "userAgent": v.user_agent}  # fmt: skip
    if data:
        out["data"] = _ordered(v.data, dataset)
    out |= {"version": v.version, "baseVersion": v.base_version}
    if data:
        out["dataReceived"] = v.received
    return out | {
        "conflictingProperties": v.conflicting, "createdAt": _iso(v.created_at),
        "branchId": None, "trunkVersion": None, "branchBaseVersion": None,
    }  # fmt: skip


def _entity_json(
    e: Entity, dataset: Dataset, *, data: bool = True, store: EntityStore | None = None
) -> dict[str, Any]:
    """`store` given: with the extended metadata (`creator` objects)."""
    out = {
        "uuid": e.uuid, "creatorId": e.creator_id, "conflict": e.conflict,
        "createdAt": _iso(e.created_at), "updatedAt": _iso(e.updated_at),
        "deletedAt": _iso(e.deleted_at),
        "currentVersion": _version_json(e.current, dataset, data=data),
    }  # fmt: skip
    if store is not None:
        out["currentVersion"]["creator"] = store.actor_json(e.current.creator_id)
        out["creator"] = store.actor_json(e.creator_id)
    return out


def _value(v: EntityVersion, key: str) -> str | None:
    return v.label if key == "label" else v.data.get(key)


def _versions_json(e: Entity, dataset: Dataset, *, relevant_only: bool) -> list[dict[str, Any]]:
    """`baseDiff`: what the writer sent that differs from the version it started from;
    `serverDiff`: what changed since the version before; `lastGoodVersion`: the newest one
    without a conflict; with a conflict, the versions from that one on and the conflicting
    writes' bases are `relevantToConflict`."""
    keys = ("label", *dataset.properties)
    good = max(v.version for v in e.versions if v.conflict is None)
    bases = {v.base_version for v in e.versions if v.conflict}
    out = []
    for i, v in enumerate(e.versions):
        relevant = e.conflict is not None and (v.version >= good or v.version in bases)
        if relevant_only and not relevant:
            continue
        base = e.versions[v.base_version - 1] if v.base_version else None
        before = e.versions[i - 1] if i else None
        base_diff = [] if base is None else [
            k for k in keys if k in v.received and v.received[k] != _value(base, k)
        ]  # fmt: skip
        server_diff = [] if before is None else [
            k for k in keys if _value(v, k) != _value(before, k)
        ]  # fmt: skip
        out.append({"conflict": v.conflict, "resolved": False, "baseDiff": base_diff,
                    "serverDiff": server_diff, "lastGoodVersion": v.version == good,
                    **_version_json(v, dataset, data=True), "current": i == len(e.versions) - 1,
                    "source": v.source, "relevantToConflict": relevant})  # fmt: skip
    return out


def _odata_row(e: Entity, dataset: Dataset, store: EntityStore) -> dict[str, Any]:
    v = e.current
    system = {
        "createdAt": _iso(e.created_at), "creatorId": str(e.creator_id),
        "creatorName": store.name_of(e.creator_id), "updates": len(e.versions) - 1,
        "updatedAt": _iso(e.updated_at), "deletedAt": _iso(e.deleted_at),
        "version": v.version, "conflict": e.conflict,
    }  # fmt: skip
    return {"__id": e.uuid, "label": v.label, "__system": system,
            **{p: v.data.get(p, "") for p in dataset.properties}}  # fmt: skip


def _select(row: dict[str, Any], dataset: Dataset, select: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"__id": row["__id"]}
    for name in select:
        if name.startswith("__system/") and name[9:] in row["__system"]:
            out.setdefault("__system", {})[name[9:]] = row["__system"][name[9:]]
        elif name in ("__id", "__system") or name in dataset.properties:
            out[name] = row[name]
        else:
            raise EntityProblem(400.23, f"Could not find a property named '{name}'",
                                {"property": name})  # fmt: skip
    return out


def _dataset_json(d: Dataset, store: EntityStore, *, extended: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": d.name, "createdAt": _iso(d.created_at),
                           "projectId": d.project_id, "approvalRequired": d.approval_required,
                           "ownerOnly": d.owner_only, "deletedAt": None}  # fmt: skip
    if extended:
        live = d.live()
        out |= {"entities": len(live),
                "lastEntity": _iso(max((e.created_at for e in live), default=None)),
                "conflicts": sum(1 for e in live if e.conflict)}  # fmt: skip
    return out


def _dataset_detail(d: Dataset, store: EntityStore) -> dict[str, Any]:
    forms = {x: store.odk.form(d.project_id, x) for x in d.linked_forms}
    named = {x: {"name": f.name, "xmlFormId": x} for x, f in forms.items() if f is not None}
    out = _dataset_json(d, store) | {
        "lastUpdate": _iso(d.last_update), "linkedForms": list(named.values()),
        "sourceForms": [named[x] for x, saves in d.linked_forms.items() if saves and x in named],
        "draftLinkedForms": [], "draftSourceForms": [],
        "properties": [{"name": p, "publishedAt": _iso(at), "odataName": p,
                        "forms": [{"xmlFormId": x, "name": named[x]["name"]}
                                  for x, saves in d.linked_forms.items()
                                  if p in saves and x in named]}
                       for p, at in d.properties.items()],
    }  # fmt: skip
    if d.access_filter is not None:
        out["accessFilter"] = d.access_filter
    return out


def _app_user_json(u: AppUser, store: EntityStore, *, extended: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"projectId": u.project_id, "id": u.id, "type": "field_key",
                           "displayName": u.display_name, "createdAt": _iso(u.created_at),
                           "updatedAt": None, "deletedAt": None, "token": u.token}  # fmt: skip
    if extended:
        out |= {"createdBy": store.actor_json(u.created_by), "lastUsed": None,
                "properties": dict(u.properties) or None}  # fmt: skip
    return out


# =========================================================================== handlers


class _EntityApi:
    def __init__(self, store: EntityStore, api: _OdkApi) -> None:
        self.store, self.api = store, api

    def admin(self, request: Request) -> int:
        """The project, once the request shows a Web User's session (an App User's key may not
        use this API)."""
        self.api.authenticate(request)
        return self.api.project_of(request)

    @property
    def actor(self) -> Actor:
        return self.store.web_user(self.api.email)

    def extended(self, request: Request) -> EntityStore | None:
        """The store, when the request asks for extended metadata."""
        return self.store if request.headers.get("x-extended-metadata") == "true" else None

    @staticmethod
    async def body(request: Request, limit: int = JSON_LIMIT) -> Any:
        raw = await request.body()
        if len(raw) > limit:
            raise EntityProblem(400.36, "Request body too large.")
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise EntityProblem(400.1, "Could not parse the given data as json.") from None

    def dataset(self, request: Request) -> Dataset:
        return self.store.dataset(self.admin(request), request.path_params["name"])

    # -- lists and properties

    async def datasets(self, request: Request) -> Response:
        project_id = self.admin(request)
        if request.method == "POST":
            name = (await self.body(request)).get("name")
            return _json(_dataset_detail(self.store.create_dataset(project_id, name), self.store))
        extended = self.extended(request) is not None
        return _json([_dataset_json(d, self.store, extended=extended)
                      for d in self.store.datasets(project_id)])  # fmt: skip

    async def dataset_detail(self, request: Request) -> Response:
        dataset = self.dataset(request)
        if request.method == "PATCH":
            changes = await self.body(request)
            dataset = self.store.update_dataset(dataset.project_id, dataset.name, changes)
        return _json(_dataset_detail(dataset, self.store))

    async def properties(self, request: Request) -> Response:
        dataset = self.dataset(request)
        prop = (await self.body(request)).get("name")
        self.store.add_property(dataset.project_id, dataset.name, prop)
        return _json({"success": True})

    # -- entities

    async def entities(self, request: Request) -> Response:
        dataset = self.dataset(request)
        if request.method == "GET":
            deleted = request.query_params.get("deleted") == "true"
            rows = sorted((e for e in dataset.entities.values()
                           if (e.deleted_at is not None) == deleted),
                          key=lambda e: e.order_key, reverse=True)  # fmt: skip
            return _json([_entity_json(e, dataset, data=False, store=self.extended(request))
                          for e in rows])  # fmt: skip
        body = await self.body(request, ENTITIES_LIMIT)
        agent = request.headers.get("user-agent")
        if isinstance(body, dict) and "entities" in body:
            return self.bulk_create(dataset, body, agent)
        (entity,) = self.store.create(dataset.project_id, dataset.name, [body], self.actor,
                                      user_agent=agent)  # fmt: skip
        return _json(_entity_json(entity, dataset))

    def bulk_create(self, dataset: Dataset, body: dict[str, Any], agent: str | None) -> Response:
        items, source = body["entities"], body.get("source")
        if not isinstance(items, list) or not items:
            raise EntityProblem(
                400.31,
                "Expected parameters: (entities: [...]). Got (empty array).",
                {"expected": ["entities: [...]"], "actual": ["empty array"]},
            )
        if not isinstance(source, dict):
            raise EntityProblem(400.2, "Required parameter source missing.", {"field": "source"})
        if not source.get("name"):
            raise EntityProblem(400.2, "Required parameter source.name missing.",
                                {"field": "source.name"})  # fmt: skip
        self.store.create(dataset.project_id, dataset.name, items, self.actor, user_agent=agent,
                          source={"name": source["name"], "size": source.get("size")})  # fmt: skip
        return _json({"success": True})

    async def entity(self, request: Request) -> Response:
        dataset = self.dataset(request)
        uuid, p, q = request.path_params["uuid"], dataset.project_id, request.query_params
        if request.method == "DELETE":
            self.store.delete(p, dataset.name, uuid)
            return _json({"success": True})
        if request.method == "PATCH":
            body = await self.body(request)
            entity = self.store.update(
                p, dataset.name, uuid, body, self.actor, base_version=q.get("baseVersion"),
                force=q.get("force") == "true", resolve=q.get("resolve") == "true",
                user_agent=request.headers.get("user-agent"),
            )  # fmt: skip
            return _json(_entity_json(entity, dataset))
        entity = self.store.entity(p, dataset.name, uuid)
        return _json(_entity_json(entity, dataset, store=self.extended(request)))

    async def restore(self, request: Request) -> Response:
        dataset = self.dataset(request)
        self.store.restore(dataset.project_id, dataset.name, request.path_params["uuid"])
        return _json({"success": True})

    async def versions(self, request: Request) -> Response:
        dataset = self.dataset(request)
        entity = self.store.entity(dataset.project_id, dataset.name, request.path_params["uuid"])
        relevant_only = request.query_params.get("relevantToConflict") == "true"
        return _json(_versions_json(entity, dataset, relevant_only=relevant_only))

    async def bulk_delete(self, request: Request) -> Response:
        return await self._bulk(request, restore=False)

    async def bulk_restore(self, request: Request) -> Response:
        return await self._bulk(request, restore=True)

    async def _bulk(self, request: Request, *, restore: bool) -> Response:
        dataset = self.dataset(request)
        ids = (await self.body(request)).get("ids")
        count = self.store.bulk(dataset.project_id, dataset.name, ids, restore=restore)
        return _json({"count": count})

    def selected(self, request: Request, dataset: Dataset) -> tuple[_EntityQuery, list[Entity]]:
        query = _EntityQuery.parse(request.query_params)
        now = self.store.odk.now()
        oldest_first = sorted(dataset.entities.values(), key=lambda e: e.order_key)
        chosen = [e for e in oldest_first if query.matches(e, now)]
        return query, _sorted(chosen, query.orderby)

    async def entities_csv(self, request: Request) -> Response:
        dataset = self.dataset(request)
        with self.store.snapshot():
            _query, rows = self.selected(request, dataset)
            props = list(dataset.properties)
            lines = [[e.uuid, e.current.label, *(e.current.data.get(p, "") for p in props),
                      _iso(e.created_at), str(e.creator_id), self.store.name_of(e.creator_id),
                      str(len(e.versions) - 1), _iso(e.updated_at) or "", str(e.current.version)]
                     for e in rows]  # fmt: skip
        header = ["__id", "label", *props, "__createdAt", "__creatorId", "__creatorName",
                  "__updates", "__updatedAt", "__version"]  # fmt: skip
        return csv_response(request, write_csv(header, lines), f"{dataset.name}.csv")

    # -- OData

    def service_root(self, request: Request, dataset: Dataset) -> str:
        project = f"{self.api.base(request)}/v1/projects/{dataset.project_id}"
        return f"{project}/datasets/{dataset.name}.svc"

    async def service_document(self, request: Request) -> Response:
        dataset = self.dataset(request)
        body = {
            "@odata.context": f"{self.service_root(request, dataset)}/$metadata",
            "value": [{"name": "Entities", "kind": "EntitySet", "url": "Entities"}],
        }
        return _json(body, headers=ODATA_HEADERS)

    async def metadata(self, request: Request) -> Response:
        dataset = self.dataset(request)
        system = "".join(f'<Property Name="{n}" Type="{t}"/>' for n, t in (
            ("createdAt", "Edm.DateTimeOffset"), ("creatorId", "Edm.String"),
            ("creatorName", "Edm.String"), ("updates", "Edm.Int64"),
            ("updatedAt", "Edm.DateTimeOffset"), ("deletedAt", "Edm.DateTimeOffset"),
            ("version", "Edm.Int64"), ("conflict", "Edm.String")))  # fmt: skip
        props = "".join(f'<Property Name="{p}" Type="Edm.String"/>'
                        for p in ("label", *dataset.properties))  # fmt: skip
        ns = f"org.opendatakit.user.{dataset.name}"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">'
            '<edmx:DataServices><Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" '
            f'Namespace="org.opendatakit.entity"><ComplexType Name="metadata">{system}'
            '</ComplexType></Schema><Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" '
            f'Namespace="{ns}"><EntityType Name="Entities"><Key><PropertyRef Name="__id"/></Key>'
            '<Property Name="__id" Type="Edm.String"/><Property Name="__system" '
            f'Type="org.opendatakit.entity.metadata"/>{props}</EntityType>'
            f'<EntityContainer Name="{dataset.name}"><EntitySet Name="Entities" '
            f'EntityType="{ns}.Entities"/></EntityContainer></Schema></edmx:DataServices>'
            "</edmx:Edmx>"
        )
        return Response(xml.encode(), 200, ODATA_HEADERS, "application/xml")

    async def odata_entities(self, request: Request) -> Response:
        dataset = self.dataset(request)
        with self.store.snapshot():
            query, rows = self.selected(request, dataset)
            cursor_at = None
            if query.skiptoken is not None:
                cursor = dataset.entities.get(str(query.skiptoken.get("uuid")))
                if cursor is not None:
                    older = (i for i, e in enumerate(rows) if e.order_key < cursor.order_key)
                    cursor_at = next(older, len(rows))
            window = _window([e.uuid for e in rows], query, "uuid", cursor_at)  # type: ignore[arg-type]
            page = []
            for e in rows[window.start : window.stop]:
                row = _odata_row(e, dataset, self.store)
                page.append(orjson.dumps(row if query.select is None
                                         else _select(row, dataset, query.select)))  # fmt: skip
        context = f"{self.service_root(request, dataset)}/$metadata#Entities"
        link = self.api.next_link(request, window.next_token) if window.next_token else None
        body = _envelope(page, context, link, window.count if query.count else None)
        return Response(body, 200, ODATA_HEADERS, JSON)

    # -- actor properties, App Users, assignments

    async def actor_properties(self, request: Request) -> Response:
        project_id = self.admin(request)
        if request.method == "POST":
            self.store.add_actor_property(project_id, (await self.body(request)).get("name"))
            return _json({"success": True})
        extended = self.extended(request) is not None
        return _json([
            {"name": n, **({"values": self.store.actor_property_values(project_id, n)}
                           if extended else {})}
            for n in self.store.actor_properties(project_id)
        ])  # fmt: skip

    async def app_users(self, request: Request) -> Response:
        project_id = self.admin(request)
        if request.method == "GET":
            extended = self.extended(request) is not None
            users = sorted(self.store.app_users(project_id), key=lambda u: u.id, reverse=True)
            return _json([_app_user_json(u, self.store, extended=extended) for u in users])
        body = await self.body(request)
        user = self.store.create_app_user(project_id, body.get("displayName"), self.actor,
                                          body.get("properties"))  # fmt: skip
        return _json(_app_user_json(user, self.store, extended=False)
                     | {"csrf": "", "expiresAt": APP_USER_EXPIRY})  # fmt: skip

    async def app_user(self, request: Request) -> Response:
        project_id = self.admin(request)
        actor_id = request.path_params["actor_id"]
        body = await self.body(request)
        if "properties" in body:
            user = self.store.set_app_user_properties(project_id, actor_id, body["properties"])
        else:
            user = self.store.app_user(project_id, actor_id)
        return _json(_app_user_json(user, self.store, extended=True))

    async def assign(self, request: Request) -> Response:
        project_id = self.admin(request)
        p = request.path_params
        self.store.assign(project_id, p["xml_form_id"], p["actor_id"])
        return _json({"success": True})


def _problem(problem: ODataProblem) -> Response:
    body: dict[str, Any] = {"message": problem.message, "code": problem.code}
    details = getattr(problem, "details", None)
    if details is not None:
        body["details"] = details
    return Response(orjson.dumps(body), problem.status, problem.headers, JSON)


Handler = Callable[[Request], Awaitable[Response]]


def entity_routes(odk: OdkStore, api: _OdkApi) -> list[Route]:
    """The routes the ODK simulator's app adds for Entity Lists (faults apply to them too)."""
    store = entity_store(odk)
    rest, phone = _EntityApi(store, api), PhoneApi(store, api)

    def guarded(handler: Handler) -> Handler:
        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ODataProblem as problem:
                return _problem(problem)

        return with_faults(lambda: odk.faults, answer)

    project = "/v1/projects/{project_id:int}"
    dataset = f"{project}/datasets/{{name}}"
    entity = f"{dataset}/entities/{{uuid}}"
    form = f"{project}/forms/{{xml_form_id}}"
    table: list[tuple[str, Handler, list[str]]] = [
        (f"{project}/datasets", rest.datasets, ["GET", "POST"]),
        (f"{dataset}.svc", rest.service_document, ["GET"]),
        (f"{dataset}.svc/$metadata", rest.metadata, ["GET"]),
        (f"{dataset}.svc/Entities", rest.odata_entities, ["GET"]),
        (dataset, rest.dataset_detail, ["GET", "PATCH"]),
        (f"{dataset}/properties", rest.properties, ["POST"]),
        (f"{dataset}/entities", rest.entities, ["GET", "POST"]),
        (f"{dataset}/entities.csv", rest.entities_csv, ["GET"]),
        (f"{dataset}/entities/bulk-delete", rest.bulk_delete, ["POST"]),
        (f"{dataset}/entities/bulk-restore", rest.bulk_restore, ["POST"]),
        (entity, rest.entity, ["GET", "PATCH", "DELETE"]),
        (f"{entity}/restore", rest.restore, ["POST"]),
        (f"{entity}/versions", rest.versions, ["GET"]),
        (f"{dataset}/integrity", phone.web_integrity, ["GET"]),
        (f"{project}/actor-properties", rest.actor_properties, ["GET", "POST"]),
        (f"{project}/app-users", rest.app_users, ["GET", "POST"]),
        (f"{project}/app-users/{{actor_id:int}}", rest.app_user, ["GET", "PATCH"]),
        (f"{form}/assignments/{{role}}/{{actor_id:int}}", rest.assign, ["POST"]),
        (f"{form}/manifest", phone.web_manifest, ["GET"]),
        (f"{form}/attachments/{{name}}", phone.web_attachment, ["GET"]),
        ("/v1/key/{token}/{rest:path}", phone.keyed, ["GET", "POST", "PATCH", "DELETE"]),
    ]
    return [Route(path, guarded(handler), methods=methods) for path, handler, methods in table]

