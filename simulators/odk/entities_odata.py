"""OData on the simulated Central's Entity Lists (`…/datasets/{name}.svc/Entities`, and the
`$filter`/`$search` of `entities.csv`), as Central v2026.2.2 answers it: `$filter` only on
`__id` and `__system/{createdAt, updatedAt, deletedAt, creatorId, conflict}` (a property or
`__system/version` is 501.5, a function 501.4), deleted entities only when the filter names
`deletedAt`, unset properties as `""`, `label` not `$select`able (400.23), newest first, paged
with `$top` and a `$skiptoken` on the uuid, `$search` on whole words. The filter grammar and
its SQL-like evaluation are the submissions feed's (`filters.py`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sammachip.simulators.odk.entities import Dataset, Entity, EntityStore
from sammachip.simulators.odk.entities_problems import EntityProblem
from sammachip.simulators.odk.filters import (
    FIELD_NOT_SUPPORTED,
    FILTERABLE,
    KEYWORDS,
    Expr,
    FilterParser,
    Token,
    mentions_deleted,
    truth,
)
from sammachip.simulators.odk.problems import not_supported
from sammachip.simulators.odk.query import int_param, page_window, read_skiptoken
from sammachip.simulators.odk.render import envelope
from sammachip.simulators.odk.values import iso

# Entity fields → the submissions feed's names, so its filter evaluator serves: `Entity` has
# `root_id`, `submitter_id` and `review_state` standing for `__id`, `creatorId`, `conflict`.
_AS_SUBMISSION = {
    "__id": "__id",
    "__system/createdAt": "__system/submissionDate",
    "__system/updatedAt": "__system/updatedAt",
    "__system/deletedAt": "__system/deletedAt",
    "__system/creatorId": "__system/submitterId",
    "__system/conflict": "__system/reviewState",
}
_SORT_KEYS: dict[str, Callable[[Entity], Any]] = {
    "__id": lambda e: e.uuid,
    "__system/createdAt": lambda e: e.created_at,
    "__system/updatedAt": lambda e: e.updated_at,
    "__system/deletedAt": lambda e: e.deleted_at,
    "__system/creatorId": lambda e: e.creator_id,
    "__system/conflict": lambda e: e.conflict,
}
_PARAMS = {
    "$format",
    "$count",
    "$skip",
    "$top",
    "$filter",
    "$select",
    "$skiptoken",
    "$orderby",
    "$search",
}
_SYSTEM_TYPES = (
    ("createdAt", "Edm.DateTimeOffset"),
    ("creatorId", "Edm.String"),
    ("creatorName", "Edm.String"),
    ("updates", "Edm.Int64"),
    ("updatedAt", "Edm.DateTimeOffset"),
    ("deletedAt", "Edm.DateTimeOffset"),
    ("version", "Edm.Int64"),
    ("conflict", "Edm.String"),
)


def _unsupported_field(text: str, at: int) -> EntityProblem:
    return EntityProblem(501.5, f"{FIELD_NOT_SUPPORTED}: {text} at {at}", {"at": at, "text": text})


class _EntityFilter(FilterParser):
    """The submissions grammar with the entity fields Central can filter on."""

    def __init__(self, expression: str) -> None:
        super().__init__(expression, subtable=False, filterable=FILTERABLE)
        self.expression = expression

    def unsupported(self, token: Token, kind: str) -> EntityProblem:  # type: ignore[override]
        """As the submissions feed says it, with Central's details (the whole call's text)."""
        text, depth, quoted = token.text, 0, False
        for end, c in enumerate(self.expression[token.at :], token.at):
            quoted = quoted != (c == "'")
            depth += 0 if quoted else (c == "(") - (c == ")")
            if depth == 0 and c == ")":
                text = self.expression[token.at : end + 1]
                break
        return EntityProblem(
            501.4,
            "The given OData filter expression uses features not supported by this server: "
            f'{kind} at {token.at} ("{text}")',
            {"at": token.at, "type": kind, "text": text},
        )

    def name(self, token: Token) -> Expr:
        following = self.peek()
        if token.text in KEYWORDS or (following is not None and following.text == "("):
            return super().name(token)
        if token.text not in _AS_SUBMISSION:
            raise _unsupported_field(token.text, token.at)
        return ("field", _AS_SUBMISSION[token.text])


def _words(text: str) -> set[str]:
    """Postgres `simple` text-search tokens: runs of letters, marks and digits, lower-cased
    (Thai has no spaces, so only a whole run matches)."""
    words, word = set(), []
    for c in text.lower() + " ":
        if unicodedata.category(c)[0] in "LMN":
            word.append(c)
        elif word:
            words.add("".join(word))
            word = []
    return words


def _ordered_terms(orderby: str) -> list[tuple[str, bool]]:
    """`$orderby` as (field, descending) pairs, on the filterable fields only."""
    terms = []
    for term in (t.strip() for t in orderby.split(",") if t.strip()):
        name, _, direction = term.partition(" ")
        direction = direction.strip().lower() or "asc"
        if name not in _SORT_KEYS or direction not in ("asc", "desc"):
            raise _unsupported_field(name, 0)
        terms.append((name, direction == "desc"))
    return terms


@dataclass(frozen=True)
class EntityQuery:
    top: int | None
    skip: int
    skiptoken: dict[str, Any] | None
    count: bool
    filter: Expr | None
    orderby: list[tuple[str, bool]] | None
    select: list[str] | None
    search: set[str] | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> EntityQuery:
        for key in params:
            if key.startswith("$") and key not in _PARAMS:
                raise not_supported(key)
        token, orderby = params.get("$skiptoken"), params.get("$orderby")
        if token is not None and orderby:
            raise not_supported("using $orderby and $skiptoken together")
        raw_filter, select, search = (params.get(k) for k in ("$filter", "$select", "$search"))
        return cls(
            top=int_param(params.get("$top")),
            skip=int_param(params.get("$skip")) or 0,
            skiptoken=read_skiptoken(token) if token is not None else None,
            count=params.get("$count") == "true",
            filter=_EntityFilter(raw_filter).parse() if raw_filter else None,
            orderby=_ordered_terms(orderby) if orderby else None,
            select=None if select in (None, "*") else [s.strip() for s in select.split(",")],
            search=_words(search) if search else None,
        )

    def matches(self, entity: Entity, now: datetime) -> bool:
        if self.search is not None:
            text = " ".join([entity.current.label, *entity.current.data.values()])
            if not self.search <= _words(text):
                return False
        if self.filter is None:
            return entity.deleted_at is None
        if entity.deleted_at is not None and not mentions_deleted(self.filter):
            return False
        return truth(self.filter, entity, now) is True

    def sorted(self, oldest_first: list[Entity]) -> list[Entity]:
        """Newest first by default. With `$orderby`, ties go by creation in the first term's
        direction (Central appends its id column that way); null sorts lowest."""
        if not self.orderby:
            return oldest_first[::-1]
        ordered = sorted(oldest_first, key=lambda e: e.seq, reverse=self.orderby[0][1])
        for name, descending in reversed(self.orderby):
            get = _SORT_KEYS[name]
            ordered.sort(
                key=lambda e: (0, 0) if (v := get(e)) is None else (1, v), reverse=descending
            )
        return ordered


def selected(
    store: EntityStore, dataset: Dataset, params: Mapping[str, str]
) -> tuple[EntityQuery, list[Entity]]:
    """The query and the entities it selects, in its order (hold `store.snapshot()`)."""
    query = EntityQuery.parse(params)
    now = store.odk.now()
    oldest_first = sorted(dataset.entities.values(), key=lambda e: e.order_key)
    return query, query.sorted([e for e in oldest_first if query.matches(e, now)])


def odata_row(e: Entity, dataset: Dataset, store: EntityStore) -> dict[str, Any]:
    v = e.current
    system = {
        "createdAt": iso(e.created_at),
        "creatorId": str(e.creator_id),
        "creatorName": store.name_of(e.creator_id),
        "updates": len(e.versions) - 1,
        "updatedAt": iso(e.updated_at),
        "deletedAt": iso(e.deleted_at),
        "version": v.version,
        "conflict": e.conflict,
    }
    return {
        "__id": e.uuid,
        "label": v.label,
        "__system": system,
        **{p: v.data.get(p, "") for p in dataset.properties},
    }


def _select(row: dict[str, Any], dataset: Dataset, select: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"__id": row["__id"]}
    for name in select:
        if name.startswith("__system/") and name[9:] in row["__system"]:
            out.setdefault("__system", {})[name[9:]] = row["__system"][name[9:]]
        elif name in ("__id", "__system") or name in dataset.properties:
            out[name] = row[name]
        else:
            raise EntityProblem(
                400.23, f"Could not find a property named '{name}'", {"property": name}
            )
    return out


def entities_page(
    store: EntityStore,
    dataset: Dataset,
    params: Mapping[str, str],
    context: str,
    next_link: Callable[[dict[str, Any]], str],
) -> bytes:
    """One page of the `Entities` feed; `next_link` turns a cursor into the next page's URL."""
    with store.snapshot():
        query, rows = selected(store, dataset, params)
        cursor_at = None
        if query.skiptoken is not None:  # rows after the cursor, which may have gone since
            cursor = dataset.entities.get(str(query.skiptoken.get("uuid")))
            if cursor is not None:
                older = (i for i, e in enumerate(rows) if e.order_key < cursor.order_key)
                cursor_at = next(older, len(rows))
        window = page_window([e.uuid for e in rows], query, "uuid", cursor_at)
        page = []
        for e in rows[window.start : window.stop]:
            row = odata_row(e, dataset, store)
            chosen = row if query.select is None else _select(row, dataset, query.select)
            page.append(orjson.dumps(chosen))
    link = next_link(window.next_token) if window.next_token else None
    return envelope(page, context, link, window.count if query.count else None)


