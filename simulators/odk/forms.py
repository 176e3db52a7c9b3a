"""The simulated Central's form schemas: the fields of a form (as `GET …/fields` lists them),
their tree of groups and repeats, the schema Central derives from an XLSForm, and the instance
name Collect computes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class OdkField:
    """One schema field, as Central's `GET …/fields` lists it (path without the leading /)."""

    path: str  # "hh/village_code"
    type: str  # structure, repeat, string, int, decimal, date, dateTime, geopoint, select, …

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FormDefinition:
    xml_form_id: str
    name: str
    version: str
    fields: tuple[OdkField, ...]
    instance_name: str | None = None  # XLSForm `instance_name` expression
    entity_list: str | None = None  # the Entity List its `entities` sheet updates
    saves: tuple[tuple[str, str], ...] = ()  # (property, answer key) of each `save_to`


def sanitize(name: str) -> str:
    """Central's sanitizeOdataIdentifier: every OData key and table name goes through it."""
    return re.sub(r"[^a-zA-Z0-9_]+", "_", re.sub(r"^([^a-zA-Z_])", r"_\1", name))


@dataclass(eq=False)
class Node:
    name: str
    path: str
    type: str
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def key(self) -> str:
        return sanitize(self.name)

    @property
    def odata_path(self) -> str:
        return self.key if self.parent is None else f"{self.parent.odata_path}/{self.key}"

    @property
    def lineage(self) -> list[Node]:
        """From the top-level node down to this one."""
        return [*(self.parent.lineage if self.parent else []), self]

    @property
    def table(self) -> str:
        return ".".join(["Submissions", *(n.key for n in self.lineage)])

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def field_tree(fields: Iterable[OdkField]) -> list[Node]:
    """Nodes from a flat field list; undeclared parents become groups."""
    nodes: dict[str, Node] = {}
    roots: list[Node] = []
    for f in fields:
        parts = f.path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path in nodes:
                continue
            parent = nodes.get("/".join(parts[: depth - 1])) if depth > 1 else None
            kind = f.type if depth == len(parts) else "structure"
            node = nodes[path] = Node(parts[depth - 1], path, kind, parent)
            (parent.children if parent else roots).append(node)
    return roots


_XLS_TYPES = {
    "text": "string",
    "integer": "int",
    "int": "int",
    "decimal": "decimal",
    "date": "date",
    "time": "time",
    "datetime": "dateTime",
    "dateTime": "dateTime",
    "start": "dateTime",
    "end": "dateTime",
    "today": "date",
    "geopoint": "geopoint",
    "geotrace": "geotrace",
    "geoshape": "geoshape",
    "select_one": "select1",
    "select_one_from_file": "select1",
    "select_multiple": "select",
    "note": "string",
    "calculate": "string",
    "barcode": "barcode",
    "image": "binary",
    "audio": "binary",
    "video": "binary",
    "file": "binary",
    "deviceid": "string",
    "username": "string",
    "phonenumber": "string",
    "email": "string",
    "audit": "binary",
}


@cache  # definitions are immutable; tests and replays load the same workbooks again
def xlsform_definition(path: Path) -> FormDefinition:
    """The schema Central would derive from an XLSForm (what pyxform puts in the XForm)."""
    import openpyxl  # here: it pulls in numpy, and only seeding needs it

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        settings = _sheet(book["settings"])[0]
        rows = _sheet(book["survey"])
        entities = _sheet(book["entities"])[0] if "entities" in book.sheetnames else {}
    finally:
        book.close()
    fields: list[OdkField] = []
    saves: list[tuple[str, str]] = []
    stack: list[str] = []
    for row in rows:
        kind = (
            str(row.get("type") or "").strip().replace("begin ", "begin_").replace("end ", "end_")
        )
        name = str(row.get("name") or "").strip()
        if kind in ("end_group", "end_repeat"):
            stack.pop()
        elif kind in ("begin_group", "begin_repeat"):
            stack.append(name)
            fields.append(
                OdkField("/".join(stack), kind.removeprefix("begin_").replace("group", "structure"))
            )
        elif kind and name:
            fields.append(
                OdkField("/".join([*stack, name]), _XLS_TYPES.get(kind.split()[0], "string"))
            )
            if row.get("save_to"):
                saves.append((str(row["save_to"]).strip(), fields[-1].path))
    instance_name = settings.get("instance_name")
    fields += [OdkField("meta", "structure"), OdkField("meta/instanceID", "string")]
    if instance_name:
        fields.append(OdkField("meta/instanceName", "string"))
    return FormDefinition(
        xml_form_id=str(settings["form_id"]),
        name=str(settings.get("form_title") or settings["form_id"]),
        version=str(settings.get("version") or ""),
        fields=tuple(fields),
        instance_name=instance_name,
        entity_list=str(entities["list_name"]) if entities.get("list_name") else None,
        saves=tuple(saves),
    )


def _sheet(sheet: Any) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(h) if h is not None else "" for h in rows[0]]
    return [dict(zip(header, r, strict=False)) for r in rows[1:] if any(v is not None for v in r)]


def evaluate_instance_name(
    expression: str | None, answers: Mapping[str, Any], paths: dict[str, str]
) -> str | None:
    """Evaluate the usual `concat(${a}, ' ', ${b})` (or a lone `${a}`) as Collect would."""
    if not expression:
        return None
    parts = re.findall(r"\$\{(\w+)\}|'([^']*)'|\"([^\"]*)\"", expression)
    text = "".join(
        str(answers.get(paths.get(ref, ""), "") or "") if ref else single or double
        for ref, single, double in parts
    )
    return text or None
