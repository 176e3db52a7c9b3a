"""The Entity List client against the ODK simulator over loopback: lists and properties, creates
that are never doubled (by a re-run, or by a retry whose first answer was lost), updates that
respect a phone's change, deletes and restores, reading back with versions, access filters
that really hold, App Users with their officer — and what each officer's phone then downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sammachip.connectors.odk import OdkServer
from sammachip.connectors.odk.entities import (
    AccessFilterNotApplied,
    DeletedEntities,
    EntityClient,
    EntityConflict,
    NewEntity,
    entity_uuid,
)
from sammachip.simulators.faults import Fault
from sammachip.simulators.odk import (
    EntityStore,
    OdkField,
    OdkStore,
    apply_form_update,
    entity_store,
    serve_odk,
)

EMAIL, PASSWORD = "cdd.ubon@example.org", "รหัสผ่าน-Strong-2568!"
PROXY_DOMAIN = "https://central.example.org"  # links name it, not our loopback URL
LIST, FORM = "followups", "sammachip_followup"
PROPS = ["officer_id", "village", "house_no", "reasons", "status"]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OdkStore, str]]:
    store = OdkStore()
    with serve_odk(store, EMAIL, PASSWORD, domain=PROXY_DOMAIN) as url:
        yield store, url


@pytest.fixture
def store(served: tuple[OdkStore, str]) -> OdkStore:
    store = served[0]
    store.reset()
    entity_store(store).reset()
    store.add_project(1, "สัมมาชีพชุมชน")
    return store


@pytest.fixture
def url(served: tuple[OdkStore, str], store: OdkStore) -> str:
    return served[1]


@pytest.fixture
def entities(store: OdkStore) -> EntityStore:
    return entity_store(store)


def client(url: str, **kwargs: Any) -> EntityClient:
    # Tiny backoff: retries are exercised for real, without waiting seconds.
    server = OdkServer(url, EMAIL, PASSWORD, project_id=1)
    return EntityClient(server, backoff=0.001, backoff_cap=0.01, **kwargs)


def item(n: int, officer: str = "off01", **data: str) -> NewEntity:
    values = {
        "officer_id": officer,
        "village": "บ้านหนองบัว",
        "house_no": str(n),
        "reasons": "ยังไม่ได้ติดตามรายได้",
        "status": "open",
        **data,
    }
    return NewEntity(entity_uuid(f"household:34140101-{n:02d}"), f"บ้านเลขที่ {n} — นางสมศรี", values)


def held(entities: EntityStore) -> dict[str, int]:
    """uuid → version of every live entity the server holds."""
    return {e.uuid: e.current.version for e in entities.dataset(1, LIST).live()}


def phone_list(url: str, entities: EntityStore, token: str) -> list[dict[str, str]]:
    """What an App User's ODK Collect downloads as the form's list attachment."""
    path = f"/v1/key/{token}/projects/1/forms/{FORM}/attachments/{LIST}.csv"
    answer = httpx.get(url + path)
    answer.raise_for_status()
    return list(csv.DictReader(io.StringIO(answer.text)))


# ---- lists and properties ----------------------------------------------------------------------


def test_the_list_and_its_properties_are_made_once(url: str, entities: EntityStore) -> None:
    with client(url) as c:
        assert c.ensure_list(LIST, PROPS) == PROPS
        assert c.ensure_list(LIST, [*PROPS, "due"]) == ["due"]
        assert c.ensure_list(LIST, PROPS) == []
    assert list(entities.dataset(1, LIST).properties) == [*PROPS, "due"]


def test_a_thai_property_name_is_refused_before_anything_is_sent(
    url: str, entities: EntityStore
) -> None:
    with client(url) as c, pytest.raises(ValueError, match="ASCII"):
        c.ensure_list(LIST, ["officer_id", "หมู่บ้าน"])
    assert entities.datasets(1) == []


# ---- creating: never doubled ---------------------------------------------------------------------


def test_a_rerun_finds_its_items_already_there(url: str, entities: EntityStore) -> None:
    batch = [item(n) for n in range(1, 4)]
    with client(url) as c:
        c.ensure_list(LIST, PROPS)
        first = c.create(LIST, batch, source="run-2568-12-01")
        again = c.create(LIST, [*batch, item(4)], source="run-2568-12-02")
    assert first.created == [e.uuid for e in batch] and first.existing == []
    assert again.created == [item(4).uuid]
    assert again.existing == sorted(e.uuid for e in batch)
    assert held(entities) == dict.fromkeys((e.uuid for e in [*batch, item(4)]), 1)


def test_a_create_whose_answer_is_lost_is_not_doubled(
    url: str, store: OdkStore, entities: EntityStore
) -> None:
    batch = [item(n) for n in range(1, 6)]
    with client(url, batch_size=2) as c:
        c.ensure_list(LIST, PROPS)
        # The server creates the first batch, then the connection drops mid-answer.
        store.faults.add(Fault("reset", target=f"/datasets/{LIST}/entities"))
        result = c.create(LIST, batch, source="run")
    assert store.faults.served == 1
    assert sorted(result.created + result.existing) == sorted(e.uuid for e in batch)
    assert held(entities) == dict.fromkeys((e.uuid for e in batch), 1)


def test_a_busy_server_is_retried_and_the_items_made_once(
    url: str, store: OdkStore, entities: EntityStore
) -> None:
    with client(url) as c:
        c.ensure_list(LIST, PROPS)
        store.faults.add(Fault("status", 503, retry_after=0.01, target="/entities"), times=2)
        result = c.create(LIST, [item(1), item(2)], source="run")
    assert store.faults.served == 2
    assert len(result.created) == 2 and len(held(entities)) == 2


def test_values_must_be_text(url: str) -> None:
    with client(url) as c, pytest.raises(TypeError, match="strings"):
        c.create(LIST, [NewEntity(item(1).uuid, "x", {"priority": 1})], source="run")  # type: ignore[dict-item]


def test_entity_uuids_are_stable_version_4_uuids() -> None:
    one = entity_uuid("alert:no_income_followup:34140101-01")
    assert one == entity_uuid("alert:no_income_followup:34140101-01")
    assert one != entity_uuid("alert:no_income_followup:34140101-02")
    assert one[14] == "4" and one[19] in "89ab"


# ---- reading back ------------------------------------------------------------------------------


def test_every_entity_is_read_back_with_its_version_across_pages(
    url: str, entities: EntityStore
) -> None:
    with client(url, page_size=2) as c:
        c.ensure_list(LIST, [*PROPS, "due"])
        c.create(LIST, [item(n) for n in range(1, 6)], source="run")
        c.update(LIST, item(3).uuid, base_version=1, data={"status": "in_progress"})
        listed = {e.uuid: e for e in c.entities(LIST)}
    assert len(listed) == 5  # three pages, each link re-based from the proxy's domain
    assert listed[item(3).uuid].version == 2
    assert listed[item(3).uuid].data["status"] == "in_progress"
    assert listed[item(1).uuid].data["due"] == ""  # never set: "" as Central gives it
    assert listed[item(1).uuid].label == "บ้านเลขที่ 1 — นางสมศรี"


# ---- updating: the phone's change is not overwritten ------------------------------------------


def test_an_update_at_the_current_version_makes_the_next(url: str) -> None:
    with client(url) as c:
        c.ensure_list(LIST, PROPS)
        c.create(LIST, [item(1)], source="run")
        changed = c.update(
            LIST,
            item(1).uuid,
            base_version=1,
            data={"reasons": ""},
            label="บ้านเลขที่ 1 — นางสมศรี (ย้ายบ้าน)",
        )
    assert changed.version == 2 and changed.data["reasons"] == ""
    assert changed.label.endswith("(ย้ายบ้าน)")


def test_an_item_the_officer_closed_on_the_phone_is_a_conflict_not_overwritten(
    url: str, entities: EntityStore
) -> None:
    with client(url) as c:
        c.ensure_list(LIST, PROPS)
        c.create(LIST, [item(1)], source="run")
        user = c.ensure_app_user("พัฒนากร off01", {})
        apply_form_update(
            entities,
            1,
            LIST,
            item(1).uuid,
            {"status": "resolved"},
            base_version=1,
            user=entities.app_user(1, user.id),
            instance_id="uuid:visit-1",
        )
        with pytest.raises(EntityConflict) as refused:
            c.update(LIST, item(1).uuid, base_version=1, data={"reasons": "รายได้ไม่เพิ่ม"})
    assert (refused.value.uuid, refused.value.current, refused.value.provided) == (
        item(1).uuid,
        2,
        1,
    )
    assert entities.entity(1, LIST, item(1).uuid).current.data["status"] == "resolved"


def test_an_update_whose_answer_is_lost_is_recognised_not_refused(
    url: str, store: OdkStore, entities: EntityStore
) -> None:
    with client(url) as c:
        c.ensure_list(LIST, PROPS)
        c.create(LIST, [item(1)], source="run")
        store.faults.add(Fault("reset", target=f"/entities/{item(1).uuid}"))
        changed = c.update(LIST, item(1).uuid, base_version=1, data={"status": "in_progress"})
    assert store.faults.served == 1
    assert changed.version == 2
    assert len(entities.entity(1, LIST, item(1).uuid).versions) == 2  # one update, not two


# ---- closing and reopening ----------------------------------------------------------------------


def test_a_closed_item_is_deleted_and_a_reopened_one_restored(
    url: str, entities: EntityStore
) -> None:
    with client(url) as c:
        c.ensure_list(LIST, PROPS)
        c.create(LIST, [item(1), item(2)], source="run")
        assert c.delete(LIST, item(1).uuid) is True
        assert c.delete(LIST, item(1).uuid) is False  # already gone: nothing to do
        assert set(c.deleted(LIST)) == {item(1).uuid}
        with pytest.raises(DeletedEntities) as refused:
            c.create(LIST, [item(1)], source="run")
        assert refused.value.uuids == (item(1).uuid,)
        assert c.restore(LIST, item(1).uuid) is True
        assert c.restore(LIST, item(1).uuid) is False
        assert c.ids(LIST) == {item(1).uuid, item(2).uuid}


# ---- who sees what ---------------------------------------------------------------------------


@pytest.fixture
def pushed(url: str, store: OdkStore, entities: EntityStore) -> dict[str, str]:
    """Two officers' items on the server, the follow-up form on it, each officer's App User
    assigned to it; returns officer → the App User's key."""
    store.add_form(
        1,
        FORM,
        [OdkField("pick", "string"), OdkField("status", "select1")],
        name="ติดตามเยี่ยม (Follow-up visit)",
        version="1",
    )
    with client(url) as c:
        c.ensure_list(LIST, PROPS)
        entities.link_form(1, FORM, LIST, saves=("status",))
        c.create(LIST, [item(1, "off01"), item(2, "off01"), item(3, "off02")], source="run")
        c.ensure_actor_property("officer_id")
        keys = {}
        for officer in ("off01", "off02"):
            user = c.ensure_app_user(f"พัฒนากร {officer}", {"officer_id": officer})
            entities.assign(1, FORM, user.id)
            keys[officer] = entities.app_user(1, user.id).token
    return keys


