"""Officer files are written whole: under a temporary name, then renamed over the old one;
and a folder's record of what its files were made from, so a second run the same day rewrites
only the files whose content changed (`Held`)."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary name next to `path` to write to, renamed over `path` once written whole.

    Nothing half-written is ever under the final name (an officer opening it, a mail
    attaching it). The name is unique, so two runs writing the same file at once (the
    nightly run and an ingest run rewriting the day's lists) each replace it whole instead
    of writing into each other's temporary file. Not mkstemp: its files are private (0600).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_stem(name: str) -> str:
    """An officer id or an enumerator's name as a safe file name (they come from the config
    or a server, but a file name is a path)."""
    return re.sub(r"[^0-9A-Za-z_.-]", "_", name).lstrip(".") or "officer"


def write_text(path: Path, text: str) -> Path:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _code_version() -> str:
    """A new release may lay the files out anew (a checkout run without installing: "dev")."""
    try:
        return version("sammachip")
    except PackageNotFoundError:
        return "dev"


CODE_VERSION = _code_version()


class Held(NamedTuple):
    """What a folder's last run wrote for one owner of files (an officer, an enumerator): the
    fingerprint of what the files were made from, the files, and what else it noted of them."""

    fingerprint: str
    paths: list[Path]
    noted: list[Any]

    def current(self, fingerprint: str) -> bool:
        """The files are what `fingerprint` would make, and all still there."""
        return self.fingerprint == fingerprint and all(p.exists() for p in self.paths)


def read_held(record: Path) -> dict[str, Held]:
    """Owner → what the folder's last run wrote for them; nothing if the record is missing or
    unreadable (every file is written again)."""
    try:
        doc = json.loads(record.read_text(encoding="utf-8"))
        return {
            k: Held(v[0], [record.parent / Path(n).name for n in v[1]], list(v[2]))
            for k, v in doc.items()
        }
    except (OSError, ValueError, TypeError, IndexError, AttributeError):
        return {}


def write_held(record: Path, held: Mapping[str, Held]) -> Path:
    doc = {k: [h.fingerprint, [p.name for p in h.paths], list(h.noted)] for k, h in held.items()}
    return write_text(record, json.dumps(doc, indent=1))
