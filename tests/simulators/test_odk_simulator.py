"""The ODK Central simulator over loopback HTTP: what an OData client meets on a real Central.

The last section replays the research samples (responses and test expectations from
central-backend) and expects the simulator to answer them exactly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sammachip.schemas.registry import FORMS
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.faults import Fault
from sammachip.simulators.odk import (
    KOBO_TO_REVIEW,
    OdkField,
    OdkStore,
    seed_odk_from_cohort,
    serve_odk,
    xlsform_definition,
)

EMAIL, PASSWORD = "cdd.ubon@example.org", "รหัสผ่าน-Strong-2568!"
CENTRAL = "http://localhost:8989"  # Central's default env.domain: links name it, not us
SESSION, HOUSEHOLD = "sammachip_session", "sammachip_household"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OdkStore, str]]:
    store = OdkStore()
    with serve_odk(store, EMAIL, PASSWORD, domain=CENTRAL) as url:
        yield store, url


@pytest.fixture
def store(served: tuple[OdkStore, str]) -> OdkStore:
    store = served[0]
    store.reset()
    return store


@pytest.fixture
def api(served: tuple[OdkStore, str], store: OdkStore) -> Iterator[httpx.Client]:
    """A logged-in HTTP client; `store` is reset first."""
    with httpx.Client(base_url=served[1]) as http:
        token = http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD})
        http.headers["Authorization"] = f"Bearer {token.json()['token']}"
        yield http


def uid(n: int) -> str:
    return f"uuid:00000000-0000-4000-8000-{n:012d}"


def session_answers(n: int, present: tuple[str, ...] = ("yes", "no")) -> dict[str, Any]:
    """Kobo-style answers of a held session `n` with one attendee per entry of `present`."""
    answers: dict[str, Any] = {
        "start": f"2026-11-{n:02d}T09:00:00.000+07:00",
        "session_code": f"T34140105-{n:02d}",
        "village_code": "34140105",
        "occupation": "mushroom",
        "methods": "lecture demonstration",
        "planned_date": f"2026-11-{n:02d}",
        "held_date": f"2026-11-{n:02d}",
        "meta/instanceID": uid(n),
    }
    if present:
        answers["attendees"] = [
            {"attendees/hh_code": f"34140105-{i + 1:02d}", "attendees/present": p}
            for i, p in enumerate(present)
        ]
    return answers


def with_sessions(store: OdkStore, count: int = 5) -> OdkStore:
    """A session form with `count` submissions, one an hour from T0 (newest is n=count)."""
    store.add_definition(1, xlsform_definition(FORMS[SESSION].xlsform))
    for n in range(1, count + 1):
        store.submit(
            SESSION,
            session_answers(n, present=() if n == 1 else ("yes", "no")),
            T0 + timedelta(hours=n),
            submitter="cdd3414_01",
        )
    return store


def feed(api: httpx.Client, table: str = "Submissions", form: str = SESSION, **params: Any) -> Any:
    response = api.get(f"/v1/projects/1/forms/{form}.svc/{table}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(doc: dict[str, Any]) -> list[str]:
    return [r["__id"] for r in doc["value"]]


def problem(response: httpx.Response) -> tuple[int, float, str]:
    body = response.json()
    return response.status_code, body["code"], body["message"]


def rebased(link: str) -> str:
    assert link.startswith(CENTRAL)
    return link.removeprefix(CENTRAL)


# ---- sessions and permissions --------------------------------------------------------------


def test_login_gives_a_day_long_bearer_token(api: httpx.Client) -> None:
    session = api.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD}).json()
    assert set(session) == {"createdAt", "expiresAt", "token", "csrf"}
    assert re.fullmatch(r"[A-Za-z0-9!$]{64}", session["token"])
    created, expires = (datetime.fromisoformat(session[k]) for k in ("createdAt", "expiresAt"))
    assert expires - created == timedelta(days=1)


def test_a_wrong_password_gets_centrals_401_problem(api: httpx.Client) -> None:
    response = api.post("/v1/sessions", json={"email": EMAIL, "password": "wrong"})
    assert problem(response) == (
        401,
        401.2,
        "Could not authenticate with the provided credentials.",
    )


def test_tokens_stop_working_when_expired_or_ended(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 1)
    path = f"/v1/projects/1/forms/{SESSION}.svc/Submissions"
    assert api.get(path).status_code == 200
    assert problem(api.get(path, headers={"Authorization": "Bearer nope"}))[:2] == (401, 401.2)
    anonymous = api.build_request("GET", path)
    del anonymous.headers["Authorization"]
    assert problem(api.send(anonymous))[:2] == (403, 403.1)  # no credentials: not allowed
    store.expire_sessions()
    assert problem(api.get(path))[:2] == (401, 401.2)


def test_logout_ends_the_session(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 1)
    assert api.delete("/v1/sessions/current").json() == {"success": True}
    assert api.get("/v1/projects/1/forms").status_code == 401


def test_basic_auth_is_only_accepted_over_https(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 1)
    basic = httpx.BasicAuth(EMAIL, PASSWORD)
    assert problem(api.get("/v1/projects/1/forms", auth=basic))[:2] == (401, 401.3)
    proxied = api.get("/v1/projects/1/forms", auth=basic, headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 200


def test_projects_without_a_role_are_forbidden_and_unknown_ones_missing(
    api: httpx.Client, store: OdkStore
) -> None:
    store.add_project(2, "another office", readable=False)
    assert problem(api.get("/v1/projects/2/forms"))[:2] == (403, 403.1)
    assert problem(api.get("/v1/projects/9/forms"))[:2] == (404, 404.1)


# ---- forms, service document, metadata ------------------------------------------------------


def test_forms_are_listed_with_their_xlsform_titles_and_versions(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 1)
    (form,) = api.get("/v1/projects/1/forms").json()
    assert form["xmlFormId"] == SESSION and form["state"] == "open"
    assert form["version"] == "2025110101"
    assert form["name"].startswith("การฝึกอบรม")


def test_the_service_document_lists_one_table_per_repeat(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 1)
    response = api.get(f"/v1/projects/1/forms/{SESSION}.svc")
    assert response.headers["OData-Version"] == "4.0"
    assert "odata.metadata=minimal" in response.headers["content-type"]
    assert [t["name"] for t in response.json()["value"]] == ["Submissions", "Submissions.attendees"]


def test_metadata_is_xml_only(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 1)
    path = f"/v1/projects/1/forms/{SESSION}.svc/$metadata"
    xml = api.get(path).text
    assert '<EntityType Name="Submissions.attendees">' in xml
    assert '<Property Name="__Submissions-id" Type="Edm.String" />' in xml
    assert '<Property Name="planned_date" Type="Edm.Date" />' in xml
    assert problem(api.get(path, headers={"Accept": "application/json"}))[:2] == (406, 406.1)


def test_fields_list_the_schema_as_central_does(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 1)
    fields = api.get(f"/v1/projects/1/forms/{SESSION}/fields", params={"odata": "true"}).json()
    by_path = {f["path"]: f["type"] for f in fields}
    assert by_path["/attendees"] == "repeat" and by_path["/attendees/present"] == "select1"
    assert by_path["/methods"] == "select" and by_path["/meta/instanceID"] == "string"


# ---- rows ----------------------------------------------------------------------------------


def test_rows_nest_groups_type_numbers_and_keep_thai_byte_exact(
    api: httpx.Client, store: OdkStore
) -> None:
    store.add_definition(1, xlsform_definition(FORMS[HOUSEHOLD].xlsform))
    answers = {
        "hh/hh_code": "34140105-07",
        "head/name": "นางสมศรี ใจดี",
        "members": "4",
        "baseline_income": "12000",
        "location": "15.512345 104.73 150.0 4.5",
        "meta/instanceID": "uuid:hh-1",
    }
    store.submit(HOUSEHOLD, answers, T0, submitter="cdd3414_01", device_id="collect:abc")
    response = api.get(f"/v1/projects/1/forms/{HOUSEHOLD}.svc/Submissions")
    assert "นางสมศรี ใจดี".encode() in response.content
    (row,) = response.json()["value"]
    assert row["hh"] == {
        "village_code": None,
        "hh_code": "34140105-07",
        "house_no": None,
        "village_name": None,
    }
    assert row["head"]["name"] == "นางสมศรี ใจดี"
    assert row["members"] == 4 and row["baseline_income"] == 12000
    assert row["location"] == {
        "type": "Point",
        "coordinates": [104.73, 15.512345, 150],
        "properties": {"accuracy": 4.5},
    }
    assert row["occupation"] is None  # every schema field is there, null when unanswered
    assert row["meta"]["instanceName"] == "34140105-07 นางสมศรี ใจดี"
    assert row["__id"] == "uuid:hh-1"
    assert row["__system"] == {
        "submissionDate": "2026-11-01T03:00:00.000Z",
        "updatedAt": None,
        "submitterId": "5",
        "submitterName": "cdd3414_01",
        "attachmentsPresent": 0,
        "attachmentsExpected": 0,
        "status": None,
        "reviewState": None,
        "deviceId": "collect:abc",
        "edits": 0,
        "formVersion": "2026120501",  # the household form's version (its settings sheet)
        "deletedAt": None,
    }


def test_numbers_are_read_like_javascript_does(store: OdkStore) -> None:
    store.add_form(
        1,
        "nums",
        [OdkField("n", "int"), OdkField("d", "decimal"), OdkField("meta/instanceID", "string")],
    )
    for text, n, d in [("20", 20, 20), ("20.0", 20, 20), ("๒๐", None, None), ("7 kg", 7, 7)]:
        store.submit("nums", {"n": text, "d": text, "meta/instanceID": f"uuid:{text}"}, T0)
        row = store.row("nums", f"uuid:{text}")
        assert (row["n"], row["d"]) == (n, d), text  # Thai digits: parseInt gives NaN → null


def test_repeats_are_links_unless_expanded(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 2)
    plain = {r["__id"]: r for r in feed(api)["value"]}
    assert "attendees" not in plain[uid(2)]
    assert plain[uid(2)]["attendees@odata.navigationLink"] == (
        "Submissions('uuid%3A00000000-0000-4000-8000-000000000002')/attendees"
    )
    assert "attendees@odata.navigationLink" not in plain[uid(1)]  # no instances, no link
    expanded = {r["__id"]: r for r in feed(api, **{"$expand": "*"})["value"]}
    attendees = expanded[uid(2)]["attendees"]
    assert [a["present"] for a in attendees] == ["yes", "no"]
    assert all(re.fullmatch(r"[0-9a-f]{40}", a["__id"]) for a in attendees)


def test_repeat_tables_carry_the_parent_key_and_links_resolve(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 3)
    table = feed(api, "Submissions.attendees")
    assert [r["__Submissions-id"] for r in table["value"]] == [uid(3), uid(3), uid(2), uid(2)]
    link = feed(api)["value"][0]["attendees@odata.navigationLink"]
    via_link = feed(api, link)
    assert via_link["value"] == table["value"][:2]
    assert via_link["@odata.context"].endswith("/$metadata#Submissions.attendees")


# ---- paging --------------------------------------------------------------------------------


def test_top_pages_newest_first_through_skiptoken_links(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 5)
    first = feed(api, **{"$top": 2, "$count": "true", "$expand": "*"})
    assert ids(first) == [uid(5), uid(4)] and first["@odata.count"] == 5
    link = first["@odata.nextLink"]
    assert link.startswith(f"{CENTRAL}/v1/projects/1/forms/{SESSION}.svc/Submissions?")
    assert "%24top=2&%24count=true&%24expand=%2A" in link or "%24expand=*" in link
    assert "%24skiptoken=01" in link
    seen = ids(first)
    while "@odata.nextLink" in first:
        first = api.get(rebased(first["@odata.nextLink"])).json()
        assert first["@odata.count"] == 5
        seen += ids(first)
    assert seen == [uid(n) for n in (5, 4, 3, 2, 1)]


def test_new_submissions_during_paging_do_not_shift_pages(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 4)
    first = feed(api, **{"$top": 2})
    store.submit(SESSION, session_answers(9), T0 + timedelta(days=1))  # newest: sorts first
    second = api.get(rebased(first["@odata.nextLink"])).json()
    assert ids(second) == [uid(2), uid(1)] and "@odata.nextLink" not in second


def test_skip_may_link_to_one_empty_page_like_central(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 5)
    page = feed(api, **{"$top": 2, "$skip": 4})
    assert ids(page) == [uid(1)]
    last = api.get(rebased(page["@odata.nextLink"])).json()  # $skip isn't subtracted
    assert last["value"] == [] and "@odata.nextLink" not in last


def test_skiptokens_are_validated_but_unknown_rows_just_end_the_feed(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 2)
    path = f"/v1/projects/1/forms/{SESSION}.svc/Submissions"
    assert problem(api.get(path, params={"$skiptoken": "garbage"})) == (
        400,
        400.35,
        "Invalid $skiptoken",
    )
    unknown = "01eyJpbnN0YW5jZUlkIjoibm9wZSJ9"  # {"instanceId":"nope"}
    assert api.get(path, params={"$top": 1, "$skiptoken": unknown}).json()["value"] == []


def test_top_zero_with_count_is_a_cheap_count(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 3)
    doc = feed(api, **{"$top": 0, "$count": "true"})
    assert doc["value"] == [] and doc["@odata.count"] == 3


# ---- $filter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("gt", [5, 4]),
        ("ge", [5, 4, 3]),
        ("lt", [2, 1]),
        ("le", [3, 2, 1]),
        ("eq", [3]),
        ("ne", [5, 4, 2, 1]),
    ],
)
def test_filters_compare_submission_dates(
    api: httpx.Client, store: OdkStore, op: str, expected: list[int]
) -> None:
    with_sessions(store, 5)
    at = (T0 + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    doc = feed(api, **{"$filter": f"__system/submissionDate {op} {at}"})
    assert ids(doc) == [uid(n) for n in expected]


def test_updated_at_is_null_until_a_change_so_watermarks_need_both_dates(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 5)
    store.edit(SESSION, uid(1), {"held_date": "2026-11-02"}, at=T0 + timedelta(days=2))
    w = (T0 + timedelta(hours=4, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    updated = feed(api, **{"$filter": f"__system/updatedAt gt {w}"})
    assert ids(updated) == [uid(1)]  # new rows have updatedAt null: not matched
    both = f"__system/submissionDate gt {w} or __system/updatedAt gt {w}"
    assert ids(feed(api, **{"$filter": both})) == [uid(5), uid(1)]
    assert len(ids(feed(api, **{"$filter": "__system/updatedAt eq null"}))) == 4
    assert ids(feed(api, **{"$filter": "not __system/updatedAt eq null"})) == [uid(1)]
    # SQL logic: a null is neither equal nor unequal to anything
    assert ids(feed(api, **{"$filter": "__system/reviewState ne 'approved'"})) == [uid(1)]


def test_filters_combine_with_and_or_not_and_date_functions(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 5)
    store.set_review_state(SESSION, uid(2), "approved", at=T0 + timedelta(days=1))
    store.set_review_state(SESSION, uid(3), "hasIssues", at=T0 + timedelta(days=1))
    expr = (
        "(__system/reviewState eq 'approved' or __system/reviewState eq 'hasIssues') "
        "and not __system/submitterId eq 6 and year(__system/submissionDate) eq 2026"
    )
    assert ids(feed(api, **{"$filter": expr})) == [uid(3), uid(2)]
    assert ids(feed(api, **{"$filter": f"__id eq '{uid(4)}'"})) == [uid(4)]
    assert len(ids(feed(api, **{"$filter": "__system/submissionDate lt now()"}))) == 5


def test_deleted_rows_are_hidden_unless_the_filter_names_deleted_at(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 3)
    store.delete(SESSION, uid(2), at=T0 + timedelta(days=1))
    assert ids(feed(api)) == [uid(3), uid(1)]
    assert ids(feed(api, **{"$filter": "__system/submissionDate gt 2000-01-01"})) == [
        uid(3),
        uid(1),
    ]
    gone = feed(api, **{"$filter": "not __system/deletedAt eq null"})["value"]
    assert [r["__id"] for r in gone] == [uid(2)]
    assert gone[0]["__system"]["deletedAt"] == "2026-11-02T03:00:00.000Z"
    assert gone[0]["__system"]["updatedAt"] is None  # deleting does not move updatedAt
    since = feed(api, **{"$filter": "__system/deletedAt gt 2026-11-02T00:00:00Z"})
    assert ids(since) == [uid(2)]
    store.restore(SESSION, uid(2))
    assert ids(feed(api)) == [uid(3), uid(2), uid(1)]


@pytest.mark.parametrize(
    ("params", "status", "code", "message"),
    [
        (
            {"$filter": "age gt 3"},
            501,
            501.5,
            "The given OData filter expression references fields not supported by this server: "
            "age at 0",
        ),
        ({"$filter": "contains(__id, 'x')"}, 501, 501.4, "MethodCallExpression at 0"),
        ({"$filter": "__system/submissionDate >> 3"}, 400, 400.18, "could not be parsed"),
        (
            {"$unsupported": "1"},
            501,
            501.1,
            "The requested feature $unsupported is not supported by this server.",
        ),
        ({"$expand": "attendees"}, 501, 501.6, 'not supported by this server: "attendees"'),
        (
            {"$expand": "*", "$select": "__id"},
            501,
            501.11,
            "This server doesn't support $select query parameter with $expand.",
        ),
        ({"$orderby": "__id", "$skiptoken": "01e30="}, 501, 501.1, "$orderby and $skiptoken"),
    ],
    ids=[
        "data-field",
        "function",
        "unparseable",
        "unknown-param",
        "expand-path",
        "select-expand",
        "orderby-skiptoken",
    ],
)
def test_unsupported_queries_get_centrals_problems(
    api: httpx.Client, store: OdkStore, params: dict, status: int, code: float, message: str
) -> None:
    with_sessions(store, 1)
    response = api.get(f"/v1/projects/1/forms/{SESSION}.svc/Submissions", params=params)
    got_status, got_code, got_message = problem(response)
    assert (got_status, got_code) == (status, code) and message in got_message


def test_repeat_tables_filter_only_through_root(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 3)
    path = f"/v1/projects/1/forms/{SESSION}.svc/Submissions.attendees"
    bare = api.get(path, params={"$filter": "__system/reviewState eq null"})
    assert problem(bare)[:2] == (501, 501.5)
    rooted = feed(
        api, "Submissions.attendees", **{"$filter": f"$root/Submissions/__id eq '{uid(2)}'"}
    )
    assert {r["__Submissions-id"] for r in rooted["value"]} == {uid(2)}


# ---- edits, reviews, select, order -----------------------------------------------------------


def test_an_edit_is_a_new_version_under_the_same_id(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 2)
    new_id = store.edit(
        SESSION, uid(2), {"held_date": None, "methods": "video"}, at=T0 + timedelta(days=3)
    )
    (row,) = [r for r in feed(api)["value"] if r["__id"] == uid(2)]
    assert row["meta"]["instanceID"] == new_id != uid(2)
    assert row["held_date"] is None and row["methods"] == "video"
    system = row["__system"]
    assert (system["edits"], system["reviewState"]) == (1, "edited")
    assert system["updatedAt"] == "2026-11-04T03:00:00.000Z"
    assert system["submissionDate"] == "2026-11-01T05:00:00.000Z"  # unchanged
    store.edit(SESSION, new_id, {"methods": "qa"})  # later edits may name any version
    assert store.row(SESSION, uid(2))["__system"]["edits"] == 2


def test_a_review_moves_updated_at(store: OdkStore) -> None:
    with_sessions(store, 1)
    store.set_review_state(SESSION, uid(1), "rejected", at=T0 + timedelta(days=1))
    system = store.row(SESSION, uid(1))["__system"]
    assert system["reviewState"] == "rejected"
    assert system["updatedAt"] == "2026-11-02T03:00:00.000Z"


def test_purged_rows_vanish_and_their_instance_id_can_return(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 2)
    store.delete(SESSION, uid(1), at=T0 + timedelta(days=1))
    with pytest.raises(ValueError, match="deleted"):  # Central: 409.18 while soft-deleted
        store.submit(SESSION, session_answers(1), T0 + timedelta(days=2))
    store.purge(SESSION, uid(1))
    assert feed(api, **{"$filter": "not __system/deletedAt eq null"})["value"] == []
    store.submit(SESSION, session_answers(1), T0 + timedelta(days=40))  # a brand-new row
    assert ids(feed(api)) == [uid(1), uid(2)]


def test_a_restore_moves_no_timestamp_so_only_asking_by_id_finds_it(
    api: httpx.Client, store: OdkStore
) -> None:
    """Central's restore sets deletedAt back to null and nothing else: a watermark on
    submissionDate/updatedAt never returns the row again."""
    with_sessions(store, 3)
    store.delete(SESSION, uid(1), at=T0 + timedelta(days=1))
    deleted = feed(
        api,
        **{
            "$filter": "__system/deletedAt gt 2026-11-01T00:00:00.000Z",
            "$select": "__id,__system/deletedAt",
        },
    )["value"]
    assert deleted == [{"__id": uid(1), "__system": {"deletedAt": "2026-11-02T03:00:00.000Z"}}]
    store.restore(SESSION, uid(1))
    since = "2026-11-01T12:00:00.000Z"
    watermark = f"__system/submissionDate gt {since} or __system/updatedAt gt {since}"
    assert ids(feed(api, **{"$filter": watermark})) == []
    assert ids(feed(api, **{"$filter": "__system/deletedAt gt 2026-11-01T00:00:00.000Z"})) == []
    (row,) = feed(api, **{"$filter": f"__id eq '{uid(1)}' or __id eq '{uid(9)}'", "$expand": "*"})[
        "value"
    ]
    assert row["__system"]["deletedAt"] is None and row["__system"]["updatedAt"] is None


def test_a_server_before_v2024_3_cannot_filter_on_deleted_at(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 1)
    store.deleted_at_filter = False
    response = api.get(
        f"/v1/projects/1/forms/{SESSION}.svc/Submissions",
        params={"$filter": "not __system/deletedAt eq null"},
    )
    assert problem(response)[:2] == (501, 501.5) and "__system/deletedAt" in response.text
    assert ids(feed(api, **{"$filter": "__system/submissionDate gt 2026-01-01"})) == [uid(1)]


def test_a_new_form_version_reshapes_every_row(api: httpx.Client, store: OdkStore) -> None:
    store.add_form(
        1,
        "visit",
        [
            OdkField("members", "int"),
            OdkField("note", "string"),
            OdkField("meta/instanceID", "string"),
        ],
        version="1",
    )
    store.submit("visit", {"members": "4", "note": "ดี", "meta/instanceID": "uuid:v1"}, T0)
    store.publish(
        "visit",
        [
            OdkField("members", "string"),
            OdkField("phone", "string"),
            OdkField("meta/instanceID", "string"),
        ],
        "2",
    )
    (row,) = feed(api, form="visit")["value"]
    assert (row["members"], row["phone"]) == ("4", None) and "note" not in row
    assert row["__system"]["formVersion"] == "1"  # the version it was submitted with
    store.publish(
        "visit",
        [
            OdkField("members", "string"),
            OdkField("land", "structure"),
            OdkField("land/rai", "decimal"),
            OdkField("meta/instanceID", "string"),
        ],
        "3",
    )
    (row,) = feed(api, form="visit")["value"]
    assert row["land"] == {"rai": None}  # a new group: an object of nulls


def test_select_picks_fields_groups_and_system_properties(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 1)
    doc = feed(api, **{"$select": "__id,__system/reviewState,session_code,meta/instanceID"})
    assert doc["value"] == [
        {
            "session_code": "T34140105-01",
            "meta": {"instanceID": uid(1)},
            "__id": uid(1),
            "__system": {"reviewState": None},
        }
    ]
    path = f"/v1/projects/1/forms/{SESSION}.svc/Submissions"
    assert problem(api.get(path, params={"$select": "nope"}))[:2] == (400, 400.23)
    assert problem(api.get(path, params={"$select": "__system/nope"}))[:2] == (400, 400.23)
    assert problem(api.get(path, params={"$select": "attendees/hh_code"}))[:2] == (400, 400.24)


def test_orderby_sorts_nulls_first_ascending_and_last_descending(
    api: httpx.Client, store: OdkStore
) -> None:
    with_sessions(store, 3)
    store.set_review_state(SESSION, uid(1), "approved", at=T0 + timedelta(days=2))
    store.set_review_state(SESSION, uid(3), "approved", at=T0 + timedelta(days=1))
    desc = feed(api, **{"$orderby": "__system/updatedAt desc"})
    assert ids(desc) == [uid(1), uid(3), uid(2)]
    asc = feed(api, **{"$orderby": "__system/updatedAt asc"})
    assert ids(asc) == [uid(2), uid(3), uid(1)]


def test_queued_faults_are_served_once_each(api: httpx.Client, store: OdkStore) -> None:
    with_sessions(store, 1)
    store.faults.add(Fault("status", 429, retry_after=2), times=1)
    throttled = api.get(f"/v1/projects/1/forms/{SESSION}.svc/Submissions")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert feed(api)["value"] and store.faults.served == 1


# ---- seeding from the synthetic cohort -------------------------------------------------------


def test_a_cohort_loads_with_its_edits_and_review_decisions(store: OdkStore) -> None:
    cohort = generate_cohort(
        CohortSpec(villages=4, households_per_village=8, today=date(2026, 11, 20))
    )
    xml_ids = seed_odk_from_cohort(store, cohort)
    assert set(xml_ids) == set(FORMS) and all(k == v for k, v in xml_ids.items())
    per_form = Counter(s.form_id for s in cohort.submissions)
    assert {f: store.count(f) for f in per_form} == dict(per_form)
    for sub in cohort.submissions:
        row = store.row(sub.form_id, sub.answers["meta/instanceID"])
        system = row["__system"]
        assert system["edits"] == len(sub.edits)
        if sub.edits:
            assert row["meta"]["instanceID"] != row["__id"]
        last_edit = max((at for at, _ in sub.edits), default=None)
        review = KOBO_TO_REVIEW.get(sub.validation_status or "")
        if review and (last_edit is None or sub.validated_at > last_edit):
            assert system["reviewState"] == review
        elif last_edit is not None:
            assert system["reviewState"] == "edited"


def test_a_cohort_replayed_in_steps_ends_where_a_single_load_does(store: OdkStore) -> None:
    cohort = generate_cohort(
        CohortSpec(villages=2, households_per_village=6, today=date(2026, 11, 20))
    )
    middle = cohort.submissions[len(cohort.submissions) // 2].received_at
    seed_odk_from_cohort(store, cohort, as_of=middle)
    assert store.count(SESSION) < sum(1 for s in cohort.submissions if s.form_id == SESSION)
    seed_odk_from_cohort(store, cohort, after=middle)
    stepped = {f: sorted(orjson.dumps(r) for r in _rows(store, f)) for f in FORMS}
    store.reset()
    seed_odk_from_cohort(store, cohort)
    assert stepped == {f: sorted(orjson.dumps(r) for r in _rows(store, f)) for f in FORMS}


def _rows(store: OdkStore, form: str) -> list[dict]:
    hosted = store.form(1, form)
    assert hosted is not None
    return [store.row(form, root) for root in hosted.records]


# ---- contract: the research samples, answered exactly -----------------------------------------

SAMPLES = Path("/work/shared/reference/odk/samples")
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(),
    reason=f"ODK Central reference samples not found at {SAMPLES} (research fixtures, not in the "
    "repo); contract tests skipped",
)
ALICE = "Alice"  # actor 5 in the samples


def sample(name: str) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def withrepeat(store: OdkStore) -> None:
    """central-backend's `withrepeat` form and its three submissions (test/data/xml.js)."""
    store.add_form(
        1,
        "withrepeat",
        [
            OdkField("meta/instanceID", "string"),
            OdkField("name", "string"),
            OdkField("age", "int"),
            OdkField("children", "structure"),
            OdkField("children/child", "repeat"),
            OdkField("children/child/name", "string"),
            OdkField("children/child/age", "int"),
        ],
        version="1.0",
    )
    kids = {"rtwo": [("Billy", "4"), ("Blaine", "6")], "rthree": [("Candace", "2")]}
    people = [
        ("rone", "Alice", "30", "2024-05-06T13:10:02.287Z"),
        ("rtwo", "Bob", "34", "2024-05-06T13:10:02.402Z"),
        ("rthree", "Chelsea", "38", "2024-05-06T13:10:02.511Z"),
    ]
    for instance, name, age, received in people:
        answers: dict[str, Any] = {"meta/instanceID": instance, "name": name, "age": age}
        if instance in kids:
            answers["children/child"] = [
                {"children/child/name": n, "children/child/age": a} for n, a in kids[instance]
            ]
        store.submit("withrepeat", answers, at(received), submitter=ALICE, submitter_id=5)


