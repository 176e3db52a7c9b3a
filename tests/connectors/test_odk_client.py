"""The ODK Central client against the simulator over loopback: sessions, paging, watermarks,
deletions, review states, errors and retries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sammachip.connectors.odk import (
    NoDeletedFeed,
    OdkClient,
    OdkError,
    OdkServer,
    odata_time,
    to_submission,
)
from sammachip.connectors.retry import TransientError
from sammachip.schemas.registry import FORMS
from sammachip.simulators.faults import Fault
from sammachip.simulators.odk import OdkStore, serve_odk, xlsform_definition

EMAIL, PASSWORD = "cdd.ubon@example.org", "รหัสผ่าน-Strong-2568!"
PROXY_DOMAIN = "https://central.example.org"  # what Central writes into links: not our URL
FORM = "sammachip_session"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OdkStore, str]]:
    store = OdkStore()
    with serve_odk(store, EMAIL, PASSWORD, domain=PROXY_DOMAIN) as url:
        yield store, url


@pytest.fixture
def store(served: tuple[OdkStore, str]) -> OdkStore:
    """Five sessions submitted an hour apart from T0 (n = 1..5), two attendees each."""
    store = served[0]
    store.reset()
    store.add_definition(1, xlsform_definition(FORMS[FORM].xlsform))
    for n in range(1, 6):
        store.submit(
            FORM,
            answers(n),
            T0 + timedelta(hours=n),
            submitter="cdd3414_01",
            device_id="collect:abc",
        )
    return store


@pytest.fixture
def url(served: tuple[OdkStore, str], store: OdkStore) -> str:
    return served[1]


def answers(n: int) -> dict[str, Any]:
    return {
        "start": f"2026-11-01T{9 + n:02d}:00:00.000+07:00",
        "end": f"2026-11-01T{9 + n:02d}:40:00.000+07:00",
        "session_code": f"T34140105-{n:02d}",
        "occupation": "เพาะเห็ด",
        "attendees": [
            {"attendees/hh_code": "34140105-01", "attendees/present": "yes"},
            {"attendees/hh_code": "34140105-02", "attendees/present": "no"},
        ],
        "meta/instanceID": uid(n),
    }


def uid(n: int) -> str:
    return f"uuid:00000000-0000-4000-8000-{n:012d}"


def client(url: str, *, password: str = PASSWORD, attempts: int = 6, **kwargs: Any) -> OdkClient:
    # Tiny backoff: retries are exercised for real, without waiting seconds.
    server = OdkServer(url, EMAIL, password, project_id=kwargs.pop("project_id", 1))
    return OdkClient(server, attempts=attempts, backoff=0.001, backoff_cap=0.01, **kwargs)


def fetch(c: OdkClient, form: str = FORM, **kwargs: Any) -> list[str]:
    return [r["__id"] for page, _ in c.pages(form, **kwargs) for r in page]


# ---- forms and paging ----------------------------------------------------------------------


def test_forms_are_discovered_with_their_names_and_versions(url: str) -> None:
    with client(url) as c:
        (form,) = c.forms()
    assert (form.xml_form_id, form.state, form.version) == (FORM, "open", "2025110101")
    assert form.name.startswith("การฝึกอบรม")


def test_paging_follows_next_links_rebased_onto_our_url(url: str) -> None:
    with client(url, page_size=2) as c:
        pages = list(c.pages(FORM))
    assert [len(p) for p, _ in pages] == [2, 2, 1]
    assert {count for _, count in pages} == {5}
    assert [r["__id"] for p, _ in pages for r in p] == [uid(n) for n in (5, 4, 3, 2, 1)]
    assert pages[0][0][0]["attendees"][1]["present"] == "no"  # repeats came inline


def test_the_server_really_links_to_another_host(url: str, store: OdkStore) -> None:
    with httpx.Client(base_url=url) as http:
        token = http.post("/v1/sessions", json={"email": EMAIL, "password": PASSWORD}).json()
        page = http.get(
            f"/v1/projects/1/forms/{FORM}.svc/Submissions",
            params={"$top": 2},
            headers={"Authorization": f"Bearer {token['token']}"},
        ).json()
    assert page["@odata.nextLink"].startswith(PROXY_DOMAIN)  # following it blindly would fail


def test_one_login_serves_every_request_and_close_logs_out(url: str, store: OdkStore) -> None:
    with client(url, page_size=2) as c:
        fetch(c)
        c.forms()
        assert store.logins == 1 and store.active_sessions() == 1
    assert store.active_sessions() == 0  # the token does not linger for a day


# ---- sessions that end -----------------------------------------------------------------------


@pytest.mark.parametrize("end", ["expire", "revoke"])
def test_an_ended_session_is_replaced_by_one_fresh_login(
    url: str, store: OdkStore, end: str
) -> None:
    with client(url, page_size=2) as c:
        clean = fetch(c)
        store.expire_sessions() if end == "expire" else store.end_sessions()
        assert fetch(c) == clean
    assert store.logins == 2 and store.rejected_tokens == 1


def test_a_token_near_expiry_is_renewed_before_it_is_refused(url: str, store: OdkStore) -> None:
    now = [datetime.now(UTC)]
    store.session_lifetime = timedelta(hours=1)
    with client(url, clock=lambda: now[0]) as c:
        fetch(c)
        now[0] += timedelta(minutes=50)  # ten minutes left: still fine
        fetch(c)
        assert store.logins == 1
        now[0] += timedelta(minutes=6)  # four minutes left: inside the safety margin
        fetch(c)
    assert store.logins == 2 and store.rejected_tokens == 0


# ---- incremental reads -----------------------------------------------------------------------


def test_a_watermark_with_overlap_returns_new_and_changed_rows_but_nothing_older(
    url: str, store: OdkStore
) -> None:
    store.edit(FORM, uid(1), {"occupation": "ทอผ้า"}, at=T0 + timedelta(days=1))
    store.set_review_state(FORM, uid(2), "approved", at=T0 + timedelta(days=1))
    with client(url, page_size=2) as c:
        # watermark T0+4h, overlap 1h: row 4 (T0+4h) is re-read, row 3 (T0+3h) is not
        got = fetch(c, since=T0 + timedelta(hours=4), overlap=timedelta(hours=1))
    assert got == [uid(5), uid(4), uid(2), uid(1)]


def test_a_watermark_after_everything_returns_nothing(url: str) -> None:
    with client(url) as c:
        assert fetch(c, since=T0 + timedelta(days=30)) == []


def test_deleted_lists_soft_deletes_that_the_feed_hides(url: str, store: OdkStore) -> None:
    store.delete(FORM, uid(3), at=T0 + timedelta(days=2))
    with client(url) as c:
        assert uid(3) not in fetch(c)
        (page,) = list(c.deleted(FORM))
        assert [r["__id"] for r in page] == [uid(3)]
        assert [r["__id"] for p in c.deleted(FORM, since=T0 + timedelta(days=2)) for r in p] == [
            uid(3)
        ]  # within the overlap
        assert list(c.deleted(FORM, since=T0 + timedelta(days=3))) == []
    # Only what a tombstone needs: the id and when Central deleted it, not the answers.
    assert page == [{"__id": uid(3), "__system": {"deletedAt": "2026-11-03T03:00:00.000Z"}}]


def test_a_server_without_the_deleted_feed_says_so_and_what_follows(
    url: str, store: OdkStore
) -> None:
    store.deleted_at_filter = False  # Central before v2024.3
    with client(url) as c, pytest.raises(NoDeletedFeed) as err:
        list(c.deleted(FORM))
    assert err.value.status == 501 and err.value.form == FORM
    assert "v2024.3" in str(err.value) and "weekly reconcile" in str(err.value)
    store.deleted_at_filter = True


def test_the_id_scan_lists_live_submissions_only_in_pages(url: str, store: OdkStore) -> None:
    store.delete(FORM, uid(2))
    with client(url, page_size=2) as c:
        assert list(c.ids(FORM)) == [[uid(5), uid(4)], [uid(3), uid(1)]]


def test_rows_by_id_find_a_restore_that_moved_no_timestamp(url: str, store: OdkStore) -> None:
    store.delete(FORM, uid(2), at=T0 + timedelta(days=1))
    store.delete(FORM, uid(3), at=T0 + timedelta(days=1))
    store.restore(FORM, uid(2))
    with client(url) as c:
        assert fetch(c, since=T0 + timedelta(days=1)) == []  # the watermark cannot see it
        (row,) = [r for page in c.rows(FORM, [uid(2), uid(3), "uuid:gone"]) for r in page]
        assert row["__id"] == uid(2) and row["attendees"]  # live, repeats inline
        many = [uid(n) for n in range(1, 6)] * 30  # more ids than one query carries
        assert {r["__id"] for page in c.rows(FORM, many) for r in page} == {
            uid(1),
            uid(2),
            uid(4),
            uid(5),
        }


def test_review_states_map_to_the_records_vocabulary(url: str, store: OdkStore) -> None:
    for n, state in ((2, "approved"), (3, "hasIssues"), (4, "rejected")):
        store.set_review_state(FORM, uid(n), state, at=T0 + timedelta(days=1))
    store.edit(FORM, uid(5), {"occupation": "ทอผ้า"}, at=T0 + timedelta(days=1))
    with client(url) as c:
        rows = [r for page, _ in c.pages(FORM) for r in page]
    status = {
        r["__id"]: to_submission(
            r, server="h", project_id=1, xml_form_id=FORM, form_id=FORM
        ).review_status
        for r in rows
    }
    assert status == {
        uid(1): None,
        uid(2): "approved",
        uid(3): "has_issues",
        uid(4): "rejected",
        uid(5): "edited",
    }


def test_to_submission_maps_central_metadata(url: str, store: OdkStore) -> None:
    new_id = store.edit(FORM, uid(4), {"occupation": "ทอผ้า"}, at=T0 + timedelta(days=1))
    with client(url) as c:
        row = next(r for page, _ in c.pages(FORM) for r in page if r["__id"] == uid(4))
    sub = to_submission(row, server="odk.example", project_id=1, xml_form_id=FORM, form_id=FORM)
    assert sub.key == f"odk:odk.example:1/{FORM}:{uid(4)}"
    assert (sub.submission_id, sub.root_uuid, sub.instance_id) == (uid(4), uid(4), new_id)
    assert sub.version == "2025110101"
    assert sub.submitted_at == T0 + timedelta(hours=4)
    assert (sub.device_start, sub.device_end) == (answers(4)["start"], answers(4)["end"])
    assert sub.payload is row and not sub.deleted
    assert sub.payload["occupation"].encode() == "ทอผ้า".encode()  # byte-exact Thai


def test_filter_literals_are_utc_with_milliseconds() -> None:
    bangkok = datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC).astimezone()
    assert odata_time(bangkok) == "2026-11-01T10:00:00.123Z"
    assert odata_time(datetime(2026, 11, 1)) == "2026-11-01T00:00:00.000Z"  # naive = UTC


# ---- permanent errors ------------------------------------------------------------------------


def test_a_wrong_password_names_the_entry_the_email_and_where_the_password_came_from(
    url: str,
) -> None:
    server = OdkServer(
        url, EMAIL, "wrong", project_id=1, name="อำเภอม่วงสามสิบ", password_from="$CDD_ODK_PASSWORD"
    )
    with OdkClient(server, attempts=1) as c, pytest.raises(OdkError) as err:
        fetch(c)
    assert (err.value.status, err.value.code, err.value.form) == (401, 401.2, FORM)
    message = str(err.value)
    for part in (FORM, "[[odk]] entry 'อำเภอม่วงสามสิบ'", EMAIL, "$CDD_ODK_PASSWORD"):
        assert part in message
    assert "wrong" not in message  # the password itself is never said


def test_an_unknown_form_names_the_form(url: str) -> None:
    with client(url) as c, pytest.raises(OdkError, match=r"form no_such_form .*404.*xmlFormId"):
        fetch(c, "no_such_form")


def test_an_unknown_project_says_the_project_is_missing_or_not_visible(url: str) -> None:
    server = OdkServer(url, EMAIL, PASSWORD, project_id=42, name="district")
    with OdkClient(server) as c, pytest.raises(OdkError) as err:
        c.forms()
    message = str(err.value)
    assert err.value.status == 404 and "form" not in message.split("—")[1]
    assert "project 42 does not exist" in message and "not visible to " + EMAIL in message
    assert "project_id ([[odk]] entry 'district')" in message


def test_a_project_without_a_role_asks_for_one(url: str, store: OdkStore) -> None:
    store.add_project(7, readable=False)
    with client(url, project_id=7) as c, pytest.raises(OdkError, match="Project Viewer") as err:
        c.forms()
    assert err.value.status == 403


# ---- transient failures ----------------------------------------------------------------------


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
def test_transient_failures_are_retried_to_the_same_rows(
    url: str, store: OdkStore, fault: Fault
) -> None:
    with client(url, page_size=2) as c:
        clean = [r for page, _ in c.pages(FORM) for r in page]
        store.faults.add(fault, times=3)  # a burst, mid-sync
        assert [r for page, _ in c.pages(FORM) for r in page] == clean
    assert store.faults.served == 3


def test_a_failing_login_is_retried_too(url: str, store: OdkStore) -> None:
    store.faults.add(Fault("status", 503, target="/v1/sessions"), times=2)
    with client(url) as c:
        assert len(fetch(c)) == 5
    assert store.faults.served == 2


def test_retries_give_up_with_the_last_error(url: str, store: OdkStore) -> None:
    store.faults.add(Fault("status", 503), times=10)
    with client(url, attempts=3) as c, pytest.raises(TransientError, match="503"):
        fetch(c)
