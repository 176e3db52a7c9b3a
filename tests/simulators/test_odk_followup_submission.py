"""A phone's follow-up submission to the ODK simulator, over HTTP as ODK Collect sends it: the
submission is stored like any other, and the list item it updates gets a new version with the
saved properties, as Central v2026.2.2 was recorded doing (samples/entities 125–147)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from sammachip.schemas import followup_form
from sammachip.simulators.odk import OdkStore, entity_store, serve_odk, xlsform_definition
from sammachip.simulators.odk.entities import EntityStore
from sammachip.simulators.odk.field import visit_instance

EMAIL, PASSWORD = "cdd.ubon@example.org", "รหัสผ่าน-Strong-2568!"
P = "/v1/projects/1"
L = f"{P}/datasets/followups"
U1 = "11111111-1111-4111-8111-000000000001"
DAY = date(2026, 12, 5)


def visit_xml(instance: str, uuid: str, base_version: int, *, reached: bool = True) -> bytes:
    """What Collect sends for a visit to off01's item `uuid` (one reason, resolved)."""
    item = {
        "name": uuid,
        "item_id": "household:34140105-07",
        "subject_type": "household",
        "subject_id": "34140105-07",
        "reason_ids": "R05_NO_FOLLOWUP_INCOME",
        "reason_names": "ยังไม่ติดตามรายได้",
        "n_reasons": "1",
        "__version": str(base_version),
    }
    return visit_instance(item, instance, officer_id="off01", day=DAY, reached=reached)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OdkStore, str]]:
    store = OdkStore()
    with serve_odk(store, EMAIL, PASSWORD) as url:
        yield store, url


@pytest.fixture
def entities(served: tuple[OdkStore, str]) -> EntityStore:
    store = served[0]
    store.reset()
    entities = entity_store(store)
    entities.reset()
    store.add_project(1)
    return entities


@pytest.fixture
def http(served: tuple[OdkStore, str], entities: EntityStore) -> Iterator[httpx.Client]:
    """A list with one open item of off01's, the follow-up form published from its XLSForm
    (linked to the list as Central links it), and off01's App User assigned to it."""
    with httpx.Client(base_url=served[1]) as http:
        token = http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD}).json()
        http.headers["Authorization"] = f"Bearer {token['token']}"
        http.post(f"{P}/datasets", json={"name": "followups"}).raise_for_status()
        for prop in followup_form.LIST_COLUMNS:
            http.post(f"{L}/properties", json={"name": prop}).raise_for_status()
        item = {
            "uuid": U1,
            "label": "นายสมศักดิ์ ใจดี · บ้านหนองบัว หมู่ 5 · บ้านเลขที่ 12",
            "data": {"officer_id": "off01", "status": "open"},
        }
        http.post(f"{L}/entities", json={"entities": [item], "source": {"name": "t"}})
        entities.publish_form(1, xlsform_definition(followup_form.ODK_FILE))
        yield http


def phone(http: httpx.Client, entities: EntityStore) -> str:
    user = http.post(f"{P}/app-users", json={"displayName": "พรทิพย์ (off01)"}).json()
    http.post(f"{P}/forms/{followup_form.FORM_ID}/assignments/app-user/{user['id']}")
    return f"/v1/key/{user['token']}/projects/1/submission"


def send(http: httpx.Client, path: str, xml: bytes) -> httpx.Response:
    files = {"xml_submission_file": ("submission.xml", xml, "text/xml")}
    return httpx.post(str(http.base_url.join(path)), files=files)  # a phone: no session


def current(http: httpx.Client) -> dict:
    return http.get(f"{L}/entities/{U1}").json()


def test_a_visit_gives_the_item_a_new_version_with_what_the_form_saves(
    http: httpx.Client, entities: EntityStore
) -> None:
    path = phone(http, entities)
    answer = send(http, path, visit_xml("uuid:v-1", U1, 1))
    assert answer.status_code == 201
    assert "full submission upload was successful!" in answer.text
    entity = current(http)["currentVersion"]
    assert (entity["version"], entity["baseVersion"]) == (2, 1)
    assert entity["data"]["status"] == "visited"
    assert (entity["data"]["visited_on"], entity["data"]["next_visit"]) == (
        "2026-12-05",
        "2026-12-19",
    )
    assert entity["dataReceived"] == {
        "next_visit": "2026-12-19",
        "status": "visited",
        "visited_on": "2026-12-05",
    }
    # the visit itself is a submission like any other, with its repeat
    rows = http.get(f"{P}/forms/{followup_form.FORM_ID}.svc/Submissions?$expand=*").json()
    (row,) = rows["value"]
    assert row["item_id"] == "household:34140105-07"
    assert row["reasons"][0]["state"] == "resolved"


def test_the_same_visit_again_changes_nothing_and_a_changed_one_is_refused(
    http: httpx.Client, entities: EntityStore
) -> None:
    path = phone(http, entities)
    xml = visit_xml("uuid:v-1", U1, 1)
    assert send(http, path, xml).status_code == 201
    assert send(http, path, xml).status_code == 201
    assert current(http)["currentVersion"]["version"] == 2
    assert send(http, path, xml.replace(b"2026-12-19", b"2026-12-21")).status_code == 409


def test_a_visit_over_a_version_the_phone_never_saw_is_applied_and_flagged(
    http: httpx.Client, entities: EntityStore
) -> None:
    path = phone(http, entities)
    http.patch(f"{L}/entities/{U1}?baseVersion=1", json={"data": {"priority": "1"}})
    assert send(http, path, visit_xml("uuid:v-1", U1, 1)).status_code == 201
    entity = current(http)
    assert entity["currentVersion"]["version"] == 3
    assert entity["currentVersion"]["data"]["status"] == "visited"
    assert entity["conflict"] == "soft"


def test_a_visit_that_did_not_reach_them_leaves_the_item_alone(
    http: httpx.Client, entities: EntityStore
) -> None:
    path = phone(http, entities)
    assert send(http, path, visit_xml("uuid:v-2", U1, 1, reached=False)).status_code == 201
    assert current(http)["currentVersion"]["version"] == 1


def test_a_phone_may_only_send_forms_it_is_assigned(
    http: httpx.Client, entities: EntityStore
) -> None:
    user = http.post(f"{P}/app-users", json={"displayName": "ไม่ได้รับมอบหมาย"}).json()
    answer = send(
        http, f"/v1/key/{user['token']}/projects/1/submission", visit_xml("uuid:x", U1, 1)
    )
    assert answer.status_code == 403
    assert current(http)["currentVersion"]["version"] == 1
