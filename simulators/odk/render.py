"""How the simulated Central's answers look: submissions as OData rows (groups nested, repeats
as navigation links or inlined, repeat tables with their positional ids), `$select`, the feed
envelope, problem JSON, and the `$metadata` document (CSDL).
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from sammachip.simulators.odk.forms import Node, sanitize
from sammachip.simulators.odk.problems import ODataProblem
from sammachip.simulators.odk.values import REVIEW_STATES, iso, typed_value

if TYPE_CHECKING:
    from sammachip.simulators.odk.query import Query
    from sammachip.simulators.odk.store import HostedForm, Record


ODATA_HEADERS = {"OData-Version": "4.0"}  # on every OData answer
JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class _Render:
    root_id: str
    expand: bool
    wkt: bool


Stack = tuple[tuple[Node, int | None], ...]  # (group or repeat, iteration) from the top down


def _hash_id(root_id: str, stack: Stack) -> str:
    """Central's repeat `__id`: sha1 of the path with 0-based iterations (positional)."""
    if not stack:
        return root_id
    parts = [f"Submissions#{root_id}"]
    parts += [f"{n.name}#" if i is None else f"{n.name}#{i}" for n, i in stack]
    return hashlib.sha1("%%".join(parts).encode()).hexdigest()


def _nav_link(root_id: str, stack: Stack) -> str:
    parts = [f"Submissions('{quote(root_id, safe='')}')"]
    for depth, (node, _i) in enumerate(stack):
        if node.type == "repeat" and depth < len(stack) - 1:
            parts.append(f"{node.key}('{_hash_id(root_id, stack[: depth + 1])}')")
        else:
            parts.append(node.key)
    return "/".join(parts)


