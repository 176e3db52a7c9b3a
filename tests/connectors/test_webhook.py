"""The Kobo REST Service receiver, at app level: every answer it can give, and why.

Fast: Starlette's TestClient in-process, a real uvicorn on loopback only where streaming
matters, and Prefect's events endpoint replaced by an httpx MockTransport that records calls.
"""

from __future__ import annotations

import base64
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

with warnings.catch_warnings():  # Starlette nudges towards httpx2; the project pins httpx
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import (
    EVENT_RECEIVED,
    BasicAuth,
    HeaderAuth,
    IncompleteAssetList,
    PrefectEvents,
    Receiver,
    RefreshingAssets,
    StaticAssets,
    WebhookConfigError,
    WebhookSettings,
    create_app,
    serve_in_thread,
)

ASSET = "aHouseholdAsset0000001"
PASSWORD = "s3cret:with-colon"  # a colon in the password must survive the user:pass split


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


GOOD = {**basic("kobo", PASSWORD), "Content-Type": "application/json"}


def kobo_doc(_id: int = 101, uuid: str = "0d3c5b1e-6f1a-4c53-9d1e-5a8f2b7c9e01") -> dict[str, Any]:
    """A submission as Kobo's REST Service posts it: the data-API document."""
    return {
        "_id": _id,
        "formhub/uuid": "f0e1d2c3b4a5968778695a4b3c2d1e0f",
        "hh/hh_code": "34140101-07",
        "head/name": "นางสมศรี ใจดี",
        "__version__": "vAbCdEfGhIjKlMnOpQrStU",
        "meta/instanceID": f"uuid:{uuid}",
        "meta/rootUuid": f"uuid:{uuid}",
        "_xform_id_string": ASSET,
        "_uuid": uuid,
        "_attachments": [],
        "_status": "submitted_via_web",
        "_geolocation": [None, None],
        "_submission_time": "2026-11-24T03:15:00",
        "_validation_status": {},
        "_submitted_by": None,
    }


@dataclass
class PrefectStub:
    """Records what would have reached Prefect's `POST /api/events`."""

    status: int = 204
    calls: list[list[dict[str, Any]]] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.status == 0:
            raise httpx.ConnectError("connection refused", request=request)
        self.calls.append(orjson.loads(request.content))
        return httpx.Response(self.status)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for call in self.calls for e in call]


@dataclass
class Harness:
    landing: Landing
    prefect: PrefectStub
    receiver: Receiver

    def files(self) -> list[Path]:
        return [f.path for f in self.landing.pending("kobo")]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    prefect = PrefectStub()
    events = PrefectEvents(
        "http://prefect.test/api", transport=httpx.MockTransport(prefect.handler), linger=0
    )
    landing = Landing(tmp_path / "landing")
    receiver = Receiver(
        landing,
        StaticAssets(frozenset({ASSET})),
        BasicAuth("kobo", PASSWORD),
        max_body_bytes=4096,
        events=events,
    )
    return Harness(landing, prefect, receiver)


@pytest.fixture
def client(harness: Harness) -> Iterator[TestClient]:
    with TestClient(create_app(harness.receiver), raise_server_exceptions=False) as c:
        yield c


def post(
    client: TestClient, body: Any, headers: dict[str, str] | None = None, asset: str = ASSET
) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(f"/hooks/kobo/{asset}", content=content, headers=headers or GOOD)


# ------------------------------------------------------------------ accepted and duplicates


def test_a_new_submission_is_landed_then_acknowledged_202(
    client: TestClient, harness: Harness
) -> None:
    body = orjson.dumps(kobo_doc())
    response = post(client, body)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "asset": ASSET, "_id": "101"}
    (path,) = harness.files()
    assert path.read_bytes() == body  # exactly what Kobo sent
    assert path.name == "101_0d3c5b1e-6f1a-4c53-9d1e-5a8f2b7c9e01.json"


