"""Fault injection for the simulators: make the next requests fail the way real servers and
proxies do, so retries, backoff and atomic commits can be tested over real HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

FaultKind = Literal["status", "reset", "truncate", "slow", "non_json"]
MAX_DELAY = 5.0  # a `slow` fault never holds a test longer than this
# What a proxy or captive portal answers in place of the API, with a cheerful 200.
PROXY_PAGE = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"


@dataclass(frozen=True)
class Fault:
    """One failure. `status`: an HTTP error (429/5xx/401 …) with an optional Retry-After;
    `reset`: the connection drops mid-body; `truncate`: a 200 whose JSON body is cut short;
    `slow`: the real answer, but only after `delay` seconds (past a client's timeout);
    `non_json`: a 200 whose body is a proxy's HTML page."""

    kind: FaultKind = "status"
    status: int = 503
    retry_after: float | None = None
    target: str | None = None  # only requests whose path contains this (e.g. an asset uid)
    delay: float = 1.0  # `slow` only; capped at MAX_DELAY


RequestHook = Callable[[str], None]


class FaultPlan:
    """A queue of faults consumed one per matching request (thread-safe), and hooks that see
    every request first (to change the server between two pages, or arm faults mid-sync)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._hooks: list[RequestHook] = []
        self.served = 0  # faults delivered so far

    def on_request(self, hook: RequestHook) -> None:
        """Call `hook(path)` at the start of every request, before a fault is chosen (so
        faults it adds apply to this very request). It runs on the server's thread."""
        with self._lock:
            self._hooks.append(hook)

    def add(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([fault] * times)

    def clear(self) -> None:
        """Drop queued faults and hooks."""
        with self._lock:
            self._queue.clear()
            self._hooks.clear()

    def take(self, path: str) -> Fault | None:
        with self._lock:
            hooks = list(self._hooks)
        for hook in hooks:  # outside the lock: a hook may add faults
            hook(path)
        with self._lock:
            for i, fault in enumerate(self._queue):
                if fault.target is None or fault.target in path:
                    self.served += 1
                    return self._queue.pop(i)
        return None


Handler = Callable[[Request], Awaitable[Response]]


async def respond(fault: Fault, request: Request, handler: Handler) -> Response:
    """The faulty response that stands in for `handler`'s real one."""
    if fault.kind == "status":
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        return Response(
            b'{"detail": "simulated failure"}', fault.status, headers, "application/json"
        )
    if fault.kind == "non_json":
        return Response(PROXY_PAGE, 200, media_type="text/html")
    if fault.kind == "slow":
        await asyncio.sleep(min(fault.delay, MAX_DELAY))
        return await handler(request)
    real = await handler(request)
    body = bytes(real.body)
    if fault.kind == "truncate":
        return Response(body[: len(body) // 2], 200, media_type="application/json")

    async def cut_off() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        raise ConnectionResetError("simulated connection reset")

    # Declaring the full length and then dying mid-body is what a dropped connection looks like.
    return StreamingResponse(
        cut_off(), 200, {"Content-Length": str(len(body))}, media_type="application/json"
    )


def with_faults(plan_of: Callable[[], FaultPlan], answer: Handler) -> Handler:
    """`answer`, unless the store's current plan has a fault queued for this request's path
    (looked up per request: a store may replace its plan when reset)."""

    async def endpoint(request: Request) -> Response:
        fault = plan_of().take(request.url.path)
        return await (respond(fault, request, answer) if fault else answer(request))

    return endpoint
