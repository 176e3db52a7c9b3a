"""A phone's submission to the simulated Central (OpenRosa `POST …/submission`, multipart
`xml_submission_file`), and the entity update it carries, applied as Central does.

Recorded on Central v2026.2.2 (`samples/entities/` 125–147): a submission is answered 201
`full submission upload was successful!`; the same instance again with identical XML is 201
and changes nothing, with different XML 409; a form's `entities` sheet makes the instance carry
`meta/entity` (`dataset`, `id`, `update`, `baseVersion`), and Central then gives the entity a
new version with each `save_to` property — even over a newer version than the phone had
(`conflict: soft`), whoever's list the item is on; an unknown uuid changes nothing but an
`entity.error` audit (`apply_form_update`). Central applies the update in a
background worker 3–25 s after the 201; the simulator applies it before answering, so what a
test reads afterwards is what Central shows once its worker has caught up.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from sammachip.simulators.odk.entities import AppUser, EntityStore, EntityVersion
from sammachip.simulators.odk.entities_problems import FORBIDDEN, NOT_FOUND, EntityProblem
from sammachip.simulators.odk.forms import Node
from sammachip.simulators.odk.store import HostedForm

OPENROSA_HEADERS = {"X-OpenRosa-Version": "1.0", "X-OpenRosa-Accept-Content-Length": "100000000"}
_RESPONSE = (
    '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">'
    '<message nature="{nature}">{message}</message></OpenRosaResponse>'
)
_CHANGED = (
    "A submission already exists with this ID, but with different XML. Resubmissions to attach "
    "additional multimedia must resubmit an identical xml_submission_file."
)


def apply_form_update(
    store: EntityStore,
    project_id: int,
    name: str,
    uuid: str,
    data: Mapping[str, str],
    *,
    base_version: int,
    user: AppUser,
    instance_id: str,
    label: str | None = None,
) -> EntityVersion | None:
    """What Central does with a submission whose `meta/entity` updates `uuid` (call it when a
    test wants the background worker to have caught up): applied even when the phone's
    `baseVersion` is stale (then flagged `conflict: soft`) and whoever's list the item is on;
    an unknown uuid changes nothing and leaves an `entity.error` audit (`store.errors`); the
    same instance twice is applied once."""
    with store.snapshot():
        dataset = store.dataset(project_id, name)
        entity = dataset.entities.get(uuid.lower())
        if entity is None or entity.deleted_at is not None:
            store.errors.append(
                {
                    "problemCode": 404.8,
                    "entityUuid": uuid,
                    "datasetName": name,
                    "instanceId": instance_id,
                }
            )
            return None
        if instance_id in entity.form_updates:
            return None
        entity.form_updates.add(instance_id)
        received = {k: v for k, v in data.items() if k in dataset.properties}
        stale = base_version != entity.current.version
        version = store.new_version(
            entity,
            label or entity.current.label,
            received,
            base_version,
            user.id,
            None,
            store.odk.now(),
            {"submission": {"instanceId": instance_id}},
            "soft" if stale else None,
        )
        if stale:
            entity.conflict = "soft"
        return version


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _openrosa(status: int, message: str, nature: str = "") -> Response:
    body = _RESPONSE.format(nature=nature, message=message)
    return Response(body.encode(), status, OPENROSA_HEADERS, "text/xml; charset=utf-8")


def instance_answers(form: HostedForm, root: ET.Element) -> dict[str, Any]:
    """The instance's answers in the store's (Kobo-style) layout: `group/field` keys, a repeat
    a list of entries keyed by full path; empty elements are unanswered, and elements the form
    does not define (`meta/entity`) are no answers."""
    answers: dict[str, Any] = {}

    def read(element: ET.Element, nodes: list[Node], out: dict[str, Any]) -> None:
        for child in element:
            node = next((n for n in nodes if n.name == _local(child.tag)), None)
            if node is None:
                continue
            if node.type == "repeat":
                entry: dict[str, Any] = {}
                read(child, node.children, entry)
                out.setdefault(node.path, []).append(entry)
            elif node.type == "structure":
                read(child, node.children, out)
            elif child.text:
                out[node.path] = child.text

    read(root, form.tree, answers)
    return answers


def receive(store: EntityStore, project_id: int, user: AppUser, xml: bytes) -> Response:
    """Store an App User's submission and apply its entity update."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        raise EntityProblem(400.2, "Required parameter xml_submission_file missing.") from None
    form = store.odk.form(project_id, root.get("id", ""))
    if form is None:
        raise NOT_FOUND
    if form.xml_form_id not in user.forms:
        raise FORBIDDEN
    meta = next((c for c in root if _local(c.tag) == "meta"), None)
    instance_id = meta.findtext("{*}instanceID", "") if meta is not None else ""
    instance_id = instance_id or (meta.findtext("instanceID", "") if meta is not None else "")
    if not instance_id:
        raise EntityProblem(400.2, "Required parameter instanceID missing.")
    with store.snapshot():
        before = store.received.get((project_id, instance_id))
        if before is not None:
            if before != xml:
                return _openrosa(409, _CHANGED, "error")
            return _openrosa(201, "full submission upload was successful!")
        answers = instance_answers(form, root)
        answers["meta/instanceID"] = instance_id
        store.odk.submit(
            form.xml_form_id,
            answers,
            store.odk.now(),
            project_id=project_id,
            submitter=user.display_name,
            submitter_id=user.id,
        )
        store.received[(project_id, instance_id)] = xml
        if meta is not None:
            _update_entity(store, project_id, form, meta, answers, user, instance_id)
    return _openrosa(201, "full submission upload was successful!")


def _update_entity(
    store: EntityStore,
    project_id: int,
    form: HostedForm,
    meta: ET.Element,
    answers: dict[str, Any],
    user: AppUser,
    instance_id: str,
) -> None:
    entity = next((c for c in meta if _local(c.tag) == "entity"), None)
    if entity is None or entity.get("update") not in ("1", "true"):
        return
    name = entity.get("dataset", "")
    dataset = next(
        (d for d in store.forms_of(project_id, form.xml_form_id) if d.name == name), None
    )
    if dataset is None:
        return
    paths = dataset.save_paths.get(form.xml_form_id, {})
    data = {prop: str(answers.get(path, "")) for prop, path in paths.items()}
    base = entity.get("baseVersion") or "0"
    label = next((c.text for c in entity if _local(c.tag) == "label" and c.text), None)
    apply_form_update(
        store,
        project_id,
        name,
        entity.get("id", ""),
        data,
        base_version=int(base) if base.isdigit() else 0,
        user=user,
        instance_id=instance_id,
        label=label,
    )
