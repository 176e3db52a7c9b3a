"""Serve an ASGI app on loopback: in a background thread for tests, demos and benchmarks, or
in the foreground for a command. Shared by the simulators (and anything else we serve)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import uvicorn


class LoopbackServer(uvicorn.Server):
    """uvicorn.Server that signals when it is listening and can be stopped without waiting
    for its next 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        await super().startup(sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)  # type: ignore[union-attr]

    def stop(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._wake.set)


@contextmanager
def serve_in_thread(
    make_app: Callable[[str], Any],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str = "app",
    lifespan: str = "off",
) -> Iterator[str]:
    """Bind, start the app (built for its own base URL) in a thread, wait until it listens,
    yield the base URL; stop it cleanly on exit (with `lifespan="on"` the app's shutdown
    hooks run). No fixed sleeps."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP,
    # and without it keep-alive requests stall ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    url = f"http://{host}:{sock.getsockname()[1]}"
    # log_config=None: leave the host application's logging alone.
    config = uvicorn.Config(
        make_app(url),
        lifespan=lifespan,
        timeout_graceful_shutdown=5,
        log_config=None,
        access_log=False,
        log_level="warning",
    )
    server = LoopbackServer(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"{name}:{url}", daemon=True
    )
    thread.start()
    try:
        while not server.ready.wait(0.05):
            if not thread.is_alive():
                raise RuntimeError(f"{name} failed to start on {url}")
        yield url
    finally:
        server.stop()
        thread.join(timeout=10)
        sock.close()


def run_forever(app: Any, host: str, port: int) -> None:
    """Serve in the foreground until Ctrl-C (for `sammachip simulate …`)."""
    config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="info")
    asyncio.run(uvicorn.Server(config).serve())
