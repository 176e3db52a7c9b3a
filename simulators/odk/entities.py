"""ODK Central Entity Lists in the simulator: the store (lists, properties, entities and their
versions, actor properties, App Users, access filters).

Behaviour follows what a real Central v2026.2.2 answered (the recorded exchanges in
`/work/shared/reference/odk/samples/entities/`, whose README is the table of verified
behaviours), where it differs from the docs: several access-filter rules are ORed; a rule that
names an unknown property is dropped without a word, and when none is left the filter is
removed (every phone then gets the whole list); bulk create is all-or-nothing and names only the
first existing uuid (409.3), a deleted entity's uuid is 409.19; a stale or missing `baseVersion`
is 409.15 with `{current, provided}`; an unchanged PATCH still makes a version; delete leaves
`updatedAt` alone, restore sets it; App Users see only what the filter lets through, and the
integrity endpoint reports everything else as deleted.

The REST routes are in `entities_api.py`, OData in `entities_odata.py`, what a phone
downloads (and a phone's update) in `entities_phone.py`. `entity_store(odk_store)` is the
entity store of an `OdkStore` (`OdkStore.reset()` does not clear it: call its `reset()` too).
"""

from __future__ import annotations

import threading
import uuid as uuidlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sammachip.simulators.attached import Attached
from sammachip.simulators.odk.entities_problems import (
    NOT_FOUND,
    EntityProblem,
    exists,
    invalid_entity,
    is_name,
    missing,
    normalise_uuid,
    not_string,
    unexpected,
)
from sammachip.simulators.odk.forms import FormDefinition
from sammachip.simulators.odk.store import OdkStore, new_token

# =========================================================================== records


@dataclass
class EntityVersion:
    version: int
    label: str
    data: dict[str, str]  # every property set so far
    received: dict[str, str]  # `dataReceived`: what this version's writer sent (label included)
    base_version: int | None
    creator_id: int
    user_agent: str | None
    created_at: datetime
    source: dict[str, Any] = field(default_factory=dict)
    conflict: str | None = None  # "soft" when a phone wrote over a version it had not seen
    conflicting: list[str] | None = None


@dataclass(eq=False)
class Entity:
    """One list item. `root_id`, `submitter_id` and `review_state` let the submissions feed's
    `$filter` evaluator read it: they stand for `__id`, `creatorId` and `conflict`."""

    uuid: str
    seq: int
    creator_id: int
    created_at: datetime
    versions: list[EntityVersion]
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    conflict: str | None = None
    form_updates: set[str] = field(default_factory=set)  # instance ids already applied

    @property
    def current(self) -> EntityVersion:
        return self.versions[-1]

    @property
    def root_id(self) -> str:
        return self.uuid

    @property
    def submitter_id(self) -> int:
        return self.creator_id

    @property
    def review_state(self) -> str | None:
        return self.conflict

    @property
    def order_key(self) -> tuple[datetime, int]:
        return (self.created_at, self.seq)


@dataclass(eq=False)
class Dataset:
    project_id: int
    name: str
    created_at: datetime
    last_update: datetime
    properties: dict[str, datetime] = field(default_factory=dict)  # name → publishedAt
    approval_required: bool = False
    owner_only: bool = False
    access_filter: dict[str, Any] | None = None
    entities: dict[str, Entity] = field(default_factory=dict)  # by uuid, creation order
    # xmlFormId of each form that reads `<name>.csv` → the properties it writes (`save_to`)
    linked_forms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # xmlFormId → property → the answer key a submission of that form saves to it
    save_paths: dict[str, dict[str, str]] = field(default_factory=dict)

    def live(self) -> list[Entity]:
        """Not deleted, newest first (Central's order for lists and CSVs)."""
        alive = [e for e in self.entities.values() if e.deleted_at is None]
        return sorted(alive, key=lambda e: e.order_key, reverse=True)


@dataclass(eq=False)
class AppUser:
    id: int
    project_id: int
    display_name: str
    token: str
    created_at: datetime
    created_by: int
    properties: dict[str, str] = field(default_factory=dict)
    forms: set[str] = field(default_factory=set)  # xmlFormIds it is assigned to


