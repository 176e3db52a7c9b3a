"""Retries shared by the server clients: which failures are worth another try, and how long
to wait (the server's Retry-After, else capped exponential backoff with full jitter)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")
TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class TransientError(RuntimeError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff_wait(state: RetryCallState, base: float, cap: float) -> float:
    """Honour Retry-After; otherwise capped exponential backoff with full jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        return min(exc.retry_after, cap)
    return random.uniform(0, min(cap, base * 2 ** (state.attempt_number - 1)))


def call_with_retries(
    call: Callable[[], T],
    *,
    attempts: int,
    base: float,
    cap: float,
    retry_on: type[Exception] = TransientError,
) -> T:
    """Run `call`, retrying `retry_on` errors with backoff; anything else propagates at once."""
    for attempt in Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, retry_on)),
        stop=stop_after_attempt(attempts),
        wait=lambda s: backoff_wait(s, base, cap),
        reraise=True,
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable")  # reraise=True: the last error propagates


def parse_utc(text: str | None) -> datetime:
    parsed = datetime.fromisoformat(text) if text else datetime.fromtimestamp(0, UTC)
    if parsed.tzinfo is None:  # as UTC; `combine` takes a fifth of `replace(tzinfo=)`'s time
        return datetime.combine(parsed, parsed.time(), UTC)
    return parsed.astimezone(UTC)
