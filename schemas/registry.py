"""The form registry: which form feeds which clean tables, and how to recognise it on a server."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from schemas.tables import CLEAN_TABLES, children_of

FORMS_DIR = Path(__file__).parent / "forms"


@dataclass(frozen=True)
class FormSpec:
    form_id: str  # the XLSForm settings `form_id`
    kind: str  # short name used in file names and summaries
    table: str  # the parent clean table
    business_key: str | None  # the programme's code that must be unique (None: no such code)
    subject_key: str  # what an officer calls a submission of this form (shown in lists)
    title_th: str
    title_en: str

    @cached_property  # read for every submission flattened
    def tables(self) -> list[str]:
        return [self.table, *(c.name for c in children_of(self.table))]

    @property
    def xlsform(self) -> Path:
        return FORMS_DIR / f"{self.kind}.xlsx"


FORMS: dict[str, FormSpec] = {
    f.form_id: f
    for f in [
        # form id, kind, parent table, unique programme code, subject shown, Thai and English titles
        FormSpec("sammachip_household", "household", "households", "hh_code", "hh_code",
                 "ทะเบียนครัวเรือนเป้าหมาย", "Target household registration"),
        FormSpec("sammachip_sage", "sage", "sages", "sage_code", "sage_code",
                 "ทะเบียนปราชญ์ชุมชน", "Community sage registry"),
        FormSpec("sammachip_session", "session", "sessions", "session_code", "session_code",
                 "การฝึกอบรมและศึกษาดูงาน", "Training session or study visit"),
        FormSpec("sammachip_materials", "materials", "materials", None, "hh_code",
                 "การมอบวัสดุอุปกรณ์", "Materials handed out"),
        FormSpec("sammachip_income", "income", "income_surveys", None, "hh_code",
                 "สำรวจรายได้ครัวเรือน", "Household income survey"),
        FormSpec("sammachip_group", "group", "groups", "group_code", "group_code",
                 "กลุ่มอาชีพ", "Occupational group"),
    ]
}  # fmt: skip

assert all(f.table in CLEAN_TABLES for f in FORMS.values())


_WORD = re.compile(r"[A-Za-z0-9_]+")  # what a form id is made of: any other character parts words


def form_for_asset(
    name: str, explicit: dict[str, str] | None = None, uid: str = ""
) -> FormSpec | None:
    """Recognise a server-side form: an explicit uid mapping wins, else the form id in its name
    (as a word of its own: `sammachip_household · ทะเบียน…`, `Household (sammachip_household)`,
    `[sammachip_household] 2568`).

    KoboToolbox replaces the XLSForm's form_id with the asset uid on deployment, so the asset
    name (which the office controls) is the portable way to say which form an asset is.
    """
    if explicit and uid in explicit:
        return FORMS.get(explicit[uid])
    return next((FORMS[t] for t in _WORD.findall(name) if t in FORMS), None)


# The `occupation` choice list of the forms (docs/forms.md), with its Thai labels: what the
# generator draws from and what officer lists print.
OCCUPATION_TH: dict[str, str] = {
    "mushroom": "เพาะเห็ด",
    "weaving": "ทอผ้า",
    "reed_mat": "ทอเสื่อกก",
    "cricket": "เลี้ยงจิ้งหรีด",
    "frog": "เลี้ยงกบ",
    "processed_food": "แปรรูปอาหาร",
    "basketry": "จักสาน",
    "herbal": "สมุนไพรแปรรูป",
    "fertiliser": "ปุ๋ยหมักชีวภาพ",
    "vegetables": "ผักปลอดสารพิษ",
    "cleaning_liquid": "น้ำยาเอนกประสงค์",
}

# The forms' other choice lists that officers read in Thai (docs/forms.md).
ACTIVITY_TH: dict[str, str] = {
    "training": "การฝึกอบรม",
    "study_visit": "การศึกษาดูงาน",
    "kickoff": "การประชุมชี้แจง",
}

OTOP_TYPE_TH: dict[str, str] = {
    "food": "อาหาร",
    "beverage": "เครื่องดื่ม",
    "textile": "ผ้าและเครื่องแต่งกาย",
    "decor": "ของใช้ ของตกแต่ง ของที่ระลึก",
    "herbal": "สมุนไพรที่ไม่ใช่อาหาร",
}

OTOP_STATUS_TH: dict[str, str] = {
    "not_registered": "ยังไม่ขึ้นทะเบียน",
    "applied": "ยื่นขอแล้ว",
    "registered": "ขึ้นทะเบียนแล้ว",
}
