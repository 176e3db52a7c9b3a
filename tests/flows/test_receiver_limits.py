"""What the Kobo receiver accepts with 202, ingest loads: the receiver (its ASGI app, in
process) takes deliveries at and past its limits into a landing area, then the ingest flow
(real Prefect, real GX, the Kobo simulator for discovery) reads that area. Nothing accepted is
set aside later; everything refused was refused with a reason."""

from __future__ import annotations

import base64
import os
import warnings
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

with warnings.catch_warnings():  # Starlette nudges towards httpx2; the project pins httpx
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import MAX_DEPTH, BasicAuth, Receiver, StaticAssets, create_app
from sammachip.flows.ingest import ingest
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo

TODAY = date(2026, 11, 24)
TOKEN = "e" * 40
PASSWORD = "hook-secret"
AUTH = {
    "Authorization": "Basic " + base64.b64encode(f"kobo:{PASSWORD}".encode()).decode(),
    "Content-Type": "application/json",
}


@pytest.fixture(scope="module")
def household(prefect_harness: None) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A served Kobo server's household asset and its submissions, as its hook posts them."""
    store = KoboStore()
    uid = seed_from_cohort(store, generate_cohort(CohortSpec(seed=11, villages=1, today=TODAY)))[
        "sammachip_household"
    ]
    docs = [store.get(uid, i) for i in store.asset(uid).ids[:6]]  # type: ignore[union-attr]
    with serve_kobo(store, TOKEN) as url:
        os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"] = url, TOKEN
        try:
            yield uid, docs
        finally:
            del os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"]


def with_nested_answer(doc: dict[str, Any], depth: int) -> bytes:
    """`doc` as JSON with an answer whose lists nest `depth` levels deep (written by hand:
    JSON encoders refuse such depths, JSON parsers take them)."""
    answer = b"[" * depth + '"ลึก"'.encode() + b"]" * depth
    return orjson.dumps(doc)[:-1] + b',"x_note":' + answer + b"}"


def test_what_the_receiver_accepts_ingest_loads_and_the_rest_is_refused_at_the_door(
    household: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    uid, docs = household
    deliveries = {  # the document itself is one level: an answer may nest one less
        "as deep as allowed": with_nested_answer(docs[0], MAX_DEPTH - 1),
        "1,000 deep": with_nested_answer(docs[1], 1000),
        "a version that is no text": orjson.dumps({**docs[2], "__version__": 5}),
        "a submission time that is no time": orjson.dumps(
            {**docs[3], "_submission_time": "เมื่อวาน"}
        ),
        "a status that is no status": orjson.dumps({**docs[4], "_validation_status": "ok"}),
        "an ordinary one": orjson.dumps(docs[5]),
    }
    receiver = Receiver(
        Landing(tmp_path / "data" / "landing"),
        StaticAssets(frozenset({uid})),
        BasicAuth("kobo", PASSWORD),
    )
    with TestClient(create_app(receiver)) as client:
        answers = {
            what: client.post(f"/hooks/kobo/{uid}", content=body, headers=AUTH)
            for what, body in deliveries.items()
        }
    assert {w: r.status_code for w, r in answers.items()} == {
        "as deep as allowed": 202,
        "1,000 deep": 400,
        "a version that is no text": 400,
        "a submission time that is no time": 400,
        "a status that is no status": 400,
        "an ordinary one": 202,
    }
    assert "nested more than 64 levels" in answers["1,000 deep"].json()["error"]
    assert "__version__ is not text" in answers["a version that is no text"].json()["error"]

    summary = ingest(workdir=str(tmp_path), today=TODAY)
    assert (summary.landed, summary.removed, summary.set_aside) == (2, 2, 0)
