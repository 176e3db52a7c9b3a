"""The durable landing spool for pushed submissions (webhook deliveries).

A delivery is kept as the exact bytes received, one file per delivery key, under

    <root>/<source>/<asset>/<key>.json

and it is durable before `put` returns: written to a temporary name, fsync'd, published under
its final name without ever replacing an existing one, and the directory fsync'd. A second
delivery of the same key finds the file and is absorbed. Files leave the spool only through
`remove` (after whatever consumed them has committed) or `set_aside` (unreadable ones).

This module knows nothing of the warehouse or of Kobo: keys and names are opaque, validated
strings, so nothing can be written outside `root`.
"""

from __future__ import annotations

import errno
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".json"
SET_ASIDE = "_set_aside"  # outside every <source> folder, so never listed as pending
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Filesystems without hard links (some network mounts) answer one of these to os.link.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def is_safe_name(name: str) -> bool:
    """A single path segment of letters, digits, '_' and '-': no dots, no separators."""
    return _SAFE.fullmatch(name) is not None


def _check(kind: str, name: str) -> str:
    if not is_safe_name(name):
        raise ValueError(f"unsafe landing {kind}: {name!r}")
    return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Landed:
    """One delivery waiting in the spool."""

    source: str
    asset: str
    key: str
    path: Path
    landed_ns: int  # mtime: the order deliveries arrived in

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


class Landing:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, source: str, asset: str) -> Path:
        return self.root / _check("source", source) / _check("asset", asset)

    def put(self, source: str, asset: str, key: str, body: bytes) -> bool:
        """Keep `body` durably; False if this key was already waiting (a re-delivery).

        Raises OSError when the bytes could not be made durable: the caller must not
        acknowledge the delivery then.
        """
        folder = self.folder(source, asset)
        final = folder / f"{_check('key', key)}{SUFFIX}"
        if final.exists():
            return False
        self._ensure_dir(folder)
        tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            self._write_synced(tmp, body)
            new = self._publish(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(folder)
        return new

    def pending(self, source: str) -> list[Landed]:
        """Every waiting delivery of a source, oldest first."""
        base = self.root / _check("source", source)
        if not base.is_dir():
            return []
        found: list[Landed] = []
        for asset_dir in base.iterdir():
            if not (is_safe_name(asset_dir.name) and asset_dir.is_dir()):
                continue
            for path in asset_dir.glob(f"*{SUFFIX}"):
                key = path.name[: -len(SUFFIX)]
                try:
                    stamp = path.stat().st_mtime_ns
                except FileNotFoundError:  # removed by a concurrent consumer
                    continue
                if is_safe_name(key):
                    found.append(Landed(source, asset_dir.name, key, path, stamp))
        return sorted(found, key=lambda f: (f.landed_ns, f.asset, f.key))

    def remove(self, files: Iterable[Landed]) -> int:
        """Drop consumed deliveries (call only after their consumer committed)."""
        folders: set[Path] = set()
        count = 0
        for f in files:
            try:
                f.path.unlink()
                count += 1
            except FileNotFoundError:
                pass
            folders.add(f.path.parent)
        for folder in folders:
            _fsync_dir(folder)
        return count

    def set_aside(self, f: Landed, reason: str) -> Path:
        """Move an unusable delivery out of the way, with a note saying why."""
        dest = self.root / SET_ASIDE / f.source / f.asset
        self._ensure_dir(dest)
        target = dest / f.path.name
        os.replace(f.path, target)
        (dest / f"{f.key}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        _fsync_dir(dest)
        _fsync_dir(f.path.parent)
        return target

    def clean_temp(self, source: str, older_than: float = 3600.0) -> int:
        """Delete temporary files a crashed writer left behind."""
        base = self.root / _check("source", source)
        cutoff = time.time() - older_than
        count = 0
        for tmp in base.glob("*/.*.tmp") if base.is_dir() else ():
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    count += 1
            except FileNotFoundError:
                continue
        return count

    # ---- internals ---------------------------------------------------------------------
    def _ensure_dir(self, folder: Path) -> None:
        """mkdir -p, and fsync the parent of each folder created so the entries survive a
        power cut."""
        if folder.is_dir():
            return
        created: list[Path] = []
        probe = folder
        while not probe.exists():
            created.append(probe)
            probe = probe.parent
        folder.mkdir(parents=True, exist_ok=True)
        for new in reversed(created):
            _fsync_dir(new.parent)

    @staticmethod
    def _write_synced(tmp: Path, body: bytes) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _publish(tmp: Path, final: Path) -> bool:
        """Give the synced temp file its final name, never replacing one: a hard link fails
        if the name exists, so two concurrent deliveries of one key land exactly once."""
        try:
            os.link(tmp, final)
            return True
        except FileExistsError:
            return False
        except OSError as err:
            if err.errno not in _NO_LINKS:
                raise
        # No hard links here: a rename may replace a concurrent twin (the same delivery).
        if final.exists():
            return False
        os.replace(tmp, final)
        return True
