"""Form media in the Kobo simulator: an asset's `form_media` files and their redeployment, and
what KoboCollect downloads (`/api/v2/assets/{uid}/files/`, `…/deployment/`, the OpenRosa form
list, manifest and media files).

As kpi does it (`kpi/serializers/v2/asset_file.py`, `kpi/models/asset_file.py`,
`kpi/serializers/v2/deployment.py`, `kpi/deployment_backends/mixin.py`,
`kobo/apps/openrosa/apps/api/viewsets/xform_list_api.py`; see also
`/work/shared/reference/kobo/FORM_MEDIA.md`):
- a file comes as multipart `content`, or as `base64Encoded` (a data URL) with
  `metadata={"filename": …}`; its metadata gets `filename`, `hash` ("md5:…") and `mimetype`;
  form media must be an image, audio, video, CSV or XML file, and a file name is unique among
  an asset's live form media (a second one is 400 "File already exists": delete, then upload);
  a delete only marks the file deleted (204);
- devices see media only through a deployment: `PATCH …/deployment/` with the asset's current
  `version_id` redeploys (any other version_id is refused), syncs the media to the form, and
  changes the deployed form's version, which kpi writes as "<deployed versions> (<date>)" — so
  an upload that is never redeployed never reaches a phone;
- KoboCollect reads `formList` (formID = the asset uid), each form's manifest (`hash` md5 of
  each file) and the files themselves.

`media_routes` is what the Kobo simulator's app registers; `media_store(kobo_store)` is the
state (per `KoboStore`; `KoboStore` itself knows nothing of it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from mimetypes import guess_type
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sammachip.simulators.attached import Attached
from sammachip.simulators.kobo.render import (
    ApiError,
    asset_json,
    drf_time,
    envelope,
    json_response,
    page_links,
)
from sammachip.simulators.kobo.store import Asset, KoboStore, kobo_uid
from sammachip.simulators.multipart import multipart_fields

if TYPE_CHECKING:
    from sammachip.simulators.kobo.app import KoboApi

FORM_MEDIA_TYPES = ("image", "audio", "video", "text/csv", "application/xml")
FILE_TYPES = ("form_media", "map_layer")
Handler = Callable[[Request], Awaitable[Response]]
OPENROSA = {"X-OpenRosa-Version": "1.0", "Content-Type": "text/xml; charset=utf-8"}
NOT_DEPLOYED = {"detail": "The specified asset has not been deployed"}


@dataclass(eq=False)
class MediaFile:
    uid: str
    pk: int  # the OpenRosa media id
    file_type: str
    description: str
    filename: str
    content: bytes
    created_at: datetime
    deleted_at: datetime | None = None

    @property
    def md5(self) -> str:
        return hashlib.md5(self.content).hexdigest()

    @property
    def mimetype(self) -> str | None:
        return guess_type(self.filename)[0]


@dataclass(eq=False)
class Deployment:
    pk: int  # the XForm's id, in OpenRosa URLs
    deployed_at: datetime  # the asset's date_modified at its last deployment
    count: int = 1  # deployed versions
    media: list[MediaFile] = field(default_factory=list)  # synced at the last deployment
    files: list[MediaFile] = field(default_factory=list)  # every upload, deleted ones too

    @property
    def version(self) -> str:
        """What kpi writes as the deployed form's version (`version_number_and_date`)."""
        return f"{self.count} ({self.deployed_at:%Y-%m-%d %H:%M:%S})"


