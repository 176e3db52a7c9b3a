"""A thin, typed ODK Central client: session login, form list, the OData submissions feed.

Submissions are read from OData (`…/forms/{xmlFormId}.svc/Submissions`) with repeats inlined
(`$expand=*`), paged with `$top` and the opaque `$skiptoken` cursor of `@odata.nextLink`, newest
first. Incremental reads filter on `__system/submissionDate` *or* `__system/updatedAt` (updatedAt
stays null until the first edit or review) minus an overlap: a row committed late can carry an
earlier timestamp than one already seen, so the window is re-read and rows are upserted by `__id`.
Soft deletes and restores do not move updatedAt: `deleted()` lists deletions through
`__system/deletedAt`, and a restore is only seen by asking for the submission again (`rows()`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

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

_REVIEW_STATES = {
    "hasIssues": "has_issues",
    "edited": "edited",
    "approved": "approved",
    "rejected": "rejected",
}
_REFRESH_MARGIN = timedelta(minutes=5)  # log in again this long before the token expires
_LOGOUT_TIMEOUT = 5.0
_IDS_PER_QUERY = 50  # ids per `$filter` (~2.5 kB of query string)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OdkServer:
    url: str  # e.g. https://central.example.org (a path prefix is fine)
    email: str  # a Web User with at least Project Viewer on the project
    password: str = field(repr=False)  # never printed, never stored
    project_id: int
    name: str = ""  # the config's [[odk]] entry
    password_from: str = ""  # where it was read, e.g. "the environment variable X"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


@dataclass(frozen=True)
class CentralForm:
    """A form as Central lists it."""

    xml_form_id: str
    name: str
    state: str  # open | closing | closed
    version: str


class OdkError(RuntimeError):
    """A permanent error for one form (or the server): the message says what to fix."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: float | None = None,
        form: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # Central's problem code, e.g. 401.2
        self.form = form


class NoDeletedFeed(OdkError):
    """The server cannot list what it deleted (ODK Central before v2024.3)."""


def _hint(status: int, server: OdkServer, form: str | None) -> str:
    entry = f" ([[odk]] entry '{server.name}')" if server.name else ""
    password = f"the password in {server.password_from}" if server.password_from else "its password"
    project = server.project_id
    hints = {
        400: "the server rejected the query; it may be older than Central v2024.3",
        401: f"Central refused the login of {server.email}{entry}: check that email and "
        f"{password} (a Web User's; App User tokens cannot read submissions)",
        403: f"the account {server.email} has no role on project {project} that may read "
        "submissions: make it Project Viewer (or higher) there",
        404: f"no such published form in project {project}: check the xmlFormId in the "
        "config and that the form is published"
        if form
        else f"project {project} does not exist on {server.host} or is not visible to "
        f"{server.email}: check project_id{entry} (the number in the project's address on "
        "Central)",
        501: "the server does not support this query; it may be older than Central v2024.3",
    }
    return hints.get(status, "see the server's message")


