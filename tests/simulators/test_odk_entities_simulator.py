"""The ODK simulator's Entity Lists over loopback HTTP: what a client and a phone meet on a real
Central v2026.2.2 (the recorded behaviours; the contract test replays the record itself)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

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
CENTRAL = "http://localhost:8989"  # Central's configured domain: links name it, not us
P = "/v1/projects/1"
L = f"{P}/datasets/followups"
FORM = "sammachip_followup"


def uid(n: int) -> str:
    return f"11111111-1111-4111-8111-{n:012d}"


def entity(n: int, officer: str = "off01", village: str = "บ้านหนองบัว") -> dict[str, Any]:
    return {
        "uuid": uid(n),
        "label": f"บ้านเลขที่ {n}",
        "data": {"officer_id": officer, "village": village, "status": "open"},
    }


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OdkStore, str]]:
    store = OdkStore()
    with serve_odk(store, EMAIL, PASSWORD, domain=CENTRAL) as url:
        yield store, url


@pytest.fixture
def store(served: tuple[OdkStore, str]) -> OdkStore:
    store = served[0]
    store.reset()
    entity_store(store).reset()
    store.add_project(1, "สัมมาชีพชุมชน")
    return store


@pytest.fixture
def entities(store: OdkStore) -> EntityStore:
    return entity_store(store)


@pytest.fixture
def api(served: tuple[OdkStore, str], store: OdkStore) -> Iterator[httpx.Client]:
    """A Web User's session on a list `followups` with three properties and three entities
    (two of off01's in บ้านหนองบัว, one of off02's in บ้านโคกสูง)."""
    with httpx.Client(base_url=served[1]) as http:
        token = http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
        http.headers["Authorization"] = f"Bearer {token.json()['token']}"
        http.post(f"{P}/datasets", json={"name": "followups"}).raise_for_status()
        for prop in ("officer_id", "village", "status"):
            http.post(f"{L}/properties", json={"name": prop}).raise_for_status()
        items = [entity(1), entity(2), entity(3, "off02", "บ้านโคกสูง")]
        created = http.post(f"{L}/entities", json={"entities": items, "source": {"name": "t"}})
        created.raise_for_status()
        yield http


def problem(answer: httpx.Response) -> tuple[int, float]:
    return answer.status_code, answer.json()["code"]


# ---- lists, properties, creating ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["หมู่บ้าน", "label", "__id", "has space"])
def test_property_names_central_refuses(api: httpx.Client, name: str) -> None:
    assert problem(api.post(f"{L}/properties", json={"name": name})) == (400, 400.8)


def test_a_bulk_create_is_all_or_nothing_and_names_one_existing_uuid(api: httpx.Client) -> None:
    batch = [entity(9), entity(1), entity(2)]
    answer = api.post(f"{L}/entities", json={"entities": batch, "source": {"name": "again"}})
    assert problem(answer) == (409, 409.3)
    assert answer.json()["details"]["values"] == [uid(1)]
    assert api.get(f"{L}/entities/{uid(9)}").status_code == 404  # the new one was not made


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"entities": [entity(9)]}, 400.2),  # no source
        ({"entities": [entity(9)], "source": {}}, 400.2),  # no source.name
        ({"entities": [], "source": {"name": "t"}}, 400.31),
        ({"entities": [{**entity(9), "data": {"status": 1}}], "source": {"name": "t"}}, 400.11),
        ({"entities": [{**entity(9), "data": {"district": "x"}}], "source": {"name": "t"}}, 400.28),
        ({"uuid": "not-a-uuid", "label": "x"}, 400.11),
        ({"uuid": uid(9), "data": {}}, 400.2),  # no label
    ],
)
def test_what_a_create_refuses(api: httpx.Client, body: dict[str, Any], code: float) -> None:
    assert problem(api.post(f"{L}/entities", json=body))[1] == code


def test_a_single_create_normalises_the_uuid_and_answers_the_entity(api: httpx.Client) -> None:
    body = {"uuid": "uuid:" + uid(10).upper(), "label": "ทดสอบ", "data": {"status": "open"}}
    made = api.post(f"{L}/entities", json=body).json()
    assert made["uuid"] == uid(10)
    assert made["currentVersion"]["version"] == 1
    assert made["currentVersion"]["data"] == {"status": "open"}


# ---- updating -----------------------------------------------------------------------------------


def test_a_stale_or_missing_base_version_is_refused_with_both_versions(api: httpx.Client) -> None:
    api.patch(
        f"{L}/entities/{uid(1)}",
        params={"baseVersion": 1},
        json={"data": {"status": "in_progress"}},
    ).raise_for_status()
    stale = api.patch(f"{L}/entities/{uid(1)}", params={"baseVersion": 1}, json={"data": {}})
    missing = api.patch(f"{L}/entities/{uid(1)}", json={"data": {"status": "x"}})
    assert problem(stale) == (409, 409.15)
    assert stale.json()["details"] == {"current": "2", "provided": "1"}
    assert missing.json()["details"] == {"current": "2"}
    forced = api.patch(
        f"{L}/entities/{uid(1)}", params={"force": "true"}, json={"data": {"status": "x"}}
    )
    assert forced.json()["currentVersion"]["version"] == 3


def test_an_unchanged_patch_still_makes_a_version_and_empty_text_is_kept(
    api: httpx.Client,
) -> None:
    same = api.patch(
        f"{L}/entities/{uid(1)}", params={"baseVersion": 1}, json={"data": {"status": "open"}}
    )
    emptied = api.patch(
        f"{L}/entities/{uid(1)}", params={"baseVersion": 2}, json={"data": {"village": ""}}
    )
    assert same.json()["currentVersion"]["version"] == 2
    assert emptied.json()["currentVersion"]["data"]["village"] == ""
    nulled = api.patch(
        f"{L}/entities/{uid(1)}", params={"baseVersion": 3}, json={"data": {"village": None}}
    )
    assert problem(nulled) == (400, 400.11)


# ---- deleting -----------------------------------------------------------------------------------


def test_delete_leaves_updated_at_alone_and_restore_moves_it(api: httpx.Client) -> None:
    feed = f"{L}.svc/Entities"
    assert api.delete(f"{L}/entities/{uid(1)}").json() == {"success": True}
    changed = api.get(feed, params={"$filter": "__system/updatedAt gt 2000-01-01T00:00:00Z"})
    gone = api.get(feed, params={"$filter": "__system/deletedAt ne null"})
    assert changed.json()["value"] == []  # a sync on updatedAt misses the deletion
    assert [r["__id"] for r in gone.json()["value"]] == [uid(1)]
    again = api.post(f"{L}/entities", json={"entities": [entity(1)], "source": {"name": "t"}})
    assert problem(again) == (409, 409.19)
    assert api.post(f"{L}/entities/{uid(1)}/restore").status_code == 200
    changed = api.get(feed, params={"$filter": "__system/updatedAt gt 2000-01-01T00:00:00Z"})
    assert [r["__id"] for r in changed.json()["value"]] == [uid(1)]


def test_bulk_delete_counts_what_it_did_and_fails_like_central_without_ids(
    api: httpx.Client,
) -> None:
    ids = [uid(1), uid(2), uid(99)]
    assert api.post(f"{L}/entities/bulk-delete", json={"ids": ids}).json() == {"count": 2}
    assert api.post(f"{L}/entities/bulk-delete", json={"ids": ids}).json() == {"count": 0}
    assert api.post(f"{L}/entities/bulk-delete", json={}).status_code == 500


# ---- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("officer_id eq 'off01'", 501.5),
        ("__system/version gt 1", 501.5),
        ("startswith(village,'บ้าน')", 501.4),
    ],
)
def test_filters_central_does_not_support(api: httpx.Client, expression: str, code: float) -> None:
    answer = api.get(f"{L}.svc/Entities", params={"$filter": expression})
    assert problem(answer) == (501, code)
    assert answer.json()["details"]["at"] == 0


def test_pages_link_to_the_configured_domain_and_unset_properties_read_empty(
    api: httpx.Client,
) -> None:
    api.post(f"{L}/properties", json={"name": "due"}).raise_for_status()
    first = api.get(f"{L}.svc/Entities", params={"$top": 2, "$count": "true"}).json()
    assert [r["__id"] for r in first["value"]] == [uid(3), uid(2)]  # newest first
    assert first["@odata.count"] == 3 and first["value"][0]["due"] == ""
    link = first["@odata.nextLink"]
    assert link.startswith(f"{CENTRAL}{L}.svc/Entities?") and "%24skiptoken=01" in link
    rest = api.get(f"{L}.svc/Entities?{link.split('?', 1)[1]}").json()
    assert [r["__id"] for r in rest["value"]] == [uid(1)]
    assert problem(api.get(f"{L}.svc/Entities", params={"$select": "__id,label"})) == (400, 400.23)


def test_the_csv_export_has_centrals_columns(api: httpx.Client) -> None:
    answer = api.get(f"{L}/entities.csv")
    header = answer.text.splitlines()[0]
    assert header == (
        "__id,label,officer_id,village,status,__createdAt,__creatorId,"
        "__creatorName,__updates,__updatedAt,__version"
    )
    assert not answer.content.startswith(b"\xef\xbb\xbf")  # no BOM


# ---- the phones ------------------------------------------------------------------------------


@pytest.fixture
def phones(api: httpx.Client, store: OdkStore, entities: EntityStore) -> dict[str, str]:
    """The follow-up form linked to the list; App Users A (off01), B (off02) and C (none),
    all assigned; the list filtered on officer_id. Returns who → key path prefix."""
    store.add_form(1, FORM, [OdkField("pick", "string")], name="ติดตามเยี่ยม", version="1")
    entities.link_form(1, FORM, "followups", saves=("status",))
    api.post(f"{P}/actor-properties", json={"name": "officer_id"}).raise_for_status()
    keys = {}
    for who, officer in (("A", "off01"), ("B", "off02"), ("C", None)):
        body: dict[str, Any] = {"displayName": f"พัฒนากร {who}"}
        if officer:
            body["properties"] = {"officer_id": officer}
        user = api.post(f"{P}/app-users", json=body).json()
        api.post(f"{P}/forms/{FORM}/assignments/app-user/{user['id']}").raise_for_status()
        keys[who] = f"/v1/key/{user['token']}/projects/1"
    rule = {"datasetProperty": "officer_id", "actorProperty": "officer_id"}
    api.patch(L, json={"accessFilter": {"type": "property", "rules": [rule]}}).raise_for_status()
    return keys


def downloaded(api: httpx.Client, key: str) -> list[str]:
    body = httpx.get(f"{api.base_url}{key}/forms/{FORM}/attachments/followups.csv").text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert body.startswith("name,label,__version,officer_id,village,status\n")
    return [r["name"] for r in rows]


def dropped(api: httpx.Client, key: str) -> set[str]:
    body = httpx.get(f"{api.base_url}{key}/datasets/followups/integrity").text
    return {m.group(1) for m in re.finditer(r'id="([^"]+)"><deleted>true', body)}


def test_each_phone_downloads_its_officers_items_and_drops_the_rest(
    api: httpx.Client, phones: dict[str, str]
) -> None:
    assert downloaded(api, phones["A"]) == [uid(2), uid(1)]
    assert downloaded(api, phones["B"]) == [uid(3)]
    assert downloaded(api, phones["C"]) == []  # no officer_id: nothing, not everything
    assert dropped(api, phones["A"]) == {uid(3)}
    # Re-assigned to off02: it leaves A's phone at A's next sync.
    api.patch(
        f"{L}/entities/{uid(2)}", params={"baseVersion": 1}, json={"data": {"officer_id": "off02"}}
    ).raise_for_status()
    assert downloaded(api, phones["A"]) == [uid(1)] and uid(2) in dropped(api, phones["A"])


def test_two_rules_are_ored_and_a_misspelt_one_removes_the_filter(
    api: httpx.Client, phones: dict[str, str]
) -> None:
    api.post(f"{P}/actor-properties", json={"name": "home_village"}).raise_for_status()
    users = api.get(f"{P}/app-users").json()
    b = next(u for u in users if u["displayName"].endswith("B"))
    api.patch(f"{P}/app-users/{b['id']}", json={"properties": {"home_village": "บ้านหนองบัว"}})
    rules = [
        {"datasetProperty": "officer_id", "actorProperty": "officer_id"},
        {"datasetProperty": "village", "actorProperty": "home_village"},
    ]
    api.patch(L, json={"accessFilter": {"type": "property", "rules": rules}})
    assert set(downloaded(api, phones["B"])) == {uid(1), uid(2), uid(3)}  # OR, not AND
    typo = [{"datasetProperty": "officer_id", "actorProperty": "officerid"}]
    answer = api.patch(L, json={"accessFilter": {"type": "property", "rules": typo}})
    assert answer.status_code == 200 and "accessFilter" not in answer.json()
    assert len(downloaded(api, phones["C"])) == 3  # every phone now gets the whole list


def test_the_manifest_hash_is_the_lists_etag_and_moves_with_it(
    api: httpx.Client, phones: dict[str, str]
) -> None:
    def manifest_hash() -> str:
        body = httpx.get(f"{api.base_url}{phones['A']}/forms/{FORM}/manifest").text
        return re.search(r"<hash>md5:(\w+)</hash>", body).group(1)

    url = f"{api.base_url}{phones['A']}/forms/{FORM}/attachments/followups.csv"
    etag = httpx.get(url).headers["ETag"]
    assert etag == f'"{manifest_hash()}"'
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    api.patch(
        f"{L}/entities/{uid(1)}",
        params={"baseVersion": 1},
        json={"data": {"status": "in_progress"}},
    ).raise_for_status()
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 200
    assert f'"{manifest_hash()}"' != etag


def test_an_app_user_may_not_use_the_entity_api(api: httpx.Client, phones: dict[str, str]) -> None:
    for path in ("/datasets/followups/entities", "/datasets/followups.svc/Entities"):
        assert problem(httpx.get(f"{api.base_url}{phones['A']}{path}")) == (403, 403.1)


def test_a_phones_update_is_applied_even_over_a_newer_version_and_flagged(
    api: httpx.Client, entities: EntityStore, phones: dict[str, str]
) -> None:
    api.patch(
        f"{L}/entities/{uid(1)}",
        params={"baseVersion": 1},
        json={"data": {"village": "บ้านหนองบัวใหม่"}},
    ).raise_for_status()
    a = next(u for u in entities.app_users(1) if u.display_name.endswith("A"))
    for _ in range(2):  # the same submission twice: applied once
        apply_form_update(
            entities,
            1,
            "followups",
            uid(1),
            {"status": "resolved"},
            base_version=1,
            user=a,
            instance_id="uuid:visit-1",
        )
    apply_form_update(
        entities,
        1,
        "followups",
        uid(99),
        {"status": "resolved"},
        base_version=1,
        user=a,
        instance_id="uuid:visit-2",
    )
    now = api.get(f"{L}/entities/{uid(1)}").json()
    assert (now["conflict"], now["currentVersion"]["version"]) == ("soft", 3)
    assert now["currentVersion"]["data"]["status"] == "resolved"
    conflicts = api.get(f"{L}.svc/Entities", params={"$filter": "__system/conflict ne null"})
    assert [r["__id"] for r in conflicts.json()["value"]] == [uid(1)]
    assert [e["entityUuid"] for e in entities.errors] == [uid(99)]  # unknown: nothing changed


def test_faults_reach_the_entity_routes(api: httpx.Client, store: OdkStore) -> None:
    store.faults.add(Fault("status", 503, target="/datasets/followups/entities"))
    assert api.get(f"{L}/entities").status_code == 503
    assert api.get(f"{L}/entities").status_code == 200
