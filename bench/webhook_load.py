"""Load check of the Kobo webhook receiver: N concurrent Kobo-shaped posts over loopback.
Figures, not pass/fail — except that every delivery must be landed exactly once.

    python bench/webhook_load.py --posts 2000 --concurrency 50

The receiver runs in its own process, as in production: basic auth, the durable landing spool
in a temporary folder (each delivery fsync'd, file and directory, before its 2xx), and events
batched to a stub of Prefect's `POST /api/events` served by this process. A share of the posts
are re-deliveries of earlier ones, sent concurrently with the rest (Kobo may deliver twice).

Checks: each unique submission answered 202 once and 200 on every re-delivery, one landing file
per submission holding exactly the bytes posted, no temporary files left, one event per landed
delivery. Prints accepted/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ASSET = "aLoadCheckHousehold0001"
PASSWORD = "load-check-password"


def kobo_doc(n: int) -> dict[str, Any]:
    """About 1.3 KB, like a household registration from the phone."""
    uuid = f"{n:08x}-1b2c-4d3e-8f40-{n:012x}"
    return {
        "_id": 100_000 + n,
        "formhub/uuid": "f0e1d2c3b4a5968778695a4b3c2d1e0f",
        "start": "2026-11-24T09:01:12.345+07:00",
        "end": "2026-11-24T09:14:51.002+07:00",
        "hh/village_code": "34140101",
        "hh/hh_code": f"34140101-{n:04d}",
        "hh/house_no": "๑๒",
        "head/name": "นางสมศรี ใจดี",
        "head/national_id": "1112034563562",
        "head/phone": "0812345678",
        "members": "4",
        "occupation": "cricket",
        "baseline_income": "6500",
        "location": "15.3012 104.7421 120 5",
        "__version__": "vAbCdEfGhIjKlMnOpQrStU",
        "meta/instanceID": f"uuid:{uuid}",
        "meta/rootUuid": f"uuid:{uuid}",
        "_xform_id_string": ASSET,
        "_uuid": uuid,
        "_attachments": [],
        "_status": "submitted_via_web",
        "_geolocation": [15.3012, 104.7421],
        "_submission_time": "2026-11-24T02:15:00",
        "_validation_status": {},
        "_submitted_by": "enumerator07",
        "_tags": [],
        "_notes": [],
    }


# =========================================================================== receiver process


def run_receiver(conn: Connection, landing: str, events_url: str) -> None:
    """Child process: serve the receiver until told to stop, then report event counters."""
    from sammachip.connectors.landing import Landing
    from sammachip.connectors.webhook import (
        BasicAuth,
        PrefectEvents,
        Receiver,
        StaticAssets,
        create_app,
        serve_in_thread,
    )

    events = PrefectEvents(events_url)
    receiver = Receiver(
        Landing(landing),
        StaticAssets(frozenset({ASSET})),
        BasicAuth("kobo", PASSWORD),
        events=events,
    )
    with serve_in_thread(create_app(receiver)) as url:
        conn.send(url)
        conn.recv()  # "stop"
    # After the lifespan shutdown flushed the queue.
    conn.send({**events.stats(), "cpu": _cpu_seconds()})


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def events_stub() -> tuple[Any, list[int]]:
    """A stand-in for Prefect's events endpoint: counts events per call."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    calls: list[int] = []

    async def events(request: Request) -> Response:
        calls.append(len(orjson.loads(await request.body())))
        return Response(status_code=204)

    return Starlette(routes=[Route("/api/events", events, methods=["POST"])]), calls


# =========================================================================== load


