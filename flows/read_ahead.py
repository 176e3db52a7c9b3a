"""The run's forms fetched and flattened ahead, on a thread, while the run waits for GX.

A nightly in one process loads its forms in the registry's order, each after what the
forms before it staged (cross-form checks). What it waits on meanwhile — GX starting and
validating in its own process (`schemas.validation_process`) — leaves this process idle; a
thread fetches the next forms' pages and flattens them then, holding at most `ahead` ×
`[sync] batch_size` submissions (and one batch more) that the run has not taken yet.

Only the fetch and the flattening run ahead: which versions are new, the cross-form checks,
the duplicate checks and every write stay in the run's order on its own thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sammachip.connectors.sources import FormSource
from sammachip.flows.settings import Settings
from sammachip.schemas.batch import flatten_ahead
from sammachip.schemas.records import Submission
from sammachip.warehouse.store import Transaction

AHEAD = 2  # full batches read ahead of the one being loaded (many more small ones)
_WAIT = 0.5  # how often a blocked side looks whether the other gave up


@dataclass
class _End:
    error: BaseException | None = None


class ReadAhead:
    """Fetches `forms` in order on a thread (from the first `pages` on); `pages(form)` gives
    one form's batches as its `batches()` would (its errors raised there), its cursor
    advanced in `cursor(form)`. A context manager: the thread stops when the block ends."""

    def __init__(
        self,
        tx: Transaction,
        forms: list[FormSource],
        settings: Settings,
        now: datetime,
        full_rescan: bool,
        ahead: int = AHEAD,
    ) -> None:
        self._forms = forms
        # Each form's cursor as the transaction holds it: only that form's own sync moves it.
        self._cursors = {f.cursor_key: dict(tx.cursor(f.cursor_key) or {}) for f in forms}
        self._args = (settings.sync, now, full_rescan)
        # A full rescan re-reads what the warehouse holds: flattening it ahead would be waste.
        self._flatten = None if full_rescan else (tx.run_id, now)
        self._items: queue.Queue[tuple[int, Any]] = queue.Queue()
        self._budget, self._held = ahead * settings.sync.batch_size, 0  # submissions
        self._room = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def cursor(self, form: FormSource) -> dict[str, Any]:
        return self._cursors[form.cursor_key]

    def pages(self, form: FormSource) -> Iterator[tuple[list[Submission], int]]:
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        index = self._forms.index(form)
        while True:
            at, item = self._take()
            if at < index:
                continue  # the rest of a form whose load failed
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self, grace: float = 10.0) -> None:
        """Stop reading ahead. A page being fetched is not interrupted: after `grace` s the
        thread is left to end at its next step (it starts no process and writes nothing)."""
        self._stop.set()
        deadline = time.monotonic() + grace
        while self._thread.ident is not None and self._thread.is_alive():
            with self._room:
                self._room.notify_all()  # a fetch waiting for room sees the stop
            self._thread.join(_WAIT)
            if time.monotonic() > deadline:
                return

    def _take(self) -> tuple[int, Any]:
        while True:
            try:
                at, item = self._items.get(timeout=_WAIT)
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("the read-ahead thread ended early") from None
                continue
            if not isinstance(item, _End):
                with self._room:
                    self._held -= len(item[0])
                    self._room.notify_all()
            return at, item

    def _run(self) -> None:
        for at, form in enumerate(self._forms):
            if self._stop.is_set():
                return
            try:
                self._read(at, form)
                self._items.put((at, _End()))
            except BaseException as err:  # said where the run loads this form
                self._items.put((at, _End(err)))

    def _read(self, at: int, form: FormSource) -> None:
        source = form.batches(self._cursors[form.cursor_key], *self._args)
        while self._wait_for_room():
            item = next(source, None)
            if item is None:
                return
            subs, remaining = item
            if self._flatten is not None:
                subs = flatten_ahead(subs, *self._flatten)
            with self._room:
                self._held += len(subs)
            self._items.put((at, (subs, remaining)))

    def _wait_for_room(self) -> bool:
        """Whether to read on: false once the run stopped reading."""
        with self._room:
            while self._held >= self._budget and not self._stop.is_set():
                self._room.wait(_WAIT)
        return not self._stop.is_set()