def odata_time(moment: datetime) -> str:
    """A `$filter` literal: UTC with milliseconds and `Z` (zone-less literals would be read in
    the database's time zone). Naive datetimes are taken as UTC."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


class OdkClient:
    def __init__(
        self,
        server: OdkServer,
        *,
        page_size: int = 1000,
        timeout: float = 60.0,
        attempts: int = 6,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        clock: Callable[[], datetime] = _now,  # tests move time to exercise token refresh
    ) -> None:
        self.server = server
        self.page_size = page_size
        self._attempts = attempts
        self._backoff = (backoff, backoff_cap)
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = datetime.min.replace(tzinfo=UTC)
        # No global Accept header: Central answers 406 to JSON-only Accept on $metadata.
        self._http = httpx.Client(
            base_url=server.url.rstrip("/"), timeout=timeout, verify=tls_context(server.url)
        )

    def close(self) -> None:
        """End the session (best effort) so the token does not stay valid for a day."""
        if self._token is not None:
            with suppress(httpx.HTTPError):
                self._http.delete(
                    "/v1/sessions/current", headers=self._auth(), timeout=_LOGOUT_TIMEOUT
                )
            self._token = None
        self._http.close()

    def __enter__(self) -> OdkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- session ---------------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _login(self, form: str | None) -> None:
        body = {"email": self.server.email, "password": self.server.password}
        started = self._clock()
        response = self._send("POST", "/v1/sessions", json=body)
        session = self._decode(response, form)
        created, expires = parse_utc(session.get("createdAt")), parse_utc(session.get("expiresAt"))
        lifetime = expires - created  # both server clocks: immune to skew with ours
        self._token = session["token"]
        self._refresh_at = started + lifetime - min(_REFRESH_MARGIN, lifetime / 2)

    def _ensure_session(self, form: str | None) -> None:
        if self._token is None or self._clock() >= self._refresh_at:
            self._login(form)

    # ---- HTTP ------------------------------------------------------------------------------
    def _send(self, method: str, target: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, target, **kwargs)
        except httpx.TransportError as err:  # timeouts, resets, refused connections
            raise TransientError(f"{type(err).__name__}: {err}") from err

    def _decode(self, response: httpx.Response, form: str | None) -> Any:
        status = response.status_code
        if status in TRANSIENT_STATUS:
            raise TransientError(f"HTTP {status}", retry_after(response.headers))
        if status >= 400:
            raise self._error(response, form)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as err:  # Central streams rows: an error mid-body cuts it
            raise TransientError(
                f"truncated or non-JSON body ({len(response.content)} bytes)"
            ) from err

    def _error(self, response: httpx.Response, form: str | None) -> OdkError:
        try:
            problem = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            problem = {"message": response.text[:200]}
        if not isinstance(problem, dict):
            problem = {"message": str(problem)[:200]}
        status, project = response.status_code, self.server.project_id
        where = f"form {form} (project {project})" if form else f"project {project}"
        return OdkError(
            f"{where} on {self.server.host}: HTTP {status} {problem.get('message', '')} — "
            f"{_hint(status, self.server, form)}",
            status=status,
            code=problem.get("code"),
            form=form,
        )

    def _get_once(self, target: str, params: dict[str, Any] | None, form: str | None) -> Any:
        self._ensure_session(form)
        response = self._send("GET", target, params=params, headers=self._auth())
        if response.status_code == 401:  # expired or revoked early: one fresh login, once
            self._login(form)
            response = self._send("GET", target, params=params, headers=self._auth())
        return self._decode(response, form)

    def _get(
        self, target: str, params: dict[str, Any] | None = None, form: str | None = None
    ) -> Any:  # a JSON document: an object, or a list for REST listings
        base, cap = self._backoff
        return call_with_retries(
            lambda: self._get_once(target, params, form),
            attempts=self._attempts,
            base=base,
            cap=cap,
        )

    # ---- endpoints -------------------------------------------------------------------------
    def forms(self) -> list[CentralForm]:
        """Every form of the project, published or not."""
        listing = self._get(f"/v1/projects/{self.server.project_id}/forms")
        return [
            CentralForm(
                f["xmlFormId"],
                f.get("name") or f["xmlFormId"],
                f.get("state") or "open",
                f.get("version") or "",
            )
            for f in listing
        ]

    def pages(
        self,
        xml_form_id: str,
        *,
        since: datetime | None = None,
        overlap: timedelta = timedelta(hours=1),
    ) -> Iterator[tuple[list[dict], int | None]]:
        """Pages of submissions (repeats inline), newest first, each with `@odata.count` (rows
        matching the filter). With `since`: only rows created or changed after since - overlap.
        Soft-deleted rows are left out, as Central does."""
        params: dict[str, Any] = {"$top": self.page_size, "$count": "true", "$expand": "*"}
        if since is not None:
            w = odata_time(since - overlap)
            params["$filter"] = f"__system/submissionDate gt {w} or __system/updatedAt gt {w}"
        yield from self._feed(xml_form_id, params)

    def deleted(
        self,
        xml_form_id: str,
        *,
        since: datetime | None = None,
        overlap: timedelta = timedelta(hours=1),
    ) -> Iterator[list[dict]]:
        """Pages of soft-deleted submissions (all, or deleted after since - overlap): `__id`
        and `__system/deletedAt` only. Purged ones (30 days after deletion) are gone without
        trace and need an id reconciliation."""
        deleted = (
            "not __system/deletedAt eq null"
            if since is None
            else f"__system/deletedAt gt {odata_time(since - overlap)}"
        )
        params = {"$top": self.page_size, "$select": "__id,__system/deletedAt", "$filter": deleted}
        try:
            for rows, _count in self._feed(xml_form_id, params):
                yield rows
        except OdkError as err:
            if err.status not in (400, 501):
                raise
            raise NoDeletedFeed(
                f"form {xml_form_id} on {self.server.host}: the server cannot list deleted "
                f"submissions (HTTP {err.status}; ODK Central before v2024.3), so only the "
                "weekly reconcile finds deletions — upgrade Central to v2024.3 or later",
                status=err.status,
                code=err.code,
                form=xml_form_id,
            ) from err

    def ids(self, xml_form_id: str) -> Iterator[list[str]]:
        """Pages of the `__id` of every submission the server holds (soft-deleted left out)."""
        params = {"$top": self.page_size, "$select": "__id"}
        for rows, _count in self._feed(xml_form_id, params):
            yield [str(r["__id"]) for r in rows]

    def rows(self, xml_form_id: str, ids: list[str]) -> Iterator[list[dict]]:
        """Pages of the live submissions among `ids` (repeats inline), asked by `__id`: what
        changed without moving updatedAt (a restore) is found this way."""
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            wanted = " or ".join("__id eq '{}'".format(i.replace("'", "''")) for i in chunk)
            params = {"$top": self.page_size, "$expand": "*", "$filter": wanted}
            for rows, _count in self._feed(xml_form_id, params):
                yield rows

    def _feed(
        self, xml_form_id: str, params: dict[str, Any]
    ) -> Iterator[tuple[list[dict], int | None]]:
        path = (
            f"/v1/projects/{self.server.project_id}/forms/"
            f"{quote(xml_form_id, safe='')}.svc/Submissions"
        )
        target, query = path, params
        followed: set[str] = set()
        while True:
            doc = self._get(target, query, form=xml_form_id)
            rows = doc.get("value") or []
            if rows:  # a `$skip` request may be followed by one empty page: nothing to yield
                yield rows, doc.get("@odata.count")
            link = doc.get("@odata.nextLink")
            if not link:
                return
            # Central writes its configured domain into links, wrong behind proxies: keep only
            # the (opaque, already encoded) query and ask our own base URL.
            next_query = urlsplit(link).query
            if next_query in followed:
                raise OdkError(
                    f"form {xml_form_id}: the server sent the same next page twice — "
                    "report this to the server's administrator",
                    form=xml_form_id,
                )
            followed.add(next_query)
            target, query = f"{path}?{next_query}", None


def to_submission(
    row: dict[str, Any], *, server: str, project_id: int, xml_form_id: str, form_id: str
) -> Submission:
    """An OData row → the source-agnostic record (payload kept exactly as received).

    `__id` is the first version's instanceID and never changes, so it is both the submission id
    and the root uuid; `meta/instanceID` is the current version's. `version` is the form version
    the submission was first created with (OData does not say which one an edit used).
    """
    system = row.get("__system") or {}
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    root = str(row["__id"])
    return Submission(
        source="odk",
        server=server,
        form_uid=f"{project_id}/{xml_form_id}",
        form_id=form_id,
        submission_id=root,
        instance_id=meta.get("instanceID") or root,
        root_uuid=root,
        version=system.get("formVersion") or None,
        submitted_at=parse_utc(system.get("submissionDate")),
        device_start=row.get("start"),
        device_end=row.get("end"),
        review_status=_REVIEW_STATES.get(system.get("reviewState") or ""),
        payload=row,
        deleted=system.get("deletedAt") is not None,
    )
