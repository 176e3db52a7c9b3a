"""How the simulated Central writes values: answers typed the way its OData shows them,
timestamps, and the review states a submission can have.

Central parses each value with JavaScript: parseInt/parseFloat read a leading ASCII number
and give NaN (serialised as null) otherwise, so Thai digits in a number field become null.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

REVIEW_STATES = ("hasIssues", "edited", "approved", "rejected")
_JS_INT = re.compile(r"\s*([+-]?\d+)", re.ASCII)
_JS_FLOAT = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.ASCII)


def _js_number(value: float) -> int | float:
    """JSON.stringify has no 20.0: integral numbers print as integers."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def parse_int(text: str) -> int | None:
    match = _JS_INT.match(text)
    return int(match.group(1)) if match else None


def _parse_float(text: str) -> float | None:
    match = _JS_FLOAT.match(text)
    return float(match.group(1)) if match else None


def _geo_parts(text: str) -> list[float | None]:
    return [_parse_float(p) for p in text.split()]


def _geopoint(text: str, wkt: bool) -> Any:
    lat, lon, alt, acc = [*_geo_parts(text), None, None, None, None][:4]
    if lat is None or lon is None:
        return None
    coordinates = [_js_number(lon), _js_number(lat)] + (
        [_js_number(alt)] if alt is not None else []
    )
    if wkt:
        return f"POINT ({' '.join(str(c) for c in coordinates)})"
    point: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
    if acc is not None:
        point["properties"] = {"accuracy": _js_number(acc)}
    return point


def _geoline(text: str, kind: str, wkt: bool) -> Any:
    coordinates: list[list[int | float]] = []
    accuracies: list[int | float | None] = []
    for chunk in re.split(r"; ?", text):
        lat, lon, alt, acc = [*_geo_parts(chunk), None, None, None, None][:4]
        if lat is None or lon is None:
            continue  # a trailing ";"
        coordinates.append(
            [_js_number(lon), _js_number(lat)] + ([_js_number(alt)] if alt is not None else [])
        )
        accuracies.append(_js_number(acc) if acc else None)
    if not coordinates:
        return None
    if wkt:
        points = ",".join(" ".join(str(c) for c in p) for p in coordinates)
        return f"LINESTRING ({points})" if kind == "geotrace" else f"POLYGON (({points}))"
    shape: dict[str, Any] = (
        {"type": "LineString", "coordinates": coordinates}
        if kind == "geotrace"
        else {"type": "Polygon", "coordinates": [coordinates]}
    )
    if any(a is not None for a in accuracies):
        shape["properties"] = {"accuracies": accuracies}
    return shape


def typed_value(kind: str, raw: Any, wkt: bool) -> Any:
    """One answer as Central's OData JSON shows it."""
    if raw is None or isinstance(raw, list | dict):
        return None
    text = raw if isinstance(raw, str) else str(raw)
    if text == "":
        return None  # an empty element has no text: null
    if kind == "int":
        return parse_int(text)
    if kind == "decimal":
        number = _parse_float(text)
        return None if number is None else _js_number(number)
    if kind == "geopoint":
        return _geopoint(text, wkt)
    if kind in ("geotrace", "geoshape"):
        return _geoline(text, kind, wkt)
    if kind == "dateTime":
        trimmed = text.strip()
        return f"{trimmed}:00" if re.search(r"[+-]\d\d$", trimmed) else trimmed
    return text  # strings, selects (space-separated), dates, times, booleans, file names


def iso(moment: datetime | None) -> str | None:
    """Central's timestamp text: UTC with milliseconds and a Z."""
    if moment is None:
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
