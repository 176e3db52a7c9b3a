"""ODK Central OData rows → the flat Kobo key layout the flatteners read.

Central nests groups as objects, inlines repeats as lists (with `$expand=*`), types numbers
(`20.0` arrives as `20`) and geopoints (GeoJSON, lon/lat order) and says `null` for every
unanswered field. Kobo sends `group/field` keys, repeats as lists of dicts keyed by full path,
every answer a string, and leaves unanswered fields out. Converting here keeps `schemas/flatten.py`
ignorant of which server a submission came from.

Not recoverable from OData: field names Central had to sanitise (`q1.8` → `q1_8`), and geodata
requested as WKT (`$wkt=true`, kept as the WKT string).
"""

from __future__ import annotations

from typing import Any

_NAV_LINK = "@odata.navigationLink"
_GEO_TYPES = frozenset({"Point", "LineString", "Polygon"})


def kobo_style_answers(payload: dict[str, Any]) -> dict[str, Any]:
    """The answers of one OData row (`Submissions`, `$expand=*`) in Kobo's flat layout.

    Raises ValueError for a repeat that was not expanded: its rows would be silently missing.
    """
    out: dict[str, Any] = {}
    _flatten(payload, "", out)
    return out


def _flatten(node: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in node.items():
        if key.endswith(_NAV_LINK):
            name = key.removesuffix(_NAV_LINK)
            if name not in node:
                raise ValueError(
                    f"repeat {prefix}{name} was not expanded: fetch the feed with $expand=*"
                )
            continue
        if key.startswith(("__", "@")):  # __id, __system, __Submissions-id, @odata.*
            continue
        path = prefix + key
        if value is None:  # Kobo leaves unanswered fields out
            continue
        if isinstance(value, list):
            entries = [_entry(e, path) for e in value if isinstance(e, dict)]
            if entries:
                out[path] = entries
        elif isinstance(value, dict):
            if _is_geojson(value):
                out[path] = _geo_text(value)
            else:
                _flatten(value, f"{path}/", out)
        else:
            out[path] = _text(value)


def _entry(row: dict[str, Any], path: str) -> dict[str, Any]:
    """One repeat instance, keyed by full path (`attendees/hh_code`) like Kobo."""
    entry: dict[str, Any] = {}
    _flatten(row, f"{path}/", entry)
    return entry


def _text(value: Any) -> str:
    """An answer as the XML text a phone would have sent."""
    if isinstance(value, bool):  # Central keeps booleans as text; be safe if one is typed
        return "true" if value else "false"
    if isinstance(value, float):
        # JSON from JavaScript has no 20.0, only 20: write integral floats the same way.
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return str(value)


def _is_geojson(value: dict[str, Any]) -> bool:
    return value.get("type") in _GEO_TYPES and isinstance(value.get("coordinates"), list)


def _point(coordinates: list[Any], accuracy: Any) -> str:
    """GeoJSON [lon, lat(, alt)] plus accuracy → ODK's `lat lon alt acc`."""
    lon, lat, *rest = coordinates
    parts = [_text(lat), _text(lon)]
    if rest:
        parts.append(_text(rest[0]))
    if accuracy is not None:
        if not rest:
            parts.append("0")  # keep accuracy in the fourth position
        parts.append(_text(accuracy))
    return " ".join(parts)


def _geo_text(value: dict[str, Any]) -> str:
    properties = value.get("properties") or {}
    coordinates = value["coordinates"]
    if value["type"] == "Point":
        return _point(coordinates, properties.get("accuracy"))
    points = coordinates if value["type"] == "LineString" else (coordinates or [[]])[0]
    accuracies = properties.get("accuracies") or []
    return ";".join(
        _point(p, accuracies[i] if i < len(accuracies) else None) for i, p in enumerate(points)
    )
