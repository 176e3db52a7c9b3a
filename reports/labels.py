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

# What a worklist entry is about (the mart's `subject_type`); a session with a call list is
# labelled as the calls to make (`entries.subject_label`).
SUBJECT_TH: dict[str, str] = {
    "household": "ครัวเรือน (household)",
    "group": "กลุ่มอาชีพ (group)",
    "sage": "ปราชญ์ (sage)",
    "session": "กิจกรรม (session)",
    "village": "หมู่บ้าน (village)",
    "submission": "ข้อมูลต้องแก้ไข (data to fix)",
}
CALL_LIST_TH = "โทรแจ้งก่อนกิจกรรม (call list)"

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

# One row per worklist entry: where to go first, then why and by when; the alert ids last
# (the snooze file names them).
WORKLIST_COLUMNS: list[tuple[str, str]] = [
    ("visit_order", "ลำดับ (order)"),
    ("priority", "ความสำคัญ (priority)"),
    ("title_th", "ชื่อ/เรื่อง (who/what)"),
    ("subject_type_th", "ประเภท (type)"),
    ("village_name", "หมู่บ้าน (village)"),
    ("moo", "หมู่ที่ (moo)"),
    ("tambon_name", "ตำบล (tambon)"),
    ("house_no", "บ้านเลขที่ (house no.)"),
    ("phone", "โทรศัพท์ (phone)"),
    ("reasons_th", "เหตุผล (reasons)"),
    ("call_list_th", "รายชื่อที่ต้องโทร (call list)"),
    ("due_date", "ดำเนินการภายใน (due)"),
    ("overdue_days", "เลยกำหนด/วัน (days overdue)"),
    ("first_seen", "พบครั้งแรก (first seen)"),
    ("coordinates", "พิกัด (lat, lon)"),
    ("alert_ids", "รหัสแจ้งเตือน (alert ids)"),
]


def _worklist_csv_columns() -> list[tuple[str, str]]:
    """The CSV's: the workbook's, priority in words, and each date (in the Buddhist Era)
    followed by the same date in ISO, which any program sorts."""
    columns = [("bucket_th", "รายการ (list)")]
    for col, header in WORKLIST_COLUMNS:
        columns.append(("priority_th", header) if col == "priority" else (col, header))
        if col in ("due_date", "first_seen"):
            thai, english = header.removesuffix(")").split(" (")
            columns.append((f"{col}_iso", f"{thai} ISO ({english}, ISO)"))
    return columns


WORKLIST_CSV_COLUMNS = _worklist_csv_columns()

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
    ("market_th", "ตลาด ราคาและต้นทุน (market)"),
    *((col, f"{label} ({col.removesuffix('_ok')})") for col, label in OTOP_CHECKS),
    ("otop_status_th", "สถานะ OTOP (registration)"),
]

KPI_COLUMNS: list[tuple[str, str]] = [
    ("scope_name", "พื้นที่ (area)"),
    ("kpi_th", "ตัวชี้วัด (indicator)"),
    ("value", "ผล (value)"),
    ("target", "เป้าหมาย (target)"),
    ("met", "ผ่านเป้า (met)"),
    ("numerator", "ตัวตั้ง (numerator)"),
    ("denominator", "ตัวหาร (denominator)"),
    ("source_th", "ที่มาของเป้าหมาย (target's source)"),
    ("detail_th", "รายละเอียด (details)"),
]

# The follow-up visits' figures (the `followup_outcomes` mart, through
# `officer_lists.followup_rows`): each share beside what it is made of.
FOLLOWUP_COLUMNS: list[tuple[str, str]] = [
    ("scope_name", "พื้นที่ (area)"),
    ("rule_th", "เรื่อง (issue)"),
    ("visit_share", "สัดส่วนปิดด้วยการเยี่ยม (share closed by a visit)"),
    ("closed_by_visit", "ปิดด้วยการเยี่ยม (closed by a visit)"),
    ("closed", "ปิดทั้งหมด (closed in all)"),
    ("closed_by_data", "ปิดเพราะข้อมูลเปลี่ยน (closed by the data)"),
    ("days_to_close", "มัธยฐานวันที่ใช้ปิด (median days to close)"),
    ("coverage", "ความครอบคลุมการติดตาม (follow-up coverage)"),
    ("items_visited", "เยี่ยมแล้ว (visited)"),
    ("items_open", "รายการวันนี้ (items on the list)"),
]
ALL_ISSUES_TH = "ทุกเรื่อง (all issues)"
