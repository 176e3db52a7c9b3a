"""Thai labels (English beside) for the values and columns officers read.

The marts keep stable English codes; every deliverable shows them through these tables.
Names that belong to the data live with it: the forms' choices in `schemas.registry`, place
names in `schemas.admin_codes`, OTOP readiness with its mart (`marts.READINESS_TH`).
"""

from __future__ import annotations

ALERT_STATUS_TH: dict[str, str] = {
    "open": "ยังไม่ดำเนินการ",
    "snoozed": "เลื่อนไว้",
    "resolved": "แก้ไขแล้ว",
}

PRIORITY_TH: dict[int, str] = {1: "ด่วน", 2: "สำคัญ", 3: "ติดตาม"}

# OTOP checklist items in the order an officer should help with them (see otop_readiness.sql).
OTOP_CHECKS: list[tuple[str, str]] = [
    ("members_ok", "สมาชิก ≥ 7 คน"),
    ("thai_members_ok", "สมาชิกสัญชาติไทยทุกคน"),
    ("community_link_ok", "เชื่อมโยงชุมชน"),
    ("product_type_ok", "ผลิตภัณฑ์ตรง 5 ประเภท OTOP"),
    ("standard_ok", "มีมาตรฐาน (อย./มผช./มอก.)"),
    ("packaging_label_ok", "มีบรรจุภัณฑ์และฉลาก"),
    ("steady_records_ok", "มีบันทึกการผลิตและยอดขาย"),
]

# Column → header, Thai first and English beside (mixed offices use both).
ALERT_COLUMNS: list[tuple[str, str]] = [
    ("priority", "ลำดับความสำคัญ (priority)"),
    ("rule_th", "เรื่อง (issue)"),
    ("subject_id", "รหัส (code)"),
    ("subject_name", "ชื่อ (name)"),
    ("phone", "โทรศัพท์ (phone)"),
    ("village_code", "รหัสหมู่บ้าน (village)"),
    ("reason_th", "รายละเอียด (details)"),
    ("due_date", "ดำเนินการภายใน (due)"),
    ("first_seen", "พบครั้งแรก (first seen)"),
    ("status", "สถานะ (status)"),
    ("snoozed_until", "เลื่อนถึง (snoozed until)"),
    ("alert_id", "รหัสแจ้งเตือน (alert id)"),
]

OTOP_COLUMNS: list[tuple[str, str]] = [
    ("group_code", "รหัสกลุ่ม (group)"),
    ("group_name", "ชื่อกลุ่ม (name)"),
    ("village_code", "รหัสหมู่บ้าน (village)"),
    ("product_name", "ผลิตภัณฑ์ (product)"),
    ("product_type_th", "ประเภท OTOP (type)"),
    ("n_members", "จำนวนสมาชิก (members)"),
    ("score", "คะแนน (score)"),
    ("status_th", "ความพร้อม OTOP (readiness)"),
    ("next_step_th", "ควรช่วยเรื่องแรก (next step)"),
    ("missing_th", "สิ่งที่ยังขาด (missing)"),
    *((col, f"{label} ({col.removesuffix('_ok')})") for col, label in OTOP_CHECKS),
    ("otop_status_th", "สถานะ OTOP (registration)"),
]

KPI_COLUMNS: list[tuple[str, str]] = [
    ("scope_name", "พื้นที่ (area)"),
    ("kpi_th", "ตัวชี้วัด (indicator)"),
    ("value", "ผล (value)"),
    ("target", "เป้าหมาย (target)"),
    ("met", "ผ่านเป้า (met)"),
    ("detail_th", "รายละเอียด (details)"),
]
