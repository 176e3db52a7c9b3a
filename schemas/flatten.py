"""Flatten a submission into rows of its clean tables, normalising every answer on the way.

A value that cannot be read (a date that is no date, "สิบ" for a number) becomes null and the
reason is kept in the row's `parse_errors` (and, answer by answer, in `unreadable`), so
validation quarantines the submission and the enumerator sees exactly what to fix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sammachip.schemas import normalise as n
from sammachip.schemas.odk_payload import kobo_style_answers
from sammachip.schemas.records import Submission
from sammachip.schemas.registry import FORMS

Row = dict[str, Any]


PROGRAMME_START = date(2016, 10, 1)  # FY2560, when สัมมาชีพชุมชน began

# Keys a server or a phone adds around the answers; they are not answers to look for in forms.
_META_KEYS = {
    "start",
    "end",
    "today",
    "deviceid",
    "username",
    "simserial",
    "subscriberid",
    "phonenumber",
    "email",
    "instanceID",
}
_META_PREFIXES = ("_", "meta/", "formhub/")


@functools.lru_cache(maxsize=4096)  # a few hundred keys per form, read millions of times
def _is_meta(key: str) -> bool:
    return key in _META_KEYS or key.startswith(_META_PREFIXES)


def _read(parse: Callable[[Any], Any], raw: Any) -> tuple[Any, n.Unreadable | None]:
    """The answer read, or why it could not be."""
    try:
        return parse(raw), None
    except (ValueError, TypeError, OverflowError) as err:  # any answer may be anything
        return None, n.Unreadable.of(raw, err)


# Each distinct answer is read once per parser (a batch repeats the same village codes,
# dates, yes/no and household codes thousands of times): only pure parsers whose values
# cannot be changed by whoever receives them (no lists), and only text answers.
_READ: dict[Callable[[Any], Any], dict[str, tuple[Any, n.Unreadable | None]]] = {
    parse: {}
    for parse in (
        n.clean_text,
        n.code,
        n.village_code,
        n.house_no,
        n.national_id,
        n.phone,
        n.parse_int,
        n.parse_decimal,
        n.parse_date,
        n.parse_device_time,
        n.yes_no,
        n.geopoint,
    )
}
_READ_LIMIT = 16_384  # per parser: ~4 MB at most; codes, dates, villages repeat well within it


@dataclass
class _Reader:
    """Reads answers from one payload, collecting parse problems instead of raising, and
    remembering which keys it read so unknown ones (form-version drift) can be reported."""

    payload: dict[str, Any]
    today: date = field(default_factory=date.today)
    errors: list[tuple[str, n.Unreadable]] = field(default_factory=list)  # answer key, why
    warnings: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    children: list[_Reader] = field(default_factory=list)

    def date(self, key: str) -> date | None:
        """A date, with a warning when its year is implausible for the programme either way
        (a BE year typed into a CE field, or a CE year read as BE, lands decades off)."""
        value = self.get(key, n.parse_date)
        if value is not None and not PROGRAMME_START <= value <= self.today + timedelta(days=366):
            self.warnings.append(
                f"{key}: {value.isoformat()} is outside {PROGRAMME_START.year}"
                f"–{self.today.year + 1}"
            )
        return value

    def unknown_keys(self) -> set[str]:
        unknown = {k for k in self.payload.keys() - self.used if not _is_meta(k)}
        for child in self.children:
            unknown |= child.unknown_keys()
        return unknown

    def get(self, key: str, parse: Callable[[Any], Any] = n.clean_text) -> Any:
        self.used.add(key)
        raw = self.payload.get(key)
        memo = _READ.get(parse)
        if memo is None or type(raw) is not str:
            value, why = _read(parse, raw)
        else:
            found = memo.get(raw)
            if found is None:
                if len(memo) >= _READ_LIMIT:
                    memo.clear()
                found = memo[raw] = _read(parse, raw)
            value, why = found
        if why is not None:
            self.errors.append((key, why))
        return value

    def adopt(self, child: _Reader, entry: str) -> None:
        """A repeat entry's problems, under the entry's name (`attendees[2]/…`)."""
        self.errors.extend((f"{entry}/{key}", why) for key, why in child.errors)


def _choices(text: str | None) -> list[str] | None:
    """A select_multiple answered with nothing is unanswered (null), as any other question
    left empty is, so a suite's not-null check sees it; [] would pass as an answer."""
    return n.select_multiple(text) or None


