"""The Kobo simulator's HTTP app: kpi's v2 routes over a `KoboStore`, DRF's token auth with its
exact messages, kpi's parameter checks (`start`/`limit`: default 100, silently capped at 1000, 400
on bad values; `query`/`sort`/`fields` as JSON), drafts that answer 400, and loopback serving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sammachip.connectors.serving import run_forever, serve_in_thread
from sammachip.simulators.faults import with_faults
from sammachip.simulators.kobo.media import media_routes
from sammachip.simulators.kobo.query import QueryError
from sammachip.simulators.kobo.render import (
    ApiError,
    asset_detail_json,
    asset_json,
    envelope,
    json_response,
    page_links,
)
from sammachip.simulators.kobo.store import Asset, KoboStore


def _lenient_int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


class KoboApi:
    """Request handlers; one instance per app, bound to a store and a token."""

    def __init__(
        self, store: KoboStore, token: str, max_page_size: int, default_page_size: int
    ) -> None:
        self.store, self.token = store, token
        self.max_page_size, self.default_page_size = max_page_size, default_page_size

    # -- shared steps

    def authenticate(self, request: Request) -> None:
        """DRF TokenAuthentication, with its exact messages."""
        parts = request.headers.get("authorization", "").split()
        challenge = {"WWW-Authenticate": "Token"}
        if not parts or parts[0].lower() != "token":
            raise ApiError(
                401, {"detail": "Authentication credentials were not provided."}, challenge
            )
        if len(parts) == 1:
            raise ApiError(
                401, {"detail": "Invalid token header. No credentials provided."}, challenge
            )
        if len(parts) > 2:
            raise ApiError(
                401,
                {"detail": "Invalid token header. Token string should not contain spaces."},
                challenge,
            )
        if parts[1] != self.token:
            raise ApiError(401, {"detail": "Invalid token."}, challenge)

    def asset_of(self, request: Request) -> Asset:
        asset = self.store.asset(request.path_params["uid"])
        if asset is None:
            raise ApiError(404, {"detail": "Not found."})
        return asset

    def page_size(self, raw: str | None) -> int:
        if raw is None:
            return self.default_page_size
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise ApiError(400, {"limit": "A positive integer is required"})
        return min(value, self.max_page_size)

    @staticmethod
    def json_param(request: Request, name: str) -> Any:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, {name: "Value must be valid JSON."}) from None

    @staticmethod
    def start_of(request: Request) -> int:
        raw = request.query_params.get("start", "0")
        try:
            start = int(raw)
        except ValueError:
            start = -1
        if start < 0:
            raise ApiError(400, {"start": "A positive integer is required."})
        return start

    @staticmethod
    def link_offset(request: Request, start: int, limit: int) -> int:
        """Offset used for links: DRF also reads `offset`/`page`, but the skip uses only start."""
        params = request.query_params
        if "start" in params:
            return start
        if "offset" in params:
            return max(0, _lenient_int(params["offset"], 0))
        if "page" in params:
            return max(0, _lenient_int(params["page"], 1) - 1) * limit
        return 0

    def base(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    # -- endpoints

    async def data(self, request: Request) -> Response:
        self.authenticate(request)
        asset = self.asset_of(request)
        if not asset.has_deployment:  # kpi's ObjectDeploymentDoesNotExist is a 400
            raise ApiError(400, {"detail": "The specified asset has not been deployed"})
        if (
            not request.url.path.endswith(".json")
            and request.query_params.get("format", "json") != "json"
        ):
            raise ApiError(404, {"detail": "Not found."})  # DRF: no renderer for that format
        params = request.query_params
        if "count" in params:
            raise ApiError(
                400,
                {
                    "count": "This param is not implemented. "
                    "Use `count` property of the response instead."
                },
            )
        limit = self.page_size(params.get("limit"))
        start = self.start_of(request)
        query, sort, fields = (self.json_param(request, n) for n in ("query", "sort", "fields"))
        if fields is not None and not (
            isinstance(fields, list) and all(isinstance(f, str) for f in fields)
        ):
            raise ApiError(400, {"fields": "Value must be valid JSON."})
        fields = fields or None  # kpi projects only for a non-empty list
        try:
            count, rows = self.store.page(
                asset.uid, query=query, sort=sort, fields=fields, start=start, limit=limit
            )
        except QueryError as exc:
            body = [str(exc)] if str(exc) == "$all needs an array" else ["Unsupported query"]
            raise ApiError(400, body) from None
        following, previous = page_links(
            str(request.url), self.link_offset(request, start, limit), limit, count
        )
        return Response(envelope(count, following, previous, rows), media_type="application/json")

    async def submission(self, request: Request) -> Response:
        self.authenticate(request)
        asset = self.asset_of(request)
        if not asset.has_deployment:
            raise ApiError(400, {"detail": "The specified asset has not been deployed"})
        sid = request.path_params["sid"]
        if sid.isascii() and sid.isdigit():
            query: dict[str, Any] = {"_id": int(sid)}
        else:
            query = {"$or": [{"meta/rootUuid": f"uuid:{sid}"}, {"_uuid": sid}]}
        _count, rows = self.store.page(asset.uid, query=query, limit=1)
        if not rows:
            raise ApiError(404, {"detail": "Not found."})
        return Response(rows[0], media_type="application/json")

    async def attachment(self, request: Request) -> Response:
        self.authenticate(request)
        found = self.store.attachment(request.path_params["uid"], request.path_params["att"])
        if found is None:
            raise ApiError(404, {"detail": "Not found."})
        content, mimetype = found
        return Response(content, media_type=mimetype)

    async def assets(self, request: Request) -> Response:
        self.authenticate(request)
        params = request.query_params
        limit = min(
            max(1, _lenient_int(params.get("limit"), self.default_page_size)), self.max_page_size
        )
        start = max(0, _lenient_int(params.get("start"), 0))
        items = self.store.assets()
        base = self.base(request)
        rows = [orjson.dumps(asset_json(base, a)) for a in items[start : start + limit]]
        following, previous = page_links(str(request.url), start, limit, len(items))
        return Response(
            envelope(len(items), following, previous, rows), media_type="application/json"
        )

    async def asset_detail(self, request: Request) -> Response:
        self.authenticate(request)
        return json_response(asset_detail_json(self.base(request), self.asset_of(request)))


def create_app(
    store: KoboStore, token: str, *, max_page_size: int = 1000, default_page_size: int = 100
) -> Starlette:
    api = KoboApi(store, token, max_page_size, default_page_size)

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return json_response(exc.body, exc.status, exc.headers)

        return with_faults(lambda: store.faults, answer)

    async def http_error(request: Request, exc: Exception) -> Response:
        """DRF-style bodies for router errors (unknown path, wrong method)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = {404: "Not found.", 405: f'Method "{request.method}" not allowed.'}.get(
            status, str(getattr(exc, "detail", "Server error."))
        )
        return json_response({"detail": detail}, status)

    routes = [
        Route("/api/v2/assets/", guarded(api.assets)),
        Route("/api/v2/assets.json", guarded(api.assets)),  # DRF's format suffix, as kpi's
        Route("/api/v2/assets/{uid}/", guarded(api.asset_detail)),
        Route("/api/v2/assets/{uid}.json", guarded(api.asset_detail)),
        Route("/api/v2/assets/{uid}/data/", guarded(api.data)),
        Route("/api/v2/assets/{uid}/data.json", guarded(api.data)),
        Route("/api/v2/assets/{uid}/data/{sid}/", guarded(api.submission)),
        Route("/api/v2/assets/{uid}/data/{sid}/attachments/{att}/", guarded(api.attachment)),
    ]
    routes += media_routes(store, api, guarded)
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


@contextmanager
def serve_kobo(
    store: KoboStore,
    token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    max_page_size: int = 1000,
    default_page_size: int = 100,
) -> Iterator[str]:
    """Serve the store on loopback in a background thread; yields the base URL."""
    app = create_app(store, token, max_page_size=max_page_size, default_page_size=default_page_size)
    with serve_in_thread(lambda _url: app, host=host, port=port, name="kobo-simulator") as url:
        yield url


def run_kobo_forever(
    store: KoboStore,
    token: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_page_size: int = 1000,
    default_page_size: int = 100,
) -> None:
    """Run the simulator in the foreground until interrupted (for a CLI command)."""
    app = create_app(store, token, max_page_size=max_page_size, default_page_size=default_page_size)
    run_forever(app, host, port)