def test_each_officers_phone_downloads_only_their_items(
    url: str, entities: EntityStore, pushed: dict[str, str]
) -> None:
    with client(url) as c:
        c.set_access_filter(LIST, "officer_id", "officer_id")
    assert {r["house_no"] for r in phone_list(url, entities, pushed["off01"])} == {"1", "2"}
    assert [r["house_no"] for r in phone_list(url, entities, pushed["off02"])] == ["3"]


def test_a_misspelt_filter_is_caught_not_left_to_show_everyone_everything(
    url: str, entities: EntityStore, pushed: dict[str, str]
) -> None:
    with client(url) as c:
        c.set_access_filter(LIST, "officer_id", "officer_id")
        with pytest.raises(AccessFilterNotApplied, match="whole list"):
            c.set_access_filter(LIST, "officerid", "officer_id")
    # What the error warns about: Central dropped the filter, every phone gets every item.
    assert len(phone_list(url, entities, pushed["off02"])) == 3


def test_app_users_are_made_once_even_when_the_answer_is_lost(
    url: str, store: OdkStore, entities: EntityStore
) -> None:
    seen = []

    def drop_the_create(path: str) -> None:  # the second request is the POST
        seen.append(path)
        if path.endswith("/app-users") and len(seen) == 2:
            store.faults.add(Fault("reset", target="/app-users"))

    with client(url) as c:
        c.ensure_actor_property("officer_id")
        store.faults.on_request(drop_the_create)
        first = c.ensure_app_user("พัฒนากร off01", {"officer_id": "off01"})
        again = c.ensure_app_user("พัฒนากร off01", {"officer_id": "off01"})
    assert store.faults.served == 1
    assert first.id == again.id and first.properties == {"officer_id": "off01"}
    assert [u.display_name for u in entities.app_users(1)] == ["พัฒนากร off01"]


def test_an_unknown_actor_property_is_a_clear_error(url: str) -> None:
    with client(url) as c:
        user = c.ensure_app_user("พัฒนากร off01", {})
        with pytest.raises(Exception, match="Unknown property"):
            c.set_app_user_properties(user.id, {"officer_id": "off01"})