def _area(village: str | None) -> Row:
    ok = village is not None and len(village) == 8
    return {
        "village_code": village,
        "tambon_code": village[:6] if ok else None,
        "amphoe_code": village[:4] if ok else None,
    }


def _lineage(sub: Submission, batch: str, ingested_at: datetime, r: _Reader) -> Row:
    return {
        "submission_key": sub.key,
        "source": sub.source,
        "server": sub.server,
        "form_uid": sub.form_uid,
        "submission_id": sub.submission_id,
        "instance_id": sub.instance_id,
        "form_version": sub.version,
        "submitted_at": sub.submitted_at,
        "device_end": r.get("end", n.parse_device_time),
        "review_status": sub.review_status,
        "valid_from": ingested_at,
        "deleted_at": None,
        "ingest_batch": batch,
        "dq_flags": [],
    }


def _household(r: _Reader) -> dict[str, list[Row]]:
    lat, lon = r.get("location", n.geopoint) or (None, None)
    return {
        "households": [
            {
                "hh_code": r.get("hh/hh_code", n.code),
                **_area(r.get("hh/village_code", n.village_code)),
                "house_no": r.get("hh/house_no", n.house_no),
                "village_name": r.get("hh/village_name"),
                "head_name": r.get("head/name"),
                "national_id": r.get("head/national_id", n.national_id),
                "phone": r.get("head/phone", n.phone),
                "members": r.get("members", n.parse_int),
                "occupation": r.get("occupation"),
                "baseline_income": r.get("baseline_income", n.parse_int),
                "lat": lat,
                "lon": lon,
            }
        ]
    }


def _sage(r: _Reader) -> dict[str, list[Row]]:
    return {
        "sages": [
            {
                "sage_code": r.get("sage/sage_code", n.code),
                **_area(r.get("sage/village_code", n.village_code)),
                "name": r.get("sage/name"),
                "national_id": r.get("sage/national_id", n.national_id),
                "phone": r.get("sage/phone", n.phone),
                "expertise": r.get("expertise"),
                "years_experience": r.get("years_experience", n.parse_int),
                "trained_trainer": r.get("trained_trainer", n.yes_no),
                "trainer_course_date": r.date("trainer_course_date"),
            }
        ]
    }


def _repeat(r: _Reader, name: str) -> list[_Reader]:
    r.used.add(name)
    entries = r.payload.get(name)
    if entries is None or entries == []:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        r.errors.append(
            (
                name,
                n.Unreadable(
                    entries, "ไม่ใช่รายการคำตอบซ้ำ (repeat)", "is not a list of repeat groups"
                ),
            )
        )
        return []
    readers = [_Reader(e, today=r.today) for e in entries]
    r.children.extend(readers)
    return readers


def _session(r: _Reader) -> dict[str, list[Row]]:
    code = r.get("session_code", n.code)
    held = r.date("held_date")
    attendees = []
    for i, a in enumerate(_repeat(r, "attendees")):
        attendees.append(
            {
                "row_index": i,
                "session_code": code,
                "hh_code": a.get("attendees/hh_code", n.code),
                "present": a.get("attendees/present", n.yes_no),
                "session_held": held is not None,  # validation only: attendance due once held
            }
        )
        r.adopt(a, f"attendees[{i + 1}]")
    return {
        "sessions": [
            {
                "session_code": code,
                **_area(r.get("village_code", n.village_code)),
                "sage_code": r.get("sage_code", n.code),
                "occupation": r.get("occupation"),
                "activity_type": r.get("activity_type"),
                "methods": r.get("methods", _choices),
                "planned_date": r.date("planned_date"),
                "held_date": held,
            }
        ],
        "attendance": attendees,
    }


