"""ODK Central OData rows become the flat Kobo layout the flatteners read."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sammachip.schemas.odk_payload import kobo_style_answers
from sammachip.schemas.registry import FORMS
from sammachip.simulators.odk import OdkStore, xlsform_definition

SAMPLES = Path("/work/shared/reference/odk/samples")
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(),
    reason=f"ODK Central reference samples not found at {SAMPLES} (research fixtures, not in the "
    "repo); the hand-written tests below cover the same rules",
)


def sample_rows(name: str) -> list[dict[str, Any]]:
    doc = orjson.loads((SAMPLES / name).read_bytes())
    return doc["value"] if isinstance(doc, dict) and "value" in doc else [doc]


# ---- real Central output -----------------------------------------------------------------


@needs_samples
def test_expanded_nested_repeats_become_lists_keyed_by_full_path() -> None:
    (row,) = sample_rows("odata_expand_star_doubleRepeat.json")
    answers = kobo_style_answers(row)
    toy = "children/child/toys/toy"
    assert answers == {
        "name": "Vick",
        "meta/instanceID": "double",
        "children/child": [
            {"children/child/name": "Alice"},  # no toys: `"toys": {}` leaves nothing behind
            {
                "children/child/name": "Bob",
                toy: [
                    {f"{toy}/name": n}
                    for n in ("Twilight Sparkle", "Pinkie Pie", "Applejack", "Spike")
                ],
            },
            {
                "children/child/name": "Chelsea",
                toy: [
                    {f"{toy}/name": n}
                    for n in ("Rainbow Dash", "Rarity", "Fluttershy", "Princess Luna")
                ],
            },
        ],
    }


@needs_samples
def test_typed_values_turn_back_into_the_text_a_phone_sends() -> None:
    (row,) = sample_rows("odata_types_geojson.json")
    answers = kobo_style_answers(row)
    assert answers["int"] == "42" and answers["decimal"] == "3.14"
    assert answers["geopoint"] == "4.8 15.16 23.42 108"  # lat lon alt accuracy
    assert answers["geopointNoAlt"] == "11.38 -11.38"
    assert answers["geotrace"] == "1.1 2.2 3.3 4.4;5.5 6.6 7.7 8.8"
    assert answers["polygon"] == "1.1 2.2 3.3 4.4;5.5 6.6 7.7 8.8;10 20 30 40;1.1 2.2 3.3 4.4"
    assert answers["dateTime"] == "2019-01-01T00:00:00.000-08:00"
    assert answers["INFERRED_select_multiple"] == "a b"
    assert answers["INFERRED_boolean"] == "true"
    assert "geopointNoLon" not in answers and "INFERRED_empty_field" not in answers  # nulls
    assert not any(k.startswith("__") for k in answers)


@needs_samples
def test_an_edited_row_keeps_the_current_versions_instance_id() -> None:
    (row,) = sample_rows("odata_edited_submission_real_world_row.json")
    answers = kobo_style_answers(row)
    assert answers["meta/instanceID"] == "uuid:d1c762c8-51ee-4966-a14b-5d50427c1534"  # not __id
    assert answers["meta/audit"] == "audit.csv"
    assert answers["location"] == "32.773376588223655 -117.1115681395832 68.08 0"
    assert answers["age"] == "19" and "favorite_color_other" not in answers


@needs_samples
def test_a_feed_read_without_expand_is_refused_rather_than_losing_repeats() -> None:
    rows = {r["__id"]: r for r in sample_rows("odata_submissions_withrepeat.json")}
    assert kobo_style_answers(rows["rone"]) == {  # no repeat instances: nothing is missing
        "meta/instanceID": "rone",
        "name": "Alice",
        "age": "30",
    }
    with pytest.raises(ValueError, match=r"children/child.*\$expand=\*"):
        kobo_style_answers(rows["rtwo"])


@needs_samples
def test_repeat_table_rows_lose_their_join_keys() -> None:
    rows = sample_rows("odata_subtable_withrepeat_children_child.json")
    assert kobo_style_answers(rows[0]) == {"name": "Candace", "age": "2"}


# ---- hand-written rows -------------------------------------------------------------------


def test_groups_flatten_to_slash_keys_and_thai_text_stays_byte_exact() -> None:
    row = {
        "hh": {"hh_code": "34140105-07", "house_no": "112/3"},
        "head": {"name": "นางสาวนงลักษณ์ ศรีบุญเรือง", "phone": None},
        "__id": "uuid:1",
        "__system": {"submissionDate": "2026-01-01T00:00:00.000Z"},
        "meta": {"instanceID": "uuid:1"},
    }
    answers = kobo_style_answers(row)
    assert answers == {
        "hh/hh_code": "34140105-07",
        "hh/house_no": "112/3",
        "head/name": "นางสาวนงลักษณ์ ศรีบุญเรือง",
        "meta/instanceID": "uuid:1",
    }
    assert answers["head/name"].encode() == "นางสาวนงลักษณ์ ศรีบุญเรือง".encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [(20, "20"), (20.5, "20.5"), (20.0, "20"), (-3, "-3"), (0.1, "0.1"), (True, "true")],
)
def test_numbers_are_written_as_javascript_printed_them(value: Any, text: str) -> None:
    assert kobo_style_answers({"x": value}) == {"x": text}


def test_repeats_with_groups_inside_keep_the_whole_path() -> None:
    row = {
        "items@odata.navigationLink": "Submissions('uuid%3A1')/items",
        "items": [
            {"item": "ก้อนเชื้อเห็ด", "quantity": 200, "detail": {"unit": "ก้อน"}, "__id": "a1"},
            {"item": "ผ้าดิบ", "quantity": 2.5, "detail": {"unit": None}, "__id": "b2"},
        ],
    }
    assert kobo_style_answers(row) == {
        "items": [
            {"items/item": "ก้อนเชื้อเห็ด", "items/quantity": "200", "items/detail/unit": "ก้อน"},
            {"items/item": "ผ้าดิบ", "items/quantity": "2.5"},
        ]
    }


def test_select_multiple_whitespace_and_empty_repeats_pass_through_as_kobo_would() -> None:
    row = {"methods": " lecture  qa", "attendees": [], "note": ""}
    assert kobo_style_answers(row) == {"methods": " lecture  qa", "note": ""}


# ---- the inverse of the simulator's rendering ----------------------------------------------

SESSION = xlsform_definition(FORMS["sammachip_session"].xlsform)
MATERIALS = xlsform_definition(FORMS["sammachip_materials"].xlsform)
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
_thai = st.text(st.characters(min_codepoint=0x0E01, max_codepoint=0x0E5B), min_size=1)
_word = st.sampled_from(["lecture", "qa", "demonstration", "video"])


def _decimal_text(hundredths: int) -> str:
    """Kobo-side canonical decimal: what the phone writes and JSON.stringify prints back."""
    value = hundredths / 100
    return str(int(value)) if value.is_integer() else repr(value)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


_sessions = _optional(
    session_code=_text,
    village_code=st.from_regex(r"[0-9]{8}", fullmatch=True),
    occupation=_thai,
    methods=st.lists(_word, min_size=1, max_size=4).map(" ".join),
    planned_date=st.dates().map(str),
    attendees=st.lists(
        _optional(**{"attendees/hh_code": _text, "attendees/present": _thai}), min_size=1
    ),
)
_materials = _optional(
    hh_code=_text,
    items=st.lists(
        _optional(
            **{
                "items/item": _thai,
                "items/quantity": st.integers(-(10**8), 10**8).map(_decimal_text),
                "items/value_thb": st.integers(0, 10**9).map(_decimal_text),
            }
        ),
        min_size=1,
    ),
)


@settings(max_examples=60, deadline=None)
@given(session=_sessions, materials=_materials)
def test_kobo_answers_survive_the_trip_through_central(
    session: dict[str, Any], materials: dict[str, Any]
) -> None:
    store = OdkStore()
    for definition, answers in ((SESSION, session), (MATERIALS, materials)):
        store.add_definition(1, definition)
        answers["meta/instanceID"] = "uuid:round-trip"
        store.submit(definition.xml_form_id, answers, datetime(2026, 11, 1))
        back = kobo_style_answers(store.row(definition.xml_form_id, "uuid:round-trip"))
        back.pop("meta/instanceName", None)  # Central (Collect) adds it; Kobo sends it too
        assert back == answers
