"""A submission's payload hash and key: what decides whether a re-read is a new version.

The digests below were made by the walk-everything implementation the warehouse's stored
hashes come from: a faster hash must give exactly these, or every form would be re-validated
and its raw layer doubled at the next read."""

from __future__ import annotations

import hashlib
import pickle
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sammachip.connectors.kobo import to_submission
from sammachip.schemas.records import _answered, payload_hash

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "unreviewed, Thai text, list nulls": (
        {
            "_id": 41,
            "_uuid": "5c1e",
            "hh/hh_code": "34140105-07",
            "head/name": "นางสมศรี ใจดี",
            "_validation_status": {},
            "_geolocation": [None, None],
            "_attachments": [],
            "_tags": [],
            "_notes": [],
            "_submission_time": "2026-11-02T03:00:00",
            "start": "2026-11-02T09:40:00.000+07:00",
        },
        "4cee10c53fb3f0c189647b1f6808ef428b6abaf67a70f544cd6b5c70d86da360",
    ),
    "reviewed": (
        {
            "_id": 42,
            "members": "๔",
            "_validation_status": {
                "uid": "validation_status_approved",
                "timestamp": 1764000000,
                "by_whom": "officer",
                "label": "Approved",
            },
            "_geolocation": [15.2, 104.8],
        },
        "45348d8dc78bf8887961ee8fe951ccfe7b583a8b0cac365e513587a00552c717",
    ),
    "null answers and empty groups": (
        {
            "_id": 43,
            "phone": None,
            "land": {"rai": None},
            "water": {},
            "_validation_status": {},
            "note": "ไม่มี",
        },
        "a255d2db9bcf97cc1f547f6c38fc1836489e43149777742a8f19acbe283b36ec",
    ),
    "a repeat with a blank entry": (
        {
            "_id": 44,
            "session_code": "S34140105-01",
            "attendees": [
                {"attendees/hh_code": "34140105-01", "attendees/present": "yes"},
                {"attendees/hh_code": None, "attendees/present": "no"},
                {},
            ],
            "_validation_status": {},
        },
        "265ed064c48c4ddfb19983d0cc8fa6189e4aeb50e196713ad7908bc161d7052a",
    ),
    "text that looks like a review state": (
        {"_id": 45, "note": '"_validation_status":{}', "other": '":null', "_validation_status": {}},
        "ee2ebba7f056353685d5b859c9bc536782bb7c2e8654988ef6c1a751ec392ecb",
    ),
    "edited": (
        {
            "_id": 46,
            "meta/instanceID": "uuid:b2",
            "meta/deprecatedID": "uuid:b1",
            "meta/rootUuid": "uuid:b0",
            "members": "5",
            "_validation_status": {},
        },
        "554391160b0af6be76d4c30194b1e2fb755b3756a9fd2f14896a73d130e4a22d",
    ),
    "anonymous: no one submitted it": (
        {
            "_id": 47,
            "_uuid": "7d2f",
            "hh/hh_code": "34140105-09",
            "_submitted_by": None,
            "_validation_status": {},
            "_geolocation": [None, None],
            "_attachments": [],
            "_submission_time": "2026-11-03T02:10:00",
        },
        "ddec641fa3082d3d21ebc500d8a2f0e88e0403a8afbb9a9f2b690bbbedf3bbc5",
    ),
    "anonymous, with a group of null answers": (
        {"_id": 48, "_submitted_by": None, "land": {"rai": None}, "_validation_status": {}},
        "7d073e5df88de5c6bc302cd1cfde1e79349d146d6d56a2b54aaaf41f5038304c",
    ),
    "the review state alone": (
        {"_validation_status": {}},
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    ),
    "the review state sorted last": (
        {"Z": "ก", "_validation_status": {}},
        "0730e94745a8b756257b142d933dd8366e678bc4aeaca4c0d2f1047c4c03d109",
    ),
    "the review state sorted first": (
        {"_validation_status": {}, "a": "1"},
        "9afeb0f2b203f254312ec8ded441d0318b7c34c57f8695ede42d2215a30c0960",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_payload_hashes_as_the_warehouse_stored_it(case: str) -> None:
    payload, stored = CASES[case]
    assert payload_hash(payload) == stored


def test_a_kobo_record_carries_its_key_and_stored_hash() -> None:
    payload, stored = CASES["edited"]
    sub = to_submission(payload, server="kf", asset_uid="aHh01", form_id="sammachip_household")
    assert sub.key == "kobo:kf:aHh01:46"
    assert sub.hash == stored
    assert (sub.instance_id, sub.root_uuid) == ("uuid:b2", "uuid:b0")


_KEYS = st.sampled_from(["_validation_status", "_id", "a", "Z", "hh/name", "ชื่อ", '":{}'])
_LEAVES = (
    st.none()
    | st.integers(-(2**53), 2**53)
    | st.sampled_from(["", "สี่", '":null', '"_validation_status":{}'])
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_KEYS, _JSON, max_size=6))
def test_the_hash_is_always_that_of_the_answered_payload(payload: dict[str, Any]) -> None:
    """Null answers and the groups they leave empty never count, wherever they are; every
    other byte does (a payload with nothing to leave out is its own answered payload)."""
    answered = orjson.dumps(_answered(payload), option=orjson.OPT_SORT_KEYS)
    assert payload_hash(payload) == hashlib.sha256(answered).hexdigest()


def test_a_record_is_immutable_and_never_prints_its_payload() -> None:
    payload, _ = CASES["anonymous: no one submitted it"]
    sub = to_submission(payload, server="kf", asset_uid="aHh01", form_id="sammachip_household")
    with pytest.raises(AttributeError):
        sub.deleted = True  # type: ignore[misc]
    assert "34140105-09" not in repr(sub) and "kobo:kf:aHh01:47" in repr(sub)
    assert sub.submitted_at == datetime(2026, 11, 3, 2, 10, tzinfo=UTC)
    assert sub.submitted_at.tzinfo is UTC


def test_a_record_crosses_processes_whole_and_a_changed_copy_is_hashed_anew() -> None:
    payload, stored = CASES["edited"]
    sub = to_submission(payload, server="kf", asset_uid="aHh01", form_id="sammachip_household")
    assert pickle.loads(pickle.dumps(sub)) == sub  # as a Dask worker sends it back
    changed = sub._replace(payload={**payload, "members": "6"}, deleted=True)
    assert changed.deleted and changed.key == sub.key
    assert changed.hash == payload_hash(changed.payload) != stored
