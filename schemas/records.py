"""The one submission record every connector produces and everything downstream consumes.

Kobo and ODK Central describe the same facts differently; this record is where they meet, so
`schemas/`, `warehouse/` and the marts never need to know which server a row came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

Source = Literal["kobo", "odk"]
ReviewStatus = Literal["approved", "not_approved", "on_hold", "rejected", "edited", "has_issues"]


def payload_hash(payload: dict[str, Any]) -> str:
    """A stable content hash: key order and whitespace never make two equal payloads differ,
    and neither does an answer sent as null rather than left out (nor a group holding only
    such answers). ODK Central shows every row through the current form version: a version
    that adds questions sends them as null on every old row, which is no new answer.

    A payload with nothing to leave out hashes exactly as it did before nulls were left out,
    so only hashes of payloads holding a null or an empty group changed (see
    `warehouse.load.upgrade_payload_hashes`)."""
    text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    if b'":null' in text or b'":{}' in text:  # an answer or group to leave out, perhaps
        text = _without_unanswered(payload, text)
    return hashlib.sha256(text).hexdigest()


# Kobo's review state of a submission nobody reviewed: the one empty group of most payloads.
_UNREVIEWED = b'"_validation_status":{}'


def _without_unanswered(payload: dict[str, Any], text: bytes) -> bytes:
    """The sorted dump of `_answered(payload)`, without the walk in the common case. In
    compact JSON a dict's null or empty value always follows `":` (a list item never does; in
    a string the quote is escaped, which can only add a match): a Kobo payload whose one such
    match is the top-level empty `_validation_status` is its dump without that member — cut
    out of the bytes with one of its commas, as a dump of the dict without the key reads."""
    if (
        b'":null' not in text
        and text.count(b'":{}') == 1
        and payload.get("_validation_status") == {}
    ):
        at = text.find(_UNREVIEWED)
        end = at + len(_UNREVIEWED)
        if text[end : end + 1] == b",":
            return text[:at] + text[end + 1 :]  # a member follows: its comma goes too
        if text[at - 1 : at] == b",":
            return text[: at - 1] + text[end:]  # the last member: the comma before it
        return text[:at] + text[end:]  # the only member: `{}` is left
    return orjson.dumps(_answered(payload), option=orjson.OPT_SORT_KEYS)


def _answered(value: Any) -> Any:
    """`value` without null answers and groups left empty by them; list items keep their
    place (a repeat's third instance stays the third)."""
    if isinstance(value, dict):
        kept = {k: _answered(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [_answered(v) for v in value]
    return value


def submission_key(source: str, server: str, form_uid: str, submission_id: str) -> str:
    """Business key of a submission: one row per key in the clean tables. `server` is the
    server's configured name, which stays when its URL changes (a new port, alias or proxy)."""
    return f"{source}:{server}:{form_uid}:{submission_id}"


@dataclass(frozen=True, slots=True)
class Submission:
    """One version of one submission, as received from a server."""

    source: Source
    server: str  # the server's name in the config (its identity), e.g. "kf"; never its URL
    form_uid: str  # Kobo asset uid or ODK "project/xmlFormId"
    form_id: str  # the registry's form id, e.g. "sammachip_household"
    submission_id: str  # Kobo `_id`, ODK `__id`: stable across edits
    instance_id: str  # this version's instance id: changes on every edit
    root_uuid: str | None
    version: str | None  # form version the phone used
    submitted_at: datetime  # server receive time, UTC
    device_start: str | None
    device_end: str | None
    review_status: str | None
    payload: dict[str, Any] = field(repr=False)
    deleted: bool = False
    # Derived once: every submission is looked up by both several times on its way in (at
    # province scale, recomputing them cost ~2 s of a backfill).
    key: str = field(init=False, repr=False, compare=False)
    hash: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = submission_key(self.source, self.server, self.form_uid, self.submission_id)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "hash", payload_hash(self.payload))
