"""The follow-up visit form: one definition, an ODK file that updates the officer's list item
and a Kobo file that reads the same list as form media; its visits load like any form's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from pyxform.xls2xform import convert

from sammachip.connectors.kobo import to_submission
from sammachip.schemas import followup_form as form
from sammachip.schemas.batch import validate_form
from sammachip.schemas.registry import FORMS
from sammachip.schemas.validation import SuiteRunner

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
X = "{http://www.w3.org/2002/xforms}"
ENTITIES_NS = "{http://www.opendatakit.org/xforms/entities}"


def workbook_rows(path: Path) -> dict[str, list[list[str | None]]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {
            s.title: [
                [c if c != "" else None for c in row] for row in s.iter_rows(values_only=True)
            ]
            for s in book.worksheets
        }
    finally:
        book.close()


def xform(path: Path) -> ET.Element:
    warnings: list[str] = []
    converted = convert(xlsform=path, warnings=warnings)
    assert warnings == []
    return ET.fromstring(converted.xform)


def instance_keys(root: ET.Element) -> set[str]:
    data = root.find(f".//{X}instance/{X}data")
    assert data is not None

    def walk(node: ET.Element, prefix: str) -> set[str]:
        out: set[str] = set()
        for child in node:
            key = prefix + child.tag.removeprefix(X)
            out |= {key, *walk(child, key + "/")}
        return out

    return walk(data, "")


@pytest.mark.parametrize(("path", "odk"), [(form.ODK_FILE, True), (form.KOBO_FILE, False)])
def test_the_committed_workbooks_are_what_the_definition_writes(path: Path, odk: bool) -> None:
    assert workbook_rows(path) == form.sheets(odk=odk)


def test_the_odk_file_updates_the_picked_item_of_the_list_only_when_reached() -> None:
    root = xform(form.ODK_FILE)
    entity = root.find(f".//{X}meta/{X}entity")
    assert entity is not None and entity.get("dataset") == form.LIST_NAME
    binds = {b.get("nodeset"): b for b in root.iter(f"{X}bind")}
    assert binds["/data/meta/entity/@id"].get("calculate").strip() == "/data/item"
    assert "/data/reached  = 'yes'" in binds["/data/meta/entity/@update"].get("calculate")
    saved = {b.get(f"{ENTITIES_NS}saveto") for b in binds.values()} - {None}
    assert saved == set(form.FIELD_OWNED)
    assert saved <= set(form.LIST_COLUMNS)


def test_the_kobo_file_asks_the_same_questions_without_an_entity_update() -> None:
    odk, kobo = xform(form.ODK_FILE), xform(form.KOBO_FILE)
    assert kobo.find(f".//{X}meta/{X}entity") is None
    assert instance_keys(kobo) == instance_keys(odk) - {"meta/entity"}


@pytest.mark.parametrize("path", [form.ODK_FILE, form.KOBO_FILE])
def test_the_officer_picks_from_their_own_open_items(path: Path) -> None:
    root = xform(path)
    pick = root.find(f".//{X}select1[@ref='/data/item']/{X}itemset")
    assert pick is not None
    assert pick.get("nodeset") == (
        "instance('followups')/root/item[officer_id =  /data/officer_id  and status != 'visited']"
    )
    sources = {i.get("id"): i.get("src") for i in root.iter(f"{X}instance") if i.get("src")}
    assert sources["followups"] == "jr://file-csv/followups.csv"


def test_the_registry_knows_the_seventh_form() -> None:
    spec = FORMS[form.FORM_ID]
    assert spec.tables == ["followup_visits", "followup_reasons"]
    assert spec.xlsform == form.ODK_FILE


def visit(**answers: object) -> dict[str, object]:
    """A follow-up submission as KoboToolbox sends it."""
    return {
        "_id": 501,
        "_uuid": "6a1f0a0e-7a1b-4c55-9d7e-000000000501",
        "_submission_time": "2026-12-05T02:10:00",
        "__version__": "v1",
        "meta/instanceID": "uuid:6a1f0a0e-7a1b-4c55-9d7e-000000000501",
        "start": "2026-12-05T08:30:00.000+07:00",
        "end": "2026-12-05T08:55:00.000+07:00",
        "today": "2026-12-05",
        "officer_id": "off01",
        "item": "2c5d0c8e-3f1b-4a5e-9a43-5b1f2d7e8c01",
        "item_id": "household:34140105-07",
        "subject_type": "household",
        "subject_id": "34140105-07",
        "reason_ids": "R04_TRAINED_NO_MATERIALS R05_NO_FOLLOWUP_INCOME",
        "reason_names": "อบรมแล้วยังไม่ได้รับวัสดุ ยังไม่ติดตามรายได้",
        "n_reasons": "2",
        "reached": "yes",
        "reasons": [
            {
                "reasons/rule_id": "R04_TRAINED_NO_MATERIALS",
                "reasons/rule_name": "อบรมแล้วยังไม่ได้รับวัสดุ",
                "reasons/state": "resolved",
            },
            {
                "reasons/rule_id": "R05_NO_FOLLOWUP_INCOME",
                "reasons/rule_name": "ยังไม่ติดตามรายได้",
                "reasons/state": "in_progress",
            },
        ],
        "problem": "ก้อนเชื้อเห็ดมาช้า",
        "action": "นัดสำรวจรายได้สัปดาห์หน้า",
        "next_visit": "2026-12-12",
        "status": "visited",
        "visited_on": "2026-12-05",
        **answers,
    }


def test_a_visit_loads_with_the_state_of_each_reason(suite_runner: SuiteRunner) -> None:
    sub = to_submission(visit(), server="kf", asset_uid="aFollow", form_id=form.FORM_ID)
    result = validate_form(form.FORM_ID, [sub], suite_runner, batch="b", now=NOW)
    assert result.reconciles and result.clean_keys == {sub.key}
    (row,) = result.tables["followup_visits"].to_pylist()
    assert row["item_id"] == "household:34140105-07"
    assert (row["village_code"], row["tambon_code"]) == ("34140105", "341401")
    assert (row["reached"], row["n_resolved"], row["n_reasons"]) == (True, 1, 2)
    assert str(row["next_visit"]) == "2026-12-12"
    reasons = result.tables["followup_reasons"].to_pylist()
    assert [(r["alert_id"], r["state"]) for r in reasons] == [
        ("R04_TRAINED_NO_MATERIALS:34140105-07", "resolved"),
        ("R05_NO_FOLLOWUP_INCOME:34140105-07", "in_progress"),
    ]
    assert result.drift == []  # every answer of the form is read


def test_a_visit_to_nothing_on_a_list_is_quarantined_with_its_reason(
    suite_runner: SuiteRunner,
) -> None:
    sub = to_submission(
        visit(item_id="", subject_id="", reasons=[]),
        server="kf",
        asset_uid="aFollow",
        form_id=form.FORM_ID,
    )
    result = validate_form(form.FORM_ID, [sub], suite_runner, batch="b", now=NOW)
    assert result.quarantined_keys == {sub.key}
    reasons = {r["reason_en"] for r in result.quarantine.to_pylist()}  # type: ignore[union-attr]
    assert "no list item picked" in reasons
