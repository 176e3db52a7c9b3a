"""Synthetic สัมมาชีพชุมชน cohort: villages, sages, households, sessions, materials, incomes, groups.

Everything is shaped like KoboToolbox submissions of the six forms in docs/forms.md (answers are
strings, grouped keys `group/field`, repeats are lists of dicts with full-path keys) and is
deterministic for a given spec: each village draws from its own `random.Random`, so a village
looks the same whether 3 or 2,700 villages are generated.

Dirty data (Thai digits, Buddhist-Era years, bad ID checksums, duplicates, +66 phones, missing
answers, edits, rejected statuses) is injected on purpose and recorded in `defects`, so validation
tests have a ground truth to compare with.
"""

from __future__ import annotations

import gc
import math
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from schemas.admin_codes import MUANG_SAM_SIP, UBON_RATCHATHANI, amphoes_of, tambon_name, tambons_of
from schemas.registry import OCCUPATION_TH

Answers = dict[str, Any]

HOUSEHOLD = "sammachip_household"
SAGE = "sammachip_sage"
SESSION = "sammachip_session"
MATERIALS = "sammachip_materials"
INCOME = "sammachip_income"
GROUP = "sammachip_group"

FORM_TITLES: dict[str, str] = {
    HOUSEHOLD: "ทะเบียนครัวเรือนเป้าหมาย",
    SAGE: "ทะเบียนปราชญ์ชุมชน",
    SESSION: "การฝึกอบรมและศึกษาดูงาน",
    MATERIALS: "การมอบวัสดุอุปกรณ์",
    INCOME: "สำรวจรายได้ครัวเรือน",
    GROUP: "กลุ่มอาชีพ",
}
FORM_IDS: tuple[str, ...] = tuple(FORM_TITLES)

DEVICE_TZ = timedelta(hours=7)  # Asia/Bangkok, no DST
APPROVED = "validation_status_approved"
NOT_APPROVED = "validation_status_not_approved"
ON_HOLD = "validation_status_on_hold"


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class CohortSpec:
    seed: int = 2568
    villages: int | None = None  # None: every village of Muang Sam Sip; N: first N, round-robin
    households_per_village: int = 20
    today: date = field(default_factory=date.today)  # pass a fixed date for reproducible output
    dirty: bool = True
    # True: the *last* `villages` of the province instead of the first — a later intake, whose
    # villages no cohort of the first N (N up to the rest) includes
    intake: bool = False


@dataclass(frozen=True, slots=True)
class Village:
    code: str  # DOPA 8 digits: tambon + moo
    name: str  # บ้าน<name> หมู่ <n>
    tambon: str  # 6 digits
    moo: int


@dataclass(slots=True)
class GeneratedSubmission:
    form_id: str
    answers: Answers
    received_at: datetime  # intended server receive time, UTC, naive
    validation_status: str | None = None  # validation_status_* uid
    validated_at: datetime | None = None  # UTC naive; when the status was set
    edits: list[tuple[datetime, Answers]] = field(default_factory=list)  # (edited_at UTC, changes)
    submitted_by: str | None = None  # Kobo username; None for anonymous (data-collector link)
    defects: tuple[str, ...] = ()  # injected dirt, e.g. "thai_digits:head/phone"


@dataclass
class Cohort:
    spec: CohortSpec
    villages: list[Village]
    submissions: list[GeneratedSubmission]

    def by_form(self, form_id: str) -> Iterator[GeneratedSubmission]:
        return (s for s in self.submissions if s.form_id == form_id)

    def summary(self) -> str:
        forms = Counter(s.form_id for s in self.submissions)
        repeat_rows = sum(
            len(v) for s in self.submissions for v in s.answers.values() if isinstance(v, list)
        )
        dirty = sum(1 for s in self.submissions if s.defects)
        edits = sum(len(s.edits) for s in self.submissions)
        statuses = Counter(s.validation_status for s in self.submissions if s.validation_status)
        n = len(self.submissions) or 1
        times = [s.received_at for s in self.submissions] or [datetime.min]
        lines = [
            f"seed {self.spec.seed}, today {self.spec.today.isoformat()}, "
            f"{len(self.villages)} villages in {len({v.tambon for v in self.villages})} tambons",
            *(f"  {form:<22} {forms[form]:>8}" for form in FORM_IDS),
            f"  {'submissions':<22} {len(self.submissions):>8}  (+{repeat_rows} repeat rows)",
            f"  {'dirty':<22} {dirty:>8}  ({dirty / n:.1%})",
            f"  {'edits':<22} {edits:>8}",
            *(
                f"  {uid.removeprefix('validation_status_'):<22} {c:>8}"
                for uid, c in sorted(statuses.items())
            ),
            f"received {min(times):%Y-%m-%d %H:%M} .. {max(times):%Y-%m-%d %H:%M} UTC",
        ]
        return "\n".join(lines)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC during bulk building: millions of acyclic dicts otherwise trigger
    repeated full collections (about a third of the time at province scale)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate_cohort(spec: CohortSpec) -> Cohort:
    villages = select_villages(spec.seed, spec.villages, intake=spec.intake)
    cutoff = datetime.combine(spec.today, time(23, 59, 59)) - DEVICE_TZ
    submissions: list[GeneratedSubmission] = []
    with paused_gc():
        for village in villages:
            rng = random.Random(f"{spec.seed}:{village.code}")
            submissions.extend(_VillageBuilder(spec, village, rng, cutoff).build())
    # Stable: ties keep generation order.
    submissions.sort(key=lambda s: s.received_at)
    return Cohort(spec=spec, villages=villages, submissions=submissions)


