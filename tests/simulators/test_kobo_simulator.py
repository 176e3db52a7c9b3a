"""The Kobo simulator behaves like KoboToolbox API v2 over real HTTP on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo

TOKEN = "0123456789abcdef0123456789abcdef01234567"
UID = "aSammachipTestAsset123"
T0 = datetime(2026, 3, 1, 2, 0, 0)
THAI_NAME = "นางคำแพง ทองคำ"


@dataclass
class Served:
    store: KoboStore
    base: str
    client: httpx.Client

    @property
    def data_url(self) -> str:
        return f"{self.base}/api/v2/assets/{UID}/data/"

    def data(self, **params: object) -> httpx.Response:
        return self.client.get(self.data_url, params={k: _param(v) for k, v in params.items()})


def _param(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _answers(n: int) -> dict[str, object]:
    return {
        "start": "2026-03-01T08:00:00.000+07:00",
        "end": "2026-03-01T08:10:00.000+07:00",
        "today": "2026-03-01",
        "hh/hh_code": f"34140105-{n:02d}",
        "head/name": THAI_NAME,
        "baseline_income": str(5000 + 500 * n),
        "location": "15.51 104.73 150 5",
        "meta/instanceID": f"uuid:00000000-0000-4000-8000-{n:012d}",
    }


def _serve() -> Iterator[Served]:
    """12 submissions, one hour apart; pages of 3 by default, at most 5."""
    store = KoboStore()
    store.add_asset(
        UID,
        "sammachip_household · ทะเบียนครัวเรือนเป้าหมาย",
        "sammachip_household",
        geopoint_keys=("location",),
    )
    for n in range(1, 13):
        store.submit(UID, _answers(n), T0 + timedelta(hours=n), submitted_by="cdd3414_01")
    with (
        serve_kobo(store, TOKEN, max_page_size=5, default_page_size=3) as base,
        httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as client,
    ):
        yield Served(store, base, client)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """Shared by the tests that only read."""
    yield from _serve()


@pytest.fixture
def fresh() -> Iterator[Served]:
    """A server of its own, for tests that edit, delete or validate."""
    yield from _serve()


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["_id"] for row in response.json()["results"]]


# ---------------------------------------------------------------- auth and errors


def test_missing_token_is_401_credentials_not_provided(served: Served) -> None:
    response = httpx.get(served.data_url)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_wrong_token_is_401_invalid_token(served: Served) -> None:
    response = httpx.get(served.data_url, headers={"Authorization": "Token nope"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_unknown_asset_is_404(served: Served) -> None:
    response = served.client.get(f"{served.base}/api/v2/assets/aDoesNotExist1234567890/data/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "2.5"])
def test_non_positive_or_non_integer_limit_is_400(served: Served, limit: str) -> None:
    response = served.data(limit=limit)
    assert response.status_code == 400
    assert response.json() == {"limit": "A positive integer is required"}


def test_negative_start_is_400(served: Served) -> None:
    response = served.data(start="-1")
    assert response.status_code == 400
    assert response.json() == {"start": "A positive integer is required."}


@pytest.mark.parametrize("name", ["query", "sort", "fields"])
def test_invalid_json_parameter_is_400(served: Served, name: str) -> None:
    response = served.data(**{name: "{not json"})
    assert response.status_code == 400
    assert response.json() == {name: "Value must be valid JSON."}


def test_operator_the_server_does_not_support_is_400_unsupported_query(served: Served) -> None:
    response = served.data(query={"_id": {"$expr": 1}})
    assert response.status_code == 400
    assert response.json() == ["Unsupported query"]


def test_a_count_too_large_to_finish_in_time_is_400_unsupported_query(fresh: Served) -> None:
    """kpi counts a query's matches on every page; Mongo's time-out surfaces as this 400."""
    ids = _ids(fresh.data(limit=5, sort={"_id": 1}))
    fresh.store.slow_count(UID, over=4)
    whole = fresh.data(limit=1)  # the page size does not matter: all 12 are counted
    assert whole.status_code == 400 and whole.json() == ["Unsupported query"]
    narrow = fresh.data(limit=5, query={"_id": {"$gt": ids[0], "$lte": ids[4]}})  # 4 of them
    assert _ids(narrow) == ids[1:5]
    # The index bounds only the _id range: a selective filter on another key does not help.
    selective = fresh.data(query={"_submission_time": {"$gte": "2026-03-01T12:00:00"}})
    assert selective.status_code == 400


def test_a_busy_servers_count_times_out_only_for_a_while(fresh: Served) -> None:
    fresh.store.slow_count(UID, over=0, times=2)
    assert [fresh.data().status_code for _ in range(3)] == [400, 400, 200]


# ---------------------------------------------------------------- paging


def test_default_page_size_applies_without_limit(served: Served) -> None:
    body = served.data().json()
    assert body["count"] == 12
    assert [r["_id"] for r in body["results"]] == [1, 2, 3]


def test_limit_above_the_maximum_is_silently_capped(served: Served) -> None:
    body = served.data(limit=50).json()
    assert len(body["results"]) == 5
    assert parse_qs(urlsplit(body["next"]).query)["limit"] == ["5"]


def test_following_next_returns_every_submission_once(served: Served) -> None:
    url: str | None = f"{served.data_url}?format=json&limit=5&sort=%7B%22_id%22%3A1%7D"
    seen: list[int] = []
    while url:
        body = served.client.get(url).json()
        seen += [r["_id"] for r in body["results"]]
        url = body["next"]
    assert seen == list(range(1, 13))


def test_next_and_previous_are_absolute_drf_links_keeping_other_params(served: Served) -> None:
    body = served.data(format="json", limit=5, start=5, sort={"_id": 1}).json()
    following = urlsplit(body["next"])
    assert body["next"].startswith(served.data_url)
    assert parse_qs(following.query) == {
        "format": ["json"],
        "limit": ["5"],
        "sort": ['{"_id": 1}'],
        "start": ["10"],
    }
    # DRF re-encodes the parameters sorted by name.
    assert [p.split("=")[0] for p in following.query.split("&")] == [
        "format",
        "limit",
        "sort",
        "start",
    ]
    assert "start" not in parse_qs(urlsplit(body["previous"]).query)  # start 5 - 5 = 0
    last = served.client.get(body["next"]).json()
    assert last["next"] is None
    assert [r["_id"] for r in last["results"]] == [11, 12]


def test_previous_drops_start_when_it_would_reach_zero(served: Served) -> None:
    body = served.data(limit=3, start=2).json()
    assert "start" not in parse_qs(urlsplit(body["previous"]).query)
    assert served.data(limit=3).json()["previous"] is None


def test_offset_is_ignored_for_the_skip_but_used_for_links(served: Served) -> None:
    body = served.data(offset=3, limit=3).json()
    assert [r["_id"] for r in body["results"]] == [1, 2, 3]
    assert parse_qs(urlsplit(body["next"]).query)["start"] == ["6"]


# ---------------------------------------------------------------- query, sort, fields


def test_id_greater_than_with_ascending_and_descending_sort(served: Served) -> None:
    assert _ids(served.data(query={"_id": {"$gt": 8}}, sort={"_id": 1}, limit=5)) == [9, 10, 11, 12]
    assert _ids(served.data(query={"_id": {"$gt": 8}}, sort={"_id": -1}, limit=2)) == [12, 11]
    assert served.data(query={"_id": {"$gt": 8}}).json()["count"] == 4


def test_submission_time_compares_as_a_utc_string(served: Served) -> None:
    cut = (T0 + timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M:%S")
    response = served.data(query={"_submission_time": {"$gte": cut}}, limit=5)
    assert _ids(response) == [10, 11, 12]
    # A datetime with "Z" sorts after the same second: the string comparison is literal.
    assert _ids(served.data(query={"_submission_time": {"$gte": cut + "Z"}})) == [11, 12]


def test_answer_keys_are_strings_so_numbers_do_not_match(served: Served) -> None:
    assert _ids(served.data(query={"baseline_income": "6000"})) == [2]
    assert served.data(query={"baseline_income": 6000}).json()["count"] == 0
    assert _ids(served.data(query={"hh/hh_code": {"$in": ["34140105-03", "34140105-04"]}})) == [
        3,
        4,
    ]


def test_fields_projection_always_adds_uuid_root_uuid_and_validation_status(served: Served) -> None:
    row = served.data(fields=["_submission_time"], limit=1).json()["results"][0]
    assert set(row) == {"_id", "_submission_time", "_uuid", "meta/rootUuid", "_validation_status"}
    assert row["_validation_status"] == {}


def test_sort_by_answer_key(served: Served) -> None:
    assert _ids(served.data(sort={"baseline_income": -1}, limit=2)) == [9, 8]  # "9500" > "11000"


# ---------------------------------------------------------------- the submission document


def test_submission_carries_kobo_meta_keys(served: Served) -> None:
    row = served.data(limit=1).json()["results"][0]
    assert row["_id"] == 1
    assert row["_uuid"] == "00000000-0000-4000-8000-000000000001"
    assert row["meta/instanceID"] == row["meta/rootUuid"] == f"uuid:{row['_uuid']}"
    assert row["_submission_time"] == "2026-03-01T03:00:00"
    assert row["_xform_id_string"] == UID
    assert re.fullmatch(r"[0-9a-f]{32}", row["formhub/uuid"])
    assert re.fullmatch(r"v[0-9A-Za-z]{21}", row["__version__"])
    assert row["_geolocation"] == [15.51, 104.73]
    assert row["_attachments"] == []
    assert row["_status"] == "submitted_via_web"
    assert row["_submitted_by"] == "cdd3414_01"
    assert "meta/deprecatedID" not in row


def test_thai_text_round_trips_byte_exact(served: Served) -> None:
    response = served.data(limit=1)
    assert THAI_NAME.encode() in response.content  # raw UTF-8, no \\u escapes
    assert response.json()["results"][0]["head/name"] == THAI_NAME
    assert response.headers["content-type"].startswith("application/json")


def test_edit_keeps_id_root_uuid_and_time_and_changes_uuid(fresh: Served) -> None:
    before = fresh.data(query={"_id": 4}).json()["results"][0]
    fresh.store.edit(UID, 4, {"baseline_income": "9999"})
    after = fresh.data(query={"_id": 4}).json()["results"][0]
    assert after["baseline_income"] == "9999"
    assert after["_id"] == 4
    assert after["meta/rootUuid"] == before["meta/rootUuid"]
    assert after["_submission_time"] == before["_submission_time"]
    assert after["_uuid"] != before["_uuid"]
    assert after["meta/instanceID"] == f"uuid:{after['_uuid']}"
    assert after["meta/deprecatedID"] == before["meta/instanceID"]
    ever_edited = fresh.data(query={"meta/deprecatedID": {"$exists": True}}).json()
    assert [r["_id"] for r in ever_edited["results"]] == [4]


def test_delete_is_a_hard_delete(fresh: Served) -> None:
    fresh.store.delete(UID, 2)
    body = fresh.data(limit=5).json()
    assert body["count"] == 11
    assert [r["_id"] for r in body["results"]] == [1, 3, 4, 5, 6]
    assert fresh.client.get(f"{fresh.data_url}2/").status_code == 404


def test_validation_status_is_set_and_queryable_by_timestamp(fresh: Served) -> None:
    fresh.store.set_validation_status(UID, 5, "validation_status_on_hold", "officer", 1_800_000_000)
    fresh.store.set_validation_status(
        UID, 6, "validation_status_approved", "officer", 1_700_000_000
    )
    recent = fresh.data(query={"_validation_status.timestamp": {"$gt": 1_750_000_000}}).json()
    assert [r["_id"] for r in recent["results"]] == [5]
    assert recent["results"][0]["_validation_status"] == {
        "timestamp": 1_800_000_000,
        "uid": "validation_status_on_hold",
        "by_whom": "officer",
        "label": "On Hold",
    }
    approved = fresh.data(query={"_validation_status.uid": "validation_status_approved"})
    assert _ids(approved) == [6]


def test_time_and_review_ranges_answer_as_a_full_scan_would_after_late_arrivals() -> None:
    """The look-back and review passes are answered from indexes (not a scan per page): with
    arrivals out of time order, deletions and reviews changed or cleared, every range query
    returns exactly the submissions a filter over all of them would."""
    store = KoboStore()
    store.add_asset(UID, "households", "sammachip_household")
    for n in range(40):  # every third arrives late: times out of _id order
        store.submit(UID, _answers(n), T0 + timedelta(hours=n - 30 * (n % 3 == 0)))
    for _id in (3, 4, 20):
        store.delete(UID, _id)
    for n, _id in enumerate((5, 6, 7, 8, 30)):
        store.set_validation_status(UID, _id, "validation_status_approved", "o", 1_000 + n)
    store.set_validation_status(UID, 6, "validation_status_on_hold", "o", 5_000)  # changed
    store.set_validation_status(UID, 7, None, "o", 0)  # cleared
    docs = [store.get(UID, _id) for _id in store._require(UID).ids]
    since = (T0 + timedelta(hours=12)).isoformat()
    queries: list[tuple[dict[str, object], Callable[[dict[str, object]], bool]]] = [
        ({"_submission_time": {"$gte": since}}, lambda d: d["_submission_time"] >= since),
        (
            {"_submission_time": {"$gte": since}, "_id": {"$gt": 10, "$lte": 33}},
            lambda d: d["_submission_time"] >= since and 10 < d["_id"] <= 33,
        ),
        (
            {"_validation_status.timestamp": {"$gt": 1_001}},
            lambda d: d["_validation_status"].get("timestamp", 0) > 1_001,
        ),
        (
            {"_validation_status.timestamp": {"$gt": 0}, "_id": {"$lte": 8}},
            lambda d: "timestamp" in d["_validation_status"] and d["_id"] <= 8,
        ),
    ]
    for query, matches in queries:
        expected = [d["_id"] for d in docs if matches(d)]
        for start in (0, 2):  # paging within the indexed candidates
            count, rows = store.page(UID, query=query, start=start, limit=3)
            assert count == len(expected), query
            assert [json.loads(r)["_id"] for r in rows] == expected[start : start + 3], query


def test_detail_by_id_or_uuid(served: Served) -> None:
    by_id = served.client.get(f"{served.data_url}7/").json()
    by_uuid = served.client.get(f"{served.data_url}{by_id['_uuid']}/").json()
    assert by_id == by_uuid


# ---------------------------------------------------------------- assets


def test_asset_list_and_detail(served: Served) -> None:
    listing = served.client.get(f"{served.base}/api/v2/assets/").json()
    assert listing["count"] == 1 and listing["next"] is None
    asset = listing["results"][0]
    assert asset["uid"] == UID
    assert asset["name"].startswith("sammachip_household")
    assert asset["asset_type"] == "survey"
    assert asset["has_deployment"] and asset["deployment__active"]
    assert asset["deployment__submission_count"] == 12
    assert asset["data"] == served.data_url
    detail = served.client.get(asset["url"]).json()
    assert detail["deployed_versions"]["results"][0]["uid"] == detail["deployed_version_id"]


def test_a_draft_is_listed_undeployed_and_its_data_is_400() -> None:
    store = KoboStore()
    store.add_asset(
        UID, "sammachip_household (draft)", "sammachip_household", deployment_status="draft"
    )
    with serve_kobo(store, TOKEN) as base:
        headers = {"Authorization": f"Token {TOKEN}"}
        (asset,) = httpx.get(f"{base}/api/v2/assets/", headers=headers).json()["results"]
        data = httpx.get(f"{base}/api/v2/assets/{UID}/data/", headers=headers)
    assert (asset["has_deployment"], asset["deployment_status"]) == (False, "draft")
    assert asset["deployed_version_id"] is None and not asset["deployment__active"]
    assert data.status_code == 400
    assert data.json() == {"detail": "The specified asset has not been deployed"}


def test_an_archived_form_is_listed_inactive_and_its_data_stays_readable() -> None:
    store = KoboStore()
    store.add_asset(UID, "sammachip_household", "sammachip_household", deployment_status="archived")
    store.submit(UID, _answers(1), T0)
    with serve_kobo(store, TOKEN) as base:
        headers = {"Authorization": f"Token {TOKEN}"}
        (asset,) = httpx.get(f"{base}/api/v2/assets/", headers=headers).json()["results"]
        data = httpx.get(f"{base}/api/v2/assets/{UID}/data/", headers=headers)
    assert (asset["has_deployment"], asset["deployment__active"]) == (True, False)
    assert data.status_code == 200 and data.json()["count"] == 1


# ---------------------------------------------------------------- seeding from a cohort


def test_seeding_a_cohort_in_two_steps_equals_seeding_it_at_once() -> None:
    cohort = generate_cohort(CohortSpec(seed=7, villages=1, today=date(2026, 2, 20)))
    cut = cohort.submissions[len(cohort.submissions) // 2].received_at
    whole, stepped = KoboStore(), KoboStore()
    uids = seed_from_cohort(whole, cohort)
    seed_from_cohort(stepped, cohort, as_of=cut)
    seed_from_cohort(stepped, cohort, after=cut)
    for uid in uids.values():
        assert whole.page(uid, limit=10_000) == stepped.page(uid, limit=10_000)
    assert sum(whole.count(uid) for uid in uids.values()) == len(cohort.submissions)
    assert all(
        name.startswith(form) for form, name in ((f, whole.asset(u).name) for f, u in uids.items())
    )  # type: ignore[union-attr]
