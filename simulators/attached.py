"""State that an extension of a simulator keeps beside the simulator's own store (the Entity
Lists beside `OdkStore`, form media beside `KoboStore`), without the store knowing of it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

Owner = TypeVar("Owner")
State = TypeVar("State")


class Attached(Generic[Owner, State]):
    """`attached(owner)` is the one `State` of that owner, made by `make(owner)` on first use
    and dropped with the owner."""

    def __init__(self, make: Callable[[Owner], State]) -> None:
        self._make = make
        self._states: weakref.WeakKeyDictionary[Owner, State] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, owner: Owner) -> State:
        with self._lock:
            found = self._states.get(owner)
            if found is None:
                found = self._states[owner] = self._make(owner)
            return found