# --------------------------------------------------------------------------- geography

_VILLAGE_HEADS = (
    "หนอง",
    "โนน",
    "ดอน",
    "นา",
    "โคก",
    "ห้วย",
    "กุด",
    "ท่า",
    "ป่า",
    "สร้าง",
    "หัว",
    "คำ",
    "บุ่ง",
    "ดง",
    "แก",
    "โพน",
    "เหล่า",
    "นาคำ",
    "ทุ่ง",
    "บก",
)
_VILLAGE_TAILS = (
    "ใหญ่",
    "น้อย",
    "แดง",
    "ขาม",
    "บัว",
    "ยาง",
    "ไผ่",
    "แสง",
    "สว่าง",
    "ทอง",
    "เหล็ก",
    "ช้าง",
    "ม่วง",
    "ไฮ",
    "ตาล",
    "หว้า",
    "จาน",
    "แคน",
    "งิ้ว",
    "เรือ",
    "หิน",
    "ดู่",
    "กอก",
    "สะแบง",
    "ผือ",
    "เต่า",
    "แวง",
    "เจริญ",
    "ศรีสุข",
    "โพธิ์",
)


def _province_tambons() -> list[str]:
    """Muang Sam Sip first (the pilot district), then the rest of Ubon Ratchathani."""
    rest = [t for a in amphoes_of(UBON_RATCHATHANI) if a != MUANG_SAM_SIP for t in tambons_of(a)]
    return [*tambons_of(MUANG_SAM_SIP), *rest]


def _tambon_villages(rng: random.Random, tambon: str, count: int) -> list[Village]:
    names = [f"บ้าน{tambon_name(tambon)}"]  # moo 1 usually carries the tambon's name
    while len(names) < count:
        head, tail = rng.choice(_VILLAGE_HEADS), rng.choice(_VILLAGE_TAILS)
        name = f"บ้าน{head}{tail}"
        if name not in names:
            names.append(name)
    return [
        Village(f"{tambon}{moo:02d}", f"{name} หมู่ {moo}", tambon, moo)
        for moo, name in enumerate(names, start=1)
    ]


def _round_robin(groups: list[list[Village]]) -> list[Village]:
    depth = max((len(g) for g in groups), default=0)
    return [g[i] for i in range(depth) for g in groups if i < len(g)]


def select_villages(seed: int, count: int | None, *, intake: bool = False) -> list[Village]:
    """The villages of a cohort, sorted by code.

    None = every village of Muang Sam Sip; N = the first N taken round-robin across tambons
    (Muang Sam Sip first, then the rest of the province), so a small N spreads over tambons;
    with `intake`, the last N of that order instead.
    """
    rng = random.Random(f"geography:{seed}")
    district, rest = [], []
    for tambon in _province_tambons():
        in_district = tambon.startswith(MUANG_SAM_SIP)
        n = rng.randint(8, 16) if in_district else rng.randint(10, 17)
        (district if in_district else rest).append(_tambon_villages(rng, tambon, n))
    order = [*_round_robin(district), *_round_robin(rest)]
    if count is None:
        count = sum(len(g) for g in district)
    if not 0 < count <= len(order):
        raise ValueError(f"villages must be between 1 and {len(order)}, got {count}")
    chosen = order[len(order) - count :] if intake else order[:count]
    return sorted(chosen, key=lambda v: v.code)


# --------------------------------------------------------------------------- vocabulary

_MALE = (
    "สมชาย",
    "สมศักดิ์",
    "บุญมี",
    "ประสิทธิ์",
    "สมพงษ์",
    "ทองดี",
    "คำพันธ์",
    "บุญเลิศ",
    "สุริยา",
    "วิชัย",
    "อุดม",
    "สมบัติ",
    "เสถียร",
    "ไพรวัลย์",
    "ณรงค์",
    "ประยูร",
    "บุญส่ง",
    "คำปุ่น",
    "สุพจน์",
    "ธวัชชัย",
    "อนุชา",
    "เกียรติศักดิ์",
    "สายัณห์",
    "ทองใบ",
    "บัวลอง",
)
_FEMALE = (
    "สมศรี",
    "บุญเรือน",
    "คำปุน",
    "ทองใส",
    "มาลี",
    "สุภาพ",
    "บัวผัน",
    "ประนอม",
    "อรุณี",
    "จันทร์เพ็ญ",
    "สุดารัตน์",
    "ละเอียด",
    "คำแพง",
    "บุญหลาย",
    "นงลักษณ์",
    "วันเพ็ญ",
    "ลำดวน",
    "ทองม้วน",
    "พิมพา",
    "อำไพ",
    "สายสุนีย์",
    "รัชนี",
    "บังอร",
    "หนูพิน",
    "แสงเดือน",
)
_FAMILY = (
    "ศรีสุข",
    "พรมมา",
    "บุญมา",
    "สีดา",
    "แก้วกันหา",
    "ทองคำ",
    "จันทร์แดง",
    "ผิวขำ",
    "ศรีบุญเรือง",
    "วงศ์ใหญ่",
    "คำภูมี",
    "มูลสาร",
    "พันธ์โยธี",
    "บุตรศรี",
    "สุวรรณไตร",
    "แสนทวีสุข",
    "ปัญญาใส",
    "โคตรพันธ์",
    "ดวงจันทร์",
    "บุญประกอบ",
    "ไชยวงศ์",
    "อินทร์แก้ว",
    "ชาวนา",
    "สายทอง",
    "ภูมิสถาน",
    "นามวงศ์",
    "คำหล้า",
    "พลเยี่ยม",
    "ศรีหาวงศ์",
    "เหล่าสุวรรณ",
    "ทองแสง",
    "จำปาทอง",
    "บุญยืน",
    "วรรณศรี",
    "สมบูรณ์ชัย",
    "อ่อนศรี",
)

