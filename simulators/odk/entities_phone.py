"""What a phone (ODK Collect) downloads from the simulated Central's Entity Lists: the form
list, the manifest, the list as a form attachment CSV and the integrity check, for an App User
(`/v1/key/{token}/…`, filtered by the list's access filter) or a Web User (everything).

Recorded on Central v2026.2.2: the attachment CSV is `name,label,__version,<properties>`, newest
first, UTF-8 without a BOM, with an ETag (`If-None-Match` → 304) that the manifest repeats as the
file's hash, so it differs per App User (Central hashes its own way; here it is the md5 of the
body); the integrity endpoint lists every entity and calls the ones outside the user's filter
deleted, which takes a re-assigned item off the first officer's phone. An App User may not use
the entity API itself (403.1). A phone's submission (`…/submission`) goes to `submissions.py`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import Response

from sammachip.simulators.multipart import multipart_fields
from sammachip.simulators.odk.entities import (
    Actor,
    AppUser,
    Dataset,
    Entity,
    EntityStore,
)
from sammachip.simulators.odk.entities_problems import FORBIDDEN, NOT_FOUND
from sammachip.simulators.odk.problems import AUTH_FAILED
from sammachip.simulators.odk.submissions import OPENROSA_HEADERS, receive

if TYPE_CHECKING:
    from sammachip.simulators.odk.app import OdkApi

_SUBMISSION = re.compile(r"projects/(\d+)/submission")
XML = "text/xml; charset=utf-8"


def visible(dataset: Dataset, actor: Actor) -> list[Entity]:
    """The entities `actor` may download: all for a Web User; an App User gets those that
    match ANY rule of the filter (v2026.2.2 ORs rules) or, `ownerOnly`, its own."""
    rows, rule, user = dataset.live(), dataset.access_filter, actor.app_user
    if user is None or rule is None:
        return rows
    if rule["type"] == "ownerOnly":
        return [e for e in rows if e.creator_id == user.id]

    def allowed(entity: Entity) -> bool:
        return any(
            r["actorProperty"] in user.properties
            and entity.current.data.get(r["datasetProperty"]) == user.properties[r["actorProperty"]]
            for r in rule["rules"]
        )

    return [e for e in rows if allowed(e)]


def write_csv(header: list[str], rows: Iterable[list[str]]) -> bytes:
    """RFC 4180 quoting with `\\n` line ends, as Central writes its CSVs."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def phone_csv(store: EntityStore, dataset: Dataset, actor: Actor) -> bytes:
    """The list as the form attachment `<list>.csv` that `actor`'s phone downloads."""
    with store.snapshot():
        props = list(dataset.properties)
        rows = [
            [
                e.uuid,
                e.current.label,
                str(e.current.version),
                *(e.current.data.get(p, "") for p in props),
            ]
            for e in visible(dataset, actor)
        ]
    return write_csv(["name", "label", "__version", *props], rows)


def integrity(
    store: EntityStore, dataset: Dataset, actor: Actor, ids: Iterable[str] | None = None
) -> list[tuple[str, bool]]:
    """(uuid, deleted) for each entity asked about (all when `ids` is None): deleted on the
    server, or outside the actor's filter."""
    with store.snapshot():
        allowed = {e.uuid for e in visible(dataset, actor)}
        wanted = set(ids) if ids is not None else None
        return [(u, u not in allowed) for u in dataset.entities if wanted is None or u in wanted]


def list_hash(body: bytes) -> str:
    """A CSV's ETag and manifest hash."""
    return hashlib.md5(body).hexdigest()


def csv_response(request: Request, body: bytes, filename: str) -> Response:
    """A CSV with its hash as ETag; `If-None-Match` with that ETag gets a 304."""
    etag = f'"{list_hash(body)}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    headers = {
        "ETag": etag,
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{filename}",
    }
    return Response(body, 200, headers, "text/csv; charset=utf-8")


def _openrosa(body: str) -> Response:
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return Response(xml.encode(), 200, OPENROSA_HEADERS, XML)


