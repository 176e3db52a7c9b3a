"""The one submission record every connector produces and everything downstream consumes.

Kobo and ODK Central describe the same facts differently; this record is where they meet, so
`schemas/`, `warehouse/` and the marts never need to know which server a row came from.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal, NamedTuple

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
    first = _UNANSWERED.search(text)  # scanning the dump costs as much as making it: once
    if first is not None:  # an answer or group to leave out, perhaps
        text = _without_unanswered(payload, text, first)
    return hashlib.sha256(text).hexdigest()


# In compact JSON a dict's null or empty value always follows `":` (a list item never does;
# in a string the quote is escaped, which can only add a match).
_UNANSWERED = re.compile(rb'":(?:null|\{\})')
# Kobo's review state of a submission nobody reviewed: the one empty group of most payloads.
_UNREVIEWED = b'"_validation_status":{}'


def _without_unanswered(payload: dict[str, Any], text: bytes, first: re.Match[bytes]) -> bytes:
    """The sorted dump `text` of `payload` as that of `_answered(payload)`, without the walk
    in the common cases: when the payload's own null and empty members account for every
    match of `_UNANSWERED` (the `first` found), nothing deeper has one to leave out.

    A Kobo payload whose one such member is the empty `_validation_status` is its dump
    without that member — cut out of the bytes with one of its commas, as a dump of the dict
    without the key reads. Other top-level ones (an anonymous submission's `_submitted_by`
    null) are left out of a second dump."""
    at = first.start() - len(_UNREVIEWED) + len(b'":{}')
    if (
        at >= 0
        and text.startswith(_UNREVIEWED, at)
        and payload.get("_validation_status") == {}
        and _UNANSWERED.search(text, first.end()) is None
    ):
        end = first.end()
        if text[end : end + 1] == b",":
            return text[:at] + text[end + 1 :]  # a member follows: its comma goes too
        if text[at - 1 : at] == b",":
            return text[: at - 1] + text[end:]  # the last member: the comma before it
        return text[:at] + text[end:]  # the only member: `{}` is left
    # Most answers are non-empty text: `v or` keeps them without the two comparisons.
    answered = {k: v for k, v in payload.items() if v or (v is not None and v != {})}
    if len(payload) - len(answered) == len(_UNANSWERED.findall(text)):
        return orjson.dumps(answered, option=orjson.OPT_SORT_KEYS)
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


class _Fields(NamedTuple):
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
    payload: dict[str, Any]
    deleted: bool
    # Derived once: every submission is looked up by both several times on its way in (at
    # province scale, recomputing them cost ~2 s of a backfill).
    key: str
    hash: str


class Submission(_Fields):
    """One version of one submission, as received from a server; made with the fields
    above `key` (`deleted` defaults to False), its key and payload hash derived.

    Immutable, as a tuple: every fetched row makes one, and a tuple is made in a fifth of
    the time a frozen dataclass takes (which sets each field through `object.__setattr__`)."""

    __slots__ = ()

    def __new__(
        cls,
        source: Source,
        server: str,
        form_uid: str,
        form_id: str,
        submission_id: str,
        instance_id: str,
        root_uuid: str | None,
        version: str | None,
        submitted_at: datetime,
        device_start: str | None,
        device_end: str | None,
        review_status: str | None,
        payload: dict[str, Any],
        deleted: bool = False,
    ) -> Submission:
        key = submission_key(source, server, form_uid, submission_id)
        hashed = payload_hash(payload)
        return tuple.__new__(
            cls,
            (source, server, form_uid, form_id, submission_id, instance_id, root_uuid, version,
             submitted_at, device_start, device_end, review_status, payload, deleted, key, hashed),
        )  # fmt: skip

    def __repr__(self) -> str:
        """Without the payload: it holds national IDs, and a record may reach a log line."""
        return f"Submission(key={self.key!r}, instance_id={self.instance_id!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (to and from a Dask worker) as its fields: not hashed again."""
        return (tuple.__new__, (type(self), tuple(self)))

    def _replace(self, **changes: Any) -> Submission:  # type: ignore[override]
        """A copy with `changes`, its key and hash derived anew (a tuple's own would copy
        them as they were)."""
        fields = {**self._asdict(), **changes}
        del fields["key"], fields["hash"]
        return Submission(**fields)