# Popular choices in Isan villages come first and are drawn more often.
_OCC_WEIGHTS = (14, 12, 10, 10, 6, 9, 7, 6, 7, 10, 9)

# item, unit, unit price THB (low, high), quantity (low, high), quantity may be fractional
_ItemSpec = tuple[str, str, tuple[int, int], tuple[int, int], bool]
ITEMS: dict[str, tuple[_ItemSpec, ...]] = {
    "mushroom": (
        ("ก้อนเชื้อเห็ดนางฟ้า", "ก้อน", (8, 12), (100, 400), False),
        ("ตาข่ายพรางแสง", "ม้วน", (380, 520), (1, 2), False),
        ("บัวรดน้ำ", "อัน", (90, 150), (1, 2), False),
        ("ชั้นวางก้อนเห็ด", "ชุด", (600, 900), (1, 2), False),
    ),
    "weaving": (
        ("เส้นไหม", "กก.", (1000, 1400), (1, 3), True),
        ("เส้นฝ้าย", "กก.", (220, 300), (2, 5), True),
        ("สีย้อมธรรมชาติ", "ชุด", (250, 350), (1, 3), False),
        ("ฟืมทอผ้า", "อัน", (800, 1500), (1, 1), False),
    ),
    "reed_mat": (
        ("กก", "กก.", (30, 50), (20, 60), False),
        ("สีย้อมกก", "ซอง", (20, 30), (5, 20), False),
        ("เชือกไนลอน", "ม้วน", (50, 80), (2, 6), False),
        ("กี่ทอเสื่อ", "ชุด", (900, 1500), (1, 1), False),
    ),
    "cricket": (
        ("ไข่จิ้งหรีด", "ขัน", (60, 100), (2, 10), False),
        ("อาหารจิ้งหรีด", "กระสอบ", (420, 520), (1, 4), False),
        ("ถาดไข่กระดาษ", "แผง", (2, 4), (100, 300), False),
        ("มุ้งเขียว", "ม้วน", (300, 450), (1, 2), False),
    ),
    "frog": (
        ("ลูกกบ", "ตัว", (1, 3), (300, 1000), False),
        ("อาหารกบ", "กระสอบ", (480, 600), (1, 4), False),
        ("บ่อพลาสติก", "ผืน", (300, 450), (1, 3), False),
    ),
    "processed_food": (
        ("ปลาร้า", "กก.", (70, 100), (5, 20), False),
        ("พริกแห้ง", "กก.", (120, 180), (1, 5), True),
        ("ถุงบรรจุภัณฑ์", "แพ็ค", (35, 60), (2, 10), False),
        ("เครื่องซีลถุง", "เครื่อง", (750, 1200), (1, 1), False),
    ),
    "basketry": (
        ("ไม้ไผ่", "ลำ", (25, 40), (5, 20), False),
        ("เส้นพลาสติก", "กก.", (80, 110), (2, 8), True),
        ("มีดตอก", "เล่ม", (120, 200), (1, 2), False),
        ("แลคเกอร์", "กระป๋อง", (100, 150), (1, 3), False),
    ),
    "herbal": (
        ("ไพลแห้ง", "กก.", (60, 120), (2, 10), True),
        ("ขมิ้นชัน", "กก.", (50, 100), (2, 8), True),
        ("ผ้าดิบ", "เมตร", (30, 50), (10, 30), False),
        ("หม้อนึ่ง", "ใบ", (350, 550), (1, 1), False),
    ),
    "fertiliser": (
        ("มูลวัว", "กระสอบ", (35, 50), (10, 40), False),
        ("กากน้ำตาล", "แกลลอน", (80, 120), (1, 4), False),
        ("สารเร่ง พด.1", "ซอง", (15, 25), (2, 10), False),
        ("ถังหมัก 200 ลิตร", "ใบ", (400, 550), (1, 2), False),
    ),
    "vegetables": (
        ("เมล็ดพันธุ์ผัก", "ซอง", (20, 35), (5, 20), False),
        ("ปุ๋ยอินทรีย์", "กระสอบ", (200, 300), (1, 5), False),
        ("ระบบน้ำหยด", "ชุด", (700, 1200), (1, 1), False),
        ("ตาข่ายกันแมลง", "ม้วน", (550, 800), (1, 2), False),
    ),
    "cleaning_liquid": (
        ("หัวเชื้อ N70", "กก.", (100, 140), (1, 5), True),
        ("เกลือ", "กก.", (8, 12), (2, 10), False),
        ("แกลลอนเปล่า", "ใบ", (12, 20), (10, 30), False),
        ("หัวน้ำหอม", "ขวด", (60, 100), (1, 4), False),
    ),
}