class MediaStore:
    """Form media and deployments of the assets of one `KoboStore` (thread-safe)."""

    def __init__(self, kobo: KoboStore) -> None:
        self.kobo = kobo
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._deployments: dict[str, Deployment] = {}
            self._seq = 0
            self.clock = lambda: datetime.now(UTC)

    def deployment(self, asset: Asset) -> Deployment:
        with self._lock:
            found = self._deployments.get(asset.uid)
            if found is None:
                first = asset.date_created.replace(tzinfo=UTC) + timedelta(hours=1)
                found = self._deployments[asset.uid] = Deployment(len(self._deployments) + 1, first)
            return found

    def by_pk(self, pk: int) -> Asset | None:
        uid = next((u for u, d in self._deployments.items() if d.pk == pk), None)
        return self.kobo.asset(uid) if uid else None

    def live(self, asset: Asset, file_type: str | None = None) -> list[MediaFile]:
        return [
            f
            for f in self.deployment(asset).files
            if f.deleted_at is None and (file_type is None or f.file_type == file_type)
        ]

    def add(
        self,
        asset: Asset,
        file_type: str,
        description: str,
        filename: str,
        content: bytes,
        field_name: str,
    ) -> MediaFile:
        """`field_name`: the request field errors are reported on (`content`/`base64Encoded`)."""
        if file_type == "form_media":
            mime = guess_type(filename)[0]
            if not mime or not mime.startswith(FORM_MEDIA_TYPES):
                allowed = "`, `".join(FORM_MEDIA_TYPES)
                raise ApiError(400, {field_name: [f"Only `{allowed}` MIME types are allowed"]})
        with self._lock:
            if file_type == "form_media" and any(
                f.filename == filename for f in self.live(asset, "form_media")
            ):
                raise ApiError(400, {field_name: ["File already exists"]})
            self._seq += 1
            uid = kobo_uid("af", random.Random(f"{asset.uid}:{self._seq}"))
            made = MediaFile(
                uid, self._seq, file_type, description, filename, content, self.clock()
            )
            self.deployment(asset).files.append(made)
            return made

    def file(self, asset: Asset, uid: str) -> MediaFile:
        found = next((f for f in self.live(asset) if f.uid == uid), None)
        if found is None:
            raise ApiError(404, {"detail": "Not found."})
        return found

    def delete(self, asset: Asset, uid: str) -> None:
        """kpi only marks form media deleted (`date_deleted`)."""
        with self._lock:
            self.file(asset, uid).deleted_at = self.clock()

    def redeploy(self, asset: Asset, version_id: str | None, active: bool | None) -> Deployment:
        """kpi's `asset.deploy()` on a deployed asset: the current version only; media synced;
        the asset saved, so the deployed form's version (its date part) changes."""
        with self._lock:
            if not asset.has_deployment:
                raise ApiError(400, NOT_DEPLOYED)
            if version_id is not None and version_id != asset.version_id:
                # kpi raises NotImplementedError with this text
                raise ApiError(400, {"detail": "Only the current version_id can be deployed"})
            deployment = self.deployment(asset)
            # kpi's version string has whole seconds: keep two deployments apart
            deployment.deployed_at = max(
                self.clock().replace(microsecond=0), deployment.deployed_at + timedelta(seconds=1)
            )
            deployment.media = self.live(asset, "form_media")
            if active is not None:
                asset.deployment_status = "deployed" if active else "archived"
            return deployment


# The form media of a simulated server: `media_store(kobo_store)`, made on first use.
media_store: Attached[KoboStore, MediaStore] = Attached(MediaStore)


# =========================================================================== HTTP