def _materials(r: _Reader) -> dict[str, list[Row]]:
    hh = r.get("hh_code", n.code)
    items = []
    for i, it in enumerate(_repeat(r, "items")):
        items.append(
            {
                "row_index": i,
                "hh_code": hh,
                "item": it.get("items/item"),
                "quantity": it.get("items/quantity", n.parse_decimal),
                "unit": it.get("items/unit"),
                "value_thb": it.get("items/value_thb", n.parse_decimal),
            }
        )
        r.adopt(it, f"items[{i + 1}]")
    village = hh.split("-")[0] if hh else None
    return {
        "materials": [
            {
                "hh_code": hh,
                **_area(village),
                "handout_date": r.date("handout_date"),
                "n_items": len(items),
                "total_value_thb": sum(i["value_thb"] or 0.0 for i in items),
            }
        ],
        "material_items": items,
    }


def _income(r: _Reader) -> dict[str, list[Row]]:
    hh = r.get("hh_code", n.code)
    return {
        "income_surveys": [
            {
                "hh_code": hh,
                **_area(hh.split("-")[0] if hh else None),
                "round": r.get("round"),
                "survey_date": r.date("survey_date"),
                "practising": r.get("practising", n.yes_no),
                "occ_income": r.get("occ_income", n.parse_int),
                "hh_income": r.get("hh_income", n.parse_int),
                "costs": r.get("costs", n.parse_int),
                "problem": r.get("problem"),
                "action_agreed": r.get("action_agreed"),
            }
        ]
    }


def _group(r: _Reader) -> dict[str, list[Row]]:
    code = r.get("grp/group_code", n.code)
    members = []
    for i, m in enumerate(_repeat(r, "members")):
        members.append(
            {
                "row_index": i,
                "group_code": code,
                "hh_code": m.get("members/hh_code", n.code),
                "role": m.get("members/role"),
            }
        )
        r.adopt(m, f"members[{i + 1}]")
    return {
        "groups": [
            {
                "group_code": code,
                **_area(r.get("grp/village_code", n.village_code)),
                "group_name": r.get("grp/group_name"),
                "formed_date": r.date("grp/formed_date"),
                "n_members": len(members),
                "product_name": r.get("product/name"),
                "product_type": r.get("product/type"),
                "standards": r.get("product/standards", _choices),
                "packaging": r.get("product/packaging", n.yes_no),
                "label": r.get("product/label", n.yes_no),
                "local_materials": r.get("product/local_materials", n.yes_no),
                "monthly_sales": r.get("sales/monthly_sales", n.parse_int),
                "months_recorded": r.get("sales/months_recorded", n.parse_int),
                "otop_status": r.get("otop_status"),
                "market_channel": r.get("market/channel"),
                "buyer": r.get("market/buyer"),
                "sale_unit": r.get("market/unit"),
                "price_per_unit": r.get("market/price_per_unit", n.parse_decimal),
                "cost_per_unit": r.get("market/cost_per_unit", n.parse_decimal),
            }
        ],
        "group_members": members,
    }


_VILLAGE_IN_CODE = re.compile(r"^[SGT]?([0-9]{8})(?:-|$)")  # hh, sage, session, group, village


