"""The simulated Central's Entity List API over HTTP: lists, properties, entities (REST, the
OData `Entities` feed and `entities.csv`), actor properties, App Users and form assignments,
and the phone's downloads. `entity_routes` is what the ODK simulator's app registers; the state
is `entities.EntityStore`, the OData engine `entities_odata.py`, the phone's side
`entities_phone.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sammachip.simulators.faults import with_faults
from sammachip.simulators.odk.entities import (
    Actor,
    AppUser,
    Dataset,
    Entity,
    EntityStore,
    EntityVersion,
    entity_store,
)
from sammachip.simulators.odk.entities_odata import entities_page, metadata_xml, selected
from sammachip.simulators.odk.entities_phone import PhoneApi, csv_response, write_csv
from sammachip.simulators.odk.entities_problems import NOT_FOUND, EntityProblem
from sammachip.simulators.odk.problems import ODataProblem
from sammachip.simulators.odk.render import JSON, ODATA_HEADERS, json_response
from sammachip.simulators.odk.store import OdkStore
from sammachip.simulators.odk.values import iso

if TYPE_CHECKING:
    from sammachip.simulators.odk.app import OdkApi

JSON_LIMIT = 250_000  # bytes: Central's body limit, but for creating entities
ENTITIES_LIMIT = 100_000_000
APP_USER_EXPIRY = "9999-12-31T23:59:59.000Z"


# =========================================================================== JSON shapes


def _ordered(data: Mapping[str, str], dataset: Dataset) -> dict[str, str]:
    return {p: data[p] for p in dataset.properties if p in data}


def _version_json(v: EntityVersion, dataset: Dataset, *, data: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "current": True,
        "label": v.label,
        "creatorId": v.creator_id,
        "userAgent": v.user_agent,
    }
    if data:
        out["data"] = _ordered(v.data, dataset)
    out |= {"version": v.version, "baseVersion": v.base_version}
    if data:
        out["dataReceived"] = v.received
    return out | {
        "conflictingProperties": v.conflicting,
        "createdAt": iso(v.created_at),
        "branchId": None,
        "trunkVersion": None,
        "branchBaseVersion": None,
    }


def _entity_json(
    e: Entity, dataset: Dataset, *, data: bool = True, store: EntityStore | None = None
) -> dict[str, Any]:
    """`store` given: with the extended metadata (`creator` objects)."""
    out = {
        "uuid": e.uuid,
        "creatorId": e.creator_id,
        "conflict": e.conflict,
        "createdAt": iso(e.created_at),
        "updatedAt": iso(e.updated_at),
        "deletedAt": iso(e.deleted_at),
        "currentVersion": _version_json(e.current, dataset, data=data),
    }
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
        base_diff = (
            []
            if base is None
            else [k for k in keys if k in v.received and v.received[k] != _value(base, k)]
        )
        server_diff = (
            [] if before is None else [k for k in keys if _value(v, k) != _value(before, k)]
        )
        out.append(
            {
                "conflict": v.conflict,
                "resolved": False,
                "baseDiff": base_diff,
                "serverDiff": server_diff,
                "lastGoodVersion": v.version == good,
                **_version_json(v, dataset, data=True),
                "current": i == len(e.versions) - 1,
                "source": v.source,
                "relevantToConflict": relevant,
            }
        )
    return out


def _dataset_json(d: Dataset, *, extended: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": d.name,
        "createdAt": iso(d.created_at),
        "projectId": d.project_id,
        "approvalRequired": d.approval_required,
        "ownerOnly": d.owner_only,
        "deletedAt": None,
    }
    if extended:
        live = d.live()
        out |= {
            "entities": len(live),
            "lastEntity": iso(max((e.created_at for e in live), default=None)),
            "conflicts": sum(1 for e in live if e.conflict),
        }
    return out


def _dataset_detail(d: Dataset, store: EntityStore) -> dict[str, Any]:
    forms = {x: store.odk.form(d.project_id, x) for x in d.linked_forms}
    named = {x: {"name": f.name, "xmlFormId": x} for x, f in forms.items() if f is not None}
    out = _dataset_json(d) | {
        "lastUpdate": iso(d.last_update),
        "linkedForms": list(named.values()),
        "sourceForms": [named[x] for x, saves in d.linked_forms.items() if saves and x in named],
        "draftLinkedForms": [],
        "draftSourceForms": [],
        "properties": [
            {
                "name": p,
                "publishedAt": iso(at),
                "odataName": p,
                "forms": [
                    {"xmlFormId": x, "name": named[x]["name"]}
                    for x, saves in d.linked_forms.items()
                    if p in saves and x in named
                ],
            }
            for p, at in d.properties.items()
        ],
    }
    if d.access_filter is not None:
        out["accessFilter"] = d.access_filter
    return out


def _app_user_json(u: AppUser, store: EntityStore, *, extended: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "projectId": u.project_id,
        "id": u.id,
        "type": "field_key",
        "displayName": u.display_name,
        "createdAt": iso(u.created_at),
        "updatedAt": None,
        "deletedAt": None,
        "token": u.token,
    }
    if extended:
        out |= {
            "createdBy": store.actor_json(u.created_by),
            "lastUsed": None,
            "properties": dict(u.properties) or None,
        }
    return out


# =========================================================================== handlers


class _EntityApi:
    def __init__(self, store: EntityStore, api: OdkApi) -> None:
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
    async def body(request: Request, limit: int = JSON_LIMIT) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > limit:
            raise EntityProblem(400.36, "Request body too large.")
        try:
            parsed = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise EntityProblem(400.1, "Could not parse the given data as json.") from None
        if not isinstance(parsed, dict):
            raise EntityProblem(400.31, "Expected parameters as a JSON object.")
        return parsed

    def dataset(self, request: Request) -> Dataset:
        return self.store.dataset(self.admin(request), request.path_params["name"])

    # -- lists and properties

    async def datasets(self, request: Request) -> Response:
        project_id = self.admin(request)
        if request.method == "POST":
            name = (await self.body(request)).get("name")
            made = self.store.create_dataset(project_id, name)
            return json_response(_dataset_detail(made, self.store))
        extended = self.extended(request) is not None
        datasets = self.store.datasets(project_id)
        return json_response([_dataset_json(d, extended=extended) for d in datasets])

    async def dataset_detail(self, request: Request) -> Response:
        dataset = self.dataset(request)
        if request.method == "PATCH":
            changes = await self.body(request)
            dataset = self.store.update_dataset(dataset.project_id, dataset.name, changes)
        return json_response(_dataset_detail(dataset, self.store))

    async def properties(self, request: Request) -> Response:
        dataset = self.dataset(request)
        prop = (await self.body(request)).get("name")
        self.store.add_property(dataset.project_id, dataset.name, prop)
        return json_response({"success": True})

    # -- entities

    async def entities(self, request: Request) -> Response:
        dataset = self.dataset(request)
        if request.method == "GET":
            deleted = request.query_params.get("deleted") == "true"
            rows = sorted(
                (e for e in dataset.entities.values() if (e.deleted_at is not None) == deleted),
                key=lambda e: e.order_key,
                reverse=True,
            )
            store = self.extended(request)
            return json_response([_entity_json(e, dataset, data=False, store=store) for e in rows])
        body = await self.body(request, ENTITIES_LIMIT)
        agent = request.headers.get("user-agent")
        if "entities" in body:
            return self.bulk_create(dataset, body, agent)
        (entity,) = self.store.create(
            dataset.project_id, dataset.name, [body], self.actor, user_agent=agent
        )
        return json_response(_entity_json(entity, dataset))

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
            raise EntityProblem(
                400.2, "Required parameter source.name missing.", {"field": "source.name"}
            )
        self.store.create(
            dataset.project_id,
            dataset.name,
            items,
            self.actor,
            user_agent=agent,
            source={"name": source["name"], "size": source.get("size")},
        )
        return json_response({"success": True})

    async def entity(self, request: Request) -> Response:
        dataset = self.dataset(request)
        uuid, p, q = request.path_params["uuid"], dataset.project_id, request.query_params
        if request.method == "DELETE":
            self.store.delete(p, dataset.name, uuid)
            return json_response({"success": True})
        if request.method == "PATCH":
            body = await self.body(request)
            entity = self.store.update(
                p,
                dataset.name,
                uuid,
                body,
                self.actor,
                base_version=q.get("baseVersion"),
                force=q.get("force") == "true",
                resolve=q.get("resolve") == "true",
                user_agent=request.headers.get("user-agent"),
            )
            return json_response(_entity_json(entity, dataset))
        entity = self.store.entity(p, dataset.name, uuid)
        return json_response(_entity_json(entity, dataset, store=self.extended(request)))

    async def restore(self, request: Request) -> Response:
        dataset = self.dataset(request)
        self.store.restore(dataset.project_id, dataset.name, request.path_params["uuid"])
        return json_response({"success": True})

    async def versions(self, request: Request) -> Response:
        dataset = self.dataset(request)
        entity = self.store.entity(dataset.project_id, dataset.name, request.path_params["uuid"])
        relevant_only = request.query_params.get("relevantToConflict") == "true"
        return json_response(_versions_json(entity, dataset, relevant_only=relevant_only))

    async def bulk_delete(self, request: Request) -> Response:
        return await self._bulk(request, restore=False)

    async def bulk_restore(self, request: Request) -> Response:
        return await self._bulk(request, restore=True)

    async def _bulk(self, request: Request, *, restore: bool) -> Response:
        dataset = self.dataset(request)
        ids = (await self.body(request)).get("ids")
        count = self.store.bulk(dataset.project_id, dataset.name, ids, restore=restore)
        return json_response({"count": count})

    async def entities_csv(self, request: Request) -> Response:
        dataset = self.dataset(request)
        with self.store.snapshot():
            _query, rows = selected(self.store, dataset, request.query_params)
            props = list(dataset.properties)
            lines = [
                [
                    e.uuid,
                    e.current.label,
                    *(e.current.data.get(p, "") for p in props),
                    iso(e.created_at),
                    str(e.creator_id),
                    self.store.name_of(e.creator_id),
                    str(len(e.versions) - 1),
                    iso(e.updated_at) or "",
                    str(e.current.version),
                ]
                for e in rows
            ]
        header = [
            "__id",
            "label",
            *props,
            "__createdAt",
            "__creatorId",
            "__creatorName",
            "__updates",
            "__updatedAt",
            "__version",
        ]
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
        return json_response(body, headers=ODATA_HEADERS)

    async def metadata(self, request: Request) -> Response:
        xml = metadata_xml(self.dataset(request))
        return Response(xml, 200, ODATA_HEADERS, "application/xml")

    async def odata_entities(self, request: Request) -> Response:
        dataset = self.dataset(request)
        context = f"{self.service_root(request, dataset)}/$metadata#Entities"
        body = entities_page(
            self.store,
            dataset,
            request.query_params,
            context,
            lambda token: self.api.next_link(request, token),
        )
        return Response(body, 200, ODATA_HEADERS, JSON)

    # -- actor properties, App Users, assignments

    async def actor_properties(self, request: Request) -> Response:
        project_id = self.admin(request)
        if not self.store.access_filters:
            raise NOT_FOUND  # Central before v2026.2 has no such route
        if request.method == "POST":
            self.store.add_actor_property(project_id, (await self.body(request)).get("name"))
            return json_response({"success": True})
        extended = self.extended(request) is not None
        return json_response(
            [
                {
                    "name": n,
                    **(
                        {"values": self.store.actor_property_values(project_id, n)}
                        if extended
                        else {}
                    ),
                }
                for n in self.store.actor_properties(project_id)
            ]
        )

    async def app_users(self, request: Request) -> Response:
        project_id = self.admin(request)
        if request.method == "GET":
            extended = self.extended(request) is not None
            users = sorted(self.store.app_users(project_id), key=lambda u: u.id, reverse=True)
            return json_response([_app_user_json(u, self.store, extended=extended) for u in users])
        body = await self.body(request)
        user = self.store.create_app_user(
            project_id, body.get("displayName"), self.actor, body.get("properties")
        )
        return json_response(
            _app_user_json(user, self.store, extended=False)
            | {"csrf": "", "expiresAt": APP_USER_EXPIRY}
        )

    async def app_user(self, request: Request) -> Response:
        project_id = self.admin(request)
        actor_id = request.path_params["actor_id"]
        body = await self.body(request)
        if "properties" in body:
            user = self.store.set_app_user_properties(project_id, actor_id, body["properties"])
        else:
            user = self.store.app_user(project_id, actor_id)
        return json_response(_app_user_json(user, self.store, extended=True))

    async def assign(self, request: Request) -> Response:
        project_id = self.admin(request)
        p = request.path_params
        self.store.assign(project_id, p["xml_form_id"], p["actor_id"])
        return json_response({"success": True})


def _problem(problem: ODataProblem) -> Response:
    body: dict[str, Any] = {"message": problem.message, "code": problem.code}
    details = getattr(problem, "details", None)
    if details is not None:
        body["details"] = details
    return Response(orjson.dumps(body), problem.status, problem.headers, JSON)


Handler = Callable[[Request], Awaitable[Response]]


def entity_routes(odk: OdkStore, api: OdkApi) -> list[Route]:
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
