"""Each officer's list on ODK Central: the Entity List `followups` the follow-up form reads.

A push reads what the server holds (every live entity with its version and properties) and
sends only the difference: new items created in bulk under their stable uuids (a retried or
repeated create is recognised, never doubled), changed ones updated at the version read,
closed ones deleted; one that was deleted and came back is restored. A refused update (409.15:
a phone's visit changed the item since it was read) is read again and sent again with only
what the push owns — the properties a visit saves (`status`, `visited_on`, `next_visit`) are
never sent by the push, so the field's status wins — until `[phones] reopen_after_days` after
the visit: an item the data still list then is put back on the officer's list.

Who sees what: on Central v2026.2+ the list filters on the property `officer_id` against the
App User's actor property `officer_id`, so each phone downloads its officer's items only. An
older server has no such filter (actor properties answer 404): every phone then downloads the
district's list and the form's `choice_filter` shows each officer only theirs, by the officer
id they enter — the push says so in the run summary, and goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sammachip.connectors.odk import OdkForm
from sammachip.connectors.odk.client import OdkError
from sammachip.connectors.odk.entities import (
    EntityClient,
    EntityConflict,
    NewEntity,
    ServerEntity,
)
from sammachip.phones.items import PUSHED, PhoneItem, VisitWindow, officers
from sammachip.phones.record import Held
from sammachip.schemas.followup_form import LIST_COLUMNS, LIST_NAME, OPEN, VISITED
from sammachip.warehouse.failpoints import failpoint

OFFICER = "officer_id"  # the list property and the actor property the filter pairs


@dataclass
class PushResult:
    """What one server's push did (a line of the run summary)."""

    server: str
    source: str  # odk | kobo
    target: str = ""  # the Entity List, or the Kobo form's asset uid
    created: int = 0
    updated: int = 0
    deleted: int = 0
    restored: int = 0
    unchanged: int = 0
    field_kept: int = 0  # updates a phone's visit overtook: re-read, the visit's status kept
    reopened: int = 0  # visited items the data still list after `[phones] reopen_after_days`
    officers: int = 0
    warning: str | None = None  # said in the summary; the push still happened
    error: str | None = None  # the push stopped: the next run tries again
    held: list[Held] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted + self.restored


def app_user_name(officer_id: str, name: str) -> str:
    """The App User of an officer (found again by this name on every push)."""
    return f"{name} ({officer_id})" if name else officer_id


def push_odk(
    form: OdkForm, items: Sequence[PhoneItem], window: VisitWindow, *, source_name: str
) -> PushResult:
    """Make the server's list the officers' items; `source_name` names the batch in
    Central's audit log (e.g. the run)."""
    result = PushResult(form.server_name, "odk", LIST_NAME)
    with EntityClient(form.source.server, **form.http.client_options()) as client:
        client.ensure_list(LIST_NAME, LIST_COLUMNS)
        filtered = _filter_by_officer(client)
        if not filtered:
            result.warning = (
                f"server {form.server_name}: Central before v2026.2 has no per-officer access "
                "filter, so every phone downloads the district's list and the follow-up form "
                "shows each officer only the items of the officer id they enter — upgrade "
                "Central to v2026.2 for lists filtered on the server"
            )
        for officer_id, name in officers(items).items():
            props = {OFFICER: officer_id} if filtered else {}
            user = client.ensure_app_user(app_user_name(officer_id, name), props)
            client.assign_form(form.xml_form_id, user.id)
            result.officers += 1
        _Converge(client, result, window).run(items, source_name)
    return result


def _filter_by_officer(client: EntityClient) -> bool:
    """Set the list's access filter (v2026.2+); False on a server that has none."""
    try:
        client.ensure_actor_property(OFFICER)
    except OdkError as err:
        if err.status == 404:
            return False
        raise
    client.set_access_filter(LIST_NAME, OFFICER, OFFICER)
    return True


@dataclass
class _Converge:
    """One push's pass over the list: the server's entities made the officers' items."""

    client: EntityClient
    result: PushResult
    window: VisitWindow

    def run(self, items: Sequence[PhoneItem], source_name: str) -> None:
        client, result = self.client, self.result
        wanted = {i.uuid: i for i in items}
        held = {e.uuid: e for e in client.entities(LIST_NAME)}
        back = [u for u in client.deleted(LIST_NAME) if u in wanted and u not in held]
        for uuid in back:  # closed once, open again: the same entity comes back
            client.restore(LIST_NAME, uuid)
            failpoint("phones-entity-write")
            held[uuid] = client.get(LIST_NAME, uuid)
            result.restored += 1
        new = [
            NewEntity(i.uuid, i.label, {**i.data, "status": OPEN})
            for u, i in wanted.items()
            if u not in held
        ]
        if new:
            created = client.create(LIST_NAME, new, source=source_name)
            failpoint("phones-entity-write")
            result.created += len(created.created)
            for uuid in created.existing:  # made by a push that died before its answer
                held[uuid] = client.get(LIST_NAME, uuid)
        versions: dict[str, int] = {e.uuid: 1 for e in new}
        for uuid, item in wanted.items():
            if uuid in held:
                versions[uuid] = self.update(item, held[uuid])
        for uuid in held.keys() - wanted.keys():
            result.deleted += client.delete(LIST_NAME, uuid)
            failpoint("phones-entity-write")
        result.held = [
            Held(i.item_id, i.officer_id, u, versions[u], i.content_hash) for u, i in wanted.items()
        ]

    def differs(self, item: PhoneItem, now: ServerEntity) -> tuple[dict[str, str], str | None]:
        """What the push owns and the server lacks; and `status` back to open when the visit
        that took the item off the list is older than the window and the data still list it
        (the one time the push writes a property a visit saves)."""
        data = {k: v for k, v in item.data.items() if now.data.get(k, "") != v}
        if now.data.get("status") == VISITED and not self.window.holds(now.data.get("visited_on")):
            data["status"] = OPEN
        return data, (item.label if item.label != now.label else None)

    def update(self, item: PhoneItem, now: ServerEntity) -> int:
        """Returns the entity's version after."""
        assert set(item.data) <= set(PUSHED)  # never a property a visit saves
        data, label = self.differs(item, now)
        if not data and label is None:
            self.result.unchanged += 1
            return now.version
        try:
            after = self.client.update(
                LIST_NAME, now.uuid, base_version=now.version, data=data, label=label
            )
        except EntityConflict:
            # A visit landed since the read: read again, send only what still differs.
            self.result.field_kept += 1
            now = self.client.get(LIST_NAME, now.uuid)
            data, label = self.differs(item, now)
            if not data and label is None:
                return now.version
            after = self.client.update(
                LIST_NAME, now.uuid, base_version=now.version, data=data, label=label
            )
        failpoint("phones-entity-write")
        self.result.updated += 1
        self.result.reopened += data.get("status") == OPEN
        return after.version
