"""What every source's batches share: a batch is made with the garbage collector's young
generation collected less often, and whoever consumes it runs at the process's usual rate."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from sammachip.connectors.sources import Batches, made_with_fewer_collections


def recording(rates: list[int], n: int) -> Batches:
    for i in range(n):
        rates.append(gc.get_threshold()[0])  # as the batch is made
        yield [], n - i - 1


def test_a_batch_is_made_collecting_less_and_consumed_at_the_usual_rate() -> None:
    usual = gc.get_threshold()
    made: list[int] = []
    consumed = [gc.get_threshold()[0] for _ in made_with_fewer_collections(recording(made, 3))]
    assert made == [100_000] * 3
    assert consumed == [usual[0]] * 3
    assert gc.get_threshold() == usual


def test_a_source_that_fails_mid_batch_leaves_the_usual_rate() -> None:
    usual = gc.get_threshold()

    def failing() -> Iterator[tuple[list, int]]:
        yield [], 1
        raise ConnectionError("the server went away")

    batches = made_with_fewer_collections(failing())
    next(batches)
    with pytest.raises(ConnectionError):  # said to the run, as before
        next(batches)
    assert gc.get_threshold() == usual


def test_forms_synced_on_threads_at_once_leave_the_usual_rate_when_the_last_is_done() -> None:
    usual = gc.get_threshold()
    both_inside = threading.Barrier(2)
    rates: dict[str, list[int]] = {"a": [], "b": []}

    def form(name: str) -> Batches:
        both_inside.wait(timeout=10)  # both threads are making a batch now
        rates[name].append(gc.get_threshold()[0])
        yield [], 0

    def sync(name: str) -> None:
        for _ in made_with_fewer_collections(form(name)):
            pass

    threads = [threading.Thread(target=sync, args=(name,)) for name in rates]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert rates == {"a": [100_000], "b": [100_000]}
    assert gc.get_threshold() == usual
