"""Fixtures of the flow tests."""

from tests.smtp import smtp  # noqa: F401  (a fixture: a real SMTP server on loopback)
