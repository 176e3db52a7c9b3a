"""The Kobo API v2 simulator in a process of its own, for the benchmarks.

A scenario that shares a process with the simulator measures the simulator too: at province
scale its store is ~0.9 GB of the scenario's peak RSS, and its page rendering competes for the
same GIL. Here the simulator generates the cohort, seeds its store and serves on a loopback port
in its own process; it prints one `READY {json}` line (URL, asset uids, submissions) and serves
until its standard input closes, so it never outlives the benchmark that started it.

    python bench/simulator.py [--villages N]     # stand-alone: READY line, then Ctrl-D stops it

Seeding is deterministic (seed, villages and reference date fixed), so the floor, the peers and
the pipeline fetch the same data. Beside the Kobo API the bench adds, under the same token:

    GET  /_bench/stats    what was served since the last reset (`?reset=1`: and reset)
    POST /_bench/submit   {"seed", "villages", "count", "received_at"}: a second cohort's first
                          `count` submissions arrive, as in a day's upload
    POST /_bench/edit     {"uids", "ids", "changes"}: Enketo-style edits (absent ids skipped)
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEED = 2568
TOKEN = "b" * 40  # a throwaway: the simulator only listens on loopback
TODAY = date(2026, 11, 24)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


# =========================================================================== the client side


@dataclass(frozen=True)
class Simulator:
    """A running simulator as a scenario sees it; JSON-able, to hand to scenario processes."""

    url: str
    token: str
    villages: int | None  # None: every village of Muang Sam Sip (the district scale)
    assets: dict[str, str]  # form id → asset uid
    submissions: int
    ready_s: float  # generating the cohort and seeding the store

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Simulator:
        return cls(**json.loads(text))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def _control(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        import httpx

        response = httpx.request(
            method, f"{self.url}/_bench/{path}", json=body, headers=self.headers, timeout=600
        )
        response.raise_for_status()
        return response.json()

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Requests served, server-side seconds and bytes since the last reset."""
        return self._control("GET", "stats?reset=1" if reset else "stats")

    def submit(self, seed: int, villages: int, count: int, received_at: datetime) -> int:
        body = {
            "seed": seed,
            "villages": villages,
            "count": count,
            "received_at": received_at.isoformat(),
        }
        return int(self._control("POST", "submit", body)["submitted"])

    def edit(self, uids: list[str], ids: list[int], changes: dict[str, Any]) -> int:
        body = {"uids": uids, "ids": ids, "changes": changes}
        return int(self._control("POST", "edit", body)["edited"])


@contextmanager
def running(villages: int | None) -> Iterator[Simulator]:
    """Start a simulator process, wait for it to be seeded and listening, stop it on exit."""
    cmd = [sys.executable, str(Path(__file__).resolve())]
    if villages is not None:
        cmd += ["--villages", str(villages)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the simulator did not start (exit code {proc.wait()})")
        yield Simulator(**json.loads(line.removeprefix("READY ")))
    finally:
        proc.stdin.close()  # its signal to stop
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# =========================================================================== the server side


class Meter:
    """What the Kobo API served, and the server's own time per request: from the request's
    arrival until its response starts. Pages are fully rendered by then; sending them waits on
    the client's reading, which is the client's cost, so it is left out."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = self.pages = self.bytes = 0
        self.seconds = 0.0

    def snapshot(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "requests": self.requests,
            "pages": self.pages,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "peak_rss_mb": usage.ru_maxrss / 1024,
        }

    def wrap(self, app: Asgi) -> Asgi:
        async def metered(scope: Scope, receive: Receive, send: Send) -> None:
            begun = time.perf_counter()
            self.requests += 1  # one event-loop thread: no lock needed
            self.pages += "/data" in scope["path"]

            async def counting(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self.seconds += time.perf_counter() - begun
                elif message["type"] == "http.response.body":
                    self.bytes += len(message.get("body", b""))
                await send(message)

            await app(scope, receive, counting)

        return metered


def bench_app(store: Any, token: str, today: date) -> Asgi:
    """The simulator's own app, metered, with the bench's control endpoints beside it."""
    from sammachip.simulators.kobo import create_app

    meter = Meter()
    kobo = meter.wrap(create_app(store, token))
    control = _control_app(store, token, today, meter)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_bench/"):
            await control(scope, receive, send)
        else:
            await kobo(scope, receive, send)

    return app


def _control_app(store: Any, token: str, today: date, meter: Meter) -> Asgi:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from sammachip.simulators.cohort import CohortSpec, generate_cohort
    from sammachip.simulators.kobo import asset_uid_for

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Any:
        async def answer(request: Request) -> Response:
            if request.headers.get("authorization") != f"Token {token}":
                return JSONResponse({"detail": "Invalid token."}, status_code=401)
            return await handler(request)

        return answer

    async def stats(request: Request) -> Response:
        body = meter.snapshot()
        if request.query_params.get("reset"):
            meter.reset()
        return JSONResponse(body)

    async def submit(request: Request) -> Response:
        spec = await request.json()
        # villages no history has (the province's last): new households, not re-registrations
        cohort = generate_cohort(
            CohortSpec(spec["seed"], spec["villages"], today=today, intake=True)
        )
        received = datetime.fromisoformat(spec["received_at"])
        new = cohort.submissions[: spec["count"]]
        for sub in new:
            store.submit(asset_uid_for(sub.form_id), sub.answers, received)
        return JSONResponse({"submitted": len(new)})

    async def edit(request: Request) -> Response:
        spec = await request.json()
        edited = 0
        for uid in spec["uids"]:
            for _id in spec["ids"]:
                with suppress(KeyError):  # ids run across assets: not every asset has each
                    store.edit(uid, _id, spec["changes"])
                    edited += 1
        return JSONResponse({"edited": edited})

    routes = [
        Route("/_bench/stats", guarded(stats)),
        Route("/_bench/submit", guarded(submit), methods=["POST"]),
        Route("/_bench/edit", guarded(edit), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def serve(villages: int | None, seed: int = SEED, today: date = TODAY) -> None:
    """Seed, serve, print the READY line, and serve until standard input closes."""
    sys.path.insert(0, str(ROOT))
    from sammachip.connectors.serving import serve_in_thread
    from sammachip.simulators.cohort import CohortSpec, generate_cohort
    from sammachip.simulators.kobo import KoboStore, seed_from_cohort

    started = time.perf_counter()
    store = KoboStore()
    assets = seed_from_cohort(store, generate_cohort(CohortSpec(seed, villages, today=today)))
    gc.freeze()  # the seeded store is long-lived: keep the collector from rescanning it
    ready_s = time.perf_counter() - started
    submissions = sum(store.count(uid) for uid in assets.values())
    app = bench_app(store, TOKEN, today)
    with serve_in_thread(lambda _url: app, name="kobo-simulator") as url:
        info = Simulator(url, TOKEN, villages, assets, submissions, ready_s)
        print("READY " + info.to_json(), flush=True)
        sys.stdin.read()  # EOF: the benchmark is done with us (or has died)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--villages",
        type=int,
        default=None,
        help="villages to generate (default: all of Muang Sam Sip)",
    )
    serve(parser.parse_args().villages)


if __name__ == "__main__":
    main()