def double_repeat(store: OdkStore, instance: str) -> None:
    """`doubleRepeat` and its `double` submission: repeats nested in repeats."""
    if store.form(1, "doubleRepeat") is None:
        store.add_form(
            1,
            "doubleRepeat",
            [
                OdkField("meta/instanceID", "string"),
                OdkField("name", "string"),
                OdkField("children/child", "repeat"),
                OdkField("children/child/name", "string"),
                OdkField("children/child/toys/toy", "repeat"),
                OdkField("children/child/toys/toy/name", "string"),
            ],
            version="1.0",
        )
    toy = "children/child/toys/toy"
    toys = {
        "Bob": ["Twilight Sparkle", "Pinkie Pie", "Applejack", "Spike"],
        "Chelsea": ["Rainbow Dash", "Rarity", "Fluttershy", "Princess Luna"],
    }
    children = [
        {
            "children/child/name": child,
            **({toy: [{f"{toy}/name": t} for t in toys[child]]} if child in toys else {}),
        }
        for child in ("Alice", "Bob", "Chelsea")
    ]
    answers = {"meta/instanceID": instance, "name": "Vick", "children/child": children}
    received = at("2024-05-06T13:12:44.019Z")
    store.submit(
        "doubleRepeat", answers, received, submitter=ALICE, submitter_id=5, device_id="testid"
    )


