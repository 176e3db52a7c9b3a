"""Where the warehouse's bytes live: a local folder or an S3-compatible bucket.

Both offer the same few operations; what differs is how a commit is made exclusive and
atomic. Locally: a temporary file, fsync, then `os.link` to the version's name (fails if the
name exists) under an `flock` writer lock. On S3: a conditional PUT (`If-None-Match: *`), which
the store accepts for exactly one writer of a version — optimistic concurrency, no lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sammachip.warehouse import failpoints


class VersionExists(Exception):
    """Another writer committed this version first."""


class WarehouseError(RuntimeError):
    """The warehouse cannot be read or written; the message says what to do."""


NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


@contextmanager
def _room_for(path: Path) -> Iterator[None]:
    """A full disk (or quota, or file-size limit) as an error that says what it means for
    the warehouse and what to do; other I/O errors pass unchanged."""
    try:
        yield
    except OSError as err:
        if err.errno not in NO_ROOM:
            raise
        raise WarehouseError(
            f"no room to write {path} ({err.strerror}): nothing of this run was committed and "
            "the warehouse is as the last run left it — free space on that disk "
            "(`sammachip vacuum` deletes file versions no longer read) and run the job again"
        ) from err


class Storage(Protocol):
    fs: pafs.FileSystem
    uri: str

    def path(self, rel: str) -> str: ...
    def list(self, prefix: str) -> list[str]: ...
    def read_text(self, rel: str) -> str: ...
    def write_table(self, rel: str, table: pa.Table) -> None: ...
    def create_exclusive(self, rel: str, text: str) -> None: ...
    def delete(self, rel: str) -> None: ...
    def age_seconds(self, rel: str) -> float: ...
    def size(self, rel: str) -> int: ...
    def lock(self) -> AbstractContextManager[None]: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)
        self.fs = pafs.LocalFileSystem()

    def path(self, rel: str) -> str:
        return str(self.root / rel)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def read_text(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def write_table(self, rel: str, table: pa.Table) -> None:
        path = self.root / rel
        with _room_for(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, compression="zstd")
        if failpoints.armed("data-file-mid"):  # a writer killed half-way through a file
            with open(path, "r+b") as f:
                f.truncate(path.stat().st_size // 2)
            failpoints.die()
        with open(path, "rb") as f:
            os.fsync(f.fileno())

    def create_exclusive(self, rel: str, text: str) -> None:
        final = self.root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        failpoints.failpoint("before-manifest")
        with _room_for(tmp), open(tmp, "w", encoding="utf-8") as out:
            if failpoints.armed("manifest-mid"):
                out.write(text[: len(text) // 2])
                out.flush()
                failpoints.die()
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        failpoints.failpoint("manifest-written")
        try:
            os.link(tmp, final)  # the commit: atomic, and refuses an existing version
        except FileExistsError:
            raise VersionExists(rel) from None
        finally:
            tmp.unlink(missing_ok=True)
        failpoints.failpoint("after-commit")
        _fsync_dir(final.parent)

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    def age_seconds(self, rel: str) -> float:
        import time

        return time.time() - (self.root / rel).stat().st_mtime

    def size(self, rel: str) -> int:
        return (self.root / rel).stat().st_size

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "_lock", "a+") as handle:
            # flock is released by the kernel when the holder dies: no stale lock after kill -9.
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Ceph …). Credentials come from the usual AWS
    variables; SAMMACHIP_S3_ENDPOINT (e.g. http://127.0.0.1:9000) points at a non-AWS store."""

    def __init__(self, uri: str) -> None:
        parts = urlsplit(uri)
        self.uri = uri
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        endpoint = os.environ.get("SAMMACHIP_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        options: dict[str, object] = {"region": region}
        if endpoint:
            ep = urlsplit(endpoint)
            options |= {"endpoint_override": ep.netloc, "scheme": ep.scheme or "https"}
        self.fs = pafs.S3FileSystem(**options)  # type: ignore[arg-type]
        import boto3

        self._s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def path(self, rel: str) -> str:
        return f"{self.bucket}/{self._key(rel)}"

    def list(self, prefix: str) -> list[str]:
        selector = pafs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        start = len(self.path(""))
        return sorted(
            i.path[start:].lstrip("/")
            for i in self.fs.get_file_info(selector)
            if i.type == pafs.FileType.File
        )

    def read_text(self, rel: str) -> str:
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read().decode("utf-8")

    def write_table(self, rel: str, table: pa.Table) -> None:
        try:
            pq.write_table(table, self.path(rel), filesystem=self.fs, compression="zstd")
        except OSError as err:  # pyarrow's S3 errors, after its own retries
            raise self._not_committed(rel, err) from err

    def create_exclusive(self, rel: str, text: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        failpoints.failpoint("before-manifest")
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=self._key(rel),
                Body=text.encode(),
                IfNoneMatch="*",
                ContentType="application/json",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in {"PreconditionFailed", "412"}:
                raise self._not_committed(rel, err) from err
            # boto3 retries a PUT whose answer was lost; if the first try had landed, the retry
            # finds the version taken by this very run: that is a commit, not a lost race.
            if self._holds(rel, text):
                return
            raise VersionExists(rel) from None
        except BotoCoreError as err:  # connection lost past the retries: did it land?
            if self._holds(rel, text):
                return
            raise self._not_committed(rel, err) from err
        failpoints.failpoint("after-commit")

    def _holds(self, rel: str, text: str) -> bool:
        """Whether the bucket holds exactly `text` at `rel` (a manifest names its run)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()
        except (ClientError, BotoCoreError):  # unreadable: not known to be ours
            return False
        return bool(body == text.encode())

    def _not_committed(self, rel: str, err: Exception) -> WarehouseError:
        return WarehouseError(
            f"could not write {self.path(rel)} ({err}): nothing of this run was committed and "
            "the warehouse is as the last run left it — check the bucket's endpoint, "
            "credentials and health, and run the job again"
        )

    def delete(self, rel: str) -> None:
        self.fs.delete_file(self.path(rel))

    def age_seconds(self, rel: str) -> float:
        import time

        info = self.fs.get_file_info(self.path(rel))
        return time.time() - info.mtime.timestamp() if info.mtime else 0.0

    def size(self, rel: str) -> int:
        return int(self.fs.get_file_info(self.path(rel)).size or 0)

    @contextmanager
    def lock(self) -> Iterator[None]:
        yield  # optimistic: the conditional PUT of the next version decides


def storage_for(root: str | Path) -> Storage:
    text = str(root)
    if text.startswith("s3://"):
        return S3Storage(text)
    if "://" in text and not text.startswith("file://"):
        raise ValueError(f"unsupported warehouse location {text!r}: use a folder or s3://bucket/…")
    return LocalStorage(Path(text.removeprefix("file://")))
