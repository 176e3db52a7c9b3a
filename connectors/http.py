"""What every server client shares about HTTP."""

from __future__ import annotations

import functools
import ssl
from urllib.parse import urlsplit

import httpx


def tls_context(url: str) -> ssl.SSLContext:
    """The TLS context for a client of the server at `url`, shared by every client of the
    process. A verifying one reads the whole CA bundle (20–50 ms: more than a district's
    asset listing), so it is built once, and not at all for a server reached over plain http
    (a server on the office LAN or loopback): its clients only ask for paths under its own
    URL, so they never make a TLS connection."""
    if urlsplit(url).scheme.lower() == "http":
        return _never_used()
    return _verifying()


@functools.cache
def _verifying() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@functools.cache
def _never_used() -> ssl.SSLContext:
    # Were it ever used, it trusts no certificate authority: the handshake fails, never
    # goes unverified.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
