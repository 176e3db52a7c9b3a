"""A small typed client for KoboToolbox form media: keeping a list CSV on a form's phones.

KoboCollect gets a form's media files only through a deployment (FORM_MEDIA.md; kpi's
`deploy()` syncs the media): an upload that is not followed by a redeploy never reaches a
phone. So `replace_media` asks what the phones are served first (the OpenRosa manifest of the
deployed form), does nothing when that already has the content's md5, and otherwise replaces
the file (kpi keeps file names unique: delete, then upload), redeploys, and checks the manifest
again. A run that stops half-way is finished by the next one; nothing is uploaded twice: an
upload whose answer is lost is found by name and hash before it is tried again.

The phones' server is kpi's OpenRosa host (on kobotoolbox.org the `kc.` host, not the `kf.`
API host): give it as `openrosa_url` when it differs from the server's URL.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from mimetypes import guess_type
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from sammachip.connectors.kobo.client import KoboClient, KoboError, KoboServer
from sammachip.connectors.retry import (
    call_with_retries,
)

_OPENROSA = {"X-OpenRosa-Version": "1.0", "Accept": "text/xml"}


@dataclass(frozen=True)
class MediaFile:
    uid: str
    filename: str
    md5: str  # hex digest of the content
    description: str


def _md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class MediaClient(KoboClient):
    """Form media of the assets a token may edit (the form's owner, or 'Edit form')."""

    def __init__(self, server: KoboServer, *, openrosa_url: str | None = None, **options: Any):
        super().__init__(server, **options)  # page size, timeout, retries: as `KoboClient`
        self.openrosa_url = (openrosa_url or server.url).rstrip("/")

    # ---- HTTP ------------------------------------------------------------------------------
    def _error(self, response: httpx.Response, asset: str | None) -> KoboError:
        if response.status_code == 403:
            return KoboError(
                f"form {asset}: HTTP 403 — the token's user may not edit this form: replacing "
                "its media and redeploying needs the 'Edit form' permission (or its owner)",
                status=403,
                asset=asset,
            )
        return super()._error(response, asset)

    def _request(self, method: str, url: str, asset: str, **kwargs: Any) -> httpx.Response:
        base, cap = self._backoff
        return call_with_retries(
            lambda: self._once(method, url, asset, **kwargs),
            attempts=self._attempts,
            base=base,
            cap=cap,
        )

    def _openrosa(self, url: str, asset: str) -> ET.Element:
        """An OpenRosa document, its path re-based onto `openrosa_url` (servers name their own
        host in links, wrong behind a proxy)."""
        parts = urlsplit(url)
        target = f"{self.openrosa_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        body = self._request("GET", target, asset, headers=_OPENROSA).content
        try:
            return ET.fromstring(body)
        except ET.ParseError as err:
            raise KoboError(
                f"form {asset}: the phones' server answered no OpenRosa XML at "
                f"{target} — check openrosa_url",
                asset=asset,
            ) from err

    # ---- media -------------------------------------------------------------------------------
    def media(self, asset_uid: str) -> list[MediaFile]:
        """The form's live form-media files, as the API holds them (deployed or not)."""
        page = self._get(
            f"/api/v2/assets/{asset_uid}/files/",
            {"file_type": "form_media", "format": "json"},
            asset_uid,
        )
        return [
            MediaFile(
                f["uid"],
                f["metadata"]["filename"],
                str(f["metadata"].get("hash", "")).removeprefix("md5:"),
                f["description"],
            )
            for f in page.get("results", [])
        ]

    def upload(
        self, asset_uid: str, filename: str, content: bytes, *, description: str
    ) -> MediaFile:
        """Upload one file; each attempt first looks for it (an earlier attempt may have
        landed), so a lost answer never makes a second copy."""
        mime = guess_type(filename)[0] or "application/octet-stream"
        data = {"file_type": "form_media", "description": description}

        def once() -> MediaFile:
            there = [f for f in self.media(asset_uid) if f.filename == filename]
            if there and there[0].md5 == _md5(content):
                return there[0]
            files = {"content": (filename, content, mime)}
            answer = self._once(
                "POST", f"/api/v2/assets/{asset_uid}/files/", asset_uid, data=data, files=files
            )
            made = orjson.loads(answer.content)
            return MediaFile(made["uid"], filename, _md5(content), description)

        base, cap = self._backoff
        return call_with_retries(once, attempts=self._attempts, base=base, cap=cap)

    def delete(self, asset_uid: str, file_uid: str) -> bool:
        """False if it was not there (already deleted, e.g. by our own retried request)."""
        try:
            self._request("DELETE", f"/api/v2/assets/{asset_uid}/files/{file_uid}/", asset_uid)
        except KoboError as err:
            if err.status != 404:
                raise
            return False
        return True

    def redeploy(self, asset_uid: str) -> None:
        """Deploy the form's current version again, which syncs its media to the phones."""
        asset = self._get(f"/api/v2/assets/{asset_uid}/", {"format": "json"}, asset_uid)
        body = {"active": True, "version_id": asset["version_id"]}
        self._request("PATCH", f"/api/v2/assets/{asset_uid}/deployment/", asset_uid, json=body)

    def phone_media(self, asset_uid: str) -> dict[str, str]:
        """filename → md5 of the media KoboCollect is served for the deployed form."""
        forms = self._openrosa(f"{self.openrosa_url}/formList", asset_uid)
        manifest_url = next(
            (
                x.findtext("{*}manifestUrl")
                for x in forms.iter()
                if _local(x.tag) == "xform" and x.findtext("{*}formID") == asset_uid
            ),
            None,
        )
        if not manifest_url:
            raise KoboError(
                f"form {asset_uid}: not in the phones' form list at "
                f"{self.openrosa_url} — is it deployed, and the token's user "
                "allowed to collect data with it?",
                asset=asset_uid,
            )
        manifest = self._openrosa(manifest_url, asset_uid)
        return {
            (m.findtext("{*}filename") or ""): (m.findtext("{*}hash") or "").removeprefix("md5:")
            for m in manifest.iter()
            if _local(m.tag) == "mediaFile"
        }

    def replace_media(
        self, asset_uid: str, filename: str, content: bytes, *, description: str
    ) -> bool:
        """Make the phones' copy of `filename` this content: True if it changed (replaced and
        redeployed), False if the phones already had it (nothing sent)."""
        wanted = _md5(content)
        if self.phone_media(asset_uid).get(filename) == wanted:
            return False
        same = [f for f in self.media(asset_uid) if f.filename == filename]
        if not (len(same) == 1 and same[0].md5 == wanted):  # else uploaded, never deployed
            for old in same:
                self.delete(asset_uid, old.uid)
            self.upload(asset_uid, filename, content, description=description)
        self.redeploy(asset_uid)
        served = self.phone_media(asset_uid).get(filename)
        if served != wanted:
            raise KoboError(
                f"form {asset_uid}: redeployed, but the phones are still served "
                f"{filename} with md5 {served}, not {wanted} — look at the form's media in "
                "KoboToolbox (Settings → Media) and redeploy it by hand",
                asset=asset_uid,
            )
        return True
