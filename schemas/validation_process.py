"""Validation in a process of its own, so that it runs on the second core beside the run.

A nightly's own process fetches pages and flattens them (Python holding the GIL); GX's import
and context (~3–5 s) and each suite run (~0.3 s fixed) would wait behind that work on a thread.
`ProcessRunner` starts a child that imports GX and builds the context while the run lists its
forms and fetches; each table's frame is sent to it (pickled: the frames hold Python objects,
and GX must see exactly the dtypes the in-process runner sees) and what `SuiteRunner.validate`
returns comes back. `submit` returns at once, so the next page is fetched and flattened while
the child validates; answers arrive in the order asked.

The child ends with the run: `close()` (the run's `finally`), or by itself when its parent is
gone (end of its pipe, or a new parent process id), whatever killed the parent. A child that
dies is said as a `ValidatorGone` naming the table and its exit code, never a hang: every wait
has a deadline. The next submission starts a new child.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pandas as pd

from sammachip.schemas.validation import EXPECTATIONS_DIR, SuiteResult, process_runner

START_TIMEOUT = 300.0  # GX's import and context: ~3–5 s idle, far more on a loaded machine
ANSWER_TIMEOUT = 600.0  # the child's silence while it owes an answer (a province batch: ~s)
MAX_PENDING = 8  # tables sent and not yet answered: bounds the frames held twice in memory
_POLL = 0.2  # how often a wait looks whether the child still lives


class ValidatorGone(RuntimeError):
    """The validation process ended, or stopped answering, while a table waited on it."""


@dataclass
class Pending:
    """One table sent to the child; `result()` waits for its answer (in the order sent)."""

    runner: ProcessRunner
    table: str
    done: bool = False
    value: Any = None
    error: BaseException | None = None
    validated: bool = field(default=False, repr=False)

    def result(self) -> SuiteResult:
        self.runner._wait_for(self)
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[no-any-return]


class ProcessRunner:
    """`SuiteRunner`'s interface (validate, tables, build_data_docs, batches_validated) with
    GX in a child process; `submit` for overlapping. Thread-safe; close it when the run ends
    (it is also a context manager). Handed to a Dask worker, it arrives as that worker's own
    in-process runner, as a `SuiteRunner` does."""

    def __init__(
        self,
        suites_dir: Path = EXPECTATIONS_DIR,
        *,
        start_timeout: float = START_TIMEOUT,
        answer_timeout: float = ANSWER_TIMEOUT,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._suites_dir = suites_dir
        self._start_timeout, self._answer_timeout = start_timeout, answer_timeout
        self._max_pending = max_pending
        self._send_lock = threading.Lock()  # a request and its place in `_pending` go together
        self._recv_lock = threading.Lock()  # one reader of answers at a time
        self._pending: deque[Pending] = deque()
        self._validated = 0
        self._closed = False
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._start()

    # ---- the child's lifecycle ----------------------------------------------------------

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self._child = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()), str(self._suites_dir)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self._conn = Connection(ours.detach())
        # Its first answer says whether GX started: owed to whoever waits first.
        self._pending.append(Pending(self, "(start of Great Expectations)"))
        self._ready = self._pending[-1]

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def close(self) -> None:
        """End the child (asked, then terminated, then killed) and wait for it."""
        self._closed = True
        child, conn = self._child, self._conn
        self._child = self._conn = None
        if conn is not None:
            conn.close()  # the child reads the end of its pipe and exits
        if child is not None:
            _end(child)
        for p in self._pending:
            if not p.done:
                p.done, p.error = True, ValidatorGone(f"validation of {p.table}: runner closed")
        self._pending.clear()

    def __enter__(self) -> ProcessRunner:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_child", None) is not None:
            self.close()

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return process_runner, (self._suites_dir,)

    # ---- SuiteRunner's interface ----------------------------------------------------------

    @property
    def batches_validated(self) -> int:
        return self._validated

    def tables(self) -> list[str]:
        return self._call("tables", "(list of tables)")  # type: ignore[no-any-return]

    def validate(self, table: str, frame: pd.DataFrame) -> SuiteResult:
        return self.submit(table, frame).result()

    def submit(self, table: str, frame: pd.DataFrame) -> Pending:
        """Send one table's batch; returns at once unless `max_pending` tables are unanswered
        (then it waits for the oldest)."""
        while True:
            with self._send_lock:
                waiting = [p for p in self._pending if not p.done]
                if len(waiting) < self._max_pending:
                    return self._send(Pending(self, table), ("validate", table, frame))
            self._wait_for(waiting[0])

    def build_data_docs(self, folder: Path) -> Path:
        """GX Data Docs of this child's validations, built by the child into `folder`."""
        return self._call("docs", "(Data Docs)", folder)  # type: ignore[no-any-return]

    # ---- requests and answers -------------------------------------------------------------

    def _call(self, kind: str, what: str, *args: Any) -> Any:
        with self._send_lock:
            pending = self._send(Pending(self, what), (kind, *args))
        return pending.result()

    def _send(self, pending: Pending, message: tuple[Any, ...]) -> Pending:
        if self._closed:
            raise ValidatorGone(f"validation of {pending.table}: the runner is closed")
        if self._child is None or self._child.poll() is not None:
            self._restart()
        assert self._conn is not None
        self._pending.append(pending)
        with contextlib.suppress(OSError):  # its end is closed: the wait says how it ended
            self._conn.send(message)
        return pending

    def _restart(self) -> None:
        """A new child after one died: the form that was waiting failed, the next may run."""
        child = self._child
        if child is not None:
            _end(child)
            for p in self._pending:  # answers it owed and nobody waited for yet
                if not p.done:
                    p.done, p.error = True, _gone(p.table, child)
        if self._conn is not None:
            self._conn.close()
        self._pending.clear()
        self._start()

    def _wait_for(self, target: Pending) -> None:
        with self._recv_lock:
            while not target.done:
                self._receive_one()

    def _receive_one(self) -> None:
        """Read the next answer into the oldest pending request, or fail them all."""
        head = self._pending[0]
        limit = self._start_timeout if head is self._ready else self._answer_timeout
        deadline = time.monotonic() + limit
        conn, child = self._conn, self._child
        assert conn is not None and child is not None
        while True:
            try:
                if conn.poll(_POLL):
                    answer = conn.recv()
                    break
            except (EOFError, OSError):
                self._fail_all(_gone(head.table, child))
                return
            if child.poll() is not None:
                self._fail_all(_gone(head.table, child))
                return
            if time.monotonic() > deadline:
                _end(child)
                self._fail_all(
                    ValidatorGone(
                        f"validation of {head.table}: the validation process gave no answer "
                        f"in {limit:.0f} s and was stopped"
                    )
                )
                return
        with self._send_lock:
            self._pending.popleft()
        status, value, validated = answer
        head.done = True
        if status == "ok":
            head.value, head.validated = value, validated
            self._validated += int(validated)
        elif head is self._ready:  # GX did not start: whatever waits is told why
            self._fail_all(value)
        else:
            head.error = value

    def _fail_all(self, error: BaseException) -> None:
        with self._send_lock:
            for p in self._pending:
                p.done, p.error = True, error
            self._pending.clear()