async def post_all(
    url: str, bodies: list[bytes], concurrency: int
) -> tuple[list[float], Counter[int]]:
    """`concurrency` keep-alive connections share the posts. Raw HTTP/1.1 on asyncio streams:
    httpx spends ~5 ms of CPU per request at this concurrency and would measure itself."""
    parts = urlsplit(url)
    auth = base64.b64encode(f"kobo:{PASSWORD}".encode()).decode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
    ).encode()
    todo: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        todo.put_nowait(body)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while not todo.empty():
            body = todo.get_nowait()
            start = time.perf_counter()
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status, close = await read_response(reader)
            latencies.append(time.perf_counter() - start)
            statuses[status] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status = int((await reader.readline()).split()[1])
    length, close = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and "close" in value.lower():
            close = True
    await reader.readexactly(length)
    return status, close


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def check_landing(landing: Path, sent: dict[str, bytes]) -> list[str]:
    """Problems found: every submission exactly once, byte for byte, nothing half-written."""
    folder = landing / "kobo" / ASSET
    files = {p.name: p for p in folder.glob("*.json")}
    problems = []
    if len(files) != len(sent):
        problems.append(f"{len(files)} files for {len(sent)} submissions")
    for name, body in sent.items():
        path = files.get(name)
        if path is None:
            problems.append(f"missing {name}")
        elif hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(body).digest():
            problems.append(f"{name} differs from what was posted")
    if leftovers := list(folder.glob(".*")):
        problems.append(f"{len(leftovers)} temporary files left")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000, help="posts in total")
    parser.add_argument("--concurrency", type=int, default=50, help="posts in flight")
    parser.add_argument(
        "--duplicates",
        type=float,
        default=0.1,
        help="share of posts that re-deliver an earlier submission",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from sammachip.connectors.webhook import serve_in_thread

    rng = random.Random(args.seed)
    unique = args.posts - int(args.posts * args.duplicates)
    docs = [orjson.dumps(kobo_doc(n)) for n in range(unique)]
    bodies = docs + [rng.choice(docs) for _ in range(args.posts - unique)]
    rng.shuffle(bodies)  # re-deliveries race their originals
    sent = {f"{d['_id']}_{d['_uuid']}.json": body for body in docs if (d := orjson.loads(body))}

    stub, event_calls = events_stub()
    with tempfile.TemporaryDirectory(prefix="webhook-load-") as tmp, serve_in_thread(stub) as api:
        landing = Path(tmp) / "landing"
        parent, child = mp.get_context("spawn").Pipe()
        proc = mp.get_context("spawn").Process(
            target=run_receiver, args=(child, str(landing), f"{api}/api"), daemon=True
        )
        proc.start()
        url = f"{parent.recv()}/hooks/kobo/{ASSET}"
        started, cpu_before = time.perf_counter(), _cpu_seconds()
        latencies, statuses = asyncio.run(post_all(url, bodies, args.concurrency))
        elapsed, client_cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
        parent.send("stop")
        event_stats = parent.recv()
        proc.join(30)
        problems = check_landing(landing, sent)

    expected = Counter({202: unique, 200: args.posts - unique})
    if statuses != expected:
        problems.append(f"answers {dict(statuses)}, expected {dict(expected)}")
    if sum(event_calls) != unique or event_stats["failed"] or event_stats["dropped"]:
        problems.append(f"events {sum(event_calls)} for {unique} deliveries: {event_stats}")

    ms = [x * 1000 for x in latencies]
    print(
        f"posts        {args.posts} ({unique} submissions + {args.posts - unique} re-deliveries)"
        f", concurrency {args.concurrency}"
    )
    print(f"answers      {dict(sorted(statuses.items()))}")
    print(
        f"throughput   {args.posts / elapsed:,.0f} posts/s, "
        f"{statuses[202] / elapsed:,.0f} accepted/s ({elapsed:.2f} s)"
    )
    print(
        f"latency ms   p50 {percentile(ms, 0.50):.1f}  p90 {percentile(ms, 0.90):.1f}  "
        f"p99 {percentile(ms, 0.99):.1f}  max {max(ms):.1f}"
    )
    print(f"events       {sum(event_calls)} in {len(event_calls)} calls to Prefect")
    print(
        f"cpu          receiver {event_stats['cpu']:.1f} s, load client {client_cpu:.1f} s "
        f"({os.cpu_count()} cores)"
    )
    print(f"landing      {'exactly once, byte for byte' if not problems else 'PROBLEMS'}")
    for problem in problems[:20]:
        print(f"  ! {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
