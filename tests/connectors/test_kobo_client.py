"""The Kobo client against the simulator over loopback: paging, cursors, errors, retries."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sammachip.connectors.http import tls_context
from sammachip.connectors.kobo import (
    KoboClient,
    KoboCursor,
    KoboError,
    KoboServer,
    changes,
    to_submission,
)
from sammachip.connectors.retry import TransientError
from sammachip.connectors.sources import SyncPolicy
from sammachip.simulators.faults import Fault
from sammachip.simulators.kobo import KoboStore, serve_kobo

TOKEN = "a" * 40
UID = "aHouseholdsAsset000001"
T0 = datetime(2026, 11, 1, 3, 0)


def answers(n: int, name: str = "สมศรี ใจดี") -> dict[str, str]:
    return {"hh/hh_code": f"34140101-{n:02d}", "head/name": name, "members": "4"}


@pytest.fixture
def store() -> KoboStore:
    store = KoboStore()
    store.add_asset(UID, "sammachip_household · ทะเบียนครัวเรือนเป้าหมาย", "sammachip_household")
    for n in range(1, 13):
        store.submit(UID, answers(n), T0 + timedelta(minutes=n))
    return store


@pytest.fixture
def url(store: KoboStore) -> Iterator[str]:
    with serve_kobo(store, TOKEN, max_page_size=5) as url:  # a server that caps pages at 5
        yield url


def client(url: str, token: str = TOKEN, attempts: int = 6) -> KoboClient:
    # Tiny backoff: retries are exercised for real, without waiting seconds.
    return KoboClient(
        KoboServer(url, token), page_size=1000, attempts=attempts, backoff=0.001, backoff_cap=0.01
    )


def fetch_ids(c: KoboClient, **kwargs: object) -> list[int]:
    return [r["_id"] for page, _ in c.pages(UID, **kwargs) for r in page]  # type: ignore[arg-type]


def test_paging_follows_a_server_that_caps_the_page_size(url: str, store: KoboStore) -> None:
    with client(url) as c:
        pages = list(c.pages(UID))
    assert [len(p) for p, _ in pages] == [5, 5, 2]  # asked for 1000, got the cap, kept going
    ids = [r["_id"] for p, _ in pages for r in p]
    assert ids == sorted(set(ids)) and len(ids) == store.count(UID)


def test_the_next_page_is_asked_for_while_the_caller_reads_this_one(
    url: str, store: KoboStore
) -> None:
    with client(url) as c:
        expected = fetch_ids(c)
    asked: list[str] = []
    second = threading.Event()

    def seen(path: str) -> None:
        if "/data" in path:
            asked.append(path)
            if len(asked) == 2:
                second.set()

    store.faults.on_request(seen)
    with client(url) as c:
        pages = c.pages(UID)
        first, _ = next(pages)
        assert second.wait(timeout=10), "the second page was not asked for ahead"
        rest = [r["_id"] for page, _ in pages for r in page]
    assert [r["_id"] for r in first] + rest == expected
    assert len(asked) == 3  # one request a page, none beyond the last: 5 + 5 + 2


def test_a_failure_of_the_page_ahead_is_raised_where_that_page_is_read(
    url: str, store: KoboStore
) -> None:
    asked: list[str] = []

    def fail_the_second_page(path: str) -> None:
        asked.append(path)
        if len(asked) == 2:  # asked for ahead, while the caller holds the first
            store.faults.add(Fault("status", 503))

    store.faults.on_request(fail_the_second_page)
    with client(url, attempts=1) as c:
        pages = c.pages(UID)
        first, _ = next(pages)
        assert len(first) == 5
        with pytest.raises(TransientError):
            next(pages)


def test_keyset_cursor_returns_only_newer_submissions(url: str) -> None:
    with client(url) as c:
        everything = fetch_ids(c)
        assert fetch_ids(c, after_id=everything[9]) == everything[10:]


def test_assets_are_discovered_with_their_names(url: str) -> None:
    with client(url) as c:
        (asset,) = c.assets()
    assert (asset.uid, asset.submission_count, asset.deployed) == (UID, 12, True)
    assert "ทะเบียนครัวเรือน" in asset.name


def test_id_scan_lists_every_id_cheaply(url: str, store: KoboStore) -> None:
    with client(url) as c:
        all_ids = [i for page in c.ids(UID) for i in page]
        store.delete(UID, all_ids[3])
        assert [i for page in c.ids(UID) for i in page] == all_ids[:3] + all_ids[4:]


def test_a_wrong_token_says_what_to_do(url: str) -> None:
    with client(url, token="b" * 40) as c, pytest.raises(KoboError) as err:
        fetch_ids(c)
    assert err.value.status == 401
    assert "SAMMACHIP_KOBO_TOKEN" in str(err.value) and UID in str(err.value)


def test_a_refused_token_names_the_variable_it_was_read_from(url: str) -> None:
    server = KoboServer(url, "b" * 40, "office", token_from="OFFICE_KOBO_TOKEN")
    with KoboClient(server, attempts=1) as c, pytest.raises(KoboError) as err:
        c.assets()
    assert "OFFICE_KOBO_TOKEN" in str(err.value) and "SAMMACHIP_KOBO_TOKEN" not in str(err.value)


@pytest.mark.parametrize("suffix", ["/api/v2/", "/api/v2", "/api/v2/assets/", "/"])
def test_a_url_copied_with_its_api_path_is_taken_from_its_root(url: str, suffix: str) -> None:
    server = KoboServer(url + suffix, TOKEN)
    assert server.url == url
    with KoboClient(server) as c:
        assert [a.uid for a in c.assets()] == [UID]


def test_a_url_that_is_no_kobo_api_says_to_give_the_root(url: str) -> None:
    with client(url + "/kobo/forms") as c, pytest.raises(KoboError) as err:
        c.assets()
    assert err.value.status == 404
    assert "root URL" in str(err.value) and "asset uid" not in str(err.value)


def test_an_unknown_asset_names_the_asset(url: str) -> None:
    with client(url) as c, pytest.raises(KoboError, match=r"aNoSuchAsset.*404"):
        list(c.pages("aNoSuchAsset"))


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", 503),
        Fault("status", 502),
        Fault("status", 504),
        Fault("status", 429, retry_after=0.01),
        Fault("reset"),
        Fault("truncate"),
    ],
    ids=["503", "502", "504", "429-retry-after", "connection-reset", "truncated-json"],
)
def test_transient_failures_are_retried_to_the_same_result(
    url: str, store: KoboStore, fault: Fault
) -> None:
    with client(url) as c:
        clean = fetch_ids(c)
        store.faults.add(fault, times=3)  # a burst, mid-sync
        assert fetch_ids(c) == clean
    assert store.faults.served == 3


def test_retries_give_up_with_the_last_error(url: str, store: KoboStore) -> None:
    store.faults.add(Fault("status", 503), times=10)
    with client(url, attempts=3) as c, pytest.raises(TransientError, match="503"):
        fetch_ids(c)


def test_a_count_time_out_is_retried_like_a_busy_server(url: str, store: KoboStore) -> None:
    with client(url) as c:
        clean = fetch_ids(c)
        store.slow_count(UID, over=0, times=2)  # 400 ["Unsupported query"], twice
        assert fetch_ids(c) == clean


@pytest.fixture
def large() -> Iterator[tuple[KoboStore, str, list[int]]]:
    """A household form whose count always times out beyond 4 submissions, its ids spread
    among another form's (one id sequence per server), served in pages of at most 3."""
    store = KoboStore()
    store.add_asset(UID, "sammachip_household", "sammachip_household")
    store.add_asset("aSessionsAsset00000001", "sammachip_session", "sammachip_session")
    ours = []
    for n in range(1, 41):
        ours.append(store.submit(UID, answers(n), T0 + timedelta(minutes=n)))
        for _ in range(n % 4):  # uneven gaps, some windows of ids hold none of ours
            store.submit("aSessionsAsset00000001", {"session_code": "x"}, T0)
    store.slow_count(UID, over=4)
    with serve_kobo(store, TOKEN, max_page_size=3) as url:
        yield store, url, ours


