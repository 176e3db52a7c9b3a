"""The simulated Central's HTTP app: sessions and bearer tokens (Basic only over HTTPS), the
project's forms and their fields, the OData service document, `$metadata`, the submissions feed,
repeat tables and single submissions, the Entity Lists' routes, and loopback serving.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sammachip.connectors.serving import run_forever, serve_in_thread
from sammachip.simulators.faults import with_faults
from sammachip.simulators.odk.entities_api import entity_routes
from sammachip.simulators.odk.filters import BEFORE_DELETED_AT, FILTERABLE, order_by
from sammachip.simulators.odk.forms import Node
from sammachip.simulators.odk.problems import (
    AUTH_FAILED,
    FORBIDDEN,
    NOT_FOUND,
    ODataProblem,
    not_acceptable,
)
from sammachip.simulators.odk.query import Query, Window, page_window, skiptoken
from sammachip.simulators.odk.render import (
    JSON,
    ODATA_HEADERS,
    envelope,
    json_response,
    metadata_xml,
    problem_response,
    root_bytes,
    root_row,
    select_properties,
    subtable_rows,
)
from sammachip.simulators.odk.store import HostedForm, OdkStore, Record
from sammachip.simulators.odk.values import iso

_SINGLE = re.compile(r"^Submissions\('((?:uuid:)?[a-z0-9-]+)'\)(?:/(.*))?$", re.I)
_NAV_STEP = re.compile(r"^([A-Za-z_]\w*)(?:\('([0-9a-f]{40})'\))?$")


class OdkApi:
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

    def query(self, request: Request, *, subtable: bool) -> Query:
        filterable = FILTERABLE if self.store.deleted_at_filter else BEFORE_DELETED_AT
        return Query.parse(request.query_params, subtable=subtable, filterable=filterable)

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
        return json_response(self.store.open_session())

    async def session_delete(self, request: Request) -> Response:
        self.authenticate(request)
        token = request.path_params["token"]
        if token == "current":
            token = request.headers.get("authorization", "").partition(" ")[2].strip()
        if not self.store.end_session(token):
            raise NOT_FOUND
        return json_response({"success": True})

    # -- forms

    def form_summary(self, form: HostedForm) -> dict[str, Any]:
        stamp = iso(form.created_at)
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
        return json_response([self.form_summary(f) for f in self.store.forms(project_id)])

    async def form_detail(self, request: Request) -> Response:
        self.authenticate(request)
        return json_response(self.form_summary(self.form_of(request)))

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
        return json_response(listed)

    # -- OData

    async def service_document(self, request: Request) -> Response:
        self.authenticate(request)
        form = self.form_of(request)
        tables = ["Submissions", *(n.table for n in form.repeats())]
        body = {
            "@odata.context": f"{self.service_root(request, form)}/$metadata",
            "value": [{"name": t, "kind": "EntitySet", "url": t} for t in tables],
        }
        return json_response(
            body, headers=ODATA_HEADERS, media_type=f"{JSON}; odata.metadata=minimal"
        )

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
            raise not_acceptable("application/xml,xml")
        return Response(metadata_xml(form), 200, ODATA_HEADERS, "application/xml")

    def visible(self, form: HostedForm, query: Query) -> list[Record]:
        now = self.store.now()
        return order_by([r for r in form.order if query.matches(r, now)], query.orderby)

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
        window = page_window([r.root_id for r in records], query, "instanceId", cursor_at)
        rows = [self.render(form, r, query) for r in records[window.start : window.stop]]
        return self.data_response(request, form, "Submissions", rows, window, query)

    def render(self, form: HostedForm, record: Record, query: Query) -> bytes:
        if query.select is None and not query.wkt:
            return root_bytes(form, record, query.expand)
        row = root_row(form, record, query.expand, query.wkt)
        if query.select is not None:
            row = select_properties(form, row, query.select)
        return orjson.dumps(row)

    def subtable_feed(
        self,
        request: Request,
        form: HostedForm,
        target: Node,
        root: Record | None,
        parent_ids: dict[int, str],
    ) -> Response:
        query = self.query(request, subtable=True)
        records = [root] if root is not None else self.visible(form, query)
        rows = list(subtable_rows(target, records, query, parent_ids))
        ids = [r["__id"] for r in rows]
        cursor_at = None
        if query.skiptoken is not None:
            wanted = query.skiptoken.get("repeatId")
            if wanted not in ids:
                raise ODataProblem(
                    400.34, "Record associated with the provided $skiptoken not found."
                )
            cursor_at = ids.index(wanted) + 1
        window = page_window(ids, query, "repeatId", cursor_at)
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
            window = Window(0, 1, 1, None)
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
        window: Window,
        query: Query,
    ) -> Response:
        context = f"{self.service_root(request, form)}/$metadata#{table}"
        link = self.next_link(request, window.next_token) if window.next_token else None
        body = envelope(rows, context, link, window.count if query.count else None)
        return Response(body, 200, ODATA_HEADERS, JSON)


def _navigate(form: HostedForm, nav: str) -> tuple[Node, dict[int, str]]:
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


def create_app(
    store: OdkStore, email: str, password: str, *, domain: str | None = None
) -> Starlette:
    api = OdkApi(store, email, password, domain)

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ODataProblem as problem:
                return problem_response(problem)

        return with_faults(lambda: store.faults, answer)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Central's problem JSON for router errors too."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return problem_response(NOT_FOUND)
        return problem_response(ODataProblem(float(status), str(getattr(exc, "detail", "Error"))))

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
    routes += entity_routes(store, api)
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


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
        host=host,
        port=port,
        name="odk-simulator",
    ) as url:
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
