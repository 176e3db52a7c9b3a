"""The query options of the simulated Central's OData feeds (`$top`, `$skip`, `$skiptoken`,
`$count`, `$expand`, `$wkt`, `$filter`, `$orderby`, `$select`) and the page they select.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from sammachip.simulators.odk.filters import FILTERABLE, Expr, mentions_deleted, parse_filter, truth
from sammachip.simulators.odk.problems import ODataProblem, not_acceptable, not_supported
from sammachip.simulators.odk.values import parse_int

if TYPE_CHECKING:
    from sammachip.simulators.odk.store import Record


_SUPPORTED_PARAMS = {
    "$format",
    "$count",
    "$skip",
    "$top",
    "$filter",
    "$wkt",
    "$expand",
    "$select",
    "$skiptoken",
    "$orderby",
    "$search",
}


def skiptoken(payload: Mapping[str, Any]) -> str:
    """Central's cursor: "01" + base64(JSON); clients must treat it as opaque."""
    return "01" + base64.b64encode(orjson.dumps(payload)).decode()


def read_skiptoken(token: str) -> dict[str, Any]:
    try:
        if not token.startswith("01"):
            raise ValueError(token)
        decoded = orjson.loads(base64.b64decode(token[2:], validate=True))
        if not isinstance(decoded, dict):
            raise ValueError(token)
        return decoded
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise ODataProblem(400.35, "Invalid $skiptoken") from None


def int_param(raw: str | None) -> int | None:
    """parseInt semantics: a bad `$top` means no limit, a bad `$skip` means 0."""
    if raw is None:
        return None
    value = parse_int(raw)
    return None if value is None else max(0, value)


@dataclass(frozen=True)
class Query:
    """A submissions feed's query options, checked as Central checks them."""

    top: int | None
    skip: int
    skiptoken: dict[str, Any] | None
    count: bool
    expand: bool
    wkt: bool
    filter: Expr | None
    orderby: str | None
    select: list[str] | None

    @classmethod
    def parse(
        cls,
        params: Mapping[str, str],
        *,
        subtable: bool,
        filterable: frozenset[str] = FILTERABLE,
    ) -> Query:
        for key in params:
            if key not in _SUPPORTED_PARAMS:
                raise not_supported(key)
        expand = params.get("$expand")
        if expand is not None and expand != "*":
            raise ODataProblem(
                501.6,
                f'The given OData expand expression is not supported by this server: "{expand}".'
                ' Currently, only "$expand=*" is supported.',
            )
        select = params.get("$select")
        if select is not None and expand is not None:
            raise ODataProblem(
                501.11, "This server doesn't support $select query parameter with $expand."
            )
        if select is not None and subtable:
            raise not_supported("$select on repeat tables")  # Central has it; not simulated
        if params.get("$format") not in (None, "json", "application/json"):
            raise not_acceptable("application/json,json")
        token = params.get("$skiptoken")
        if token is not None and params.get("$orderby"):
            raise not_supported("using $orderby and $skiptoken together")
        raw_filter = params.get("$filter")
        return cls(
            top=int_param(params.get("$top")),
            skip=int_param(params.get("$skip")) or 0,
            skiptoken=read_skiptoken(token) if token is not None else None,
            count=params.get("$count") == "true",
            expand=expand == "*",
            wkt=params.get("$wkt") == "true",
            filter=parse_filter(raw_filter, subtable=subtable, filterable=filterable)
            if raw_filter
            else None,
            orderby=params.get("$orderby"),
            select=None
            if select in (None, "*")
            else [s.strip() for s in select.split(",") if s.strip()],
        )

    def matches(self, record: Record, now: datetime) -> bool:
        if self.filter is None:
            return record.deleted_at is None
        if record.deleted_at is not None and not mentions_deleted(self.filter):
            return False
        return truth(self.filter, record, now) is True


class Paged(Protocol):
    """The paging options of a query (the submissions feed's, or the Entity Lists')."""

    @property
    def top(self) -> int | None: ...
    @property
    def skip(self) -> int: ...
    @property
    def skiptoken(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Window:
    """One page of a selection: rows [start, stop), and the cursor of the next page if any."""

    start: int
    stop: int
    count: int  # the whole selection, whatever the paging
    next_token: dict[str, Any] | None


def page_window(ids: list[str], query: Paged, cursor_key: str, cursor_at: int | None) -> Window:
    """One page of `ids`. After a cursor, paging resumes there (`$skip` is then ignored). Like
    Central, `$skip` is not subtracted when deciding whether a next page exists, so a `$skip`
    request may link to one empty page."""
    if query.skiptoken is not None:
        start = len(ids) if cursor_at is None else cursor_at
        remaining = len(ids) - start
    else:
        start, remaining = min(query.skip, len(ids)), len(ids)
    stop = len(ids) if query.top is None else min(len(ids), start + query.top)
    more = query.top is not None and remaining > query.top and stop > start
    return Window(start, stop, len(ids), {cursor_key: ids[stop - 1]} if more else None)
