"""Kill -9 of the webhook receiver mid-delivery. The receiver (`connectors.webhook`'s app on
uvicorn, in its own process: `webhook_child.py`) is SIGKILLed half-way through writing a
delivery to the landing area while other deliveries are in flight — some bodies only half
sent, some fully sent and waiting for their answer, some not yet connected. It is started
again on the same port, and the sender retries every delivery that got no 2xx, as Kobo's
REST Service retries. Then:

- every submission is in the landing area exactly once, byte for byte as sent;
- no half file is ever visible under a final name (a watcher reads every final file, the
  whole time, from the first delivery to the last);
- a delivery acknowledged before the kill was already durable (a retry of it is a duplicate);
- the half-written temporary file the kill left is ignored by the landing's readers, and the
  landing's own clean-up (`Landing.clean_temp`, run by every ingest) deletes it once stale.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import SOURCE, delivery_key
from sammachip.flows.serve import free_port
from sammachip.simulators.cohort import HOUSEHOLD, SESSION
from sammachip.simulators.kobo import KoboStore
from tests.reliability.helpers import seed_kobo
from tests.reliability.webhook_child import PASSWORD_ENV, USERNAME

pytestmark = pytest.mark.slow  # receivers killed mid-delivery

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "webhook-kill-trials"
DEADLINE = 20.0  # seconds any one wait may take before the test fails (never slept)
SENT_FIRST = 3  # delivered and acknowledged, one by one, before anything else is in flight
HALF_SENT = 2  # headers and half a body sent when the receiver dies
DIE_AT_WRITE = SENT_FIRST + 2  # the second landing write of the concurrent burst
SENDERS = 4  # concurrent deliveries in the burst (Kobo's REST Service posts in parallel)
STALE = 2 * 3600  # older than `clean_temp`'s default hour: a writer long dead


@dataclass(frozen=True)
class Delivery:
    asset: str
    key: str  # the landing's name for it: `_id`_`_uuid`
    body: bytes


@pytest.fixture(scope="module")
def deliveries() -> list[Delivery]:
    """Every household and session submission of the district, as Kobo's REST Service posts
    them (the data API's documents)."""
    store = KoboStore()
    uids = seed_kobo(store)
    docs = [store.get(uids[f], i) for f in (HOUSEHOLD, SESSION) for i in store.asset(uids[f]).ids]  # type: ignore[union-attr]
    out = []
    for doc in docs:
        submission_id, instance = delivery_key(doc)
        out.append(
            Delivery(doc["_xform_id_string"], f"{submission_id}_{instance}", orjson.dumps(doc))
        )
    return out


# ---- the receiver, in its own process -------------------------------------------------------


def until(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll `check()` until it is true; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, f"{what}: not within {deadline} s"


def healthy(port: int, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "the receiver exited while starting"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def receiver(
    landing: Path, port: int, assets: set[str], die_at_write: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """The receiver process, serving once this yields; SIGTERMed on the way out if alive."""
    env = {**os.environ, PASSWORD_ENV: PASSWORD, "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "tests.reliability.webhook_child",
        str(landing),
        str(port),
        ",".join(sorted(assets)),
        str(die_at_write),
    ]
    process = subprocess.Popen(args, cwd=ROOT, env=env)
    try:
        until(lambda: healthy(port, process), "the receiver answering /healthz")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=DEADLINE)


# ---- the sender (Kobo's REST Service) -------------------------------------------------------


def deliver(port: int, d: Delivery) -> int | None:
    """POST one delivery; its status, or None if no answer came (the receiver died)."""
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/hooks/kobo/{d.asset}",
            content=d.body,
            auth=(USERNAME, PASSWORD),
            timeout=DEADLINE,
            headers={"Content-Type": "application/json"},
        )
    except httpx.TransportError:
        return None
    return response.status_code


def send_half(port: int, d: Delivery) -> socket.socket:
    """A delivery whose sender declared the whole body and sent only half of it so far."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    credentials = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    head = (
        f"POST /hooks/kobo/{d.asset} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Basic {credentials}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(d.body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + d.body[: len(d.body) // 2])
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """What came back on a half-sent delivery's connection (b"": none, it was cut)."""
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
    finally:
        sock.close()


def burst(port: int, batch: list[Delivery]) -> dict[str, int | None]:
    with ThreadPoolExecutor(SENDERS) as pool:
        return dict(
            zip((d.key for d in batch), pool.map(lambda d: deliver(port, d), batch), strict=True)
        )


# ---- what the landing area holds ------------------------------------------------------------


def finals(landing: Landing) -> dict[str, bytes]:
    """Every delivery under its final name, read whole."""
    return {f.key: f.read_bytes() for f in landing.pending(SOURCE)}


def temporaries(landing: Landing) -> list[Path]:
    return sorted((landing.root / SOURCE).glob("*/.*.tmp"))


class Watcher(threading.Thread):
    """Reads every final file over and over while deliveries land: any that differs from
    what was sent under that key — half a body — is recorded."""

    def __init__(self, landing: Landing, sent: dict[str, bytes]) -> None:
        super().__init__(name="landing-watcher", daemon=True)
        self.landing, self.sent = landing, sent
        self.stop = threading.Event()
        self.torn: list[str] = []
        self.reads = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for path in (self.landing.root / SOURCE).glob("*/*.json"):
                try:
                    body = path.read_bytes()
                except FileNotFoundError:
                    continue
                self.reads += 1
                if body != self.sent.get(path.stem):
                    self.torn.append(path.name)
            self.stop.wait(0.005)  # a scan every few ms, not a spin on a 2-core box


# ---- the trial ------------------------------------------------------------------------------


def test_a_receiver_killed_mid_delivery_then_restarted_lands_every_submission_once(
    deliveries: list[Delivery], tmp_path: Path
) -> None:
    root, port = tmp_path / "landing", free_port()
    landing, sent = Landing(root), {d.key: d.body for d in deliveries}
    assets = {d.asset for d in deliveries}
    first, half, rest = (
        deliveries[:SENT_FIRST],
        deliveries[SENT_FIRST : SENT_FIRST + HALF_SENT],
        deliveries[SENT_FIRST + HALF_SENT :],
    )
    watcher = Watcher(landing, sent)
    watcher.start()
    try:
        with receiver(root, port, assets, die_at_write=DIE_AT_WRITE) as doomed:
            answers = {d.key: deliver(port, d) for d in first}
            assert set(answers.values()) == {202}
            sockets = [send_half(port, d) for d in half]
            answers |= burst(port, rest)  # its second write kills the receiver
            assert doomed.wait(timeout=DEADLINE) == -signal.SIGKILL
            assert [answer_of(s) for s in sockets] == [b""] * HALF_SENT  # cut, unanswered
            answers |= dict.fromkeys((d.key for d in half), None)
        acked = {k for k, status in answers.items() if status in (200, 202)}
        # After the kill: what was acknowledged is there whole; the rest may be; the write the
        # kill cut short is half a temporary file that no reader lists.
        after_kill = finals(landing)
        assert acked <= after_kill.keys()
        assert all(body == sent[key] for key, body in after_kill.items())
        assert len(after_kill) < len(deliveries), "the kill came after every delivery landed"
        stale = temporaries(landing)
        assert stale, "the kill left no half-written temporary file"
        # `.{key}.{random}.tmp`: a delivery not yet published — the one the kill cut in half,
        # and any other a thread of the receiver was writing (whole or not) at that instant.
        held = {path: path.read_bytes() for path in stale}
        keys = {path: path.name.split(".")[1] for path in stale}
        assert all(sent[keys[p]].startswith(body) for p, body in held.items())
        assert any(len(body) < len(sent[keys[p]]) for p, body in held.items())

        with receiver(root, port, assets):
            retried = burst(port, [d for d in deliveries if d.key not in acked])
            twice = deliver(port, first[0])  # Kobo "may still deliver twice"
    finally:
        watcher.stop.set()
        watcher.join()

    assert twice == 200
    assert retried == {k: 200 if k in after_kill else 202 for k in retried}
    assert finals(landing) == sent  # every submission, once, byte for byte
    assert watcher.torn == [] and watcher.reads > 0  # never a half file under a final name
    # The clean-up spares a fresh temporary file (it may be a live receiver's write) …
    assert landing.clean_temp(SOURCE) == 0 and temporaries(landing) == stale
    for path in stale:  # … and deletes it once older than any write can take
        os.utime(path, (time.time() - STALE, time.time() - STALE))
    assert landing.clean_temp(SOURCE) == len(stale)
    assert temporaries(landing) == [] and finals(landing) == sent
    print(
        f"{len(deliveries)} deliveries: {len(acked)} acknowledged before the kill, "
        f"{len(after_kill)} landed, {len(stale)} temporary file(s) left; "
        f"{len(retried)} retried; {watcher.reads} reads of final files, none torn"
    )
