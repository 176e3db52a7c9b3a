"""A thin, typed KoboToolbox API v2 client: assets, paged submissions, retries.

Paging is keyset on `_id` (`query={"_id":{"$gt":last}}`, `sort={"_id":1}`): every request starts
at 0, so deep `start` skips never happen, rows arriving mid-sync never shift a page, and a
server that caps `limit` (100/1000 on current servers, 30000 on old ones) is simply followed
until its `next` link is empty.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from schemas.records import Submission

TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_STATUS_UIDS = {
    "validation_status_approved": "approved",
    "validation_status_not_approved": "not_approved",
    "validation_status_on_hold": "on_hold",
}


@dataclass(frozen=True)
class KoboServer:
    url: str  # e.g. https://kf.kobotoolbox.org
    token: str = field(repr=False)  # never printed, never stored
    name: str = ""

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


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


class TransientError(RuntimeError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


_HINTS = {
    400: "the server rejected the query; check the form's uid and the sammachip version",
    401: "the API token is missing or wrong: set SAMMACHIP_KOBO_TOKEN (Kobo: Account settings → "
    "Security → API key)",
    403: "the token's user lacks 'view submissions' on this form: share the project with it",
    404: "no such form on this server: check the asset uid in the config or that it is deployed",
}


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _wait(state: RetryCallState, base: float, cap: float) -> float:
    """Honour Retry-After; otherwise capped exponential backoff with full jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        return min(exc.retry_after, cap)
    return random.uniform(0, min(cap, base * 2 ** (state.attempt_number - 1)))


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
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KoboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- HTTP ------------------------------------------------------------------------------
    def _get_once(self, path: str, params: dict[str, Any], asset: str | None) -> dict[str, Any]:
        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as err:  # timeouts, resets, refused connections
            raise TransientError(f"{type(err).__name__}: {err}") from err
        if response.status_code in TRANSIENT_STATUS:
            raise TransientError(f"HTTP {response.status_code}", _retry_after(response.headers))
        if response.status_code >= 400:
            detail = response.text[:200]
            hint = _HINTS.get(response.status_code, "see the server's message")
            where = f"form {asset}" if asset else self.server.url
            raise KoboError(
                f"{where}: HTTP {response.status_code} {detail} — {hint}",
                status=response.status_code,
                asset=asset,
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as err:  # a 200 with a cut-off body: a proxy gave up
            raise TransientError(
                f"truncated or non-JSON body ({len(response.content)} bytes)"
            ) from err

    def _get(self, path: str, params: dict[str, Any], asset: str | None = None) -> dict[str, Any]:
        base, cap = self._backoff
        for attempt in Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
            stop=stop_after_attempt(self._attempts),
            wait=lambda s: _wait(s, base, cap),
            reraise=True,
        ):
            with attempt:
                return self._get_once(path, params, asset)
        raise AssertionError("unreachable")

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

    def pages(self, asset_uid: str, *, after_id: int = 0) -> Iterator[tuple[list[dict], int]]:
        """Pages of submissions with `_id > after_id`, in `_id` order, with the total to fetch."""
        last = after_id
        while True:
            page = self._get(
                f"/api/v2/assets/{asset_uid}/data/",
                {
                    "format": "json",
                    "limit": self.page_size,
                    "start": 0,
                    "sort": json.dumps({"_id": 1}),
                    "query": json.dumps({"_id": {"$gt": last}}),
                },
                asset=asset_uid,
            )
            results = page.get("results") or []
            if not results:
                return
            yield results, int(page.get("count") or len(results))
            last = max(int(r["_id"]) for r in results)
            if not page.get("next"):
                return


def _utc(text: str | None) -> datetime:
    parsed = datetime.fromisoformat(text) if text else datetime.fromtimestamp(0, UTC)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_submission(raw: dict[str, Any], *, server: str, asset_uid: str, form_id: str) -> Submission:
    """Kobo's JSON → the source-agnostic record (payload kept exactly as received)."""
    status = raw.get("_validation_status") or {}
    return Submission(
        source="kobo",
        server=server,
        form_uid=asset_uid,
        form_id=form_id,
        submission_id=str(raw["_id"]),
        instance_id=raw.get("meta/instanceID") or f"uuid:{raw.get('_uuid', '')}",
        root_uuid=raw.get("meta/rootUuid"),
        version=raw.get("__version__"),
        submitted_at=_utc(raw.get("_submission_time")),
        device_start=raw.get("start"),
        device_end=raw.get("end"),
        review_status=_STATUS_UIDS.get(status.get("uid", "")),
        payload=raw,
    )
