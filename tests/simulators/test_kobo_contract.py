"""Contract: the simulator answers with the keys and value types of real KoboToolbox responses.

The real samples live in ../shared/reference/kobo/samples (captured from kpi's own fixtures and
source); without that folder beside the repository these tests skip and say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sammachip.simulators.kobo import KoboStore, serve_kobo

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "kobo" / "samples"
pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"real Kobo samples not found at {SAMPLES} (../shared absent)"
)
TOKEN = "d" * 40
UID = "aContractAsset00000001"
# Keys kpi adds to every submission (real samples: simple group, repeat group).
META = [
    "_id",
    "_uuid",
    "meta/instanceID",
    "meta/rootUuid",
    "_submission_time",
    "_validation_status",
    "__version__",
    "_attachments",
    "_geolocation",
    "_status",
    "_submitted_by",
    "_xform_id_string",
    "formhub/uuid",
]


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def json_type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, KoboStore]]:
    store = KoboStore()
    store.add_asset(UID, "sammachip_session · การฝึกอบรม", "sammachip_session")
    sid = store.submit(
        UID,
        {
            "session_code": "T34140101-01",
            "methods": "lecture demonstration",
            "attendees": [
                {"attendees/hh_code": "34140101-01", "attendees/present": "yes"},
                {"attendees/hh_code": "34140101-02"},
            ],
            "end": "2026-11-20T10:00:00.000+07:00",
        },
        datetime(2026, 11, 20, 3, 0),
    )
    store.set_validation_status(UID, sid, "validation_status_approved", "someuser", 1755780000)
    with serve_kobo(store, TOKEN) as url:
        yield url, store


def get(url: str, path: str, **params: str) -> dict[str, Any]:
    r = httpx.get(url + path, params=params, headers={"Authorization": f"Token {TOKEN}"})
    r.raise_for_status()
    return r.json()


def test_the_list_envelope_matches_kpi(served: tuple[str, KoboStore]) -> None:
    real = sample("constructed_data_list_envelope.json")
    ours = get(served[0], f"/api/v2/assets/{UID}/data/", format="json", limit="1")
    assert set(ours) == {k for k in real if not k.startswith("_")}
    assert isinstance(ours["count"], int) and isinstance(ours["results"], list)


@pytest.mark.parametrize("name", ["submission_simple_group.json", "submission_repeat_group.json"])
def test_submission_meta_keys_have_the_real_types(served: tuple[str, KoboStore], name: str) -> None:
    real = sample(name)
    ours = get(served[0], f"/api/v2/assets/{UID}/data/", format="json")["results"][0]
    for key in META:
        assert key in ours, key
        if key in real and real[key] not in (None, {}, []):
            assert json_type(ours[key]) == json_type(real[key]), key
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ours["_submission_time"])
    assert ours["meta/instanceID"] == "uuid:" + ours["_uuid"]


def test_repeats_are_lists_of_dicts_with_full_path_keys(served: tuple[str, KoboStore]) -> None:
    real = sample("submission_repeat_group.json")["group_members"]
    ours = get(served[0], f"/api/v2/assets/{UID}/data/", format="json")["results"][0]["attendees"]
    for entries, group in ((real, "group_members"), (ours, "attendees")):
        assert all(isinstance(e, dict) for e in entries)
        assert all(k.startswith(group + "/") for e in entries for k in e)
    assert all(isinstance(v, str) for e in ours for v in e.values())  # answers are strings


def test_validation_status_has_the_real_shape(served: tuple[str, KoboStore]) -> None:
    real = sample("constructed_validation_status_values.json")["approved"]
    ours = get(served[0], f"/api/v2/assets/{UID}/data/", format="json")["results"][0]
    assert ours["_validation_status"] == real  # same uid, label, by_whom, timestamp type


def test_the_asset_list_carries_what_clients_read(served: tuple[str, KoboStore]) -> None:
    real = sample("asset_detail_2026_deployed.json")
    (ours,) = get(served[0], "/api/v2/assets/", format="json")["results"]
    read_by_client = (
        "uid",
        "name",
        "has_deployment",
        "deployment__active",
        "deployment__submission_count",
        "deployed_version_id",
        "date_modified",
    )
    for key in read_by_client:
        assert key in ours and key in real
        assert json_type(ours[key]) == json_type(real[key]) or real[key] is None, key