# follow-up occupation income, THB per month, when practising
_OCC_INCOME: dict[str, tuple[int, int]] = {
    "mushroom": (1500, 6000),
    "weaving": (1000, 5000),
    "reed_mat": (800, 3500),
    "cricket": (1500, 8000),
    "frog": (1000, 5000),
    "processed_food": (1000, 5000),
    "basketry": (800, 3000),
    "herbal": (800, 3000),
    "fertiliser": (500, 2500),
    "vegetables": (1000, 4500),
    "cleaning_liquid": (500, 2000),
}

OTOP_TYPE: dict[str, str] = {
    "mushroom": "food",
    "weaving": "textile",
    "reed_mat": "decor",
    "cricket": "food",
    "frog": "food",
    "processed_food": "food",
    "basketry": "decor",
    "herbal": "herbal",
    "fertiliser": "decor",
    "vegetables": "food",
    "cleaning_liquid": "decor",
}
_PRODUCTS: dict[str, tuple[str, ...]] = {
    "mushroom": ("น้ำพริกเห็ดนางฟ้า", "เห็ดนางฟ้าสด", "แหนมเห็ด"),
    "weaving": ("ผ้าไหมมัดหมี่", "ผ้าฝ้ายย้อมคราม", "ผ้าขาวม้า"),
    "reed_mat": ("เสื่อกกลายขิด", "กระเป๋าเสื่อกก", "เบาะรองนั่งกก"),
    "cricket": ("จิ้งหรีดทอดกรอบ", "จิ้งหรีดสด"),
    "frog": ("กบแดดเดียว", "กบสด"),
    "processed_food": ("ปลาร้าบอง", "ข้าวเกรียบว่าว", "หมี่กรอบ"),
    "basketry": ("กระติบข้าวไม้ไผ่", "ตะกร้าเส้นพลาสติก", "กระด้ง"),
    "herbal": ("ลูกประคบสมุนไพร", "ยาหม่องสมุนไพร", "สบู่สมุนไพร"),
    "fertiliser": ("ปุ๋ยหมักชีวภาพอัดเม็ด", "น้ำหมักชีวภาพ"),
    "vegetables": ("ผักสลัดปลอดสาร", "ผักบุ้งปลอดสาร"),
    "cleaning_liquid": ("น้ำยาล้างจานสูตรมะกรูด", "น้ำยาอเนกประสงค์"),
}

# Where injected dirt may land, per form: (kind, key).
_DIRT_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    HOUSEHOLD: (
        ("thai_digits", "head/national_id"),
        ("thai_digits", "head/phone"),
        ("thai_digits", "baseline_income"),
        ("thai_digits", "hh/village_code"),
        ("phone_plus66", "head/phone"),
        ("missing_required", "head/national_id"),
        ("missing_required", "occupation"),
    ),
    SAGE: (
        ("thai_digits", "sage/national_id"),
        ("thai_digits", "sage/phone"),
        ("phone_plus66", "sage/phone"),
        ("be_year", "trainer_course_date"),
        ("missing_required", "expertise"),
    ),
    SESSION: (
        ("be_year", "held_date"),
        ("be_year", "planned_date"),
        ("thai_digits", "village_code"),
        ("missing_required", "sage_code"),
    ),
    MATERIALS: (
        ("be_year", "handout_date"),
        ("thai_digits", "hh_code"),
        ("missing_required", "handout_date"),
    ),
    INCOME: (
        ("thai_digits", "hh_income"),
        ("thai_digits", "occ_income"),
        ("be_year", "survey_date"),
        ("missing_required", "hh_income"),
    ),
    GROUP: (
        ("be_year", "grp/formed_date"),
        ("thai_digits", "sales/monthly_sales"),
        ("missing_required", "otop_status"),
    ),
}
DIRTY_RATE = 0.025  # value-level dirt per submission
BAD_CHECKSUM_RATE = 0.01  # of people registered
DUPLICATE_RATE = 0.01  # of household registrations
EDIT_RATE = 0.02

_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


# --------------------------------------------------------------------------- small helpers


def id_check_digit(first12: str) -> int:
    """Thai national-ID check digit: weights 13..2, (11 - sum mod 11) mod 10."""
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return (11 - total % 11) % 10


def in_harvest(day: date) -> bool:
    """Rice harvest in Isan: late October to December."""
    return (day.month == 10 and day.day >= 20) or day.month in (11, 12)


def in_planting(day: date) -> bool:
    """Seedbeds and transplanting: mid-May to July."""
    return (day.month == 5 and day.day >= 15) or day.month in (6, 7)


def _be(value: str) -> str:
    """Rewrite the year of an ISO date as a Buddhist-Era year (phones set to the BE calendar)."""
    return f"{int(value[:4]) + 543}{value[4:]}"


def _plus66(phone: str) -> str:
    return f"+66{phone[1:]}"


def _round_to(value: float, step: int) -> int:
    return max(step, round(value / step) * step)