def test_a_redelivery_is_absorbed_200_and_raises_no_second_event(
    harness: Harness, tmp_path: Path
) -> None:
    with TestClient(create_app(harness.receiver)) as client:
        assert post(client, kobo_doc()).status_code == 202
        again = post(client, kobo_doc())
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len(harness.files()) == 1
    assert len(harness.prefect.events) == 1


def test_an_edit_of_the_same_submission_is_a_new_delivery(client: TestClient, harness: Harness):
    post(client, kobo_doc(uuid="0d3c5b1e-0000-4c53-9d1e-5a8f2b7c9e01"))
    post(client, kobo_doc(uuid="0d3c5b1e-1111-4c53-9d1e-5a8f2b7c9e01"))  # _uuid changes on edit
    assert len(harness.files()) == 2


def test_each_landed_submission_emits_a_prefect_event_for_its_form(harness: Harness) -> None:
    from prefect.events import Event  # the server's own schema accepts what we send

    with TestClient(create_app(harness.receiver)) as client:
        for n in range(25):
            post(client, kobo_doc(_id=n, uuid=f"uuid-{n}"))
    events = [Event.model_validate(e) for e in harness.prefect.events]
    assert len(events) == 25
    assert {e.event for e in events} == {EVENT_RECEIVED}
    assert {e.resource.id for e in events} == {f"sammachip.form.{ASSET}"}
    assert events[0].payload == {"submission_id": "0", "uuid": "uuid-0"}
    assert "นาง" not in str(harness.prefect.calls)  # ids only: no answers leave the machine


def test_events_of_a_burst_share_calls_to_prefect(harness: Harness) -> None:
    harness.receiver.events = PrefectEvents(
        "http://prefect.test/api",
        transport=httpx.MockTransport(harness.prefect.handler),
        linger=0.05,
        batch_max=10,
    )
    with TestClient(create_app(harness.receiver)) as client:
        for n in range(25):
            post(client, kobo_doc(_id=n, uuid=f"uuid-{n}"))
    assert len(harness.prefect.events) == 25
    assert all(len(call) <= 10 for call in harness.prefect.calls)


@pytest.mark.parametrize("failure", [500, 0], ids=["prefect-500", "prefect-down"])
def test_a_failed_event_never_fails_the_delivery(harness: Harness, failure: int) -> None:
    harness.prefect.status = failure
    events = harness.receiver.events
    assert events is not None
    with TestClient(create_app(harness.receiver)) as client:
        response = post(client, kobo_doc())
    assert response.status_code == 202
    assert len(harness.files()) == 1
    assert events.stats()["failed"] == 1


def test_without_prefect_configured_deliveries_are_still_landed(harness: Harness) -> None:
    harness.receiver.events = None
    with TestClient(create_app(harness.receiver)) as client:
        assert post(client, kobo_doc()).status_code == 202
    assert len(harness.files()) == 1