def metadata_xml(dataset: Dataset) -> bytes:
    """A minimal CSDL: the `__system` type, and every property (and `label`) as a string."""
    system = "".join(f'<Property Name="{n}" Type="{t}"/>' for n, t in _SYSTEM_TYPES)
    props = "".join(
        f'<Property Name="{p}" Type="Edm.String"/>' for p in ("label", *dataset.properties)
    )
    ns, edm = f"org.opendatakit.user.{dataset.name}", "http://docs.oasis-open.org/odata/ns/edm"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">'
        f'<edmx:DataServices><Schema xmlns="{edm}" Namespace="org.opendatakit.entity">'
        f'<ComplexType Name="metadata">{system}</ComplexType></Schema>'
        f'<Schema xmlns="{edm}" Namespace="{ns}"><EntityType Name="Entities">'
        '<Key><PropertyRef Name="__id"/></Key><Property Name="__id" Type="Edm.String"/>'
        f'<Property Name="__system" Type="org.opendatakit.entity.metadata"/>{props}'
        f'</EntityType><EntityContainer Name="{dataset.name}"><EntitySet Name="Entities" '
        f'EntityType="{ns}.Entities"/></EntityContainer></Schema></edmx:DataServices>'
        "</edmx:Edmx>"
    ).encode()
