"""The KoboToolbox REST Service receiver: `POST /hooks/kobo/{asset_uid}`.

Kobo posts each new submission (the same JSON document as the data API) once, retries only on
502/503/504 and may still deliver twice, so the receiver:

- authenticates as a Kobo REST Service can (HTTP basic auth or a secret custom header),
  comparing in constant time;
- keeps the body in the landing spool (durable: fsync'd file and directory) *before* it
  answers 2xx, absorbs re-deliveries by `_id` + `_uuid`, and answers 503 when it could not
  keep it, so Kobo retries instead of forgetting;
- accepts only what ingest can load: `read_delivery` is the one test of a delivery, made here
  before the 2xx and by ingest when it reads the landed file; a body larger than the limit is
  refused (413), one that does not arrive in time gets 408 and the connection is closed;
- then tells Prefect (`sammachip.submission.received`), off the request path and best effort:
  a lost event only delays the ingest to the next event or the periodic sweep.

Every error is a short JSON body; nothing a client sends can crash the receiver.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
import httpx
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from sammachip.connectors import serving
from sammachip.connectors.landing import Landing, is_safe_name
from sammachip.connectors.retry import parse_utc

log = logging.getLogger("sammachip.webhook")

SOURCE = "kobo"
EVENT_RECEIVED = "sammachip.submission.received"
RESOURCE_PREFIX = "sammachip.form."
_JSON_TYPES = ("application/json",)
# Nesting a delivery may have. A Kobo document nests two levels per repeat group (a list of
# dicts), so real forms stay far below; the warehouse's payload hash (orjson) stops at 254.
MAX_DEPTH = 64
# Answers the warehouse stores as text beside the payload: anything else is no Kobo submission.
_TEXT_KEYS = ("meta/instanceID", "meta/rootUuid", "__version__", "start", "end", "_submission_time")


class WebhookConfigError(ValueError):
    """The receiver cannot start as configured; the message says what to set."""


# =========================================================================== authentication


class Authenticator(Protocol):
    challenge: dict[str, str]  # headers of a 401

    def __call__(self, headers: Mapping[str, str]) -> bool: ...


def _check_ascii(what: str, text: str) -> None:
    # Kobo sends them through `requests` as latin-1 header bytes: ASCII is what survives.
    if not (text.isascii() and text.isprintable()):
        raise WebhookConfigError(f"the webhook {what} must be printable ASCII")


@dataclass(frozen=True)
class BasicAuth:
    """Kobo's `auth_level: basic_auth` (requests' `auth=(username, password)`)."""

    username: str
    password: str = field(repr=False)
    challenge: dict[str, str] = field(
        default_factory=lambda: {"WWW-Authenticate": 'Basic realm="sammachip", charset="UTF-8"'}
    )

    def __post_init__(self) -> None:
        if not self.username or not self.password:
            raise WebhookConfigError("basic auth needs a username and a non-empty password")
        _check_ascii("basic auth username and password", self.username + self.password)

    def __call__(self, headers: Mapping[str, str]) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both comparisons always run: the time taken says nothing about which part was wrong.
        user_ok = hmac.compare_digest(user, self.username.encode())
        password_ok = hmac.compare_digest(password, self.password.encode())
        return bool(sep) and user_ok and password_ok


@dataclass(frozen=True)
class HeaderAuth:
    """A secret in a custom header (Kobo: REST Service → custom HTTP headers)."""

    header: str
    secret: str = field(repr=False)
    challenge: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.header or not self.secret:
            raise WebhookConfigError("header auth needs a header name and a non-empty secret")
        _check_ascii("header name and secret", self.header + self.secret)

    def __call__(self, headers: Mapping[str, str]) -> bool:
        given = headers.get(self.header.lower(), "").encode()
        return hmac.compare_digest(given, self.secret.encode())


# =========================================================================== known assets


class AssetCatalog(Protocol):
    async def knows(self, uid: str) -> bool | None:
        """True/False, or None when it cannot tell (the server listing assets is down)."""
        ...


@dataclass(frozen=True)
class StaticAssets:
    uids: frozenset[str]

    async def knows(self, uid: str) -> bool | None:
        return uid in self.uids


class IncompleteAssetList(RuntimeError):
    """A lookup that reached only some servers: a uid it lacks may be on another one."""

    def __init__(self, message: str, uids: Iterable[str]) -> None:
        super().__init__(message)
        self.uids = frozenset(uids)


class RefreshingAssets:
    """Asset uids from a (slow, blocking) lookup such as the Kobo asset list.

    Loaded at start; an unknown uid triggers at most one re-list per `min_interval` (a form
    deployed after the receiver started), run in a thread so the event loop never blocks.
    `knows` says None (cannot tell: Kobo should retry) until a listing succeeded, and for
    uids missing from a listing that reached only some servers.
    """

    def __init__(
        self,
        lookup: Callable[[], Iterable[str]],
        *,
        min_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._min_interval = min_interval
        self._clock = clock
        self._known: frozenset[str] | None = None
        self._complete = False
        self._tried_at: float | None = None
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Re-list now (blocking); False if the lookup failed (the last list is kept)."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        self._tried_at = self._clock()
        try:
            self._known, self._complete = frozenset(self._lookup()), True
        except IncompleteAssetList as err:
            log.warning("asset list incomplete: %s", err)
            self._known, self._complete = err.uids | (self._known or frozenset()), False
            return False
        except Exception as err:  # the lookup is someone else's network call
            log.warning("could not list assets: %s", err)
            return False
        return True

    def _due(self) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= self._min_interval

    def _refresh_if_due(self) -> None:
        with self._lock:  # a burst of misses waits for one re-list instead of making many
            if self._due():
                self._refresh()

    @property
    def uids(self) -> frozenset[str]:
        return self._known or frozenset()

    async def knows(self, uid: str) -> bool | None:
        if self._known is not None and uid in self._known:
            return True
        if self._due():
            await anyio.to_thread.run_sync(self._refresh_if_due)
        if self._known is not None and uid in self._known:
            return True
        return False if self._complete else None


# =========================================================================== Prefect events


def submission_event(asset_uid: str, submission_id: str, instance: str) -> dict[str, Any]:
    """The event a landed delivery raises; ids only, never answers (they hold personal data)."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": EVENT_RECEIVED,
        "resource": {
            "prefect.resource.id": f"{RESOURCE_PREFIX}{asset_uid}",
            "prefect.resource.name": asset_uid,
            "sammachip.source": SOURCE,
        },
        "payload": {"submission_id": submission_id, "uuid": instance},
    }


