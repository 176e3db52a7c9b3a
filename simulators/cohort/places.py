"""Where the cohort lives: the villages of Ubon Ratchathani (Muang Sam Sip, the pilot district,
first), their names, and a household's house number and location.
"""

from __future__ import annotations

import random

from sammachip.schemas.admin_codes import (
    MUANG_SAM_SIP,
    UBON_RATCHATHANI,
    amphoes_of,
    tambon_name,
    tambons_of,
)
from sammachip.simulators.cohort.model import Village

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


def geopoint(rng: random.Random, village: Village) -> str:
    """A household's location as Collect records it: lat lon altitude accuracy."""
    # Muang Sam Sip lies around 15.51 N 104.73 E; the rest of Ubon within about a degree.
    if village.tambon.startswith(MUANG_SAM_SIP):
        lat, lon = 15.51 + rng.uniform(-0.12, 0.12), 104.73 + rng.uniform(-0.15, 0.15)
    else:
        t = int(village.tambon[2:])
        lat = 14.6 + (t * 7919 % 1500) / 1000 + rng.uniform(-0.03, 0.03)
        lon = 104.4 + (t * 104729 % 1200) / 1000 + rng.uniform(-0.03, 0.03)
    return f"{lat:.6f} {lon:.6f} {rng.uniform(120, 180):.1f} {rng.uniform(3, 20):.1f}"


def house_no(rng: random.Random) -> str:
    """A house number, a quarter of them with a sub-number (12/3)."""
    number = str(rng.randint(1, 250))
    return f"{number}/{rng.randint(1, 9)}" if rng.random() < 0.25 else number