@dataclass(frozen=True)
class Actor:
    """Who is asking: a Web User (sees every entity) or an App User (filtered)."""

    id: int
    name: str
    app_user: AppUser | None = None


def _reserved(name: str) -> bool:
    return name.strip().lower() in ("name", "label")


# =========================================================================== store


class EntityStore:
    """Thread-safe Entity Lists of one simulated Central (projects and actor ids come from the
    `OdkStore` it belongs to)."""

    def __init__(self, odk: OdkStore) -> None:
        self.odk = odk
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._datasets: dict[tuple[int, str], Dataset] = {}
            self._actor_properties: dict[int, list[str]] = {}
            self._app_users: dict[int, AppUser] = {}
            self._names: dict[int, str] = {}
            self._seq = 0
            self.errors: list[dict[str, Any]] = []  # `entity.error` audits of form updates
            self.received: dict[tuple[int, str], bytes] = {}  # phones' submissions' XML
            # False: a Central before v2026.2 — no actor properties (404), no access filter
            # (the key is ignored), so every App User downloads the whole list
            self.access_filters = True

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold writers off while one response is assembled from many reads."""
        with self._lock:
            yield

    def web_user(self, email: str) -> Actor:
        actor_id = self.odk.actor_id(email)
        self._names[actor_id] = email
        return Actor(actor_id, email)

    def name_of(self, actor_id: int) -> str:
        return self._names.get(actor_id, "")

    def actor_json(self, actor_id: int) -> dict[str, Any]:
        """An actor as extended metadata shows it (`creator`, `createdBy`)."""
        kind = "field_key" if actor_id in self._app_users else "user"
        return {
            "id": actor_id,
            "type": kind,
            "displayName": self.name_of(actor_id),
            "createdAt": None,
            "updatedAt": None,
            "deletedAt": None,
        }

    # -- lists and properties

    def create_dataset(self, project_id: int, name: Any) -> Dataset:
        if not is_name(name, period=False):
            raise unexpected("name", name, "This is not a valid dataset name.")
        with self._lock:
            if (project_id, name) in self._datasets:
                raise exists("datasets", ["name", "projectId"], [name, project_id])
            now = self.odk.now()
            dataset = self._datasets[(project_id, name)] = Dataset(project_id, name, now, now)
            return dataset

    def dataset(self, project_id: int, name: str) -> Dataset:
        found = self._datasets.get((project_id, name))
        if found is None:
            raise NOT_FOUND
        return found

    def datasets(self, project_id: int) -> list[Dataset]:
        with self._lock:
            return [d for (p, _), d in self._datasets.items() if p == project_id]

    def add_property(self, project_id: int, name: str, prop: Any) -> None:
        if not is_name(prop, period=True) or _reserved(prop):
            raise unexpected("name", prop, "This is not a valid property name.")
        with self._lock:
            dataset = self.dataset(project_id, name)
            if prop in dataset.properties:
                dataset_id = list(self._datasets.values()).index(dataset) + 1
                raise exists("ds_properties", ["name", "datasetId"], [prop, dataset_id])
            dataset.properties[prop] = dataset.last_update = self.odk.now()

    def update_dataset(self, project_id: int, name: str, changes: Mapping[str, Any]) -> Dataset:
        """PATCH: `approvalRequired`, `ownerOnly`, `accessFilter` (see `_access_filter`)."""
        with self._lock:
            dataset = self.dataset(project_id, name)
            if "accessFilter" in changes and self.access_filters:
                dataset.access_filter = self._access_filter(dataset, changes["accessFilter"])
            if isinstance(changes.get("approvalRequired"), bool):
                dataset.approval_required = changes["approvalRequired"]
            if isinstance(changes.get("ownerOnly"), bool):
                dataset.owner_only = changes["ownerOnly"]
            dataset.last_update = self.odk.now()
            return dataset

    def _access_filter(self, dataset: Dataset, wanted: Any) -> dict[str, Any] | None:
        """v2026.2.2: a rule naming an unknown dataset or actor property is dropped silently;
        with none left the filter is removed (200, and no `accessFilter` in the answer)."""
        if wanted is None:
            return None
        kind = wanted.get("type") if isinstance(wanted, dict) else None
        if kind not in ("ownerOnly", "property"):
            raise unexpected("accessFilter.type", kind, "type must be ownerOnly or property.")
        if kind == "ownerOnly":
            return {"type": "ownerOnly"}
        rules = wanted.get("rules")
        if not isinstance(rules, list) or not rules:
            raise unexpected(
                "accessFilter.rules",
                rules if rules is not None else "",
                "rules must be a non-empty array.",
            )
        known = self._actor_properties.get(dataset.project_id, [])
        kept = [
            {"datasetProperty": r["datasetProperty"], "actorProperty": r["actorProperty"]}
            for r in rules
            if isinstance(r, dict)
            and r.get("datasetProperty") in dataset.properties
            and r.get("actorProperty") in known
        ]
        return {"type": "property", "rules": kept} if kept else None

    def link_form(
        self,
        project_id: int,
        xml_form_id: str,
        dataset_name: str,
        saves: tuple[str, ...] = (),
        paths: Mapping[str, str] | None = None,
    ) -> None:
        """What Central does when a published form has an attachment named `<list>.csv`
        (`saves`: the properties its `entities` sheet updates; `paths`: the answer each is
        saved from, by default the question of the property's name)."""
        with self._lock:
            dataset = self.dataset(project_id, dataset_name)
            if self.odk.form(project_id, xml_form_id) is None:
                raise KeyError(f"{project_id}/{xml_form_id}")
            dataset.linked_forms[xml_form_id] = saves
            dataset.save_paths[xml_form_id] = {p: (paths or {}).get(p, p) for p in saves}

    def publish_form(self, project_id: int, definition: FormDefinition) -> None:
        """Publish a form (from its XLSForm) and, when its `entities` sheet updates a list,
        link it to that list with the properties it saves, as Central does on publish: the
        list and those properties are created if missing."""
        self.odk.add_definition(project_id, definition)
        if definition.entity_list:
            saves = dict(definition.saves)
            with self._lock:
                key = (project_id, definition.entity_list)
                if key not in self._datasets:
                    self.create_dataset(project_id, definition.entity_list)
                for prop in saves.keys() - self._datasets[key].properties.keys():
                    self.add_property(project_id, definition.entity_list, prop)
            self.link_form(
                project_id, definition.xml_form_id, definition.entity_list, tuple(saves), saves
            )

    def linked_dataset(self, project_id: int, xml_form_id: str, attachment: str) -> Dataset:
        dataset = self._datasets.get((project_id, attachment.removesuffix(".csv")))
        if dataset is None or xml_form_id not in dataset.linked_forms:
            raise NOT_FOUND
        return dataset

    def forms_of(self, project_id: int, xml_form_id: str) -> list[Dataset]:
        return [d for d in self.datasets(project_id) if xml_form_id in d.linked_forms]

    # -- entities

    def create(
        self,
        project_id: int,
        name: str,
        items: list[Any],
        actor: Actor,
        *,
        user_agent: str | None,
        source: dict[str, Any] | None = None,
    ) -> list[Entity]:
        """One transaction: every item is checked first, so nothing is created if one fails."""
        with self._lock:
            dataset = self.dataset(project_id, name)
            parsed = [self._parse_new(dataset, item) for item in items]
            uuids = [u for u, _, _ in parsed]
            deleted = [
                u
                for u in uuids
                if u in dataset.entities and dataset.entities[u].deleted_at is not None
            ]
            if deleted:
                raise EntityProblem(
                    409.19,
                    "The following UUID(s) cannot be used because they are associated with "
                    f"deleted Entities: ({', '.join(deleted)}).",
                    {"entityUuids": deleted},
                )
            seen: set[str] = set()
            for u in uuids:
                if u in dataset.entities or u in seen:
                    raise exists("entities", ["uuid"], [u])
                seen.add(u)
            now = self.odk.now()
            if source is not None:
                source = {**source, "count": len(items), "userAgent": user_agent}
            created = []
            for u, label, data in parsed:
                self._seq += 1
                first = EntityVersion(
                    1,
                    label,
                    data,
                    {"label": label, **data},
                    None,
                    actor.id,
                    user_agent,
                    now,
                    dict(source or {}),
                )
                entity = dataset.entities[u] = Entity(u, self._seq, actor.id, now, [first])
                created.append(entity)
            return created

    def _parse_new(self, dataset: Dataset, item: Any) -> tuple[str, str, dict[str, str]]:
        if not isinstance(item, dict):
            raise EntityProblem(400.31, "Expected parameters: (label, uuid, data).")
        extra = [k for k in item if k not in ("label", "uuid", "data")]
        if extra:
            raise EntityProblem(
                400.31,
                f"Expected parameters: (label, uuid, data). Got ({', '.join(item)}).",
                {"expected": ["label", "uuid", "data"], "actual": list(item)},
            )
        if "label" not in item:
            raise missing("label")
        label = self._label(item["label"])
        uuid = normalise_uuid(item["uuid"]) if "uuid" in item else str(uuidlib.uuid4())
        return uuid, label, self._data(dataset, item.get("data") or {})

    @staticmethod
    def _label(label: Any) -> str:
        if not isinstance(label, str):
            raise not_string("label")
        if not label.strip():
            raise unexpected("label", "(empty string)", "Label cannot be blank.")
        return label

    @staticmethod
    def _data(dataset: Dataset, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            raise invalid_entity("The entity data must be an object.")
        for key, value in data.items():
            if not isinstance(value, str):
                raise not_string(key)
            if key not in dataset.properties:
                raise invalid_entity(
                    f"You specified the dataset property [{key}] which does not exist."
                )
        return dict(data)

    def entity(self, project_id: int, name: str, uuid: str, *, deleted: bool = False) -> Entity:
        found = self.dataset(project_id, name).entities.get(uuid.lower())
        if found is None or (found.deleted_at is not None) != deleted:
            raise NOT_FOUND
        return found

    def update(
        self,
        project_id: int,
        name: str,
        uuid: str,
        body: Any,
        actor: Actor,
        *,
        base_version: str | None,
        force: bool = False,
        resolve: bool = False,
        user_agent: str | None = None,
    ) -> Entity:
        """PATCH: a partial merge and a new version, even when nothing changes."""
        with self._lock:
            dataset = self.dataset(project_id, name)
            entity = self.entity(project_id, name, uuid)
            body = body if isinstance(body, dict) else {}
            if resolve and entity.conflict is None:
                raise EntityProblem(400.32, "The Entity doesn't have any conflict")
            current = entity.current.version
            if not force and base_version != str(current):
                provided = "undefined" if base_version is None else base_version
                details = {"current": str(current)}
                if base_version is not None:
                    details["provided"] = base_version
                raise EntityProblem(
                    409.15,
                    f"Current version of the Entity is '{current}' and you provided "
                    f"'{provided}'. Please correct the version number or pass '?force=true' "
                    "in the URL to forcefully update the Entity.",
                    details,
                )
            now = self.odk.now()
            if resolve and "label" not in body and not body.get("data"):
                entity.conflict, entity.updated_at = None, now
                return entity
            if "label" not in body and "data" not in body:
                raise invalid_entity("No entity data or label provided.")
            received = self._data(dataset, body.get("data") or {})
            label = self._label(body["label"]) if "label" in body else entity.current.label
            if "label" in body:
                received = {"label": label, **received}
            self.new_version(entity, label, received, current, actor.id, user_agent, now)
            if resolve:
                entity.conflict = None
            return entity

    @staticmethod
    def new_version(
        entity: Entity,
        label: str,
        received: dict[str, str],
        base: int,
        creator_id: int,
        user_agent: str | None,
        now: datetime,
        source: dict[str, Any] | None = None,
        conflict: str | None = None,
    ) -> EntityVersion:
        data = {**entity.current.data, **{k: v for k, v in received.items() if k != "label"}}
        version = EntityVersion(
            entity.current.version + 1,
            label,
            data,
            received,
            base,
            creator_id,
            user_agent,
            now,
            source or {},
            conflict,
            [] if conflict else None,
        )
        entity.versions.append(version)
        entity.updated_at = now
        return version

    def delete(self, project_id: int, name: str, uuid: str) -> None:
        """Soft delete: `deletedAt` is set, `updatedAt` is not."""
        with self._lock:
            self.entity(project_id, name, uuid).deleted_at = self.odk.now()

    def restore(self, project_id: int, name: str, uuid: str) -> None:
        """Undo a delete; unlike a delete, this moves `updatedAt`."""
        with self._lock:
            entity = self.entity(project_id, name, uuid, deleted=True)
            entity.deleted_at, entity.updated_at = None, self.odk.now()

    def bulk(self, project_id: int, name: str, ids: Any, *, restore: bool) -> int:
        """bulk-delete / bulk-restore: ids that do not apply are ignored; the count says how
        many did. Without `ids` Central fails with a 500 (a bug we reproduce)."""
        if not isinstance(ids, list):
            raise EntityProblem(500, "Internal Server Error")
        with self._lock:
            dataset, done = self.dataset(project_id, name), 0
            for raw in ids:
                entity = dataset.entities.get(str(raw).lower())
                if entity is None or (entity.deleted_at is not None) != restore:
                    continue
                now = self.odk.now()
                entity.deleted_at = None if restore else now
                if restore:
                    entity.updated_at = now
                done += 1
            return done

    # -- actor properties and App Users

    def add_actor_property(self, project_id: int, name: Any) -> None:
        if not is_name(name, period=True) or name in ("displayName",):
            raise unexpected("name", name, "This is not a valid property name.")
        with self._lock:
            known = self._actor_properties.setdefault(project_id, [])
            if name in known:
                raise exists("actor_properties", ["projectId", "name"], [str(project_id), name])
            known.append(name)

    def actor_properties(self, project_id: int) -> list[str]:
        return list(self._actor_properties.get(project_id, []))

    def actor_property_values(self, project_id: int, name: str) -> list[str]:
        return sorted(
            {u.properties[name] for u in self.app_users(project_id) if name in u.properties}
        )

    def create_app_user(
        self, project_id: int, display_name: Any, creator: Actor, properties: Any = None
    ) -> AppUser:
        if not isinstance(display_name, str) or not display_name.strip():
            raise missing("displayName")
        with self._lock:
            if properties is not None:
                self._check_properties(project_id, properties)
            token = new_token()
            actor_id = self.odk.actor_id(f"app-user:{token}")
            self._names[actor_id] = display_name
            user = AppUser(actor_id, project_id, display_name, token, self.odk.now(), creator.id)
            self._app_users[actor_id] = user
            if properties is not None:
                self.set_app_user_properties(project_id, actor_id, properties)
            return user

    def app_users(self, project_id: int) -> list[AppUser]:
        with self._lock:
            return [u for u in self._app_users.values() if u.project_id == project_id]

    def app_user(self, project_id: int, actor_id: int) -> AppUser:
        user = self._app_users.get(actor_id)
        if user is None or user.project_id != project_id:
            raise NOT_FOUND
        return user

    @staticmethod
    def actor_of(user: AppUser) -> Actor:
        return Actor(user.id, user.display_name, user)

    def app_user_by_token(self, token: str) -> AppUser | None:
        return next((u for u in self._app_users.values() if u.token == token), None)

    def set_app_user_properties(self, project_id: int, actor_id: int, changes: Any) -> AppUser:
        """Values are trimmed; `""` and null unset a property; the whole change or nothing."""
        with self._lock:
            user = self.app_user(project_id, actor_id)
            self._check_properties(project_id, changes)
            for key, value in changes.items():
                if value is None or not value.strip():
                    user.properties.pop(key, None)
                else:
                    user.properties[key] = value.strip()
            return user

    def _check_properties(self, project_id: int, changes: Any) -> None:
        if not isinstance(changes, dict):
            raise unexpected("properties", changes, "Properties must be an object.")
        known = self._actor_properties.get(project_id, [])
        for key, value in changes.items():
            if key not in known:
                raise unexpected("properties", key, "Unknown property name.")
            if value is not None and not isinstance(value, str):
                raise unexpected(key, value, "Property values must be strings or null.")

    def assign(self, project_id: int, xml_form_id: str, actor_id: int) -> None:
        with self._lock:
            if self.odk.form(project_id, xml_form_id) is None:
                raise NOT_FOUND
            self.app_user(project_id, actor_id).forms.add(xml_form_id)


# The Entity Lists of a simulated server: `entity_store(odk_store)`, made on first use.
entity_store: Attached[OdkStore, EntityStore] = Attached(EntityStore)
