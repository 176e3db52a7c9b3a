"""What counts as a new version of a submission: the payload hash, which leaves null answers
out (a new ODK form version sends every new question as null on every old row), and the
one-time upgrade of raw hashes made before it did, so an existing warehouse neither doubles
its raw layer nor re-validates a form when its first re-read comes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sammachip.connectors.odk import to_submission
from sammachip.flows.nightly import load_batches
from sammachip.schemas.records import Submission, payload_hash
from sammachip.schemas.registry import FORMS
from sammachip.schemas.validation import SuiteRunner
from sammachip.simulators.odk import OdkField, OdkStore, xlsform_definition
from sammachip.warehouse.load import open_warehouse, upgrade_payload_hashes
from sammachip.warehouse.query import connect

HOUSEHOLD = "sammachip_household"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def made_the_old_way(payload: dict[str, Any]) -> str:
    """The hash before null answers were left out: every byte of the payload counted."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def household(n: int) -> dict[str, Any]:
    return {
        "hh/hh_code": f"34140105-{n:02d}",
        "hh/village_code": "34140105",
        "hh/house_no": str(n),
        "head/name": f"นางสมศรี บ้าน{n}",
        "members": "4",
        "occupation": "mushroom",
        "baseline_income": "6000",
        "meta/instanceID": f"uuid:00000000-0000-4000-8000-{n:012d}",
    }


def test_null_and_absent_answers_hash_alike() -> None:
    answered = {"members": 4, "land": {"rai": 4.5}}
    assert payload_hash({**answered, "phone": None}) == payload_hash(answered)
    assert payload_hash({**answered, "water": {"source": None, "depth": None}}) == payload_hash(
        answered
    )  # a new group, all null
    assert payload_hash({**answered, "land": {"rai": 4.5, "owned": None}}) == payload_hash(answered)
    assert payload_hash({**answered, "members": 5}) != payload_hash(answered)
    assert payload_hash({**answered, "phone": ""}) != payload_hash(answered)  # "" is typed
    # A repeat keeps its instances in place: a blank second visit is not the first one.
    visits = [{"day": None}, {"day": "2026-11-02"}]
    assert payload_hash({"visits": visits}) != payload_hash({"visits": visits[1:]})


def test_a_payload_without_nulls_hashes_as_it_always_did() -> None:
    kobo = {"_id": 7, "members": "4", "_attachments": [], "_geolocation": [15.2, 104.8]}
    assert payload_hash(kobo) == made_the_old_way(kobo)


def test_an_unreviewed_kobo_submission_hashes_as_if_its_empty_review_state_were_absent() -> None:
    kobo = {"_id": 7, "members": "4", "_geolocation": [None, None], "_validation_status": {}}
    bare = {"_id": 7, "members": "4", "_geolocation": [None, None]}
    assert payload_hash(kobo) == payload_hash(bare) == made_the_old_way(bare)
    # text that looks like a null or an empty group is an answer, kept wherever it is
    for typed in ('":null', '":{}', '"_validation_status":{}'):
        assert payload_hash({**kobo, "note": typed}) == made_the_old_way({**bare, "note": typed})
    # and a null or an empty group elsewhere still goes, with the review state
    for blank in ({"phone": None}, {"land": {"rai": None}}, {"water": {}}):
        assert payload_hash({**kobo, **blank}) == made_the_old_way(bare)
    reviewed = {**bare, "_validation_status": {"uid": "validation_status_approved"}}
    assert payload_hash(reviewed) == made_the_old_way(reviewed)


@pytest.fixture
def central() -> tuple[OdkStore, str]:
    """A household form on Central with three submissions."""
    store = OdkStore()
    form = store.add_definition(1, xlsform_definition(FORMS[HOUSEHOLD].xlsform))
    for n in (1, 2, 3):
        store.submit(form.xml_form_id, household(n), T0 + timedelta(hours=n), submitter="e1")
    return store, form.xml_form_id


