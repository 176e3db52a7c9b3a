"""A thin, typed KoboToolbox API v2 client: assets, paged submissions, retries.

Paging is keyset on `_id` (`query={"_id":{"$gt":last}}`, `sort={"_id":1}`): every request starts
at 0, so deep `start` skips never happen, rows arriving mid-sync never shift a page, and a
server that caps `limit` (100/1000 on current servers, 30000 on old ones) is simply followed
until its `next` link is empty.

Kobo counts a query's matches on every page, and when that count runs past its database's time
limit it answers 400 ["Unsupported query"]. That is retried like any transient failure; if
it persists the pass goes on in `_id` windows small enough to count (see `_Window`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson

from sammachip.connectors.http import tls_context
from sammachip.connectors.retry import (
    TRANSIENT_STATUS,
    TransientError,
    call_with_retries,
    parse_utc,
    retry_after,
)
from sammachip.schemas.records import Submission

T = TypeVar("T")
_STATUS_UIDS = {
    "validation_status_approved": "approved",
    "validation_status_not_approved": "not_approved",
    "validation_status_on_hold": "on_hold",
}


# What people paste instead of the server's root: an API address copied from the browser.
_API_SUFFIX = re.compile(r"/api/v2(?:/assets)?/?$")


@dataclass(frozen=True)
class KoboServer:
    url: str  # the server's root, e.g. https://kf.kobotoolbox.org (an /api/v2 suffix is dropped)
    token: str = field(repr=False)  # never printed, never stored
    name: str = ""
    # Where the token was read, said when the server refuses it.
    token_from: str = "the environment variable SAMMACHIP_KOBO_TOKEN"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", server_root(self.url))

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


def server_root(url: str) -> str:
    """`https://kf.example.org/api/v2/` → `https://kf.example.org`: the client adds the API
    paths itself, so a URL that already has them would ask for /api/v2/api/v2/…"""
    return _API_SUFFIX.sub("", url.strip()).rstrip("/")


@dataclass(frozen=True)
class Asset:
    uid: str
    name: str
    submission_count: int
    deployed: bool


class KoboError(RuntimeError):
    """A permanent error for one asset (or the server): the message says what to fix."""

    def __init__(self, message: str, *, status: int | None = None, asset: str | None = None):
        super().__init__(message)
        self.status = status
        self.asset = asset


class CountTimedOut(KoboError):
    """400 ["Unsupported query"] to one of our own queries: kpi reports every database
    failure but one that way, and ours are plain `_id`/time ranges, so it is Mongo giving up
    counting the matches in time (`maxTimeMS`) — the server is busy or the range too large."""


_NOT_DEPLOYED = "The specified asset has not been deployed"
_UNSUPPORTED_QUERY = ["Unsupported query"]
COUNT_TRIES = 3  # a count time-out is retried this often before the range is narrowed


def _hint(status: int, body: Any, asset: str | None, token_from: str) -> str:
    """What to do about an error answer, for the person running sammachip."""
    if status == 400 and isinstance(body, dict) and body.get("detail") == _NOT_DEPLOYED:
        return (
            "the form is not deployed on the server: deploy it in KoboToolbox, or take "
            "its uid out of the config's [[kobo]] assets"
        )
    if status == 401:
        return (
            f"the API token is missing or wrong: check {token_from} "
            "(Kobo: Account settings → Security → API key)"
        )
    if status == 403:
        return "the token's user lacks 'view submissions' on this form: share the project with it"
    if status == 404 and asset:
        return "no such form on this server: check the asset uid in the config"
    if status == 404:
        return (
            "no KoboToolbox API at this address: give the server's root URL, e.g. "
            "https://kf.kobotoolbox.org"
        )
    return "see the server's message"


class KoboClient:
    def __init__(
        self,
        server: KoboServer,
        *,
        page_size: int = 1000,
        timeout: float = 60.0,
        attempts: int = 6,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self.server = server
        self.page_size = page_size
        self._attempts = attempts
        self._backoff = (backoff, backoff_cap)
        self._http = httpx.Client(
            base_url=server.url.rstrip("/"),
            headers={"Authorization": f"Token {server.token}", "Accept": "application/json"},
            timeout=timeout,
            verify=tls_context(server.url),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KoboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- HTTP ------------------------------------------------------------------------------
    def _once(self, method: str, url: str, asset: str | None, **kwargs: Any) -> httpx.Response:
        """One request, its answer sorted: worth retrying (TransientError), refused for good
        (KoboError, with what to fix), or the response."""
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as err:  # timeouts, resets, refused connections
            raise TransientError(f"{type(err).__name__}: {err}") from err
        if response.status_code in TRANSIENT_STATUS:
            raise TransientError(f"HTTP {response.status_code}", retry_after(response.headers))
        if response.status_code >= 400:
            raise self._error(response, asset)
        return response

    def _get_once(self, path: str, params: dict[str, Any], asset: str | None) -> dict[str, Any]:
        response = self._once("GET", path, asset, params=params)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as err:  # a 200 with a cut-off body: a proxy gave up
            raise TransientError(
                f"truncated or non-JSON body ({len(response.content)} bytes)"
            ) from err

    def _error(self, response: httpx.Response, asset: str | None) -> KoboError:
        status, detail = response.status_code, response.text[:200]
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        where = f"form {asset}" if asset else self.server.url
        if status == 400 and body == _UNSUPPORTED_QUERY:
            return CountTimedOut(
                f"{where}: the server took too long to count the submissions (HTTP 400 {detail})",
                status=status,
                asset=asset,
            )
        hint = _hint(status, body, asset, self.server.token_from)
        return KoboError(f"{where}: HTTP {status} {detail} — {hint}", status=status, asset=asset)

    def _retrying(
        self,
        call: Callable[[], T],
        attempts: int | None = None,
        retry_on: type[Exception] = TransientError,
    ) -> T:
        base, cap = self._backoff
        return call_with_retries(
            call, attempts=attempts or self._attempts, base=base, cap=cap, retry_on=retry_on
        )

    def _get(self, path: str, params: dict[str, Any], asset: str | None = None) -> dict[str, Any]:
        return self._retrying(lambda: self._get_once(path, params, asset))

    # ---- endpoints -------------------------------------------------------------------------
    def assets(self) -> list[Asset]:
        """Every survey asset the token can see (the asset list is paged too)."""
        found: list[Asset] = []
        start = 0
        while True:
            page = self._get(
                "/api/v2/assets/",
                {
                    "q": "asset_type:survey",
                    "format": "json",
                    "limit": self.page_size,
                    "start": start,
                },
            )
            for a in page.get("results", []):
                found.append(
                    Asset(
                        a["uid"],
                        a.get("name", ""),
                        int(a.get("deployment__submission_count") or 0),
                        bool(a.get("has_deployment")),
                    )
                )
            start += len(page.get("results", []))
            if not page.get("next") or not page.get("results"):
                return found

    def pages(
        self,
        asset_uid: str,
        *,
        after_id: int = 0,
        until_id: int | None = None,
        where: dict[str, Any] | None = None,
    ) -> Iterator[tuple[list[dict], int]]:
        """Pages of submissions with `after_id < _id <= until_id` (and matching `where`), in
        `_id` order, each with the number still to fetch as the server counted it."""
        yield from self._keyset(asset_uid, after_id, where or {}, fields=None, until_id=until_id)

    def ids(self, asset_uid: str) -> Iterator[list[int]]:
        """Every `_id` the server holds for an asset, cheaply (`fields=["_id"]`)."""
        for page, _ in self._keyset(asset_uid, 0, {}, fields=["_id"]):
            yield [int(r["_id"]) for r in page]

    def _keyset(
        self,
        asset_uid: str,
        after_id: int,
        where: dict[str, Any],
        fields: list[str] | None,
        until_id: int | None = None,
    ) -> Iterator[tuple[list[dict], int]]:
        last = after_id
        window = _Window(self.page_size, until_id)
        # The next page is asked for while the caller works through this one: the server
        # renders it (and the bytes cross the socket) meanwhile. Same requests, same order.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kobo-next-page")
        ahead: Future[dict[str, Any]] | None = None
        try:
            while True:
                upper = window.upper(last)
                try:
                    if ahead is None:
                        page = self._data_page(asset_uid, last, upper, where, fields, window.tries)
                    else:
                        page, ahead = ahead.result(), None
                except CountTimedOut as err:
                    ahead = None
                    window.narrow(err)  # raises TransientError when even a small one fails
                    continue
                window.counted()
                results = page.get("results") or []
                more = bool(results and page.get("next"))
                if results:
                    last = max(int(r["_id"]) for r in results)
                    if more:
                        ahead = pool.submit(
                            self._data_page,
                            asset_uid,
                            last,
                            window.upper(last),
                            where,
                            fields,
                            window.tries,
                        )
                    yield results, int(page.get("count") or len(results))
                if more:
                    continue
                if upper is None or upper == until_id:
                    return  # the whole range is read
                last = max(last, upper)  # a window is read up to its end: the next one starts there
                window.widen()
        finally:
            # A caller that stops early does not wait for a page it will never read.
            pool.shutdown(wait=False, cancel_futures=True)

    def _data_page(
        self,
        asset_uid: str,
        after: int,
        upper: int | None,
        where: dict[str, Any],
        fields: list[str] | None,
        count_tries: int,
    ) -> dict[str, Any]:
        """One page of `after < _id <= upper`; a count time-out is retried `count_tries` times
        in all (transient failures as many times as any request) before it is raised."""
        ids: dict[str, int] = {"$gt": after}
        if upper is not None:
            ids["$lte"] = upper
        params: dict[str, Any] = {
            "format": "json",
            "limit": self.page_size,
            "start": 0,
            "sort": json.dumps({"_id": 1}),
            "query": json.dumps({**where, "_id": ids}),
        }
        if fields:
            params["fields"] = json.dumps(fields)
        path = f"/api/v2/assets/{asset_uid}/data/"
        return self._retrying(
            lambda: self._get(path, params, asset=asset_uid),
            attempts=min(count_tries, self._attempts),
            retry_on=CountTimedOut,
        )

    def download(self, url: str, dest: Path) -> bool:
        """Stream one attachment to `dest` (same auth and retries); False if already there.

        Only the path of `url` is used: kpi builds attachment links from its own idea of its
        host, which behind a proxy is often not the address we were configured with."""
        if dest.exists():
            return False
        parts = urlsplit(url)
        url = parts.path + (f"?{parts.query}" if parts.query else "")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        self._retrying(lambda: self._stream_to(url, tmp))
        tmp.replace(dest)  # never a half file under the final name
        return True

    def _stream_to(self, url: str, tmp: Path) -> None:
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code in TRANSIENT_STATUS:
                    raise TransientError(
                        f"HTTP {response.status_code}", retry_after(response.headers)
                    )
                if response.status_code >= 400:
                    raise KoboError(
                        f"attachment {url}: HTTP {response.status_code}",
                        status=response.status_code,
                    )
                with open(tmp, "wb") as out:
                    for chunk in response.iter_bytes(1 << 16):
                        out.write(chunk)
        except httpx.TransportError as err:
            raise TransientError(f"{type(err).__name__}: {err}") from err


@dataclass
class _Window:
    """The `_id` range a keyset pass asks for while Kobo cannot count the whole rest of it.

    Kobo's count examines every submission of the form in the query's `_id` range (the only
    range its index bounds), so a narrower range is cheaper to count — a smaller `limit` is
    not. After a count time-out (retried `COUNT_TRIES` times) the pass goes on in windows of
    `_id`s: a window twice as wide after each one counted, half as wide after each that was
    not, down to one id. Without an upper end to the pass, the rest is tried whole after each
    window (once, no retries): that is how the pass learns it has reached the newest id.
    """

    first: int  # the first window's width in ids: a page's worth at most, easily counted
    until_id: int | None  # the pass's upper end, if it has one
    span: int | None = None  # None: ask for the whole rest
    probing: bool = False  # asking for the whole rest once, between windows
    _next_span: int = 0

    @property
    def tries(self) -> int:
        return COUNT_TRIES if self.span is None and not self.probing else 1

    def upper(self, last: int) -> int | None:
        if self.span is None:
            return self.until_id
        end = last + self.span
        return end if self.until_id is None else min(end, self.until_id)

    def counted(self) -> None:
        self.probing = False

    def narrow(self, err: CountTimedOut) -> None:
        if self.span is None:
            self.span = self._next_span if self.probing else max(1, self.first)
            self.probing = False
            return
        if self.span <= 1:
            raise TransientError(f"{err}; even one submission at a time could not be counted")
        self.span //= 2

    def widen(self) -> None:
        assert self.span is not None
        self.span *= 2
        if self.until_id is None:
            self._next_span, self.span, self.probing = self.span, None, True


def to_submission(raw: dict[str, Any], *, server: str, asset_uid: str, form_id: str) -> Submission:
    """Kobo's JSON → the source-agnostic record (payload kept exactly as received)."""
    status = raw.get("_validation_status")  # `{}` on a submission nobody reviewed
    # Positional, in `Submission`'s field order: every fetched row makes one, and keywords
    # cost a tenth of what is left of this function once the payload is hashed.
    return Submission(
        "kobo",
        server,
        asset_uid,
        form_id,
        str(raw["_id"]),
        raw.get("meta/instanceID") or f"uuid:{raw.get('_uuid', '')}",
        raw.get("meta/rootUuid"),
        raw.get("__version__"),
        parse_utc(raw.get("_submission_time")),
        raw.get("start"),
        raw.get("end"),
        _STATUS_UIDS.get(status.get("uid", "")) if status else None,
        raw,
    )
