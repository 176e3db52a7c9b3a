"""moto's S3 server on loopback, with a kill switch: the bucket itself SIGKILLs the process
writing under a prefix when that process is half-way through sending a chosen object — or,
the writer alive, fails chosen requests the way S3 does (503 `SlowDown`, 500 `InternalError`,
a dropped connection before or after the store acted on the request).

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
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Upload = Literal["data-part", "data-complete", "manifest"]
Read = Literal["data-get", "manifest-get"]
Kind = Upload | Read
# `slow-down`, `internal-error`: S3's own error answers (the store did nothing). `drop`: the
# connection closes once the request is read, before the store sees it. `drop-after`: the
# store acts on the request (an upload is stored, a commit made), then the connection closes
# with no answer — or, for a read, after half of the answer's body.
S3Fault = Literal["slow-down", "internal-error", "drop", "drop-after"]
S3_ERRORS = {
    "slow-down": ("503 Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal-error": (
        "500 Internal Server Error",
        "InternalError",
        "We encountered an internal error. Please try again.",
    ),
}
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


def request_kind(method: str, path: str, query: str) -> Kind | None:
    """An upload (`upload_kind`), or a read of a data file or a manifest (None: the rest —
    listings, HEADs, multipart set-up)."""
    if method == "GET" and path.endswith(".parquet"):
        return "data-get"
    if method == "GET" and "/_manifest/" in path:
        return "manifest-get"
    return upload_kind(method, path, query)


@dataclass(frozen=True)
class KillOnUpload:
    """SIGKILL the process whose pid is in `pid_file` at the `nth` `kind` request under
    `prefix` (the pid is read then: the process writes it as it starts)."""

    prefix: str
    kind: Upload
    nth: int
    pid_file: Path


@dataclass(frozen=True)
class FaultsOnRequest:
    """At the `nth` `kind` request under `prefix`, queue `faults`: they hit that request and
    the next ones of that kind under that prefix (its retries), one each."""

    prefix: str
    kind: Kind
    nth: int
    faults: tuple[S3Fault, ...]


class KillSwitch:
    """WSGI middleware in front of moto: counts every upload and read per prefix, fires armed
    kills and serves armed faults."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._armed: dict[tuple[str, Upload], KillOnUpload] = {}
        self._faults: dict[tuple[str, Kind], list[FaultsOnRequest]] = {}
        self._queued: dict[tuple[str, Kind], list[S3Fault]] = {}
        self.requests: Counter[tuple[str, Kind]] = Counter()  # (prefix, kind) → requests
        self.served: Counter[str] = Counter()  # prefix → faults served

    @property
    def uploads(self) -> Counter[tuple[str, Kind]]:
        return Counter({key: n for key, n in self.requests.items() if not key[1].endswith("-get")})

    def arm(self, kill: KillOnUpload) -> None:
        with self._lock:
            self._armed[kill.prefix, kill.kind] = kill

    def inject(self, faults: FaultsOnRequest) -> None:
        with self._lock:
            self._faults.setdefault((faults.prefix, faults.kind), []).append(faults)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        kind = request_kind(environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""))
        if kind is not None:
            prefix = path.split("/")[2] if path.count("/") >= 2 else ""  # /bucket/prefix/…
            with self._lock:
                self.requests[prefix, kind] += 1
                kill = self._armed.get((prefix, kind))  # type: ignore[call-overload]
                fire = kill is not None and self.requests[prefix, kind] == kill.nth
                fault = self._next_fault(prefix, kind)
            if fire:
                assert kill is not None
                return self._kill(kill, environ, start_response)
            if fault is not None:
                return self._fail(fault, environ, start_response)
        return self._app(environ, start_response)

    def _next_fault(self, prefix: str, kind: Kind) -> S3Fault | None:
        """The fault this request meets, if any (called with the lock held)."""
        n = self.requests[prefix, kind]
        queue = self._queued.setdefault((prefix, kind), [])
        for armed in self._faults.get((prefix, kind), []):
            if armed.nth == n:
                queue.extend(armed.faults)
        if not queue:
            return None
        self.served[prefix] += 1
        return queue.pop(0)

    def _fail(
        self, fault: S3Fault, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if fault == "drop-after":
            return self._drop_after(environ, start_response)
        _drain(environ)  # a keep-alive connection must not carry the body into the next request
        if fault == "drop":
            _hang_up(environ)
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return [b""]  # never arrives: the connection is gone
        status, code, message = S3_ERRORS[fault]
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>fault</RequestId></Error>"
        ).encode()
        start_response(
            status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _drop_after(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """moto answers in full (the upload is stored, the commit made); the client gets no
        answer to a write, and half of the body of a read."""
        answer: list[Any] = []
        body = b"".join(
            self._app(environ, lambda status, headers, *_: answer.extend([status, headers]))
        )
        if environ["REQUEST_METHOD"] != "GET":
            _hang_up(environ)
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return [b""]
        start_response(*answer)

        def half_then_hang_up() -> Iterator[bytes]:
            yield body[: len(body) // 2]
            _hang_up(environ)

        return half_then_hang_up()

    def _kill(
        self, kill: KillOnUpload, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length // 2)  # the writer has sent half of the object …
        os.kill(int(kill.pid_file.read_text()), signal.SIGKILL)  # … and dies
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return [b""]  # nobody reads it; moto never saw the request


def _drain(environ: dict[str, Any]) -> None:
    """Read the request's body to its end (declared length, or chunked)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        environ["wsgi.input"].read()


def _hang_up(environ: dict[str, Any]) -> None:
    """Close the client's connection with no answer (werkzeug then drops the request)."""
    environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)


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
    server = make_server("127.0.0.1", 0, switch, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).create_bucket(Bucket=bucket)
        yield Bucket(endpoint, bucket, switch)
    finally:
        server.shutdown()
        thread.join()