# ------------------------------------------------------------------ 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("kobo", "wrong"),
        basic("someone", PASSWORD),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer s3cret"},
    ],
    ids=["none", "wrong-password", "wrong-user", "garbage", "no-colon", "other-scheme"],
)
def test_unauthenticated_posts_get_401_and_land_nothing(
    client: TestClient, harness: Harness, headers: dict[str, str]
) -> None:
    response = post(client, kobo_doc(), {**headers, "Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated"}
    assert response.headers["www-authenticate"].startswith("Basic")
    assert harness.files() == []


def test_authentication_is_checked_before_the_asset_is_looked_up(client: TestClient) -> None:
    # An outsider learns nothing about which assets exist.
    response = post(client, kobo_doc(), {"Content-Type": "application/json"}, asset="aUnknown")
    assert response.status_code == 401


def test_a_secret_header_is_the_other_way_kobo_can_authenticate(harness: Harness) -> None:
    harness.receiver.auth = HeaderAuth("X-Sammachip-Secret", PASSWORD)
    with TestClient(create_app(harness.receiver)) as client:
        ok = {"X-Sammachip-Secret": PASSWORD, "Content-Type": "application/json"}
        assert post(client, kobo_doc(), ok).status_code == 202
        wrong = {"X-Sammachip-Secret": "nope", "Content-Type": "application/json"}
        assert post(client, kobo_doc(_id=2), wrong).status_code == 401
        assert post(client, kobo_doc(_id=3), GOOD).status_code == 401  # basic is not enough


def test_secrets_compare_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert not BasicAuth("kobo", PASSWORD)(httpx.Headers(basic("intruder", PASSWORD)))
    assert len(calls) == 2  # the password is compared even when the user is already wrong
    assert not HeaderAuth("X-S", "abc")(httpx.Headers({"X-S": "abd"}))
    assert len(calls) == 3


def test_auth_objects_never_show_their_secret() -> None:
    assert PASSWORD not in repr(BasicAuth("kobo", PASSWORD))
    assert PASSWORD not in repr(HeaderAuth("X-S", PASSWORD))


@pytest.mark.parametrize(
    "make",
    [
        lambda: BasicAuth("kobo", ""),
        lambda: HeaderAuth("X-S", ""),
        lambda: BasicAuth("kobo", "รหัสผ่าน"),  # cannot travel in a header
        lambda: HeaderAuth("X-S", "line\nbreak"),
    ],
    ids=["empty-password", "empty-secret", "thai-password", "control-char"],
)
def test_unusable_secrets_are_refused_at_start(make: Callable[[], object]) -> None:
    with pytest.raises(WebhookConfigError):
        make()


# ------------------------------------------------------------------ 404, 415, 413, 400


@pytest.mark.parametrize("asset", ["aSomeOtherAsset", "..", "a.b", "%2e%2e", "a%2Fb"])
def test_unknown_or_malformed_assets_get_404_and_nothing_is_written(
    client: TestClient, harness: Harness, asset: str, tmp_path: Path
) -> None:
    response = post(client, kobo_doc(), asset=asset)
    assert response.status_code == 404
    assert "error" in response.json()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "form"])
def test_a_body_that_is_not_json_by_content_type_gets_415(
    client: TestClient, harness: Harness, content_type: str | None
) -> None:
    headers = dict(basic("kobo", PASSWORD))
    if content_type == "form":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif content_type:
        headers["Content-Type"] = content_type
    response = post(client, kobo_doc(), headers)
    assert response.status_code == 415
    assert harness.files() == []


def test_json_with_a_charset_or_a_json_suffix_type_is_accepted(client: TestClient) -> None:
    for n, ctype in enumerate(["application/json; charset=utf-8", "application/vnd.kobo+json"]):
        headers = {**basic("kobo", PASSWORD), "Content-Type": ctype}
        assert post(client, kobo_doc(_id=n), headers).status_code == 202


