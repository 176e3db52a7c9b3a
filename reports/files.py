"""Officer files are written whole: under a temporary name, then renamed over the old one."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
