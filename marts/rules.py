"""What the marts check and against which numbers: the rule catalogue and its configuration.

Every threshold has a default, so the marts work without a config file; the flows' settings
(`flows.settings`) fill `AlertRules` from the `[alerts]`, `[otop]`, `[kpi]`, `[[seasons]]` and
`[[officers]]` tables of the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


class Rule(NamedTuple):
    rule_id: str
    rule_th: str
    rule_en: str


# Stable ids: officers' snooze files and yesterday's mart refer to them, so never rename one.
RULES: tuple[Rule, ...] = (
    Rule("R01_CONTACT_BEFORE_SESSION", "แจ้งครัวเรือนก่อนวันกิจกรรม", "Contact before session"),
    Rule("R02_SESSION_IN_FARM_SEASON", "กิจกรรมตรงช่วงฤดูทำนา", "Session in farm season"),
    Rule("R03_LOW_ATTENDANCE", "เข้าร่วมอบรมน้อย", "Low attendance"),
    Rule("R04_TRAINED_NO_MATERIALS", "อบรมแล้วยังไม่ได้รับวัสดุ", "Trained, no materials"),
    Rule("R05_NO_FOLLOWUP_INCOME", "ยังไม่ติดตามรายได้", "No follow-up income survey"),
    Rule(
        "R06_OUTCOME_BELOW_TARGET",
        "ไม่ได้ประกอบอาชีพหรือรายได้ไม่เพิ่ม",
        "Not practising or income not up",
    ),
    Rule("R07_VILLAGE_NO_GROUP", "หมู่บ้านยังไม่มีกลุ่มอาชีพ", "Village without a group"),
    Rule("R08_SAGE_NOT_TRAINER", "ปราชญ์ยังไม่ผ่านการอบรมวิทยากร", "Sage not trained as trainer"),
    Rule("R09_DATA_TO_FIX", "ข้อมูลต้องแก้ไข", "Data to fix"),
    Rule("R10_SESSION_NOT_HELD", "กิจกรรมเลยกำหนดแต่ยังไม่ได้จัด", "Planned session not held"),
    Rule(
        "R11_VILLAGE_NO_KICKOFF",
        "หมู่บ้านอบรมแล้วแต่ไม่มีการประชุมชี้แจง",
        "Village trained without a kickoff meeting",
    ),
    Rule(
        "R12_GROUP_NO_STUDY_VISIT",
        "กลุ่มอาชีพยังไม่ได้ศึกษาดูงานกลุ่มที่ประสบความสำเร็จ",
        "Group without a study visit to a successful group",
    ),
    Rule(
        "R13_SAGE_OUTSIDE_EXPERTISE",
        "ปราชญ์สอนนอกความเชี่ยวชาญที่บันทึกไว้",
        "Sage teaching outside their recorded expertise",
    ),
)
RULE_BY_ID: dict[str, Rule] = {r.rule_id: r for r in RULES}


@dataclass(frozen=True)
class Officer:
    officer_id: str
    name: str
    tambons: tuple[str, ...]
    email: str = ""  # optional: where the morning list is mailed


@dataclass(frozen=True)
class SeasonWindow:
    """A yearly window (inclusive, may wrap over the new year) when villagers are in the fields."""

    season: str  # "harvest" | "planting" | ...
    name_th: str
    name_en: str
    start: tuple[int, int]  # (month, day)
    end: tuple[int, int]


# Isan rain-fed rice: transplanting mid-May to July, harvest late October to December.
ISAN_SEASONS: tuple[SeasonWindow, ...] = (
    SeasonWindow(
        "planting", "ช่วงปักดำนา (กลาง พ.ค.–ก.ค.)", "planting (mid-May–Jul)", (5, 15), (7, 31)
    ),
    SeasonWindow(
        "harvest", "ช่วงเก็บเกี่ยวข้าว (ปลาย ต.ค.–ธ.ค.)", "harvest (late Oct–Dec)", (10, 20), (12, 31)
    ),
)


@dataclass(frozen=True)
class OtopRules:
    """OTOP-readiness checklist (config: `[otop]`)."""

    min_members: int = 7  # community enterprise: at least 7 members
    min_months_recorded: int = 3  # steady production and sales records, of the last 6 months
    nearly_ready_missing: int = 2  # at most this many items missing → "nearly ready"


# Where the default targets come from: the Community Development Department's KPI dashboard
# of the programme (≥85% practising, average income +3%, groups in ≥10% of target villages).
KPI_SOURCE_TH = "ตัวชี้วัดโครงการสัมมาชีพชุมชน กรมการพัฒนาชุมชน (logi.cdd.go.th)"
KPI_SOURCE_EN = "CDD KPI dashboard of the programme (logi.cdd.go.th)"


@dataclass(frozen=True)
class KpiTargets:
    """The department's targets (config: `[kpi]`; defaults: `KPI_SOURCE_EN`)."""

    practising_share: float = 0.85  # trained households practising the occupation
    income_change: float = 0.03  # average household income, follow-up vs baseline
    group_village_share: float = 0.10  # groups formed, per target village


