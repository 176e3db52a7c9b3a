"""The follow-up visit form (`sammachip_followup`), defined once here and written as two
XLSForms: `forms/followup.xlsx` for ODK Central and `forms/followup_kobo.xlsx` for
KoboToolbox (`python -m sammachip.schemas.followup_form` writes both; a test checks the
committed files are what this definition writes).

Why two files (docs/forms.md): on ODK the visit updates the officer's list item through an
`entities` sheet (`save_to`), so the item leaves the list on the phone at once; KoboToolbox has
no Entity Lists, and a form that declares an entity update of a list the server does not hold
is one Kobo cannot honour — its phones read the same CSV as plain form media. Everything else —
the questions, the choices, the Kobo JSON keys — is the same in both.

The list the officer picks from (`followups.csv`, one row per worklist item) carries the
columns `LIST_COLUMNS` (the ODK Entity List's properties; on Kobo the media CSV's columns):
`reason_ids` and `reason_names` are space-separated (rule ids; Thai rule names with their own
spaces made non-breaking), so the form can walk them with `selected-at()`.
"""

from __future__ import annotations

from pathlib import Path

FORM_ID = "sammachip_followup"
LIST_NAME = "followups"  # the Entity List on Central, the media file `followups.csv` on Kobo
VERSION = "2026120501"
FORMS_DIR = Path(__file__).parent / "forms"
ODK_FILE, KOBO_FILE = FORMS_DIR / "followup.xlsx", FORMS_DIR / "followup_kobo.xlsx"

# The list's columns besides `name` (the entity uuid) and `label` (what the officer reads).
LIST_COLUMNS = (
    "officer_id",
    "item_id",
    "subject_type",
    "subject_id",
    "village",
    "moo",
    "house_no",
    "phone",
    "priority",
    "due",
    "reasons",
    "reason_ids",
    "reason_names",
    "n_reasons",
    "status",  # "open" when pushed; the phone's visit saves "visited" (ODK)
    "visited_on",  # saved by the phone's visit (ODK)
    "next_visit",  # saved by the phone's visit (ODK)
)
FIELD_OWNED = ("status", "visited_on", "next_visit")  # the phone writes these, never the push
OPEN, VISITED = "open", "visited"
REASON_STATES = ("resolved", "in_progress", "not_applicable")

SURVEY_HEADER = (
    "type",
    "name",
    "label::Thai (th)",
    "label::English (en)",
    "hint::Thai (th)",
    "hint::English (en)",
    "required",
    "constraint",
    "constraint_message::Thai (th)",
    "constraint_message::English (en)",
    "relevant",
    "appearance",
    "choice_filter",
    "calculation",
    "repeat_count",
    "default",
    "parameters",
    "save_to",
)


def _item(prop: str) -> str:
    return f"instance('{LIST_NAME}')/root/item[name=${{item}}]/{prop}"


REACHED = "${reached} = 'yes'"