def _decimal(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


@dataclass(slots=True)
class _Household:
    code: str
    occupation: str
    baseline: int  # THB per month
    engagement: float  # base attendance probability
    registered: date
    phone: str
    attended: list[date] = field(default_factory=list)  # held trainings attended


@dataclass(slots=True)
class _Sage:
    code: str
    expertise: str


@dataclass(slots=True)
class _Session:
    activity: str
    sage: _Sage
    planned: date
    held: date | None


# --------------------------------------------------------------------------- per-village builder


class _VillageBuilder:
    """Builds one village's submissions from its own Random."""

    def __init__(
        self, spec: CohortSpec, village: Village, rng: random.Random, cutoff: datetime
    ) -> None:
        self.spec = spec
        self.village = village
        self.rng = rng
        self.cutoff = cutoff
        self.today = spec.today
        self.start = spec.today - timedelta(days=300 - rng.randint(0, 21))
        self.officer = f"cdd{village.tambon[:4]}_{village.tambon[4:]}"
        self.out: list[GeneratedSubmission] = []

    # -- orchestration

    def build(self) -> list[GeneratedSubmission]:
        sages = self._sages()
        households = self._households(sages)
        sessions = self._sessions(sages)
        self._attendance(sessions, households)
        handouts = self._materials(households)
        self._incomes(households, handouts)
        if self.rng.random() < 0.4:
            self._group(sages[0].expertise, households)
        if self.spec.dirty:
            self._edits_and_statuses()
        else:
            self._statuses(dirty=False)
        return self.out

    # -- people

    def _person_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            given, title = rng.choice(_MALE), "นาย"
        else:
            given, title = rng.choice(_FEMALE), rng.choice(("นาง", "นาง", "นาง", "นางสาว"))
        name = f"{given} {rng.choice(_FAMILY)}"
        return f"{title}{name}" if rng.random() < 0.7 else name

    def _national_id(self, adult_share: float) -> str:
        rng = self.rng
        kind = "3" if rng.random() < adult_share else "1"
        office = self.village.tambon[:4] if rng.random() < 0.8 else f"34{rng.randint(1, 33):02d}"
        body = f"{kind}{office}{rng.randrange(10**7):07d}"  # type, registration office, serial
        return f"{body}{id_check_digit(body)}"

    def _bad_checksum(self, national_id: str) -> str:
        wrong = (int(national_id[-1]) + self.rng.randint(1, 9)) % 10
        return f"{national_id[:-1]}{wrong}"

    def _phone(self) -> str:
        rng = self.rng
        return f"0{rng.choice('6899')}{rng.randrange(10**8):08d}"

    def _uuid(self) -> str:
        return f"uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    # -- device / server clocks

    def _stamp(self, day: date, minutes: tuple[int, int] = (3, 15)) -> tuple[Answers, datetime]:
        """start/end/today metadata for a form filled on `day`, and the server receive time."""
        rng = self.rng
        end = datetime.combine(
            day,
            time(
                rng.randint(8, 16), rng.randrange(60), rng.randrange(60), rng.randrange(1000) * 1000
            ),
        )
        begin = end - timedelta(
            seconds=rng.randint(minutes[0] * 60, minutes[1] * 60), milliseconds=rng.randrange(1000)
        )
        meta = {"start": _device_time(begin), "end": _device_time(end), "today": day.isoformat()}
        return meta, end - DEVICE_TZ + self._upload_delay()

    def _upload_delay(self) -> timedelta:
        r = self.rng.random()
        if r < 0.80:
            return timedelta(seconds=self.rng.randint(20, 1800))
        if r < 0.93:
            return timedelta(seconds=self.rng.randint(1800, 8 * 3600))
        return timedelta(days=self.rng.randint(1, 10), seconds=self.rng.randint(0, 86400))

    def _emit(
        self, form_id: str, day: date, fields: Answers, minutes: tuple[int, int] = (3, 15)
    ) -> GeneratedSubmission | None:
        """Wrap answers as a Kobo submission; None if it would reach the server after today."""
        meta, received = self._stamp(day, minutes)
        if received > self.cutoff:
            return None
        answers = {**meta, **fields, "meta/instanceID": self._uuid()}
        by = self.officer if self.rng.random() < 0.9 else None
        sub = GeneratedSubmission(form_id, answers, received, submitted_by=by)
        if self.spec.dirty and self.rng.random() < DIRTY_RATE:
            self._dirty(sub)
        self.out.append(sub)
        return sub

    def _day_between(self, low: date, high: date) -> date:
        return low + timedelta(days=self.rng.randint(0, max(0, (high - low).days)))

    # -- forms

    def _sages(self) -> list[_Sage]:
        rng = self.rng
        occupations = rng.sample(list(OCCUPATION_TH), k=rng.choices((1, 2, 3), (5, 3, 2))[0])
        main = rng.choices(list(OCCUPATION_TH), _OCC_WEIGHTS)[0]
        occupations = [main, *(o for o in occupations if o != main)][:3]
        sages = []
        for n, occupation in enumerate(occupations, start=1):
            sage = _Sage(f"S{self.village.code}-{n}", occupation)
            sages.append(sage)
            trained = rng.random() < 0.75
            national_id = self._national_id(adult_share=0.97)
            bad = self.spec.dirty and rng.random() < BAD_CHECKSUM_RATE
            if bad:
                national_id = self._bad_checksum(national_id)
            fields: Answers = {
                "sage/sage_code": sage.code,
                "sage/name": self._person_name(),
                "sage/national_id": national_id,
                "sage/phone": self._phone(),
                "sage/village_code": self.village.code,
                "expertise": occupation,
                "years_experience": str(rng.randint(3, 30)),
                "trained_trainer": "yes" if trained else "no",
            }
            if trained:
                course = self.today - timedelta(days=rng.randint(365, 6 * 365))
                fields["trainer_course_date"] = course.isoformat()
            sub = self._emit(SAGE, self.start + timedelta(days=rng.randint(0, 14)), fields)
            if sub is not None and bad:
                sub.defects += ("bad_checksum:sage/national_id",)
        return sages

    def _households(self, sages: list[_Sage]) -> list[_Household]:
        rng = self.rng
        main, others = sages[0].expertise, [s.expertise for s in sages[1:]]
        households = []
        for n in range(1, self.spec.households_per_village + 1):
            occupation = rng.choice(others) if others and rng.random() < 0.3 else main
            engagement = rng.uniform(0.94, 0.995) if rng.random() < 0.88 else rng.uniform(0.5, 0.8)
            baseline = _round_to(
                min(30000, max(2500, rng.lognormvariate(math.log(8000), 0.45))), 500
            )
            hh = _Household(
                f"{self.village.code}-{n:02d}",
                occupation,
                baseline,
                engagement,
                self.start + timedelta(days=rng.randint(3, 30)),
                self._phone(),
            )
            households.append(hh)
            self._register(hh)
        return households

    def _register(self, hh: _Household) -> None:
        rng = self.rng
        national_id = self._national_id(adult_share=0.85)
        bad = self.spec.dirty and rng.random() < BAD_CHECKSUM_RATE
        fields: Answers = {
            "hh/village_code": self.village.code,
            "hh/hh_code": hh.code,
            "hh/house_no": _house_no(rng),
            "head/name": self._person_name(),
            "head/national_id": self._bad_checksum(national_id) if bad else national_id,
            "head/phone": hh.phone,
            "members": str(rng.choices(range(1, 9), (4, 10, 18, 22, 18, 14, 8, 6))[0]),
            "occupation": hh.occupation,
            "baseline_income": str(hh.baseline),
        }
        if rng.random() < 0.75:
            fields["location"] = self._geopoint()
        sub = self._emit(HOUSEHOLD, hh.registered, fields)
        if sub is None:
            return
        if bad:
            sub.defects += ("bad_checksum:head/national_id",)
        if self.spec.dirty and rng.random() < DUPLICATE_RATE:
            self._duplicate(sub)

    def _duplicate(self, original: GeneratedSubmission) -> None:
        """The same household registered again from another phone (new instanceID)."""
        day = date.fromisoformat(original.answers["today"]) + timedelta(
            days=self.rng.choice((0, 0, 1, 3, 7))
        )
        fields = {
            k: v
            for k, v in original.answers.items()
            if k not in ("start", "end", "today", "meta/instanceID")
        }
        sub = self._emit(HOUSEHOLD, day, fields)
        if sub is not None:  # the copy carries the original's dirt too
            sub.defects = (*original.defects, *sub.defects, "duplicate:hh/hh_code")

    def _geopoint(self) -> str:
        rng = self.rng
        # Muang Sam Sip lies around 15.51 N 104.73 E; the rest of Ubon within about a degree.
        if self.village.tambon.startswith(MUANG_SAM_SIP):
            lat, lon = 15.51 + rng.uniform(-0.12, 0.12), 104.73 + rng.uniform(-0.15, 0.15)
        else:
            t = int(self.village.tambon[2:])
            lat = 14.6 + (t * 7919 % 1500) / 1000 + rng.uniform(-0.03, 0.03)
            lon = 104.4 + (t * 104729 % 1200) / 1000 + rng.uniform(-0.03, 0.03)
        return f"{lat:.6f} {lon:.6f} {rng.uniform(120, 180):.1f} {rng.uniform(3, 20):.1f}"

    def _sessions(self, sages: list[_Sage]) -> list[_Session]:
        rng = self.rng
        horizon = self.today + timedelta(days=14)
        kickoff = self.start + timedelta(days=rng.randint(15, 35))
        plans = [("kickoff", sages[0], kickoff)]
        first_training = kickoff + timedelta(days=14)
        for i in range(rng.randint(3, 5)):
            plans.append(
                ("training", sages[i % len(sages)], self._day_between(first_training, horizon))
            )
        if rng.random() < 0.35:
            plans.append(
                (
                    "study_visit",
                    rng.choice(sages),
                    self._day_between(kickoff + timedelta(days=60), horizon),
                )
            )
        plans.sort(key=lambda p: p[2])
        sessions = []
        for activity, sage, planned in plans:
            held = None
            if planned <= self.today:
                shift = 0 if rng.random() < 0.85 else rng.randint(1, 10)
                held = min(planned + timedelta(days=shift), self.today)
            sessions.append(_Session(activity, sage, planned, held))
        return sessions

    def _attendance(self, sessions: list[_Session], households: list[_Household]) -> None:
        rng = self.rng
        for n, session in enumerate(sessions, start=1):
            rows: list[Answers] = []
            day = session.held
            if day is None:
                rows = [{"attendees/hh_code": hh.code} for hh in households]
            else:
                factor = 0.8 if in_harvest(day) else 0.85 if in_planting(day) else 1.0
                for hh in households:
                    present = rng.random() < hh.engagement * factor
                    rows.append(
                        {
                            "attendees/hh_code": hh.code,
                            "attendees/present": "yes" if present else "no",
                        }
                    )
                    if present and session.activity == "training":
                        hh.attended.append(day)
            fields = self._session_fields(n, session, rows)
            if day is None:  # planned ahead: the plan is submitted days before
                filled = max(self.start, session.planned - timedelta(days=rng.randint(3, 10)))
                self._emit(SESSION, min(filled, self.today), fields)
            else:
                self._emit(
                    SESSION,
                    min(day + timedelta(days=rng.choice((0, 0, 1, 2))), self.today),
                    fields,
                    minutes=(10, 40),
                )

    def _session_fields(self, n: int, session: _Session, rows: list[Answers]) -> Answers:
        methods = {"kickoff": "lecture qa", "study_visit": "demonstration qa"}.get(
            session.activity
        ) or self.rng.choice(
            (
                "lecture demonstration",
                "lecture qa demonstration",
                "demonstration",
                "lecture demonstration video",
                "demonstration qa",
            )
        )
        fields: Answers = {
            "session_code": f"T{self.village.code}-{n:02d}",
            "village_code": self.village.code,
            "sage_code": session.sage.code,
            "occupation": session.sage.expertise,
            "activity_type": session.activity,
            "methods": methods,
            "planned_date": session.planned.isoformat(),
        }
        if session.held is not None:
            fields["held_date"] = session.held.isoformat()
        fields["attendees"] = rows
        return fields

    def _materials(self, households: list[_Household]) -> dict[str, date]:
        rng = self.rng
        handouts: dict[str, date] = {}
        for hh in households:
            if not hh.attended or rng.random() >= 0.85:
                continue
            day = min(hh.attended) + timedelta(days=rng.randint(3, 45))
            if day > self.today:
                continue
            fields = {
                "hh_code": hh.code,
                "handout_date": day.isoformat(),
                "items": self._item_lines(hh.occupation),
            }
            if self._emit(MATERIALS, day, fields) is not None:
                handouts[hh.code] = day
        return handouts

    def _item_lines(self, occupation: str) -> list[Answers]:
        rng = self.rng
        catalogue = ITEMS[occupation]
        picks = rng.sample(
            catalogue, k=min(len(catalogue), rng.choices((1, 2, 3, 4), (2, 4, 3, 1))[0])
        )
        lines = []
        for item, unit, (p_lo, p_hi), (q_lo, q_hi), fractional in picks:
            qty: float = rng.randint(q_lo, q_hi)
            if fractional and rng.random() < 0.4:
                qty += 0.5
            lines.append(
                {
                    "items/item": item,
                    "items/quantity": _decimal(qty),
                    "items/unit": unit,
                    "items/value_thb": _decimal(round(qty * rng.randint(p_lo, p_hi))),
                }
            )
        return lines

    def _incomes(self, households: list[_Household], handouts: dict[str, date]) -> None:
        rng = self.rng
        for hh in households:
            if rng.random() < 0.95:
                self._baseline_income(hh)
            handed = handouts.get(hh.code)
            if handed is not None and rng.random() < 0.75:
                day = handed + timedelta(days=rng.randint(60, 180))
                if day <= self.today:
                    self._followup_income(hh, day)

    def _baseline_income(self, hh: _Household) -> None:
        rng = self.rng
        already = rng.random() < 0.2  # some already practise a little
        occ = _round_to(rng.uniform(200, 1500), 100) if already else 0
        hh_income = (
            hh.baseline
            if rng.random() < 0.8
            else _round_to(hh.baseline * rng.uniform(0.9, 1.1), 500)
        )
        fields = {
            "hh_code": hh.code,
            "round": "baseline",
            "survey_date": (hh.registered + timedelta(days=rng.randint(0, 10))).isoformat(),
            "practising": "yes" if already else "no",
            "occ_income": str(occ),
            "hh_income": str(hh_income),
            "costs": str(_round_to(occ * 0.3, 50) if occ else 0),
        }
        self._emit(INCOME, date.fromisoformat(fields["survey_date"]), fields)

    def _followup_income(self, hh: _Household, day: date) -> None:
        rng = self.rng
        practising = rng.random() < 0.85
        if practising:
            lo, hi = _OCC_INCOME[hh.occupation]
            occ = _round_to(rng.uniform(lo, hi), 100)
            growth = rng.uniform(0.03, 0.30) if rng.random() < 0.8 else rng.uniform(-0.10, 0.02)
        else:
            occ, growth = 0, rng.uniform(-0.05, 0.02)
        fields = {
            "hh_code": hh.code,
            "round": "followup",
            "survey_date": day.isoformat(),
            "practising": "yes" if practising else "no",
            "occ_income": str(occ),
            "hh_income": str(_round_to(hh.baseline * (1 + growth), 100)),
            "costs": str(_round_to(occ * rng.uniform(0.1, 0.4), 50) if occ else 0),
        }
        self._emit(INCOME, day, fields)

    def _group(self, occupation: str, households: list[_Household]) -> None:
        rng = self.rng
        formed = self.start + timedelta(days=rng.randint(90, 240))
        if formed > self.today - timedelta(days=3):
            return
        same = [h for h in households if h.occupation == occupation]
        rest = [h for h in households if h.occupation != occupation]
        size = min(len(households), rng.randint(5, 15))
        members = rng.sample(same, k=min(size, len(same))) + rng.sample(
            rest, k=max(0, size - len(same))
        )
        committee = rng.randint(2, 4)
        rows = [
            {
                "members/hh_code": h.code,
                "members/role": "chair" if i == 0 else "committee" if i <= committee else "member",
            }
            for i, h in enumerate(members)
        ]
        otop = rng.choices(("not_registered", "applied", "registered"), (55, 20, 25))[0]
        ready = otop != "not_registered"
        base_name = self.village.name.split(" หมู่ ")[0]
        fields: Answers = {
            "grp/group_code": f"G{self.village.code}-1",
            "grp/group_name": f"กลุ่ม{OCCUPATION_TH[occupation]}{base_name}",
            "grp/village_code": self.village.code,
            "grp/formed_date": formed.isoformat(),
            "members": rows,
            "product/name": rng.choice(_PRODUCTS[occupation]),
            "product/type": OTOP_TYPE[occupation],
            "product/standards": self._standards(OTOP_TYPE[occupation], ready),
            "product/packaging": _yes(rng, 0.85 if ready else 0.5),
            "product/label": _yes(rng, 0.8 if ready else 0.4),
            "product/local_materials": _yes(rng, 0.8),
            "sales/monthly_sales": str(
                _round_to(rng.uniform(2000, 60000 if ready else 20000), 100)
            ),
            "sales/months_recorded": str(rng.randint(3, 6) if ready else rng.randint(0, 6)),
            "otop_status": otop,
        }
        self._emit(
            GROUP, self._day_between(formed, min(formed + timedelta(days=10), self.today)), fields
        )

    def _standards(self, otop_type: str, ready: bool) -> str:
        rng = self.rng
        if rng.random() < (0.4 if ready else 0.75):
            return "none"
        options = ["tcps", "fda"] if otop_type in ("food", "beverage") else ["tcps", "tis"]
        return " ".join(sorted(rng.sample(options, k=rng.choice((1, 1, 2))), key=options.index))

    # -- dirt, edits, statuses

    def _dirty(self, sub: GeneratedSubmission) -> None:
        rng, answers = self.rng, sub.answers
        targets = list(_DIRT_TARGETS[sub.form_id])
        rng.shuffle(targets)
        for kind, key in targets:
            value = answers.get(key)
            if not isinstance(value, str):
                continue
            if kind == "thai_digits":
                answers[key] = value.translate(_THAI_DIGITS)
            elif kind == "be_year":
                answers[key] = _be(value)
            elif kind == "phone_plus66":
                answers[key] = _plus66(value)
            else:  # missing_required
                del answers[key]
            sub.defects += (f"{kind}:{key}",)
            return

    def _edits_and_statuses(self) -> None:
        for sub in self.out:
            if self.rng.random() < EDIT_RATE:
                self._edit(sub)
                if self.rng.random() < 0.1:
                    self._edit(sub)  # edited twice: the deprecatedID chain moves on
        self._statuses(dirty=True)

    def _edit(self, sub: GeneratedSubmission) -> None:
        rng = self.rng
        last = sub.edits[-1][0] if sub.edits else sub.received_at
        edited_at = last + timedelta(days=rng.randint(1, 20), seconds=rng.randint(0, 36000))
        if edited_at > self.cutoff:
            return
        changes = _correction(rng, sub.form_id, sub.answers, self._phone())
        if changes:
            changes["meta/instanceID"] = self._uuid()
            sub.edits.append((edited_at, changes))

    def _statuses(self, dirty: bool) -> None:
        rng = self.rng
        for sub in self.out:
            r = rng.random()
            if dirty and sub.defects:
                uid = NOT_APPROVED if r < 0.2 else ON_HOLD if r < 0.3 else None
            elif dirty:
                uid = (
                    APPROVED
                    if r < 0.1
                    else ON_HOLD
                    if r < 0.105
                    else (NOT_APPROVED if r < 0.11 else None)
                )
            else:
                uid = APPROVED if r < 0.1 else None
            if uid is None:
                continue
            at = sub.received_at + timedelta(days=rng.randint(1, 14), seconds=rng.randint(0, 3600))
            if at <= self.cutoff:
                sub.validation_status, sub.validated_at = uid, at


def _correction(rng: random.Random, form_id: str, answers: Answers, phone: str) -> Answers:
    """What an officer typically corrects after the fact (a phone, an income, a count)."""
    if form_id == HOUSEHOLD:
        return {"head/phone": phone}
    if form_id == SAGE:
        return {"sage/phone": phone}
    if form_id == INCOME and "hh_income" in answers:
        fixed = answers["hh_income"].translate(str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789"))
        return {"hh_income": str(_round_to(int(fixed) * rng.uniform(0.8, 1.2), 100))}
    if form_id == MATERIALS:
        items = [dict(line) for line in answers["items"]]
        first = items[0]
        qty = float(first["items/quantity"]) + rng.randint(1, 5)
        unit_price = float(first["items/value_thb"]) / float(first["items/quantity"])
        first["items/quantity"], first["items/value_thb"] = (
            _decimal(qty),
            _decimal(round(qty * unit_price)),
        )
        return {"items": items}
    if form_id == SESSION and "held_date" in answers:
        rows = [dict(r) for r in answers["attendees"]]
        absent = [r for r in rows if r.get("attendees/present") == "no"]
        if not absent:
            return {}
        rng.choice(absent)["attendees/present"] = "yes"  # late sign-in sheet
        return {"attendees": rows}
    if form_id == GROUP:
        return {"sales/months_recorded": str(rng.randint(0, 6))}
    return {}


def _device_time(local: datetime) -> str:
    """ODK/Enketo device time: milliseconds and the +07:00 offset."""
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}+07:00"


def _house_no(rng: random.Random) -> str:
    number = str(rng.randint(1, 250))
    return f"{number}/{rng.randint(1, 9)}" if rng.random() < 0.25 else number


def _yes(rng: random.Random, p: float) -> str:
    return "yes" if rng.random() < p else "no"