def test_a_large_form_whose_count_always_times_out_still_syncs_every_submission_once(
    large: tuple[KoboStore, str, list[int]],
) -> None:
    store, url, ours = large
    with client(url) as c:
        assert fetch_ids(c) == ours  # every one, once, in order
        assert fetch_ids(c, after_id=ours[29]) == ours[30:]
        assert fetch_ids(c, after_id=ours[9], until_id=ours[19]) == ours[10:20]
        assert [i for page in c.ids(UID) for i in page] == ours  # the reconcile's id scan
        store.edit(UID, ours[2], {"members": "5"})
        policy = SyncPolicy(overlap_ids=0, lookback_days=14, batch_size=100)
        cursor = KoboCursor(last_id=ours[-1])
        now = T0.replace(tzinfo=UTC) + timedelta(days=1)
        night = [r for batch, _ in changes(c, UID, cursor, policy, now=now) for r in batch]
    assert sorted(r["_id"] for r in night) == ours  # the look-back pass, in windows
    assert {r["_id"]: r["members"] for r in night}[ours[2]] == "5"


def test_a_count_that_never_succeeds_is_a_transient_failure_not_a_bad_uid(
    url: str, store: KoboStore
) -> None:
    store.slow_count(UID, over=0)
    with client(url) as c, pytest.raises(TransientError) as err:
        fetch_ids(c)
    message = str(err.value)
    assert "count" in message and "uid" not in message


def test_the_cursor_moves_past_a_page_to_its_newest_id_and_newest_review() -> None:
    cursor = KoboCursor(last_id=5, status_ts=100)
    approved = {"uid": "validation_status_approved", "timestamp": 250}
    cursor.observe(
        [{"_id": 9, "_validation_status": {}}, {"_id": 7, "_validation_status": approved}]
    )
    assert (cursor.last_id, cursor.status_ts) == (9, 250)
    cursor.observe([{"_id": 3}])  # a review pass reads below the newest id
    cursor.observe([])
    assert cursor.to_json() == {"last_id": 9, "status_ts": 250}