def prefect_api_headers(api_key: str | None, auth_string: str | None) -> dict[str, str]:
    """The Authorization header Prefect's own client would send (auth string wins)."""
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    return {}


class PrefectEvents:
    """Forwards events to a Prefect server (`POST {api}/events`, a list per call), batched
    in the background so a burst of deliveries costs a few calls, not one each."""

    def __init__(
        self,
        api_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        batch_max: int = 200,
        linger: float = 0.05,
        capacity: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self.url = api_url.rstrip("/") + "/events"
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._transport = transport
        self._batch_max, self._linger, self._capacity = batch_max, linger, capacity
        self._timeout = timeout
        # None is the stop sentinel; the queue is unbounded so it always fits behind a backlog.
        self._queue: asyncio.Queue[dict[str, Any] | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.sent = self.failed = self.dropped = 0

    def emit(self, event: dict[str, Any]) -> None:
        """Queue an event; never blocks, never raises (when full or stopped it drops and
        counts)."""
        if self._queue is None or self._queue.qsize() >= self._capacity:
            self.dropped += 1
            return
        self._queue.put_nowait(event)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout)
        self._task = asyncio.create_task(self._run(), name="prefect-events")

    async def aclose(self, timeout: float = 5.0) -> None:
        """Send what is queued (bounded by `timeout`), then stop."""
        queue, self._queue = self._queue, None  # later emits drop
        if queue is not None and self._task is not None:
            queue.put_nowait(None)
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.warning("Prefect did not take the last %d event(s) in time", queue.qsize())
        if self._client is not None:
            await self._client.aclose()
        self._task = self._client = None

    def stats(self) -> dict[str, int]:
        queued = self._queue.qsize() if self._queue else 0
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped, "queued": queued}

    async def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        stop = False
        while not stop:
            first = await queue.get()
            if first is not None:
                await asyncio.sleep(self._linger)  # let the rest of a burst join this call
            batch, stop = self._take(queue, first)
            if batch:
                await self._post(batch)

    def _take(
        self, queue: asyncio.Queue[dict[str, Any] | None], first: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], bool]:
        batch = [] if first is None else [first]
        stop = first is None
        while not stop and len(batch) < self._batch_max and not queue.empty():
            item = queue.get_nowait()
            if item is None:
                stop = True
            else:
                batch.append(item)
        return batch, stop

    async def _post(self, batch: list[dict[str, Any]]) -> None:
        assert self._client is not None
        try:
            response = await self._client.post(
                self.url, content=orjson.dumps(batch), headers=self._headers
            )
            response.raise_for_status()
            self.sent += len(batch)
        except httpx.HTTPError as err:
            self.failed += len(batch)
            log.warning(
                "could not send %d event(s) to Prefect at %s (%s: %s); the deliveries are "
                "landed and the next ingest or sweep picks them up",
                len(batch),
                self.url,
                type(err).__name__,
                err,
            )


