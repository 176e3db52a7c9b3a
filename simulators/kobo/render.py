"""How the Kobo simulator's answers look: DRF's JSON errors, paging links and the page envelope
(`count`, `next`, `previous`, `results`), and the asset JSON of kpi's v2 API.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from starlette.responses import Response

if TYPE_CHECKING:
    from sammachip.simulators.kobo.store import Asset


def drf_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    """A refusal: the HTTP status, the DRF body and any headers kpi sends with it."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def _replace_query_param(url: str, key: str, value: Any) -> str:
    """DRF's replace_query_param: parameters re-encoded sorted by name."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    params[key] = [str(value)]
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def _remove_query_param(url: str, key: str) -> str:
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    params.pop(key, None)
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def page_links(url: str, offset: int, limit: int, count: int) -> tuple[str | None, str | None]:
    """DRF LimitOffsetPagination next/previous with `start` as the offset parameter."""
    following = None
    if offset + limit < count:
        following = _replace_query_param(
            _replace_query_param(url, "limit", limit), "start", offset + limit
        )
    previous = None
    if offset > 0:
        base = _replace_query_param(url, "limit", limit)
        previous = (
            _remove_query_param(base, "start")
            if offset - limit <= 0
            else _replace_query_param(base, "start", offset - limit)
        )
    return following, previous


def envelope(count: int, following: str | None, previous: str | None, rows: list[bytes]) -> bytes:
    return b"".join(
        (
            b'{"count":',
            str(count).encode(),
            b',"next":',
            orjson.dumps(following),
            b',"previous":',
            orjson.dumps(previous),
            b',"results":[',
            b",".join(rows),
            b"]}",
        )
    )


def asset_json(base: str, asset: Asset) -> dict[str, Any]:
    """An asset as kpi lists it (`/api/v2/assets/`), its links on `base`."""
    url = f"{base}/api/v2/assets/{asset.uid}/"
    last = asset.last_submission_time
    created = drf_time(asset.date_created)
    deployed = drf_time(asset.date_created + timedelta(hours=1))
    has_deployment = asset.has_deployment
    return {
        "url": url,
        "date_created": created,
        "date_modified": deployed,
        "date_deployed": deployed if has_deployment else None,
        "owner": f"{base}/api/v2/users/{asset.owner}/",
        "owner__username": asset.owner,
        "owner_label": asset.owner,
        "parent": None,
        "uid": asset.uid,
        "tag_string": "",
        "settings": {},
        "kind": "asset",
        "name": asset.name,
        "asset_type": "survey",
        "version_id": asset.version_id,
        "has_deployment": has_deployment,
        "deployed_version_id": asset.version_id if has_deployment else None,
        "deployment__active": asset.deployment_status == "deployed",
        "deployment__submission_count": len(asset.ids),
        "deployment__last_submission_time": (
            f"{last:%Y-%m-%dT%H:%M:%S}.{last.microsecond // 1000:03d}Z" if last else None
        ),
        "deployment__encrypted": False,
        "deployment__uuid": asset.deployment_uuid if has_deployment else None,
        "deployment_status": asset.deployment_status,
        # kpi's asset summary (geo: the form has a geopoint question); clients such as
        # pykobo read it from the list
        "summary": {
            "geo": bool(asset.geopoint_keys),
            "labels": [],
            "columns": [],
            "languages": [],
            "row_count": 0,
        },
        "permissions": [],
        "downloads": [{"format": "xls", "url": f"{base}/api/v2/assets/{asset.uid}.xls"}],
        "data": f"{url}data/",
        "status": "private",
        "access_types": None,
        "subscribers_count": 0,
        "children": {"count": 0},
    }


def asset_detail_json(base: str, asset: Asset) -> dict[str, Any]:
    """An asset as kpi shows it alone (`/api/v2/assets/{uid}/`): the list's fields and more."""
    body = asset_json(base, asset)
    url = body["url"]
    deployed = [_deployed_version(asset, url)] if asset.has_deployment else []
    body.update(
        {
            "deployed_versions": {
                "count": len(deployed),
                "next": None,
                "previous": None,
                "results": deployed,
            },
            "version_count": 1,
            "content": {
                "schema": "1",
                "survey": [],
                "choices": [],
                "settings": {"form_id": asset.form_id},
            },
            "files": [],
            "xform_link": f"{url}xform/",
            "hooks_link": f"{url}hooks/",
            "xls_link": f"{url}xls/",
            "advanced_features": {},
        }
    )
    return body


def _deployed_version(asset: Asset, url: str) -> dict[str, Any]:
    deployed_at = drf_time(asset.date_created + timedelta(hours=1))
    return {
        "uid": asset.version_id,
        "url": f"{url}versions/{asset.version_id}/",
        "content_hash": hashlib.sha1(asset.version_id.encode()).hexdigest(),
        "date_deployed": deployed_at,
        "date_modified": deployed_at,
    }
