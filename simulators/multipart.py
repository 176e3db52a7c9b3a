"""Reading a `multipart/form-data` body with the standard library (the simulators need no
multipart package): what Kobo's file uploads and a phone's OpenRosa submissions send."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Any


def multipart_fields(content_type: str, body: bytes) -> dict[str, tuple[str | None, Any]]:
    """name → (filename, value): bytes for a file part, text for a plain field."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    out: dict[str, tuple[str | None, Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        out[str(name)] = (filename, payload if filename else payload.decode())
    return out