# =========================================================================== the app


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    if status in (408, 413):  # answered before the whole body was read: the connection ends
        headers = {**(headers or {}), "Connection": "close"}
    return Response(
        orjson.dumps({"error": message}), status, headers=headers, media_type="application/json"
    )


def _ok(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _is_json(content_type: str | None) -> bool:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime in _JSON_TYPES or (mime.startswith("application/") and mime.endswith("+json"))


def _ascii_digits(value: int | str) -> bool:
    # str.isdigit() alone accepts Thai and other digits ("๑๒"); ids and lengths are ASCII.
    text = str(value)
    return text.isascii() and text.isdigit()


async def _read_limited(request: Request, limit: int, seconds: float) -> bytes:
    """The body, refusing (413) as soon as it passes `limit` bytes — a declared length is
    checked before reading anything, a chunked body while it streams in — and giving up (408)
    if it has not all arrived `seconds` after the headers."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _ascii_digits(declared):
            raise _Reject(400, "invalid Content-Length")
        if int(declared) > limit:
            raise _Reject(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(seconds) as deadline:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Reject(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
    if deadline.cancelled_caught:
        raise _Reject(408, f"the body did not arrive within {seconds:g} s")
    return b"".join(chunks)


class UnreadableDelivery(ValueError):
    """A body that is no Kobo submission ingest could load; the message says why."""


def read_delivery(body: bytes, asset_uid: str) -> dict[str, Any]:
    """The Kobo submission a delivery's bytes hold, or UnreadableDelivery.

    The one test of what a delivery must be: the receiver makes it before answering 2xx, and
    ingest when it reads the landed file, so whatever was accepted can be loaded.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UnreadableDelivery("malformed JSON") from None
    if (depth := _depth(doc)) > MAX_DEPTH:
        raise UnreadableDelivery(f"JSON nested more than {MAX_DEPTH} levels deep ({depth})")
    delivery_key(doc)
    xform = doc.get("_xform_id_string")
    if xform is not None and xform != asset_uid:
        # A hook posting to the wrong URL would file rows under the wrong form.
        raise UnreadableDelivery(f"submission belongs to asset {xform!r}, not {asset_uid!r}")
    for key in _TEXT_KEYS:
        if not isinstance(doc.get(key), str | None):
            raise UnreadableDelivery(f"{key} is not text")
    try:
        parse_utc(doc.get("_submission_time"))
    except ValueError:
        raise UnreadableDelivery("_submission_time is not a date and time") from None
    status = doc.get("_validation_status")
    if status is not None and not (
        isinstance(status, dict) and isinstance(status.get("uid"), str | None)
    ):
        raise UnreadableDelivery("_validation_status is not a Kobo validation status")
    return doc


def _depth(doc: Any) -> int:
    """How deep lists and objects nest in `doc` (a scalar is 0), counted without recursion
    and only until it passes MAX_DEPTH."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list) and deepest <= MAX_DEPTH:
            deepest = max(deepest, level)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, level + 1) for child in children)
    return deepest


def delivery_key(doc: Any) -> tuple[str, str]:
    """(`_id`, instance uuid) of a Kobo submission document; UnreadableDelivery if it is not
    one.

    `_uuid` changes on every edit, so the pair names one version of one submission; a
    re-delivery has the same pair.
    """
    if not isinstance(doc, dict):
        raise UnreadableDelivery("expected a JSON object (a Kobo submission)")
    raw_id = doc.get("_id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or not _ascii_digits(raw_id):
        raise UnreadableDelivery("submission has no integer _id")
    instance = str(doc.get("_uuid") or doc.get("meta/instanceID") or "").removeprefix("uuid:")
    if not is_safe_name(instance):
        raise UnreadableDelivery("submission has no usable _uuid")
    return str(int(raw_id)), instance


@dataclass
class Receiver:
    landing: Landing
    assets: AssetCatalog
    auth: Authenticator
    max_body_bytes: int = 1 << 20
    events: PrefectEvents | None = None
    body_timeout: float = 30.0  # seconds for the whole body (Kobo itself waits 30 s)
    # Called after each new delivery is durable (from the event loop: it must not block); a
    # consumer in the same process (serve's warm ingest) starts on it without waiting for
    # an event to make the round trip through Prefect.
    on_landed: Callable[[], None] | None = None

    async def kobo(self, request: Request) -> Response:
        try:
            return await self._kobo(request)
        except _Reject as reject:
            return _error(reject.status, reject.message)
        except UnreadableDelivery as err:
            return _error(400, str(err))
        except ClientDisconnect:
            return _error(400, "client disconnected")
        except Exception:  # a bug must cost a retry from Kobo, not the receiver
            log.exception("unexpected error in the Kobo webhook")
            return _error(503, "internal error; retry later")

    async def _kobo(self, request: Request) -> Response:
        if not self.auth(request.headers):
            return _error(401, "unauthenticated", self.auth.challenge)
        uid = request.path_params["asset_uid"]
        known = await self.assets.knows(uid) if is_safe_name(uid) else False
        if known is None:
            return _error(503, "cannot check the asset right now; retry later")
        if not known:
            return _error(404, "unknown asset")
        if not _is_json(request.headers.get("content-type")):
            return _error(415, "expected Content-Type: application/json (REST Service type JSON)")
        body = await _read_limited(request, self.max_body_bytes, self.body_timeout)
        submission_id, instance = delivery_key(read_delivery(body, uid))
        key = f"{submission_id}_{instance}"
        try:
            new = await anyio.to_thread.run_sync(self.landing.put, SOURCE, uid, key, body)
        except OSError as err:
            log.error("could not land %s/%s: %s", uid, key, err)
            return _error(503, "could not store the submission; retry later")
        if new and self.events is not None:
            self.events.emit(submission_event(uid, submission_id, instance))
        if new and self.on_landed is not None:
            self.on_landed()
        status = "accepted" if new else "duplicate"
        return _ok(202 if new else 200, {"status": status, "asset": uid, "_id": submission_id})

    async def healthz(self, request: Request) -> Response:
        writable = _writable(self.landing.root)
        body: dict[str, Any] = {"status": "ok" if writable else "landing not writable"}
        if self.events is not None:
            body["events"] = self.events.stats()
        return _ok(200 if writable else 503, body)


def _writable(root: Path) -> bool:
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # not created yet: the first delivery creates it
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def create_app(receiver: Receiver) -> Starlette:
    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(status, {404: "not found", 405: "method not allowed"}.get(status, "error"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if receiver.events is not None:
            await receiver.events.start()
        try:
            yield
        finally:
            if receiver.events is not None:
                await receiver.events.aclose()

    routes = [
        Route("/hooks/kobo/{asset_uid}", receiver.kobo, methods=["POST"]),
        Route("/healthz", receiver.healthz, methods=["GET"]),
    ]
    handlers = {HTTPException: http_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


# =========================================================================== settings


@dataclass(frozen=True)
class WebhookSettings:
    """The receiver's settings (the config's `[webhook]`); secrets only by reference."""

    host: str = "127.0.0.1"
    port: int = 8788
    max_body_bytes: int = 1 << 20
    body_timeout: float = 30.0  # seconds a body may take to arrive
    auth: Literal["basic", "header"] = "basic"
    username: str = "kobo"
    password_env: str = "SAMMACHIP_WEBHOOK_PASSWORD"
    header: str = "X-Sammachip-Secret"
    secret_env: str = "SAMMACHIP_WEBHOOK_SECRET"
    secret_block: str | None = None  # a Prefect Secret block instead of the environment

    def __post_init__(self) -> None:
        if self.auth not in ("basic", "header"):
            raise WebhookConfigError(f"webhook auth must be 'basic' or 'header', not {self.auth!r}")

    def authenticator(self, environ: Mapping[str, str] = os.environ) -> Authenticator:
        """Resolve the secret now (from the environment or a Prefect Secret block)."""
        env = self.password_env if self.auth == "basic" else self.secret_env
        secret = environ.get(env, "")
        if not secret and self.secret_block:
            from prefect.blocks.system import Secret

            secret = str(Secret.load(self.secret_block).get())
        if not secret:
            raise WebhookConfigError(
                f"webhook {self.auth} auth: set the environment variable {env} "
                "(the same value goes into the Kobo REST Service)"
            )
        if self.auth == "basic":
            return BasicAuth(self.username, secret)
        return HeaderAuth(self.header, secret)


# =========================================================================== serving


@contextmanager
def serve_in_thread(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` in a background thread; yields its base URL. Leaving the block stops it
    gracefully (lifespan shutdown runs: queued events are flushed)."""
    with serving.serve_in_thread(
        lambda _url: app, host=host, port=port, name="webhook", lifespan="on"
    ) as url:
        yield url