def _entries(scope: Mapping[str, Any], node: Node) -> list[dict[str, Any]]:
    value = scope.get(node.path)
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _fill(
    nodes: list[Node],
    scope: Mapping[str, Any],
    stack: Stack,
    ctx: _Render,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Central's data frame: every field (null when missing), groups nested; then `extra`
    (ids); then, for repeats that have instances, a navigation link and, expanded, the rows."""
    out: dict[str, Any] = {}
    repeats = []
    for node in nodes:
        if node.type == "structure":
            out[node.key] = _fill(node.children, scope, (*stack, (node, None)), ctx)
        elif node.type == "repeat":
            repeats.append(node)
        else:
            out[node.key] = typed_value(node.type, scope.get(node.path), ctx.wkt)
    out.update(extra or {})
    for node in repeats:
        entries = _entries(scope, node)
        if not entries:
            continue
        out[f"{node.key}@odata.navigationLink"] = _nav_link(ctx.root_id, (*stack, (node, None)))
        if ctx.expand:
            out[node.key] = [
                _fill(
                    node.children,
                    e,
                    (*stack, (node, i)),
                    ctx,
                    {"__id": _hash_id(ctx.root_id, (*stack, (node, i)))},
                )
                for i, e in enumerate(entries)
            ]
    return out


def _system(record: Record) -> dict[str, Any]:
    return {
        "submissionDate": iso(record.created_at),
        "updatedAt": iso(record.updated_at),
        "submitterId": None if record.submitter_id is None else str(record.submitter_id),
        "submitterName": record.submitter_name,
        "attachmentsPresent": 0,
        "attachmentsExpected": 0,
        "status": None,
        "reviewState": record.review_state,
        "deviceId": record.device_id,
        "edits": record.edits,
        "formVersion": record.form_version,
        "deletedAt": iso(record.deleted_at),
    }


def root_row(form: HostedForm, record: Record, expand: bool, wkt: bool = False) -> dict[str, Any]:
    ctx = _Render(record.root_id, expand, wkt)
    return _fill(
        form.tree, record.answers, (), ctx, {"__id": record.root_id, "__system": _system(record)}
    )


def root_bytes(form: HostedForm, record: Record, expand: bool) -> bytes:
    """The row as JSON, rendered once per `$expand` and kept on the record until it changes."""
    cached = record.cache.get(expand)
    if cached is None:
        cached = record.cache[expand] = orjson.dumps(root_row(form, record, expand))
    return cached


def _instances(
    lineage: list[Node], scope: Mapping[str, Any], stack: Stack
) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """Every instance of the repeat at the end of `lineage`, with its stack."""
    node, rest = lineage[0], lineage[1:]
    if node.type == "structure":
        yield from _instances(rest, scope, (*stack, (node, None)))
        return
    for i, entry in enumerate(_entries(scope, node)):
        here = (*stack, (node, i))
        if rest:
            yield from _instances(rest, entry, here)
        else:
            yield here, entry


def _parent_key(stack: Stack) -> tuple[str, Stack]:
    """Name and stack of a repeat row's parent: the root or the enclosing repeat instance."""
    cut = max((d for d, (n, _) in enumerate(stack[:-1]) if n.type == "repeat"), default=-1) + 1
    parent = stack[:cut]
    return "-".join(["__Submissions", *(n.key for n, _ in parent), "id"]), parent


def subtable_rows(
    target: Node, records: Iterable[Record], query: Query, parent_ids: Mapping[int, str]
) -> Iterator[dict[str, Any]]:
    """Rows of a repeat table, newest submission first and in document order within one;
    `parent_ids` pins enclosing repeat instances by depth (for navigation links)."""
    for record in records:
        ctx = _Render(record.root_id, query.expand, query.wkt)
        for stack, entry in _instances(target.lineage, record.answers, ()):
            if any(_hash_id(record.root_id, stack[: d + 1]) != h for d, h in parent_ids.items()):
                continue
            key, parent = _parent_key(stack)
            ids = {"__id": _hash_id(record.root_id, stack), key: _hash_id(record.root_id, parent)}
            yield _fill(target.children, entry, stack, ctx, ids)


def problem_response(problem: ODataProblem) -> Response:
    return Response(
        orjson.dumps({"message": problem.message, "code": problem.code}),
        problem.status,
        problem.headers,
        JSON,
    )


def json_response(
    body: Any, *, headers: dict[str, str] | None = None, media_type: str = JSON
) -> Response:
    return Response(orjson.dumps(body), 200, headers, media_type)


def envelope(rows: list[bytes], context: str, next_link: str | None, count: int | None) -> bytes:
    """Central streams `value` first, then the context, nextLink and count."""
    tail: dict[str, Any] = {"@odata.context": context}
    if next_link is not None:
        tail["@odata.nextLink"] = next_link
    if count is not None:
        tail["@odata.count"] = count
    return b'{"value":[' + b",".join(rows) + b"]," + orjson.dumps(tail)[1:]


def select_properties(form: HostedForm, row: dict[str, Any], select: list[str]) -> dict[str, Any]:
    """`$select`: fields and whole groups, `__system` or some of its properties; `__id` always."""
    nodes = {n.odata_path: n for n in form.nodes()}
    system = {"__id", "__system", *(f"__system/{k}" for k in row["__system"])}
    props = [s.removeprefix("__system/") for s in select if s.startswith("__system/")]
    for item in select:
        node = nodes.get(item)
        if item in system:
            continue
        if node is None:
            raise ODataProblem(400.23, f"Could not find a property named '{item}'")
        if any(a.type == "repeat" for a in node.lineage[:-1]):
            raise ODataProblem(
                400.24,
                f"The given OData select property '{item}' uses features not supported by this "
                "server.",
            )
    out = _prune(row, form.tree, set(select))
    out["__id"] = row["__id"]
    if "__system" in select:
        out["__system"] = row["__system"]
    elif props:
        out["__system"] = {k: v for k, v in row["__system"].items() if k in props}
    return out


def _prune(data: dict[str, Any], nodes: list[Node], wanted: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in nodes:
        if node.odata_path in wanted:
            for key in (node.key, f"{node.key}@odata.navigationLink"):
                if key in data:
                    out[key] = data[key]
        elif node.type == "structure" and any(w.startswith(node.odata_path + "/") for w in wanted):
            out[node.key] = _prune(data.get(node.key) or {}, node.children, wanted)
    return out


_EDM = {
    "int": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "boolean": "Edm.Boolean",
    "geopoint": "Edm.GeographyPoint",
    "geotrace": "Edm.GeographyLineString",
    "geoshape": "Edm.GeographyPolygon",
    "date": "Edm.Date",
    "dateTime": "Edm.DateTimeOffset",
}
_EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
_SYSTEM_NS = "org.opendatakit.submission"
_SYSTEM_TYPES = {
    "submissionDate": "Edm.DateTimeOffset",
    "updatedAt": "Edm.DateTimeOffset",
    "deletedAt": "Edm.DateTimeOffset",
    "submitterId": "Edm.String",
    "submitterName": "Edm.String",
    "attachmentsPresent": "Edm.Int64",
    "attachmentsExpected": "Edm.Int64",
    "status": f"{_SYSTEM_NS}.Status",
    "reviewState": f"{_SYSTEM_NS}.ReviewState",
    "deviceId": "Edm.String",
    "edits": "Edm.Int64",
    "formVersion": "Edm.String",
}


def _edm_properties(parent: ET.Element, nodes: list[Node], ns: str) -> None:
    for n in nodes:
        if n.type == "repeat":
            ET.SubElement(
                parent, "NavigationProperty", Name=n.key, Type=f"Collection({ns}.{n.table})"
            )
        elif n.type == "structure":
            ET.SubElement(
                parent, "Property", Name=n.key, Type=f"{ns}.{n.odata_path.replace('/', '.')}"
            )
        else:
            ET.SubElement(parent, "Property", Name=n.key, Type=_EDM.get(n.type, "Edm.String"))


def _edm_entity(schema: ET.Element, name: str, extra: tuple[str, str]) -> ET.Element:
    entity = ET.SubElement(schema, "EntityType", Name=name)
    ET.SubElement(ET.SubElement(entity, "Key"), "PropertyRef", Name="__id")
    ET.SubElement(entity, "Property", Name="__id", Type="Edm.String")
    ET.SubElement(entity, "Property", Name=extra[0], Type=extra[1])
    return entity


def metadata_xml(form: HostedForm) -> bytes:
    """A minimal CSDL: groups as complex types, repeats as entity types, no annotations."""
    ns = f"org.opendatakit.user.{sanitize(form.xml_form_id)}"
    edmx = ET.Element(
        "edmx:Edmx", {"xmlns:edmx": "http://docs.oasis-open.org/odata/ns/edmx", "Version": "4.0"}
    )
    services = ET.SubElement(edmx, "edmx:DataServices")
    system = ET.SubElement(services, "Schema", xmlns=_EDM_NS, Namespace=_SYSTEM_NS)
    metadata = ET.SubElement(system, "ComplexType", Name="metadata")
    for name, kind in _SYSTEM_TYPES.items():
        ET.SubElement(metadata, "Property", Name=name, Type=kind)
    for enum, members in (
        ("Status", ("notDecrypted", "missingEncryptedFormData")),
        ("ReviewState", REVIEW_STATES),
    ):
        element = ET.SubElement(system, "EnumType", Name=enum)
        for member in members:
            ET.SubElement(element, "Member", Name=member)
    user = ET.SubElement(services, "Schema", xmlns=_EDM_NS, Namespace=ns)
    root = _edm_entity(user, "Submissions", ("__system", f"{_SYSTEM_NS}.metadata"))
    _edm_properties(root, form.tree, ns)
    for n in form.repeats():
        parent_key = _parent_key(tuple((a, 0) for a in n.lineage))[0]
        _edm_properties(_edm_entity(user, n.table, (parent_key, "Edm.String")), n.children, ns)
    for n in form.nodes():
        if n.type == "structure":
            group = ET.SubElement(user, "ComplexType", Name=n.odata_path.replace("/", "."))
            _edm_properties(group, n.children, ns)
    container = ET.SubElement(user, "EntityContainer", Name=sanitize(form.xml_form_id))
    for table in ["Submissions", *(n.table for n in form.repeats())]:
        ET.SubElement(container, "EntitySet", Name=table, EntityType=f"{ns}.{table}")
    return ET.tostring(edmx, encoding="utf-8", xml_declaration=True)