@dataclass(frozen=True)
class WorklistRules:
    """An officer's day (config: `[worklist]`)."""

    per_day: int = 20  # entries in "today"; the rest wait in "later"

    def __post_init__(self) -> None:
        if type(self.per_day) is not int or self.per_day < 1:
            raise ValueError(
                f"[worklist] per_day must be a whole number, 1 or more, not {self.per_day!r}"
            )


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of every rule, the farm calendar, the roster and the snooze file
    (config: `[alerts]`, `[[seasons]]`, `[[officers]]`, `[district]`, `[otop]`, `[kpi]`,
    `[worklist]`)."""

    min_attendance: float = 0.8  # R03: below this share of held sessions
    materials_within_days: int = 30  # R04: trained → materials
    followup_within_days: int = 120  # R05: materials → follow-up income survey
    act_within_days: int = 7  # due date of an alert without a date of its own
    roster: tuple[Officer, ...] = field(default_factory=tuple)
    district_officer: Officer = Officer("district", "สำนักงานพัฒนาชุมชนอำเภอ", ())
    upcoming_within_days: int = 7  # R01: sessions planned within the next N days
    contact_lead_days: int = 3  # R01/R02/R08: households told at least this many days ahead
    season_recent_days: int = 30  # R02: sessions held in season this recently are flagged
    min_income_change: float = 0.0  # R06: follow-up income must be above baseline by more than this
    group_within_days: int = 180  # R07: first training in a village → a group formed
    study_visit_within_days: int = 90  # R12: a group formed → its members visit a successful one
    keep_resolved_days: int = 14  # resolved alerts stay visible this long, then drop
    snooze_file: Path | None = None  # officer-edited CSV/TOML: alert_id, until, note
    seasons: tuple[SeasonWindow, ...] = ISAN_SEASONS  # any province without its own calendar
    # (province code, its windows): provinces whose farm calendar differs from `seasons`
    province_seasons: tuple[tuple[str, tuple[SeasonWindow, ...]], ...] = ()
    otop: OtopRules = field(default_factory=OtopRules)
    kpi: KpiTargets = field(default_factory=KpiTargets)
    worklist: WorklistRules = field(default_factory=WorklistRules)

    def __post_init__(self) -> None:
        if self.upcoming_within_days < self.contact_lead_days:
            raise ValueError(
                f"upcoming_within_days ({self.upcoming_within_days}) must be at least "
                f"contact_lead_days ({self.contact_lead_days}): households are told "
                "that many days before a session"
            )

    def seasons_of(self, province_code: str) -> tuple[SeasonWindow, ...]:
        return dict(self.province_seasons).get(province_code, self.seasons)

    def officers(self) -> tuple[Officer, ...]:
        """Everyone who gets a list: the roster, then the district office (unassigned areas)."""
        return (*self.roster, self.district_officer)
