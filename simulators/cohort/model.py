"""The cohort's shape: the spec that makes it, its villages, the generated submissions (Kobo-shaped
answers with their receive time, edits, validation status and injected defects) and the cohort
itself; the six form ids and the validation statuses; and how an answer is written.
"""

from __future__ import annotations

import gc
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

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


def instance_id(rng: random.Random) -> str:
    """A submission's `meta/instanceID`, as a phone makes it (a uuid4), drawn from `rng`."""
    return f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def round_to(value: float, step: int) -> int:
    """The nearest multiple of `step`, and never less than one step (amounts of money)."""
    return max(step, round(value / step) * step)


def decimal_text(value: float) -> str:
    """A number as a form answer: whole numbers without decimals, others with one."""
    return str(int(value)) if value == int(value) else f"{value:.1f}"
