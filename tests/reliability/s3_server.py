"""moto's S3 server on loopback, with a kill switch: the bucket itself SIGKILLs the process
writing under a prefix when that process is half-way through sending a chosen object.

A data file reaches S3 as a multipart upload (create, one PUT per part, complete) and the
manifest as one conditional PUT. S3Storage has failpoints around the manifest's PUT only, so
"killed mid data file" is made here, at the server: the switch reads half of the part's body
(the writer has sent at least that much), kills the writer, and never lets moto see the
request — as S3 discards an upload whose connection died. `data-complete` kills the writer
just before its upload is completed (every part sent, no object yet).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Upload = Literal["data-part", "data-complete", "manifest"]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def upload_kind(method: str, path: str, query: str) -> Upload | None:
    """Which write of a warehouse a request is (None: anything else, reads included)."""
    if path.endswith(".parquet"):
        if method == "PUT":
            return "data-part"  # a part of a multipart upload, or a whole small object
        if method == "POST" and "uploadId=" in query:
            return "data-complete"
    if method == "PUT" and "/_manifest/" in path:
        return "manifest"
    return None


@dataclass(frozen=True)
class KillOnUpload:
    """SIGKILL the process whose pid is in `pid_file` at the `nth` `kind` request under
    `prefix` (the pid is read then: the process writes it as it starts)."""

    prefix: str
    kind: Upload
    nth: int
    pid_file: Path


class KillSwitch:
    """WSGI middleware in front of moto: counts every upload per prefix and fires armed kills."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._armed: dict[tuple[str, Upload], KillOnUpload] = {}
        self.uploads: Counter[tuple[str, Upload]] = Counter()  # (prefix, kind) → requests

    def arm(self, kill: KillOnUpload) -> None:
        with self._lock:
            self._armed[kill.prefix, kill.kind] = kill

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:  # fmt: skip
        path = environ.get("PATH_INFO", "")
        kind = upload_kind(environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""))
        if kind is not None:
            prefix = path.split("/")[2] if path.count("/") >= 2 else ""  # /bucket/prefix/…
            with self._lock:
                self.uploads[prefix, kind] += 1
                kill = self._armed.get((prefix, kind))
                fire = kill is not None and self.uploads[prefix, kind] == kill.nth
            if fire:
                assert kill is not None
                return self._kill(kill, environ, start_response)
        return self._app(environ, start_response)

    def _kill(self, kill: KillOnUpload, environ: dict[str, Any], start_response: Callable[..., Any]
              ) -> Iterable[bytes]:  # fmt: skip
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length // 2)  # the writer has sent half of the object …
        os.kill(int(kill.pid_file.read_text()), signal.SIGKILL)  # … and dies
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return [b""]  # nobody reads it; moto never saw the request


@dataclass(frozen=True)
class Bucket:
    endpoint: str
    name: str
    switch: KillSwitch

    def uri(self, prefix: str) -> str:
        return f"s3://{self.name}/{prefix}"


@contextmanager
def serve_s3(bucket: str) -> Iterator[Bucket]:
    """moto's S3 server behind a kill switch, on a free loopback port, with `bucket` made."""
    import boto3
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    switch = KillSwitch(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, switch, threaded=True,
                         request_handler=MotoRequestHandler)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test"
                     ).create_bucket(Bucket=bucket)  # fmt: skip
        yield Bucket(endpoint, bucket, switch)
    finally:
        server.shutdown()
        thread.join()
