"""Kobo form media over loopback: the simulator's files and redeployments as kpi has them, and
the client that keeps a list CSV on a form's phones — replaced only when its content changed,
always redeployed, checked by reading what KoboCollect is served."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from sammachip.connectors.kobo import KoboError, KoboServer
from sammachip.connectors.kobo.media import MediaClient
from sammachip.simulators.faults import Fault
from sammachip.simulators.kobo import KoboStore, MediaStore, media_store, serve_kobo

TOKEN = "f" * 40
UID = "aFollowupForm000000001"
FILES = f"/api/v2/assets/{UID}/files/"
CSV_V1 = "name,label,officer_id\nhh-01,บ้านเลขที่ 1 — นางสมศรี,off01\n".encode()
CSV_V2 = CSV_V1 + "hh-02,บ้านเลขที่ 2 — นายประเสริฐ,off02\n".encode()


@pytest.fixture
def served() -> Iterator[tuple[KoboStore, str]]:
    """A fresh server with the follow-up form deployed, no media yet."""
    store = KoboStore()
    store.add_asset(
        UID, "ติดตามเยี่ยม (Follow-up visit)", "sammachip_followup", date_created=datetime(2026, 11, 1)
    )
    with serve_kobo(store, TOKEN) as url:
        yield store, url


@pytest.fixture
def store(served: tuple[KoboStore, str]) -> KoboStore:
    return served[0]


@pytest.fixture
def media(store: KoboStore) -> MediaStore:
    return media_store(store)


@pytest.fixture
def http(served: tuple[KoboStore, str], store: KoboStore) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1], headers={"Authorization": f"Token {TOKEN}"}) as h:
        yield h


def client(url: str) -> MediaClient:
    return MediaClient(KoboServer(url, TOKEN), backoff=0.001, backoff_cap=0.01)


def upload(http: httpx.Client, name: str = "followups.csv", body: bytes = CSV_V1) -> httpx.Response:
    return http.post(
        FILES,
        data={"file_type": "form_media", "description": "รายการติดตาม"},
        files={"content": (name, body, "text/csv")},
    )


def served_to_phones(http: httpx.Client) -> tuple[str, dict[str, bytes]]:
    """What KoboCollect gets: the form's version and each media file's bytes."""
    listing = http.get("/formList").text
    version = re.search(rf"<formID>{UID}</formID>.*?<version>(.*?)</version>", listing).group(1)
    manifest = http.get(re.search(r"<manifestUrl>(.*?)</manifestUrl>", listing).group(1)).text
    files = {}
    for name, url in re.findall(
        r"<filename>(.*?)</filename>.*?<downloadUrl>(.*?)</downloadUrl>", manifest
    ):
        files[name] = http.get(url).content
    return version, files


def redeploy(http: httpx.Client, version_id: str | None = None) -> httpx.Response:
    current = http.get(f"/api/v2/assets/{UID}/").json()["version_id"]
    body = {"active": True, "version_id": version_id or current}
    return http.patch(f"/api/v2/assets/{UID}/deployment/", json=body)


# ---- the simulator ---------------------------------------------------------------------------


def test_an_upload_is_listed_with_its_hash_and_a_name_is_unique(http: httpx.Client) -> None:
    made = upload(http)
    assert made.status_code == 201
    md5 = hashlib.md5(CSV_V1).hexdigest()
    assert made.json()["metadata"] == {
        "filename": "followups.csv",
        "mimetype": "text/csv",
        "hash": f"md5:{md5}",
    }
    again = upload(http, body=CSV_V2)
    assert again.status_code == 400 and again.json() == {"content": ["File already exists"]}
    listed = http.get(FILES, params={"file_type": "form_media"}).json()
    assert listed["count"] == 1 and listed["results"][0]["uid"] == made.json()["uid"]
    assert http.get(f"{FILES}{made.json()['uid']}/content/").content == CSV_V1


def test_a_base64_upload_and_what_is_refused(http: httpx.Client) -> None:
    encoded = "data:text/csv;base64," + base64.b64encode(CSV_V1).decode()
    body: dict[str, Any] = {
        "file_type": "form_media",
        "description": "d",
        "base64Encoded": encoded,
        "metadata": {"filename": "followups.csv"},
    }
    assert http.post(FILES, json=body).status_code == 201
    assert http.post(FILES, json=body).json() == {"base64Encoded": ["File already exists"]}
    exe = upload(http, name="setup.exe")
    assert exe.status_code == 400 and "MIME" in exe.json()["content"][0]
    assert http.post(FILES, json={"file_type": "form_media"}).json() == {
        "description": ["This field is required."]
    }
    assert httpx.get(http.base_url.join(FILES)).status_code == 401  # no token


def test_a_deleted_file_frees_its_name(http: httpx.Client) -> None:
    made = upload(http).json()
    assert http.delete(f"{FILES}{made['uid']}/").status_code == 204
    assert http.get(FILES).json()["count"] == 0
    assert upload(http, body=CSV_V2).status_code == 201


def test_phones_see_media_only_once_the_form_is_redeployed(http: httpx.Client) -> None:
    before, files = served_to_phones(http)
    assert files == {}
    upload(http)
    assert served_to_phones(http) == (before, {})  # uploaded, not deployed: nothing changes
    assert redeploy(http).status_code == 200
    after, files = served_to_phones(http)
    assert files == {"followups.csv": CSV_V1} and after != before
    assert redeploy(http, version_id="vSomeOtherVersion00000").status_code == 400


# ---- the client --------------------------------------------------------------------------------


def test_the_list_reaches_the_phones_once_and_is_left_alone_when_unchanged(
    served: tuple[KoboStore, str], http: httpx.Client, media: MediaStore, store: KoboStore
) -> None:
    with client(served[1]) as c:
        assert c.replace_media(UID, "followups.csv", CSV_V1, description="รายการติดตาม")
        version, files = served_to_phones(http)
        assert files == {"followups.csv": CSV_V1}
        assert not c.replace_media(UID, "followups.csv", CSV_V1, description="รายการติดตาม")
    assert served_to_phones(http)[0] == version  # no redeploy: phones do not re-download
    assert len(media.deployment(store.asset(UID)).files) == 1


def test_a_changed_list_replaces_the_old_file(
    served: tuple[KoboStore, str], http: httpx.Client, media: MediaStore, store: KoboStore
) -> None:
    with client(served[1]) as c:
        c.replace_media(UID, "followups.csv", CSV_V1, description="d")
        assert c.replace_media(UID, "followups.csv", CSV_V2, description="d")
        assert [f.md5 for f in c.media(UID)] == [hashlib.md5(CSV_V2).hexdigest()]
    assert served_to_phones(http)[1] == {"followups.csv": CSV_V2}


def test_a_run_that_stopped_before_redeploying_is_finished_without_a_second_upload(
    served: tuple[KoboStore, str], http: httpx.Client, media: MediaStore, store: KoboStore
) -> None:
    with client(served[1]) as c:
        c.upload(UID, "followups.csv", CSV_V1, description="d")  # then the run died
        assert served_to_phones(http)[1] == {}
        assert c.replace_media(UID, "followups.csv", CSV_V1, description="d")
    assert served_to_phones(http)[1] == {"followups.csv": CSV_V1}
    assert len(media.deployment(store.asset(UID)).files) == 1


def test_an_upload_whose_answer_is_lost_is_not_made_twice(
    served: tuple[KoboStore, str], http: httpx.Client, media: MediaStore, store: KoboStore
) -> None:
    calls = []

    def drop_the_upload(path: str) -> None:  # the third request to files/ is the POST
        if path == FILES:
            calls.append(path)
            if len(calls) == 3:
                store.faults.add(Fault("reset", target=FILES))

    store.faults.on_request(drop_the_upload)
    with client(served[1]) as c:
        assert c.replace_media(UID, "followups.csv", CSV_V1, description="d")
    assert store.faults.served == 1
    assert len(media.deployment(store.asset(UID)).files) == 1
    assert served_to_phones(http)[1] == {"followups.csv": CSV_V1}


def test_a_busy_server_is_retried(
    served: tuple[KoboStore, str], http: httpx.Client, store: KoboStore
) -> None:
    store.faults.add(Fault("status", 503, retry_after=0.01, target="/deployment/"), times=2)
    with client(served[1]) as c:
        assert c.replace_media(UID, "followups.csv", CSV_V1, description="d")
    assert store.faults.served == 2
    assert served_to_phones(http)[1] == {"followups.csv": CSV_V1}


def test_a_form_the_phones_cannot_see_is_a_clear_error(
    served: tuple[KoboStore, str], store: KoboStore
) -> None:
    store.asset(UID).deployment_status = "archived"
    with client(served[1]) as c, pytest.raises(KoboError, match="form list"):
        c.replace_media(UID, "followups.csv", CSV_V1, description="d")
