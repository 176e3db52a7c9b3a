"""Who lives in the cohort: Isan given and family names, Thai national IDs with their check
digit, and mobile numbers.
"""

from __future__ import annotations

import random

MALE_NAMES = (
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
FEMALE_NAMES = (
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
FAMILY_NAMES = (
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


def id_check_digit(first12: str) -> int:
    """Thai national-ID check digit: weights 13..2, (11 - sum mod 11) mod 10."""
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return (11 - total % 11) % 10


def person_name(rng: random.Random) -> str:
    """A villager's name, with a title (นาย, นาง, นางสาว) seven times in ten."""
    if rng.random() < 0.5:
        given, title = rng.choice(MALE_NAMES), "นาย"
    else:
        given, title = rng.choice(FEMALE_NAMES), rng.choice(("นาง", "นาง", "นาง", "นางสาว"))
    name = f"{given} {rng.choice(FAMILY_NAMES)}"
    return f"{title}{name}" if rng.random() < 0.7 else name


def new_national_id(rng: random.Random, tambon: str, adult_share: float) -> str:
    """A valid 13-digit national ID: type (3 with probability `adult_share`, else 1),
    registration office (usually the village's province and amphoe), serial, check digit."""
    kind = "3" if rng.random() < adult_share else "1"
    office = tambon[:4] if rng.random() < 0.8 else f"34{rng.randint(1, 33):02d}"
    body = f"{kind}{office}{rng.randrange(10**7):07d}"  # type, registration office, serial
    return f"{body}{id_check_digit(body)}"


def new_phone(rng: random.Random) -> str:
    """A Thai mobile number (06, 08 or 09)."""
    return f"0{rng.choice('6899')}{rng.randrange(10**8):08d}"