def _form_fields(request: Request, body: bytes) -> dict[str, tuple[str | None, Any]]:
    """name → (filename, value) from a multipart, urlencoded or JSON body. Multipart is read
    with the standard library (`simulators.multipart`)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        return multipart_fields(kind, body)
    if kind.startswith("application/x-www-form-urlencoded"):
        pairs = parse_qs(body.decode(), keep_blank_values=True)
        return {k: (None, v[-1]) for k, v in pairs.items()}
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        raise ApiError(400, {"detail": "JSON parse error"}) from None
    return {k: (None, v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}


class _MediaApi:
    def __init__(self, store: MediaStore, api: KoboApi) -> None:
        self.store, self.api = store, api

    def asset(self, request: Request) -> Asset:
        self.api.authenticate(request)
        return self.api.asset_of(request)

    def file_json(self, request: Request, asset: Asset, f: MediaFile) -> dict[str, Any]:
        base = self.api.base(request)
        url = f"{base}/api/v2/assets/{asset.uid}/"
        return {
            "uid": f.uid,
            "url": f"{url}files/{f.uid}/",
            "asset": url,
            "user": f"{base}/api/v2/users/{asset.owner}/",
            "user__username": asset.owner,
            "file_type": f.file_type,
            "description": f.description,
            "date_created": drf_time(f.created_at),
            "content": f"{url}files/{f.uid}/content/",
            "metadata": {"filename": f.filename, "hash": f"md5:{f.md5}", "mimetype": f.mimetype},
        }

    async def files(self, request: Request) -> Response:
        asset = self.asset(request)
        if request.method == "POST":
            made = self.create(asset, _form_fields(request, await request.body()))
            return json_response(self.file_json(request, asset, made), 201)
        wanted = request.query_params.get("file_type")
        rows = [
            orjson.dumps(self.file_json(request, asset, f)) for f in self.store.live(asset, wanted)
        ]
        following, previous = page_links(str(request.url), 0, max(len(rows), 1), len(rows))
        return Response(
            envelope(len(rows), following, previous, rows), media_type="application/json"
        )

    def create(self, asset: Asset, fields: dict[str, tuple[str | None, Any]]) -> MediaFile:
        value = {k: v for k, (_, v) in fields.items()}
        missing = {
            k: ["This field is required."] for k in ("file_type", "description") if not value.get(k)
        }
        if missing:
            raise ApiError(400, missing)
        if value["file_type"] not in FILE_TYPES:
            raise ApiError(400, {"file_type": [f'"{value["file_type"]}" is not a valid choice.']})
        metadata = value.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = orjson.loads(metadata)
            except orjson.JSONDecodeError:
                raise ApiError(400, {"metadata": ["JSON is invalid"]}) from None
        if "content" in value and "base64Encoded" in value:
            raise ApiError(
                400,
                {
                    "detail": [
                        "You cannot upload media file with two different ways at the same time."
                    ]
                },
            )
        if "base64Encoded" in value:
            if not isinstance(metadata, dict) or not metadata.get("filename"):
                raise ApiError(400, {"metadata": ["`filename` is required"]})
            encoded = str(value["base64Encoded"])
            try:
                content = base64.b64decode(encoded[encoded.index("base64") + 7 :])
            except (ValueError, binascii.Error):
                raise ApiError(400, {"base64Encoded": ["Invalid content"]}) from None
            filename, field_name = str(metadata["filename"]), "base64Encoded"
        else:
            upload = fields.get("content")
            if upload is None or upload[0] is None:
                raise ApiError(400, {"content": ["No files have been submitted"]})
            filename, content, field_name = upload[0], upload[1], "content"
        return self.store.add(
            asset, value["file_type"], value["description"], filename, content, field_name
        )

    async def file(self, request: Request) -> Response:
        asset = self.asset(request)
        uid = request.path_params["file_uid"]
        if request.method == "DELETE":
            self.store.delete(asset, uid)
            return Response(status_code=204)
        return json_response(self.file_json(request, asset, self.store.file(asset, uid)))

    async def content(self, request: Request) -> Response:
        asset = self.asset(request)
        f = self.store.file(asset, request.path_params["file_uid"])
        disposition = {"Content-Disposition": f'attachment; filename="{f.filename}"'}
        return Response(f.content, 200, disposition, f.mimetype or "application/octet-stream")

    async def deployment(self, request: Request) -> Response:
        asset = self.asset(request)
        if not asset.has_deployment:
            raise ApiError(400, NOT_DEPLOYED)
        if request.method == "PATCH":
            body = _form_fields(request, await request.body())
            active = body.get("active", (None, None))[1]
            version_id = body.get("version_id", (None, None))[1]
            if body.keys() == {"active"}:  # archiving or un-archiving only, no deployment
                asset.deployment_status = "deployed" if active else "archived"
            else:
                self.store.redeploy(asset, version_id, active)
        return json_response(
            {
                "backend": "openrosa",
                "active": asset.deployment_status == "deployed",
                "version_id": asset.version_id,
                "asset": asset_json(self.api.base(request), asset),
            }
        )

    # -- what KoboCollect downloads

    def openrosa_asset(self, request: Request) -> Asset:
        self.api.authenticate(request)
        asset = self.store.by_pk(request.path_params["pk"])
        if asset is None or not asset.has_deployment:
            raise ApiError(404, {"detail": "Not found."})
        return asset

    async def form_list(self, request: Request) -> Response:
        self.api.authenticate(request)
        base = self.api.base(request)
        items = []
        for asset in self.store.kobo.assets():
            if asset.deployment_status != "deployed":
                continue
            d = self.store.deployment(asset)
            form_hash = hashlib.md5(f"{asset.uid}:{d.version}".encode()).hexdigest()
            items.append(
                f"<xform><formID>{asset.uid}</formID><name>{escape(asset.name)}</name>"
                f"<version>{escape(d.version)}</version><hash>md5:{form_hash}</hash>"
                f"<downloadUrl>{base}/{asset.owner}/forms/{d.pk}/form.xml</downloadUrl>"
                f"<manifestUrl>{base}/{asset.owner}/xformsManifest/{d.pk}</manifestUrl></xform>"
            )
        ns = "http://openrosa.org/xforms/xformsList"
        return Response(f'<xforms xmlns="{ns}">{"".join(items)}</xforms>'.encode(), 200, OPENROSA)

    async def manifest(self, request: Request) -> Response:
        asset = self.openrosa_asset(request)
        d, base = self.store.deployment(asset), self.api.base(request)
        files = "".join(
            f"<mediaFile><filename>{escape(f.filename)}</filename><hash>md5:{f.md5}</hash>"
            f"<downloadUrl>{base}/{asset.owner}/xformsMedia/{d.pk}/{f.pk}"
            f".{f.filename.rsplit('.', 1)[-1]}</downloadUrl></mediaFile>"
            for f in d.media
        )
        ns = "http://openrosa.org/xforms/xformsManifest"
        return Response(f'<manifest xmlns="{ns}">{files}</manifest>'.encode(), 200, OPENROSA)

    async def media(self, request: Request) -> Response:
        asset = self.openrosa_asset(request)
        wanted = request.path_params["media"].split(".", 1)[0]
        found = next((f for f in self.store.deployment(asset).media if str(f.pk) == wanted), None)
        if found is None:
            raise ApiError(404, {"detail": "Not found."})
        return Response(found.content, 200, media_type=found.mimetype or "application/octet-stream")


def media_routes(
    kobo: KoboStore, api: KoboApi, guarded: Callable[[Handler], Handler]
) -> list[Route]:
    """The routes the Kobo simulator's app adds for form media, behind the app's own guard
    (its error bodies and fault injection)."""
    handlers = _MediaApi(media_store(kobo), api)
    asset = "/api/v2/assets/{uid}"
    table = [
        (f"{asset}/files/", handlers.files, ["GET", "POST"]),
        (f"{asset}/files/{{file_uid}}/", handlers.file, ["GET", "DELETE"]),
        (f"{asset}/files/{{file_uid}}/content/", handlers.content, ["GET"]),
        (f"{asset}/deployment/", handlers.deployment, ["GET", "PATCH"]),
        ("/formList", handlers.form_list, ["GET"]),
        ("/{username}/formList", handlers.form_list, ["GET"]),
        ("/{username}/xformsManifest/{pk:int}", handlers.manifest, ["GET"]),
        ("/{username}/xformsMedia/{pk:int}/{media}", handlers.media, ["GET"]),
    ]
    return [Route(path, guarded(handler), methods=methods) for path, handler, methods in table]
