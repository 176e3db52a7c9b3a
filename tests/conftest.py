"""Shared test set-up: quiet, isolated Prefect; one GX context; a real SMTP server on loopback."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from warehouse.mailer import MailSettings

# Before anything imports Prefect: its home (SQLite DB) lives in a throwaway folder.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="sammachip-prefect-"))
for key, value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def suite_runner():  # type: ignore[no-untyped-def]
    """GX costs ~5 s to import: one context, every suite, for all tests that validate."""
    from schemas.validation import SuiteRunner

    return SuiteRunner()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real, temporary Prefect API for the tests that run flows (~10 s to start, once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


# ---- a real SMTP server on loopback ------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content
        msg = message_from_bytes(raw, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg, raw))  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, MailSettings]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield (
            inbox,
            MailSettings(
                host="127.0.0.1", port=controller.port, sender="cdd@example.org", security="none"
            ),
        )
    finally:
        controller.stop()