def _tag(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


class PhoneApi:
    """The phone's endpoints, for a Web User's session or under an App User's key."""

    _KEY_ROUTES = (
        ("form_list", re.compile(r"projects/(\d+)/formList")),
        ("manifest", re.compile(r"projects/(\d+)/forms/([^/]+)/manifest")),
        ("attachment", re.compile(r"projects/(\d+)/forms/([^/]+)/attachments/([^/]+)")),
        ("integrity", re.compile(r"projects/(\d+)/datasets/([^/]+)/integrity")),
    )

    def __init__(self, store: EntityStore, api: OdkApi) -> None:
        self.store, self.api = store, api

    def web_actor(self, request: Request) -> Actor:
        self.api.authenticate(request)
        self.api.project_of(request)
        return self.store.web_user(self.api.email)

    async def keyed(self, request: Request) -> Response:
        """`/v1/key/{token}/…`: the App User's own downloads; the rest of the API is 403."""
        user = self.store.app_user_by_token(request.path_params["token"])
        if user is None:
            raise AUTH_FAILED
        actor = self.store.actor_of(user)
        rest = request.path_params["rest"]
        posted = _SUBMISSION.fullmatch(rest)
        if posted and request.method == "POST":
            if int(posted.group(1)) != user.project_id:
                raise FORBIDDEN
            return await self.submission(request, user, int(posted.group(1)))
        for name, pattern in self._KEY_ROUTES:
            match = pattern.fullmatch(rest)
            if match and request.method == "GET":
                project_id, *args = match.groups()
                if int(project_id) != user.project_id:
                    raise FORBIDDEN
                handler: Callable[..., Awaitable[Response]] = getattr(self, name)
                return await handler(request, actor, int(project_id), *args)
        raise FORBIDDEN

    async def submission(self, request: Request, user: AppUser, project_id: int) -> Response:
        """A phone sends a finalised form (OpenRosa multipart, `xml_submission_file`)."""
        kind = request.headers.get("content-type", "")
        fields = multipart_fields(kind, await request.body()) if "multipart" in kind else {}
        _, xml = fields.get("xml_submission_file", (None, b""))
        return receive(
            self.store, project_id, user, xml if isinstance(xml, bytes) else xml.encode()
        )

    def prefix(self, request: Request, actor: Actor, project_id: int) -> str:
        """Where the actor's links start: an App User's carry its key."""
        key = f"/v1/key/{actor.app_user.token}" if actor.app_user else "/v1"
        return f"{self.api.base(request)}{key}/projects/{project_id}"

    def form(self, actor: Actor, project_id: int, xml_form_id: str) -> None:
        if self.store.odk.form(project_id, xml_form_id) is None:
            raise NOT_FOUND
        if actor.app_user is not None and xml_form_id not in actor.app_user.forms:
            raise FORBIDDEN

    async def form_list(self, request: Request, actor: Actor, project_id: int) -> Response:
        assert actor.app_user is not None
        forms = [
            f for f in self.store.odk.forms(project_id) if f.xml_form_id in actor.app_user.forms
        ]
        root = f"{self.prefix(request, actor, project_id)}/forms"
        items = []
        for f in forms:
            summary = self.api.form_summary(f)
            items.append(
                "<xform>"
                + _tag("formID", f.xml_form_id)
                + _tag("name", f.name)
                + _tag("version", f.version)
                + _tag("hash", f"md5:{summary['hash']}")
                + _tag("downloadUrl", f"{root}/{f.xml_form_id}.xml")
                + _tag("manifestUrl", f"{root}/{f.xml_form_id}/manifest")
                + "</xform>"
            )
        ns = "http://openrosa.org/xforms/xformsList"
        return _openrosa(f'<xforms xmlns="{ns}">{"".join(items)}</xforms>')

    async def manifest(
        self, request: Request, actor: Actor, project_id: int, xml_form_id: str
    ) -> Response:
        self.form(actor, project_id, xml_form_id)
        base = self.prefix(request, actor, project_id)
        files = []
        for dataset in self.store.forms_of(project_id, xml_form_id):
            body = phone_csv(self.store, dataset, actor)
            files.append(
                '<mediaFile type="entityList">'
                + _tag("filename", f"{dataset.name}.csv")
                + _tag("hash", f"md5:{list_hash(body)}")
                + _tag("downloadUrl", f"{base}/forms/{xml_form_id}/attachments/{dataset.name}.csv")
                + _tag("integrityUrl", f"{base}/datasets/{dataset.name}/integrity")
                + "</mediaFile>"
            )
        ns = "http://openrosa.org/xforms/xformsManifest"
        return _openrosa(f'<manifest xmlns="{ns}">{"".join(files)}</manifest>')

    async def attachment(
        self, request: Request, actor: Actor, project_id: int, xml_form_id: str, name: str
    ) -> Response:
        self.form(actor, project_id, xml_form_id)
        dataset = self.store.linked_dataset(project_id, xml_form_id, name)
        return csv_response(request, phone_csv(self.store, dataset, actor), name)

    async def integrity(
        self, request: Request, actor: Actor, project_id: int, name: str
    ) -> Response:
        dataset = self.store.dataset(project_id, name)
        raw = request.query_params.get("id")
        ids = [i.strip() for i in raw.split(",") if i.strip()] if raw else None
        rows = "".join(
            f"<entity id={quoteattr(u)}>{_tag('deleted', str(gone).lower())}</entity>"
            for u, gone in integrity(self.store, dataset, actor, ids)
        )
        return _openrosa(f"<data><entities>{rows}</entities></data>")

    # -- the same downloads for a Web User (a session)

    async def web_manifest(self, request: Request) -> Response:
        p = request.path_params
        actor = self.web_actor(request)
        return await self.manifest(request, actor, p["project_id"], p["xml_form_id"])

    async def web_attachment(self, request: Request) -> Response:
        p = request.path_params
        actor = self.web_actor(request)
        return await self.attachment(request, actor, p["project_id"], p["xml_form_id"], p["name"])

    async def web_integrity(self, request: Request) -> Response:
        p = request.path_params
        actor = self.web_actor(request)
        return await self.integrity(request, actor, p["project_id"], p["name"])
