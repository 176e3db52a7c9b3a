"""The six XLSForms in schemas/forms/ are the contract between enumerators' phones and the pipeline.

Each workbook must convert cleanly with pyxform, carry its `sammachip_*` form id, produce every
Kobo JSON key of docs/forms.md with the documented type and choices, and speak Thai and English.
Facts are read from the converted XForm (pyxform's public output, and what Kobo and ODK Central
build submissions from) rather than from pyxform's internal survey objects.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from pyxform.xls2xform import ConvertResult, convert

FORMS_DIR = Path(__file__).resolve().parents[1] / "schemas" / "forms"
LANGUAGES = ("Thai (th)", "English (en)")
METADATA = ("start", "end", "today")

# Kobo JSON key → XLSForm type, per form (docs/forms.md). The rest of the code relies on these.
FORM_FIELDS: dict[str, dict[str, str]] = {
    "household": {
        "hh/village_code": "text",
        "hh/hh_code": "text",
        "hh/house_no": "text",
        "hh/village_name": "text",
        "head/name": "text",
        "head/national_id": "text",
        "head/phone": "text",
        "members": "integer",
        "occupation": "select_one occupation",
        "baseline_income": "integer",
        "location": "geopoint",
    },
    "sage": {
        "sage/sage_code": "text",
        "sage/name": "text",
        "sage/national_id": "text",
        "sage/phone": "text",
        "sage/village_code": "text",
        "expertise": "select_one occupation",
        "years_experience": "integer",
        "trained_trainer": "select_one yes_no",
        "trainer_course_date": "date",
    },
    "session": {
        "session_code": "text",
        "village_code": "text",
        "sage_code": "text",
        "occupation": "select_one occupation",
        "activity_type": "select_one activity_type",
        "methods": "select_multiple method",
        "planned_date": "date",
        "held_date": "date",
        "attendees": "begin_repeat",
        "attendees/hh_code": "text",
        "attendees/present": "select_one yes_no",
    },
    "materials": {
        "hh_code": "text",
        "handout_date": "date",
        "items": "begin_repeat",
        "items/item": "text",
        "items/quantity": "decimal",
        "items/unit": "text",
        "items/value_thb": "decimal",
    },
    "income": {
        "hh_code": "text",
        "round": "select_one round",
        "survey_date": "date",
        "practising": "select_one yes_no",
        "occ_income": "integer",
        "hh_income": "integer",
        "costs": "integer",
        "problem": "select_one problem",
        "action_agreed": "text",
    },
    "group": {
        "grp/group_code": "text",
        "grp/group_name": "text",
        "grp/village_code": "text",
        "grp/formed_date": "date",
        "members": "begin_repeat",
        "members/hh_code": "text",
        "members/role": "select_one member_role",
        "product/name": "text",
        "product/type": "select_one otop_type",
        "product/standards": "select_multiple standard",
        "product/packaging": "select_one yes_no",
        "product/label": "select_one yes_no",
        "product/local_materials": "select_one yes_no",
        "sales/monthly_sales": "integer",
        "sales/months_recorded": "integer",
        "otop_status": "select_one otop_status",
        "market/channel": "select_one channel",
        "market/buyer": "text",
        "market/unit": "text",
        "market/price_per_unit": "decimal",
        "market/cost_per_unit": "decimal",
    },
}

# Choice list → the values a submission can carry (docs/forms.md, "Choice lists").
CHOICES: dict[str, set[str]] = {
    "occupation": {
        "mushroom",
        "weaving",
        "reed_mat",
        "cricket",
        "frog",
        "processed_food",
        "basketry",
        "herbal",
        "fertiliser",
        "vegetables",
        "cleaning_liquid",
    },
    "yes_no": {"yes", "no"},
    "activity_type": {"training", "study_visit", "kickoff"},
    "method": {"lecture", "qa", "demonstration", "video"},
    "round": {"baseline", "followup"},
    "member_role": {"chair", "committee", "member"},
    "otop_type": {"food", "beverage", "textile", "decor", "herbal"},
    "standard": {"fda", "tcps", "tis", "none"},
    "otop_status": {"not_registered", "applied", "registered"},
    "channel": {"local_market", "shop", "middleman", "otop_fair", "online", "coop", "none"},
    "problem": {
        "none",
        "market",
        "materials",
        "skills",
        "capital",
        "time",
        "weather",
        "health",
        "other",
    },
}

NS = {
    "x": "http://www.w3.org/2002/xforms",
    "h": "http://www.w3.org/1999/xhtml",
    "jr": "http://openrosa.org/javarosa",
}
JR = "{" + NS["jr"] + "}"
BIND_TYPES = {
    "string": "text",
    "int": "integer",
    "decimal": "decimal",
    "date": "date",
    "geopoint": "geopoint",
}
PLACEHOLDER_LABELS = {"", "-"}  # pyxform writes "-" where a translation is missing


@dataclass(frozen=True)
class XForm:
    """The parts of a converted XForm the contract is about."""

    html: ET.Element
    data: ET.Element  # root of the primary instance

    @property
    def root(self) -> str:
        return _local(self.data.tag)

    def xpath(self, key: str) -> str:
        return f"/{self.root}/{key}"

    def bind(self, key: str) -> ET.Element | None:
        return self.html.find(f".//x:model/x:bind[@nodeset='{self.xpath(key)}']", NS)

    def control(self, key: str) -> ET.Element | None:
        return self.html.find(f"h:body//*[@ref='{self.xpath(key)}']", NS)

    def translations(self) -> dict[str, dict[str, str]]:
        """Language → itext id → text."""
        return {
            tr.get("lang", ""): {
                text.get("id", ""): "".join(text.itertext()).strip()
                for text in tr.findall("x:text", NS)
            }
            for tr in self.html.findall(".//x:itext/x:translation", NS)
        }

    def choice_names(self, list_name: str) -> set[str]:
        items = self.html.findall(f".//x:instance[@id='{list_name}']/x:root/x:item/x:name", NS)
        return {item.text or "" for item in items}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _paths(element: ET.Element, prefix: str = "") -> set[str]:
    """Every node path below `element`, as Kobo JSON keys (repeat templates collapse)."""
    paths: set[str] = set()
    for child in element:
        path = f"{prefix}{_local(child.tag)}"
        paths |= {path, *_paths(child, f"{path}/")}
    return paths


@cache
def _converted(form: str) -> ConvertResult:
    return convert(xlsform=FORMS_DIR / f"{form}.xlsx", warnings=[])


@cache
def _xform(form: str) -> XForm:
    html = ET.fromstring(_converted(form).xform)
    primary = html.find("h:head/x:model/x:instance", NS)
    assert primary is not None and len(primary) == 1, "XForm has no primary instance"
    return XForm(html=html, data=primary[0])


def _xlsform_type(xform: XForm, key: str) -> str:
    """Reconstruct the XLSForm type of `key` from its XForm bind and body control."""
    if xform.html.find(f"h:body//x:repeat[@nodeset='{xform.xpath(key)}']", NS) is not None:
        return "begin_repeat"
    control = xform.control(key)
    if control is not None and _local(control.tag) in {"select1", "select"}:
        itemset = control.find("x:itemset", NS)
        nodeset = itemset.get("nodeset", "") if itemset is not None else ""
        list_name = nodeset.removeprefix("instance('").split("'", 1)[0]
        kind = "select_one" if _local(control.tag) == "select1" else "select_multiple"
        return f"{kind} {list_name}"
    bind = xform.bind(key)
    bind_type = bind.get("type", "") if bind is not None else ""
    return BIND_TYPES.get(bind_type, f"bind type {bind_type!r}")


FORMS = sorted(FORM_FIELDS)
per_form = pytest.mark.parametrize("form", FORMS)


def test_every_workbook_in_schemas_forms_has_a_contract() -> None:
    assert sorted(p.stem for p in FORMS_DIR.glob("*.xlsx")) == FORMS


@per_form
def test_converts_without_warnings(form: str) -> None:
    assert _converted(form).warnings == []


@per_form
def test_instance_id_is_the_sammachip_form_id(form: str) -> None:
    assert _xform(form).data.get("id") == f"sammachip_{form}"


@per_form
def test_has_every_documented_key(form: str) -> None:
    missing = set(FORM_FIELDS[form]) - _paths(_xform(form).data)
    assert not missing, f"{form} lacks keys {sorted(missing)}"


@per_form
def test_documented_keys_have_documented_types(form: str) -> None:
    xform = _xform(form)
    actual = {key: _xlsform_type(xform, key) for key in FORM_FIELDS[form]}
    assert actual == FORM_FIELDS[form]


@per_form
def test_choice_lists_carry_the_documented_values(form: str) -> None:
    xform = _xform(form)
    lists = {t.split()[1] for t in FORM_FIELDS[form].values() if t.startswith("select_")}
    actual = {name: xform.choice_names(name) for name in lists}
    assert actual == {name: CHOICES[name] for name in lists}


@per_form
def test_records_start_end_and_today(form: str) -> None:
    xform = _xform(form)
    for name in METADATA:
        bind = xform.bind(name)
        assert bind is not None and bind.get(f"{JR}preloadParams") == name, name


@per_form
def test_every_documented_key_is_labelled_in_thai_and_english(form: str) -> None:
    xform = _xform(form)
    translations = xform.translations()
    assert set(translations) == set(LANGUAGES)
    for lang in LANGUAGES:
        unlabelled = [
            key
            for key in FORM_FIELDS[form]
            if translations[lang].get(f"{xform.xpath(key)}:label", "") in PLACEHOLDER_LABELS
        ]
        assert not unlabelled, f"{form}: no {lang} label for {unlabelled}"


@per_form
def test_every_text_exists_in_both_languages(form: str) -> None:
    """Questions, hints, constraint messages and choices: nothing shows up in one language only."""
    xform = _xform(form)
    translations = xform.translations()
    thai, english = (translations.get(lang, {}) for lang in LANGUAGES)
    assert set(thai) == set(english)
    blank = [
        (lang, tid)
        for lang in LANGUAGES
        for tid, text in translations[lang].items()
        if text in PLACEHOLDER_LABELS
    ]
    assert not blank
    # A label without a jr:itext ref came from an untranslated `label` column.
    inline = [
        lbl.text for lbl in xform.html.iterfind("h:body//x:label", NS) if "ref" not in lbl.attrib
    ]
    assert not inline


@pytest.mark.skipif(shutil.which("java") is None, reason="ODK Validate needs Java")
@per_form
def test_passes_odk_validate(form: str) -> None:
    """JavaRosa parses every constraint, relevant and required expression as Collect will."""
    convert(xlsform=FORMS_DIR / f"{form}.xlsx", validate=True, warnings=[])
