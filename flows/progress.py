"""Progress bars for fetching (rich) when a person is watching a terminal; silent otherwise."""

from __future__ import annotations

import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class FetchProgress:
    """One bar per form: rows fetched of the count the server reported."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._bars: dict[str, int] = {}
        self._done: dict[str, int] = {}

    @classmethod
    def quiet(cls) -> FetchProgress:
        return cls(None)

    @classmethod
    def for_terminal(cls) -> FetchProgress:
        if not sys.stderr.isatty():
            return cls.quiet()
        progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        )
        progress.start()
        return cls(progress)

    def advance(self, form_id: str, rows: int, total: int) -> None:
        if self._progress is None:
            return
        done = self._done.get(form_id, 0) + rows
        self._done[form_id] = done
        if form_id not in self._bars:
            self._bars[form_id] = self._progress.add_task(form_id, total=total)
        # `count` is what is left above the cursor: total = already fetched + remaining.
        self._progress.update(
            self._bars[form_id], completed=done, total=max(total + done - rows, done)
        )

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