def test_a_nonsense_content_length_gets_400(harness: Harness) -> None:
    # HTTP servers reject this before the app; behind another ASGI server it must not 503.
    app = ReadCounter(create_app(harness.receiver))
    with TestClient(app) as client:  # type: ignore[arg-type]
        headers = {**GOOD, "Content-Length": "²".encode("latin-1")}  # isdigit(), not int()
        response = client.post(f"/hooks/kobo/{ASSET}", content=b"{}", headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert app.read == 0


def test_a_declared_length_over_the_limit_gets_413_before_reading(
    client: TestClient, harness: Harness
) -> None:
    response = post(client, b"{" + b" " * 5000 + b"}")
    assert response.status_code == 413
    assert harness.files() == []


class ReadCounter:
    """ASGI wrapper counting the request-body bytes the app actually pulled."""

    def __init__(self, app: Any) -> None:
        self.app, self.read = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting() -> Any:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


def test_a_streamed_body_is_cut_off_at_the_limit_not_read_to_the_end(harness: Harness) -> None:
    counter = ReadCounter(create_app(harness.receiver))
    chunks = [b"[" + b" " * 4095] + [b" " * 4096] * 255  # 1 MiB, chunked: no Content-Length

    with serve_in_thread(counter) as url:  # type: ignore[arg-type]
        response = httpx.post(f"{url}/hooks/kobo/{ASSET}", content=iter(chunks), headers=GOOD)
    assert response.status_code == 413
    # uvicorn hands over what it buffered (up to its 64 KiB flow-control mark plus one socket
    # read) in one message; the receiver stops there instead of reading the whole MiB.
    assert counter.read < 512 * 1024
    assert harness.files() == []


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_is_closed(
    harness: Harness,
) -> None:
    """A client that sends its headers and part of the body, then nothing: today's kind of
    connection held open forever (one per stalled client) is answered and ended."""
    harness.receiver.body_timeout = 0.5
    doc = orjson.dumps(kobo_doc())
    head = (
        f"POST /hooks/kobo/{ASSET} HTTP/1.1\r\nHost: receiver\r\n"
        f"Authorization: {GOOD['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(doc)}\r\n\r\n"
    ).encode()
    with serve_in_thread(create_app(harness.receiver)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            started = time.monotonic()
            conn.sendall(head + doc[:10])  # and then stall
            answer = b""
            while chunk := conn.recv(4096):  # until the receiver closes the connection
                answer += chunk
            waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 0.5 s" in answer
    assert 0.5 <= waited < 5
    assert harness.files() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"_id": 1, "_uuid": ', "malformed JSON"),
        (b"\xff\xfe{}", "malformed JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (orjson.dumps({"fields": kobo_doc()}), "no integer _id"),  # a payload_template wrap
        (orjson.dumps({**kobo_doc(), "_id": "12a"}), "no integer _id"),
        (orjson.dumps({**kobo_doc(), "_id": True}), "no integer _id"),
        (orjson.dumps({**kobo_doc(), "_id": "๑๒"}), "no integer _id"),  # Thai digits
        (orjson.dumps({**kobo_doc(), "_id": -5}), "no integer _id"),
        (orjson.dumps({**kobo_doc(), "_uuid": None, "meta/instanceID": None}), "no usable _uuid"),
        (orjson.dumps({**kobo_doc(), "_uuid": "../../x"}), "no usable _uuid"),
        (orjson.dumps({**kobo_doc(), "_xform_id_string": "aOther"}), "belongs to asset"),
        (b'{"_id": 1, "deep": ' + b"[" * 65 + b"]" * 65 + b"}", "nested more than 64 levels"),
        (orjson.dumps({**kobo_doc(), "meta/instanceID": ["uuid:x"]}), "meta/instanceID is not"),
        (orjson.dumps({**kobo_doc(), "start": 1764}), "start is not text"),
        (orjson.dumps({**kobo_doc(), "_submission_time": "2026-13-01"}), "_submission_time"),
        (orjson.dumps({**kobo_doc(), "_validation_status": {"uid": []}}), "_validation_status"),
    ],
)
def test_bodies_that_are_not_a_kobo_submission_get_400(
    client: TestClient, harness: Harness, body: bytes, message: str
) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert harness.files() == []


def test_the_instance_id_stands_in_for_a_missing_uuid(client: TestClient, harness: Harness):
    doc = {**kobo_doc(), "meta/instanceID": "uuid:abc-123"}
    del doc["_uuid"]
    assert post(client, doc).status_code == 202
    assert harness.files()[0].name == "101_abc-123.json"


# ------------------------------------------------------------------ 503: never 2xx unkept


def test_a_landing_failure_answers_503_so_kobo_retries(tmp_path: Path, harness: Harness) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the landing folder should be")
    harness.receiver.landing = Landing(blocker / "landing")
    with TestClient(create_app(harness.receiver)) as client:
        response = post(client, kobo_doc())
        health = client.get("/healthz")
    assert response.status_code == 503
    assert "retry" in response.json()["error"]
    assert harness.prefect.events == []  # nothing announced that was not kept
    assert health.status_code == 503


def test_an_unexpected_error_answers_503_and_the_receiver_keeps_serving(
    client: TestClient, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> bool:
        raise RuntimeError("bug")

    monkeypatch.setattr(harness.landing, "put", broken)
    assert post(client, kobo_doc()).status_code == 503
    monkeypatch.undo()
    assert post(client, kobo_doc()).status_code == 202


def test_when_the_asset_list_cannot_be_read_it_answers_503(harness: Harness) -> None:
    def kobo_down() -> list[str]:
        raise httpx.ConnectError("kobo unreachable")

    harness.receiver.assets = RefreshingAssets(kobo_down)
    with TestClient(create_app(harness.receiver)) as client:
        assert post(client, kobo_doc()).status_code == 503


# ------------------------------------------------------------------ asset catalogue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lookup_returning(*answers: list[str] | Exception) -> tuple[Callable[[], list[str]], list[int]]:
    calls: list[int] = []

    def lookup() -> list[str]:
        calls.append(1)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return lookup, calls


def knows(assets: RefreshingAssets, uid: str) -> bool | None:
    return anyio.run(assets.knows, uid)


def test_a_form_deployed_later_is_found_by_a_rate_limited_relist() -> None:
    lookup, calls = lookup_returning(["a1"], ["a1", "a2"])
    clock = Clock()
    assets = RefreshingAssets(lookup, min_interval=60, clock=clock)
    assets.refresh()
    clock.now = 61
    assert knows(assets, "a2") is True
    assert knows(assets, "a3") is False
    assert knows(assets, "a4") is False
    assert len(calls) == 2  # misses within a minute do not re-list again


def test_a_partial_listing_says_cannot_tell_for_what_it_lacks() -> None:
    lookup, _ = lookup_returning(IncompleteAssetList("server b down", ["a1"]))
    assets = RefreshingAssets(lookup, clock=Clock())
    assets.refresh()
    assert knows(assets, "a1") is True
    assert knows(assets, "b1") is None  # perhaps on the server that is down: 503


def test_a_failed_relist_keeps_the_last_good_list() -> None:
    lookup, _ = lookup_returning(["a1"], httpx.ConnectError("down"))
    clock = Clock()
    assets = RefreshingAssets(lookup, min_interval=1, clock=clock)
    assets.refresh()
    clock.now = 5
    assert knows(assets, "zz") is False
    assert knows(assets, "a1") is True


# ------------------------------------------------------------------ health and settings


def test_healthz_reports_ok_and_event_counters(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert set(response.json()["events"]) == {"sent", "failed", "dropped", "queued"}


def test_other_paths_and_methods_get_short_json_errors(client: TestClient) -> None:
    assert client.get(f"/hooks/kobo/{ASSET}").status_code == 405
    assert client.get("/nope").json() == {"error": "not found"}


def test_header_auth_reads_its_secret_from_the_variable_it_names() -> None:
    s = WebhookSettings(auth="header", header="X-Kobo-Key", secret_env="OFFICE_HOOK_SECRET")
    auth = s.authenticator({"OFFICE_HOOK_SECRET": "k"})
    assert isinstance(auth, HeaderAuth) and auth.header == "X-Kobo-Key"
    assert auth({"x-kobo-key": "k"}) and not auth({"x-kobo-key": "K"})


def test_a_missing_secret_names_the_variable_to_set() -> None:
    with pytest.raises(WebhookConfigError, match="SAMMACHIP_WEBHOOK_PASSWORD"):
        WebhookSettings().authenticator({})
    with pytest.raises(WebhookConfigError, match="basic"):
        WebhookSettings(auth="none")  # type: ignore[arg-type]
