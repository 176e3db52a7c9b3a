"""The Kobo webhook receiver as its own process, for the kill trials (`test_webhook_kills.py`).

    python -m tests.reliability.webhook_child LANDING PORT ASSET[,ASSET…] [DIE_AT_WRITE]

The receiver is `connectors.webhook`'s app on uvicorn, as `sammachip webhook` serves it, with
the asset list given (no Kobo server to list it from) and no Prefect events. The password is
read from SAMMACHIP_WEBHOOK_PASSWORD. With DIE_AT_WRITE = n, the process SIGKILLs itself
half-way through the n-th landing write: the temporary file holds half of the body, fsync'd,
and the final name does not exist yet — a power cut or a kill -9 mid-`put`. The landing has
no failpoints of its own; this is the one place it gets one.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import BasicAuth, Receiver, StaticAssets, create_app

USERNAME = "kobo"
PASSWORD_ENV = "SAMMACHIP_WEBHOOK_PASSWORD"


def die_half_way_through_write(nth: int) -> None:
    """Make the `nth` call of `Landing._write_synced` (any thread) write half and die."""
    write: Callable[[Path, bytes], None] = Landing._write_synced
    calls = itertools.count(1)  # next() on a count is atomic under the GIL

    def dying(tmp: Path, body: bytes) -> None:
        if next(calls) != nth:
            return write(tmp, body)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.write(fd, body[: len(body) // 2])
        os.fsync(fd)  # the half is durable: it is what a restart finds
        os.kill(os.getpid(), signal.SIGKILL)

    Landing._write_synced = staticmethod(dying)  # type: ignore[method-assign,assignment]


def main(argv: list[str]) -> None:
    landing, port, assets = Path(argv[0]), int(argv[1]), frozenset(argv[2].split(","))
    if len(argv) > 3 and int(argv[3]) > 0:
        die_half_way_through_write(int(argv[3]))
    auth = BasicAuth(USERNAME, os.environ[PASSWORD_ENV])
    receiver = Receiver(Landing(landing), StaticAssets(assets), auth, events=None)
    config = uvicorn.Config(
        create_app(receiver),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_config=None,
        log_level="warning",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main(sys.argv[1:])