def test_changes_catch_edits_and_review_decisions_but_skip_old_rows(
    url: str, store: KoboStore
) -> None:
    policy = SyncPolicy(overlap_ids=2, lookback_days=14, batch_size=4)
    cursor = KoboCursor()
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with client(url) as c:
        first = [r for batch, _ in changes(c, UID, cursor, policy, now=now) for r in batch]
        assert len(first) == 12 and cursor.last_id == max(r["_id"] for r in first)
        ids = [r["_id"] for r in first]
        store.edit(UID, ids[0], {"members": "5"})
        store.set_validation_status(
            UID, ids[1], "validation_status_not_approved", "reviewer", int(now.timestamp())
        )
        later = now + timedelta(days=30)  # the edited row is outside the look-back window now
        again = [r for batch, _ in changes(c, UID, cursor, policy, now=later) for r in batch]
    got = {r["_id"]: r for r in again}
    assert ids[1] in got  # picked up by its validation-status timestamp
    assert got[ids[1]]["_validation_status"]["uid"] == "validation_status_not_approved"
    assert ids[0] not in got  # edits older than the look-back wait for the weekly rescan
    assert set(ids[-2:]) <= set(got)  # the overlap re-reads the newest ids


def test_a_night_reads_each_changed_submission_once_in_one_batch(
    url: str, store: KoboStore
) -> None:
    policy = SyncPolicy(overlap_ids=2, lookback_days=14, batch_size=100)
    cursor = KoboCursor()
    now = T0.replace(tzinfo=UTC) + timedelta(days=1)
    with client(url) as c:
        ids = [r["_id"] for batch, _ in changes(c, UID, cursor, policy, now=now) for r in batch]
        # Overnight: two arrivals (one already reviewed), a review and an edit of older rows;
        # all twelve older rows are within the look-back window, so three passes match some.
        late = [store.submit(UID, answers(n), T0 + timedelta(days=1, hours=n)) for n in (13, 14)]
        for _id in (late[0], ids[3]):
            store.set_validation_status(
                UID, _id, "validation_status_approved", "reviewer", int(now.timestamp()) + 60
            )
        store.edit(UID, ids[4], {"members": "5"})
        batches = [b for b, _ in changes(c, UID, cursor, policy, now=now + timedelta(days=1))]
    assert len(batches) == 1  # the passes fill one batch: validated once, not once per pass
    read = [r["_id"] for r in batches[0]]
    assert sorted(read) == sorted(ids + late)  # each submission once, whichever passes match it
    assert {r["_id"]: r["members"] for r in batches[0]}[ids[4]] == "5"
    assert cursor.last_id == max(late)


def test_to_submission_keeps_the_payload_and_maps_kobo_meta(url: str, store: KoboStore) -> None:
    with client(url) as c:
        raw = next(iter(c.pages(UID)))[0][0]
    sub = to_submission(raw, server="kf.example", asset_uid=UID, form_id="sammachip_household")
    assert sub.key == f"kobo:kf.example:{UID}:{raw['_id']}"
    assert sub.submitted_at == T0.replace(tzinfo=UTC) + timedelta(minutes=1)
    assert sub.instance_id == raw["meta/instanceID"] and sub.payload is raw
    assert sub.payload["head/name"].encode() == "สมศรี ใจดี".encode()  # byte-exact Thai


def test_to_submission_maps_a_review_decision_and_leaves_an_unreviewed_one_empty(
    url: str, store: KoboStore
) -> None:
    with client(url) as c:
        first, second = next(iter(c.pages(UID)))[0][:2]
    store.set_validation_status(UID, second["_id"], "validation_status_on_hold", "reviewer", 1)
    with client(url) as c:
        reviewed = next(r for r in next(iter(c.pages(UID)))[0] if r["_id"] == second["_id"])
    records = [to_submission(r, server="kf", asset_uid=UID, form_id="f") for r in (first, reviewed)]
    assert first["_validation_status"] == {}
    assert [r.review_status for r in records] == [None, "on_hold"]
    assert records[0].device_start == first.get("start") and records[0].version == first.get(
        "__version__"
    )


def test_a_plain_http_server_reads_no_certificate_authorities_and_https_verifies() -> None:
    plain = tls_context("http://192.168.1.20:8000")  # an office's server on the LAN
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert plain.verify_mode == ssl.CERT_REQUIRED  # were it ever used: it trusts nobody
    secure = tls_context("https://kf.kobotoolbox.org")
    assert secure.cert_store_stats()["x509_ca"] > 0 and secure.verify_mode == ssl.CERT_REQUIRED
    assert tls_context("HTTPS://central.example.org") is secure  # the bundle is read once
