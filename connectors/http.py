"""What every server client shares about HTTP."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once per process: building it reads the whole CA
    bundle (~50 ms), and a run opens a client per form."""
    return httpx.create_ssl_context()