def _gone(table: str, child: subprocess.Popen[bytes]) -> ValidatorGone:
    try:
        code: int | None = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None
    how = f"exit code {code}" if code is not None and code >= 0 else f"signal {-(code or 0)}"
    if code is None:
        how = "no exit code (still ending)"
    return ValidatorGone(
        f"validation of {table}: the validation process (pid {child.pid}) ended ({how}); "
        "this form is not loaded — the next run validates it again"
    )


def _end(child: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    for stop in (lambda: None, child.terminate, child.kill):
        stop()
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


# ---- the child ------------------------------------------------------------------------------


def _serve(fd: int, suites_dir: Path) -> None:
    """Read requests on a thread (so the parent's sends never wait for a validation), answer
    them in order on this one. Ends when the parent closes its end or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    conn = Connection(fd)
    requests: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
    parent = os.getppid()
    threading.Thread(target=_read, args=(conn, requests), daemon=True).start()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    from sammachip.schemas.validation import SuiteRunner

    try:
        runner = SuiteRunner(suites_dir)
    except BaseException as err:  # said to the parent as GX's failure to start
        conn.send(("error", RuntimeError(f"Great Expectations could not start: {err}"), False))
        return
    conn.send(("ok", None, False))
    while (request := requests.get()) is not None:
        conn.send(_answer(runner, request))


def _answer(runner: Any, request: tuple[Any, ...]) -> tuple[str, Any, bool]:
    kind, *args = request
    try:
        if kind == "validate":
            before = runner.batches_validated
            result = runner.validate(*args)
            return "ok", result, runner.batches_validated > before
        if kind == "tables":
            return "ok", runner.tables(), False
        if kind == "docs":
            return "ok", runner.build_data_docs(*args), False
        return "error", ValueError(f"unknown request {kind!r}"), False
    except Exception as err:  # the parent raises it where it waits
        return "error", _portable(err), False


def _portable(err: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


def _read(conn: Connection, requests: queue.Queue[tuple[Any, ...] | None]) -> None:
    try:
        while True:
            requests.put(conn.recv())
    except (EOFError, OSError):
        os._exit(0)  # the parent closed its end, or is gone: nothing is left to answer


def _watch_parent(parent: int) -> None:
    """A parent killed while a process it forked holds our pipe open: no end-of-pipe comes."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]))
