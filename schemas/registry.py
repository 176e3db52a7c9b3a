"""The form registry: which form feeds which clean tables, how to recognise it on a server, and
what its cross-form checks read from other forms — declared here once; the facts gathered for
a form, the re-checks when a fact changes and the parallel waves are derived from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sammachip.schemas.facts import (
    BASELINE_DATES,
    REGISTERED,
    TRAINED,
    Check,
    Fact,
    followup_after_baseline,
    household_in,
)
from sammachip.schemas.tables import CLEAN_TABLES, children_of

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
    checks: tuple[Check, ...] = ()  # its rows checked against what other forms said
    name_key: str | None = None  # the column naming its subject (a person, a group), if any

    @cached_property  # read for every submission flattened
    def tables(self) -> list[str]:
        return [self.table, *(c.name for c in children_of(self.table))]

    @property
    def facts(self) -> list[Fact]:
        """The facts its checks read, once each."""
        return list({c.fact.name: c.fact for c in self.checks}.values())

    @property
    def reads(self) -> set[str]:
        """The other forms whose facts its checks read: they load before it."""
        return {f.source for f in self.facts} - {self.form_id}

    @property
    def xlsform(self) -> Path:
        return FORMS_DIR / f"{self.kind}.xlsx"


# Which rows each form's checks read a fact for: households registered, trained, surveyed.
_REGISTERED_ATTENDEES = Check("attendance", "household_registered", REGISTERED, household_in)
_REGISTERED_MEMBERS = Check("group_members", "household_registered", REGISTERED, household_in)
_TRAINED = Check("materials", "household_trained", TRAINED, household_in)
_AFTER_BASELINE = Check(
    "income_surveys",
    "followup_after_baseline",
    BASELINE_DATES,
    followup_after_baseline,
    applies="round = 'followup'",
)

FORMS: dict[str, FormSpec] = {
    f.form_id: f
    for f in [
        # A form comes after those whose facts its checks read (see `reads` and WAVES).
        FormSpec(
            form_id="sammachip_household",
            kind="household",
            table="households",
            business_key="hh_code",
            subject_key="hh_code",
            title_th="ทะเบียนครัวเรือนเป้าหมาย",
            title_en="Target household registration",
            name_key="head_name",
        ),
        FormSpec(
            form_id="sammachip_sage",
            kind="sage",
            table="sages",
            business_key="sage_code",
            subject_key="sage_code",
            title_th="ทะเบียนปราชญ์ชุมชน",
            title_en="Community sage registry",
            name_key="name",
        ),
        FormSpec(
            form_id="sammachip_session",
            kind="session",
            table="sessions",
            business_key="session_code",
            subject_key="session_code",
            title_th="การฝึกอบรมและศึกษาดูงาน",
            title_en="Training session or study visit",
            checks=(_REGISTERED_ATTENDEES,),
        ),
        FormSpec(
            form_id="sammachip_materials",
            kind="materials",
            table="materials",
            business_key=None,
            subject_key="hh_code",
            title_th="การมอบวัสดุอุปกรณ์",
            title_en="Materials handed out",
            checks=(_TRAINED,),
        ),
        FormSpec(
            form_id="sammachip_income",
            kind="income",
            table="income_surveys",
            business_key=None,
            subject_key="hh_code",
            title_th="สำรวจรายได้ครัวเรือน",
            title_en="Household income survey",
            checks=(_AFTER_BASELINE,),
        ),
        FormSpec(
            form_id="sammachip_group",
            kind="group",
            table="groups",
            business_key="group_code",
            subject_key="group_code",
            title_th="กลุ่มอาชีพ",
            title_en="Occupational group",
            checks=(_REGISTERED_MEMBERS,),
            name_key="group_name",
        ),
    ]
}

assert all(f.table in CLEAN_TABLES for f in FORMS.values())

# Every fact some form's checks read, by name.
FACTS: dict[str, Fact] = {f.name: f for spec in FORMS.values() for f in spec.facts}


def checks_of(fact: Fact) -> list[tuple[FormSpec, Check]]:
    """Every check that reads `fact`, with the form whose rows it checks."""
    return [(spec, c) for spec in FORMS.values() for c in spec.checks if c.fact is fact]


def fed_by(form_id: str) -> list[Fact]:
    """The facts read from a form's tables: what changes when it loads or loses rows."""
    return [f for f in FACTS.values() if f.source == form_id]


def waves(forms: dict[str, FormSpec] = FORMS) -> tuple[tuple[str, ...], ...]:
    """The forms in layers, each after every form its checks read: the forms of one layer may
    load at once. A form's own facts (a follow-up against its household's baseline) are read
    within its load and order nothing."""
    placed: dict[str, int] = {}
    while len(placed) < len(forms):
        ready = [f for f, spec in forms.items() if f not in placed and spec.reads <= placed.keys()]
        if not ready:
            stuck = sorted(forms.keys() - placed.keys())
            raise ValueError(
                f"the checks of {', '.join(stuck)} read each other's facts: "
                "no form of them can load first"
            )
        for f in ready:
            placed[f] = 1 + max((placed[r] for r in forms[f].reads), default=-1)
    return tuple(tuple(f for f in forms if placed[f] == n) for n in range(max(placed.values()) + 1))


WAVES = waves()
# One run (one worker) loads the forms in the registry's order: each after those it reads.
assert all(
    list(FORMS).index(r) < list(FORMS).index(f) for f, spec in FORMS.items() for r in spec.reads
), "list each form after the forms its checks read"


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

METHOD_TH: dict[str, str] = {
    "lecture": "บรรยาย",
    "qa": "ถาม-ตอบ",
    "demonstration": "สาธิต",
    "video": "วิดีทัศน์",
}

CHANNEL_TH: dict[str, str] = {
    "local_market": "ตลาดในชุมชน/ตลาดนัด",
    "shop": "ร้านค้า/ร้านของฝาก",
    "middleman": "พ่อค้าคนกลาง",
    "otop_fair": "งาน OTOP/งานแสดงสินค้า",
    "online": "ออนไลน์",
    "coop": "สหกรณ์/วิสาหกิจชุมชน",
    "none": "ยังไม่มีช่องทางขาย",
}

PROBLEM_TH: dict[str, str] = {
    "none": "ไม่มีปัญหา",
    "market": "ขายไม่ได้/ไม่มีตลาด",
    "materials": "ขาดวัตถุดิบ/วัสดุ",
    "skills": "ขาดความรู้/ทักษะ",
    "capital": "ขาดเงินทุน",
    "time": "ไม่มีเวลา/แรงงาน",
    "weather": "ภัยธรรมชาติ/สภาพอากาศ",
    "health": "ปัญหาสุขภาพ",
    "other": "อื่นๆ",
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