def feed(store: OdkStore, xml: str) -> list[Submission]:
    """The form's rows as the nightly reads them (rendered by the simulator, not served)."""
    form = store.form(1, xml)
    assert form is not None
    return [
        to_submission(
            store.row(xml, r),
            server="odk.example",
            project_id=1,
            xml_form_id=xml,
            form_id=HOUSEHOLD,
        )
        for r in form.records
    ]


def rehash_the_old_way(root: Path) -> None:
    wh = open_warehouse(str(root))
    with wh.transaction() as tx:
        tx.set_cursor("payload_hashes", {})
        for rel in tx.files("raw_submissions"):
            data = pq.read_table(wh.storage.path(rel), filesystem=wh.storage.fs)
            old = [made_the_old_way(orjson.loads(p)) for p in data["payload"].to_pylist()]
            index = data.schema.get_field_index("payload_hash")
            tx.rewrite(
                "raw_submissions",
                rel,
                data.set_column(index, "payload_hash", pa.array(old, pa.string())),
            )


def raw_hashes(root: Path) -> list[tuple[str, str]]:
    con = connect(open_warehouse(str(root)))
    return con.execute(
        "select submission_key, payload_hash from raw_submissions order by 1, 2"
    ).fetchall()


def test_a_warehouse_of_old_hashes_takes_a_new_form_version_without_a_new_version(
    tmp_path: Path, central: tuple[OdkStore, str], suite_runner: SuiteRunner
) -> None:
    store, xml = central
    wh = open_warehouse(str(tmp_path))
    with wh.transaction() as tx:  # the first night, loaded the way it is now
        assert load_batches(tx, HOUSEHOLD, [feed(store, xml)], suite_runner, NOW).new_versions == 3
    rehash_the_old_way(tmp_path)  # as a warehouse built before this change holds them
    legacy = raw_hashes(tmp_path)
    assert {h for _, h in legacy}.isdisjoint(s.hash for s in feed(store, xml))  # ODK: nulls
    # Central publishes a version with two more questions: every row reads them as null.
    form = store.form(1, xml)
    assert form is not None
    store.publish(
        xml,
        [
            *form.fields,
            OdkField("water_source", "select1"),
            OdkField("land", "structure"),
            OdkField("land/rai", "decimal"),
        ],
        "2",
    )
    rows = feed(store, xml)
    assert all(s.payload["water_source"] is None for s in rows)
    with wh.transaction() as tx:
        stats = load_batches(tx, HOUSEHOLD, [rows], suite_runner, NOW + timedelta(days=1))
    assert (stats.fetched, stats.new_versions) == (3, 0)  # no raw row, no re-validation
    upgraded = raw_hashes(tmp_path)
    assert len(upgraded) == 3 and upgraded != legacy  # recomputed from the payloads raw kept
    assert {h for _, h in upgraded} == {s.hash for s in rows}
    with wh.transaction() as tx:  # once only
        assert upgrade_payload_hashes(tx, HOUSEHOLD) == 0


def test_the_upgrade_rewrites_only_files_whose_hashes_change(
    tmp_path: Path, suite_runner: SuiteRunner
) -> None:
    kobo = [
        Submission(
            "kobo",
            "kf.example",
            "aXyZ",
            HOUSEHOLD,
            str(n),
            f"uuid:{n}",
            None,
            "1",
            T0 + timedelta(hours=n),
            None,
            None,
            None,
            {"_id": n, **household(n)},
        )
        for n in (1, 2)
    ]
    wh = open_warehouse(str(tmp_path))
    with wh.transaction() as tx:
        load_batches(tx, HOUSEHOLD, [kobo], suite_runner, NOW)
        tx.set_cursor("payload_hashes", {})  # as if made before the change
    with wh.transaction() as tx:
        files = tx.files("raw_submissions")
        assert upgrade_payload_hashes(tx, HOUSEHOLD) == 0  # no nulls: hashes were already right
        assert tx.files("raw_submissions") == files