def _followup(r: _Reader) -> dict[str, list[Row]]:
    """A visit to a list item: the item's subject names its village (every programme code
    carries its village code; a submission to fix does not)."""
    item, subject = r.get("item_id"), r.get("subject_id", n.code)
    for shown in ("reason_ids", "reason_names", "n_reasons", "status", "visited_on"):
        r.get(shown)  # the list's columns the form copied or saved for the phone
    reasons = []
    for i, reason in enumerate(_repeat(r, "reasons")):
        rule = reason.get("reasons/rule_id")
        reason.get("reasons/rule_name")
        reasons.append(
            {
                "row_index": i,
                "item_id": item,
                "rule_id": rule,
                "alert_id": f"{rule}:{subject}" if rule and subject else None,
                "state": reason.get("reasons/state"),
            }
        )
        r.adopt(reason, f"reasons[{i + 1}]")
    coded = _VILLAGE_IN_CODE.match(subject or "")
    village = coded.group(1) if coded else None
    return {
        "followup_visits": [
            {
                "item_id": item,
                "subject_type": r.get("subject_type"),
                "subject_id": subject,
                "entity_id": r.get("item"),
                **_area(village),
                "officer_id": r.get("officer_id"),
                "visit_date": r.date("today"),
                "reached": r.get("reached", n.yes_no),
                "problem": r.get("problem"),
                "action": r.get("action"),
                "next_visit": r.date("next_visit"),
                "photo": r.get("photo"),
                "n_resolved": sum(x["state"] == "resolved" for x in reasons),
                "n_reasons": len(reasons),
            }
        ],
        "followup_reasons": reasons,
    }


_FLATTENERS: dict[str, Callable[[_Reader], dict[str, list[Row]]]] = {
    "household": _household,
    "sage": _sage,
    "session": _session,
    "materials": _materials,
    "income": _income,
    "group": _group,
    "followup": _followup,
}


@dataclass(frozen=True)
class Flattened:
    tables: dict[str, list[Row]]  # rows per table; the parent row carries `parse_errors`
    unknown_keys: frozenset[str]  # answers the form definition does not read


def flatten(sub: Submission, batch: str, ingested_at: datetime) -> Flattened:
    """Rows per table for one submission; parent rows carry lineage and `parse_errors`."""
    spec = FORMS[sub.form_id]
    reader = _Reader(answers_of(sub), today=ingested_at.date())
    tables = _FLATTENERS[spec.kind](reader)
    lineage = _lineage(sub, batch, ingested_at, reader)
    parent = tables[spec.table][0]
    parent.update(lineage)
    # Validation-only columns (not stored): what GX checks beside the answers themselves.
    parent["parse_errors"] = "; ".join(f"{key}: {why}" for key, why in reader.errors) or None
    parent["unreadable"] = reader.errors  # for the reasons, answer by answer
    parent["date_warnings"] = "; ".join(reader.warnings) or None
    parent["clock_ahead_minutes"] = _clock_ahead(parent["device_end"], sub.submitted_at)
    for child in spec.tables[1:]:
        for row in tables.get(child, []):
            row["submission_key"] = sub.key
    return Flattened(tables, frozenset(reader.unknown_keys()))


def _clock_ahead(device_end: datetime | None, received: datetime) -> float | None:
    """Minutes the phone says it finished *after* the server received it: a wrong clock."""
    return None if device_end is None else (device_end - received).total_seconds() / 60


def attachment_rows(sub: Submission) -> list[Row]:
    """Kobo lists a submission's media under `_attachments` (current and legacy shapes)."""
    rows = []
    for a in sub.payload.get("_attachments") or []:
        if not isinstance(a, dict):
            continue
        basename = a.get("media_file_basename") or str(a.get("filename", "")).rsplit("/", 1)[-1]
        rows.append(
            {
                "submission_key": sub.key,
                "form_id": sub.form_id,
                "attachment_uid": str(a.get("uid") or a.get("id") or basename),
                "question_xpath": a.get("question_xpath"),
                "basename": basename,
                "mimetype": a.get("mimetype"),
                "download_url": a.get("download_url"),
                "is_deleted": bool(a.get("is_deleted", False)),
            }
        )
    return rows


def answers_of(sub: Submission) -> dict[str, Any]:
    """The answers in Kobo's flat key layout, whichever server sent them."""
    return kobo_style_answers(sub.payload) if sub.source == "odk" else sub.payload