# (type, name, th, en, extra columns); `save_to` is dropped from the Kobo file.
SURVEY: tuple[tuple[str, str, str | None, str | None, dict[str, str]], ...] = (
    ("start", "start", None, None, {}),
    ("end", "end", None, None, {}),
    ("today", "today", None, None, {}),
    (
        "text",
        "officer_id",
        "รหัสพัฒนากรของท่าน",
        "Your officer id",
        {
            "hint::Thai (th)": "รหัสตามรายชื่อของอำเภอ เช่น off01 (จำค่าที่กรอกครั้งก่อน)",
            "hint::English (en)": "As on the district roster, e.g. off01 (remembers the last one)",
            "required": "yes",
            "default": "${last-saved#officer_id}",
        },
    ),
    (
        f"select_one_from_file {LIST_NAME}.csv",
        "item",
        "เลือกรายการที่ติดตาม (ชื่อ · หมู่บ้าน · บ้านเลขที่ · เหตุ)",
        "Pick the item you follow up (name · village · house no. · reasons)",
        {
            "hint::Thai (th)": "แสดงเฉพาะรายการของท่านที่ยังไม่ได้เยี่ยม",
            "hint::English (en)": "Only your items not visited yet are shown",
            "required": "yes",
            "choice_filter": f"officer_id = ${{officer_id}} and status != '{VISITED}'",
            "appearance": "autocomplete",
        },
    ),
    ("calculate", "item_id", None, None, {"calculation": _item("item_id")}),
    ("calculate", "subject_type", None, None, {"calculation": _item("subject_type")}),
    ("calculate", "subject_id", None, None, {"calculation": _item("subject_id")}),
    ("calculate", "reason_ids", None, None, {"calculation": _item("reason_ids")}),
    ("calculate", "reason_names", None, None, {"calculation": _item("reason_names")}),
    ("calculate", "n_reasons", None, None, {"calculation": _item("n_reasons")}),
    (
        "select_one yes_no",
        "reached",
        "ได้พบ/ติดต่อได้หรือไม่",
        "Did you reach them?",
        {"required": "yes"},
    ),
    (
        "begin_repeat",
        "reasons",
        "สถานะของแต่ละเหตุที่ค้างอยู่",
        "State of each open reason",
        {"relevant": REACHED, "repeat_count": "${n_reasons}"},
    ),
    (
        "calculate",
        "rule_id",
        None,
        None,
        {"calculation": "selected-at(${reason_ids}, position(..) - 1)"},
    ),
    (
        "calculate",
        "rule_name",
        None,
        None,
        {"calculation": "selected-at(${reason_names}, position(..) - 1)"},
    ),
    (
        "select_one reason_state",
        "state",
        "${rule_name}: สถานะ",
        "${rule_name}: state",
        {"required": "yes"},
    ),
    ("end_repeat", "reasons", None, None, {}),
    (
        "text",
        "problem",
        "ปัญหาที่พบ",
        "Problem found",
        {"relevant": REACHED, "appearance": "multiline"},
    ),
    (
        "text",
        "action",
        "สิ่งที่ตกลงจะทำ",
        "Action agreed",
        {"relevant": REACHED, "appearance": "multiline"},
    ),
    (
        "date",
        "next_visit",
        "นัดเยี่ยมครั้งต่อไป",
        "Next visit date",
        {
            "constraint": ". >= today()",
            "constraint_message::Thai (th)": "วันนัดต้องไม่ก่อนวันนี้",
            "constraint_message::English (en)": "The next visit cannot be in the past",
            "save_to": "next_visit",
        },
    ),
    (
        "image",
        "photo",
        "ภาพถ่าย (ถ้ามี)",
        "Photo (optional)",
        {"parameters": "max-pixels=1280"},  # a phone's full-size photo is megabytes
    ),
    (
        "calculate",
        "status",
        None,
        None,
        {"calculation": f"if({REACHED}, '{VISITED}', '{OPEN}')", "save_to": "status"},
    ),
    ("calculate", "visited_on", None, None, {"calculation": "${today}", "save_to": "visited_on"}),
)

CHOICES = (
    ("yes_no", "yes", "ใช่", "Yes"),
    ("yes_no", "no", "ไม่ใช่", "No"),
    ("reason_state", "resolved", "แก้ไขแล้ว", "Resolved"),
    ("reason_state", "in_progress", "กำลังดำเนินการ", "In progress"),
    ("reason_state", "not_applicable", "ไม่เกี่ยวข้อง", "Not applicable"),
)

SETTINGS = {
    "form_title": "ติดตามเยี่ยม (Follow-up visit)",
    "form_id": FORM_ID,
    "version": VERSION,
    "default_language": "Thai (th)",
    "instance_name": "concat(${item_id}, ' ', ${today})",
}

# The visit updates the picked item, only when the officer reached them (else it stays listed).
ENTITIES = {"list_name": LIST_NAME, "entity_id": "${item}", "update_if": REACHED}


def sheets(*, odk: bool) -> dict[str, list[list[str | None]]]:
    """The workbook's sheets as rows (the first row is the header)."""
    header = [h for h in SURVEY_HEADER if odk or h != "save_to"]
    survey: list[list[str | None]] = [list(header)]
    for kind, name, th, en, extra in SURVEY:
        row = {"type": kind, "name": name, "label::Thai (th)": th, "label::English (en)": en}
        survey.append([{**row, **extra}.get(h) for h in header])
    out = {
        "survey": survey,
        "choices": [["list_name", "name", "label::Thai (th)", "label::English (en)"]]
        + [list(c) for c in CHOICES],
        "settings": [list(SETTINGS), list(SETTINGS.values())],
    }
    if odk:
        out["entities"] = [list(ENTITIES), list(ENTITIES.values())]
    return out


def write(path: Path, *, odk: bool) -> None:
    import openpyxl  # only when writing the files

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets(odk=odk).items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)


if __name__ == "__main__":
    write(ODK_FILE, odk=True)
    write(KOBO_FILE, odk=False)
    print(f"wrote {ODK_FILE} and {KOBO_FILE}")
