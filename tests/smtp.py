"""A real SMTP server on loopback, for the tests that mail officers' lists (flows, reports)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from sammachip.reports.mailer import MailSettings


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
        return int(s.getsockname()[1])


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