def get(api: httpx.Client, path: str, **params: Any) -> Any:
    response = api.get(f"/v1/projects/1/forms/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


@needs_samples
def test_contract_toplevel_rows_service_document_and_paging(
    api: httpx.Client, store: OdkStore
) -> None:
    withrepeat(store)
    assert get(api, "withrepeat.svc") == sample("odata_service_document_withrepeat.json")
    assert get(api, "withrepeat.svc/Submissions") == sample("odata_submissions_withrepeat.json")
    first = get(api, "withrepeat.svc/Submissions", **{"$top": 1, "$count": "true"})
    assert first == sample("odata_submissions_withrepeat_top1_count.json")
    second = api.get(rebased(first["@odata.nextLink"])).json()
    assert second == sample("odata_submissions_withrepeat_page2_via_skiptoken.json")
    third = api.get(rebased(second["@odata.nextLink"])).json()
    assert third == sample("odata_submissions_withrepeat_page3_last.json")


@needs_samples
def test_contract_repeat_tables_and_their_paging(api: httpx.Client, store: OdkStore) -> None:
    withrepeat(store)
    table = "withrepeat.svc/Submissions.children.child"
    assert get(api, table) == sample("odata_subtable_withrepeat_children_child.json")
    assert get(api, table, **{"$top": 2}) == sample("odata_subtable_withrepeat_top2.json")


@needs_samples
def test_contract_review_state_and_deleted_filters(api: httpx.Client, store: OdkStore) -> None:
    withrepeat(store)
    store.set_review_state("withrepeat", "rtwo", "rejected", at=at("2024-05-06T14:02:19.880Z"))
    rejected = get(
        api, "withrepeat.svc/Submissions", **{"$filter": "__system/reviewState eq 'rejected'"}
    )
    assert rejected == sample("odata_reviewstate_rejected.json")
    store.delete("withrepeat", "rthree", at=at("2024-05-07T08:00:12.345Z"))
    deleted = get(
        api, "withrepeat.svc/Submissions", **{"$filter": "not __system/deletedAt eq null"}
    )
    assert deleted == sample("odata_deleted_filter_not_deletedAt_eq_null.json")


@needs_samples
def test_contract_nested_repeats_single_rows_and_positional_ids(
    api: httpx.Client, store: OdkStore
) -> None:
    double_repeat(store, "double")
    assert get(api, "doubleRepeat.svc/Submissions('double')") == sample(
        "odata_single_doubleRepeat.json"
    )
    children = get(api, "doubleRepeat.svc/Submissions('double')/children/child")
    expected = sample("odata_subtable_doubleRepeat_children_child_of_double.json")
    assert children["value"] == expected["value"]
    # The $expand sample was made with __id "two" (a mocked row): same ids from the same path.
    double_repeat(store, "two")
    (row,) = get(
        api, "doubleRepeat.svc/Submissions", **{"$expand": "*", "$filter": "__id eq 'two'"}
    )["value"]
    (want,) = sample("odata_expand_star_doubleRepeat.json")["value"]
    assert row["children"] == want["children"]


@needs_samples
def test_contract_typed_values_as_geojson_and_wkt(api: httpx.Client, store: OdkStore) -> None:
    geo = ["geopoint", "geopointNoAlt", "geopointNoLon", "geopointNonsense"]
    lines = {
        "geotrace": "geotrace",
        "geotraceNoAlt": "geotrace",
        "polygon": "geoshape",
        "polygonNoAlt": "geoshape",
    }
    fields = [
        OdkField("int", "int"),
        OdkField("decimal", "decimal"),
        *(OdkField(g, "geopoint") for g in geo),
        *(OdkField(k, t) for k, t in lines.items()),
        *(OdkField(d, "dateTime") for d in ("dateTime", "dateTimeWhitespace", "dateTimeCorrect")),
        OdkField("text", "string"),
        OdkField("other", "string"),
    ]
    store.add_form(1, "types", fields)
    source = (SAMPLES / "odata_types_source_xml.xml").read_text()
    answers = {
        f.path: m.group(1)
        for f in fields
        if (m := re.search(rf"<{f.path}>(.*?)</{f.path}>", source, re.S))
    }
    store.submit("types", {**answers, "meta/instanceID": "types"}, T0)
    for params, name in (
        ({}, "odata_types_geojson.json"),
        ({"$wkt": "true"}, "odata_types_wkt.json"),
    ):
        (row,) = get(api, "types.svc/Submissions", **params)["value"]
        (want,) = sample(name)["value"]
        shared = [f.path for f in fields if f.path in want]
        assert {k: row[k] for k in shared} == {k: want[k] for k in shared}, name


@needs_samples
def test_contract_cohort_rows_have_the_samples_system_fields_and_types(store: OdkStore) -> None:
    seed_odk_from_cohort(
        store,
        generate_cohort(CohortSpec(villages=1, households_per_village=3, today=date(2026, 11, 20))),
    )
    want = sample("odata_edited_submission_real_world_row.json")["__system"]
    kinds = {k: {type(v).__name__} for k, v in want.items()}
    for name in ("odata_submissions_withrepeat.json", "odata_reviewstate_rejected.json"):
        for row in sample(name)["value"]:
            for k, v in row["__system"].items():
                kinds[k].add(type(v).__name__)
    for form in FORMS:
        for row in _rows(store, form):
            assert set(row["__system"]) == set(want)
            for k, v in row["__system"].items():
                assert type(v).__name__ in kinds[k], (k, v)
            assert isinstance(row["__id"], str)


@needs_samples
def test_contract_problem_bodies_match_centrals(api: httpx.Client, store: OdkStore) -> None:
    withrepeat(store)
    errors = sample("errors.json")
    svc = "/v1/projects/1/forms/withrepeat.svc"
    store.add_project(2, readable=False)
    cases = {
        "401_authenticationFailed": api.post(
            "/v1/sessions", json={"email": EMAIL, "password": "x"}
        ),
        "403_insufficientRights": api.get("/v1/projects/2/forms"),
        "404_notFound": api.get("/v1/projects/1/forms/nope.svc/Submissions"),
        "400_invalid_skiptoken": api.get(f"{svc}/Submissions", params={"$skiptoken": "x"}),
        "400_repeatId_skiptoken_not_found": api.get(
            f"{svc}/Submissions.children.child", params={"$skiptoken": "01eyJyZXBlYXRJZCI6Im5vIn0="}
        ),
        "501_unknown_query_param": api.get(f"{svc}/Submissions", params={"$unsupported": "1"}),
        "501_expand_not_star": api.get(f"{svc}/Submissions", params={"$expand": "children"}),
        "501_select_with_expand": api.get(
            f"{svc}/Submissions", params={"$expand": "*", "$select": "age"}
        ),
        "501_orderby_with_skiptoken": api.get(
            f"{svc}/Submissions", params={"$orderby": "__id", "$skiptoken": "01e30="}
        ),
        "501_subtable_filter_non_root": api.get(
            f"{svc}/Submissions.children.child", params={"$filter": "__system/reviewState eq null"}
        ),
    }
    for name, response in cases.items():
        assert response.status_code == int(errors[name]["code"]), name
        assert response.json() == errors[name], name
