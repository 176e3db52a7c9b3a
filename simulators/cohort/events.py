"""The programme as it happens in one village: sages registered, households registered (a few
twice), a kickoff, trainings and study visits whose attendance drops in the farm seasons,
materials handed out, baseline and follow-up income surveys, and an occupational group that may
apply for OTOP — each a Kobo-shaped submission with its device times and server receive time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sammachip.schemas.registry import OCCUPATION_TH
from sammachip.simulators.cohort.catalogue import (
    ACTIONS,
    BUYERS,
    ITEMS,
    OCCUPATION_INCOME,
    OCCUPATION_WEIGHTS,
    OTOP_TYPE,
    PRODUCTS,
    SALE_UNITS,
)
from sammachip.simulators.cohort.defects import (
    BAD_CHECKSUM_RATE,
    DIRTY_RATE,
    DUPLICATE_RATE,
    add_dirt,
    bad_checksum,
    edits_and_statuses,
    statuses,
)
from sammachip.simulators.cohort.model import (
    DEVICE_TZ,
    GROUP,
    HOUSEHOLD,
    INCOME,
    MATERIALS,
    SAGE,
    SESSION,
    Answers,
    CohortSpec,
    GeneratedSubmission,
    Village,
    decimal_text,
    instance_id,
    round_to,
)
from sammachip.simulators.cohort.people import new_national_id, new_phone, person_name
from sammachip.simulators.cohort.places import geopoint, house_no


def in_harvest(day: date) -> bool:
    """Rice harvest in Isan: late October to December."""
    return (day.month == 10 and day.day >= 20) or day.month in (11, 12)


def in_planting(day: date) -> bool:
    """Seedbeds and transplanting: mid-May to July."""
    return (day.month == 5 and day.day >= 15) or day.month in (6, 7)


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
    occupation: str  # what is taught: usually the sage's expertise


class VillageBuilder:
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
            edits_and_statuses(self.rng, self.out, self.cutoff)
        else:
            statuses(self.rng, self.out, self.cutoff, dirty=False)
        return self.out

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
        answers = {**meta, **fields, "meta/instanceID": instance_id(self.rng)}
        by = self.officer if self.rng.random() < 0.9 else None
        sub = GeneratedSubmission(form_id, answers, received, submitted_by=by)
        if self.spec.dirty and self.rng.random() < DIRTY_RATE:
            add_dirt(self.rng, sub)
        self.out.append(sub)
        return sub

    def _day_between(self, low: date, high: date) -> date:
        return low + timedelta(days=self.rng.randint(0, max(0, (high - low).days)))

    # -- forms

    def _sages(self) -> list[_Sage]:
        rng = self.rng
        occupations = rng.sample(list(OCCUPATION_TH), k=rng.choices((1, 2, 3), (5, 3, 2))[0])
        main = rng.choices(list(OCCUPATION_TH), OCCUPATION_WEIGHTS)[0]
        occupations = [main, *(o for o in occupations if o != main)][:3]
        sages = []
        for n, occupation in enumerate(occupations, start=1):
            sage = _Sage(f"S{self.village.code}-{n}", occupation)
            sages.append(sage)
            trained = rng.random() < 0.75
            national_id = new_national_id(self.rng, self.village.tambon, adult_share=0.97)
            bad = self.spec.dirty and rng.random() < BAD_CHECKSUM_RATE
            if bad:
                national_id = bad_checksum(self.rng, national_id)
            fields: Answers = {
                "sage/sage_code": sage.code,
                "sage/name": person_name(self.rng),
                "sage/national_id": national_id,
                "sage/phone": new_phone(self.rng),
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
            baseline = round_to(
                min(30000, max(2500, rng.lognormvariate(math.log(8000), 0.45))), 500
            )
            hh = _Household(
                f"{self.village.code}-{n:02d}",
                occupation,
                baseline,
                engagement,
                self.start + timedelta(days=rng.randint(3, 30)),
                new_phone(self.rng),
            )
            households.append(hh)
            self._register(hh)
        return households

    def _register(self, hh: _Household) -> None:
        rng = self.rng
        national_id = new_national_id(self.rng, self.village.tambon, adult_share=0.85)
        bad = self.spec.dirty and rng.random() < BAD_CHECKSUM_RATE
        fields: Answers = {
            "hh/village_code": self.village.code,
            "hh/hh_code": hh.code,
            "hh/house_no": house_no(rng),
            "head/name": person_name(self.rng),
            "head/national_id": bad_checksum(self.rng, national_id) if bad else national_id,
            "head/phone": hh.phone,
            "members": str(rng.choices(range(1, 9), (4, 10, 18, 22, 18, 14, 8, 6))[0]),
            "occupation": hh.occupation,
            "baseline_income": str(hh.baseline),
        }
        if int(hh.code[-2:]) % 10 != 7:  # some enumerators leave the optional name out
            fields["hh/village_name"] = self.village.name.rsplit(" หมู่ ", 1)[0]
        if rng.random() < 0.75:
            fields["location"] = geopoint(self.rng, self.village)
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

    def _sessions(self, sages: list[_Sage]) -> list[_Session]:
        rng = self.rng
        horizon = self.today + timedelta(days=14)
        kickoff = self.start + timedelta(days=rng.randint(15, 35))
        # The programme's steps, not always kept (the village's number decides, so the rest
        # of the village stays as it was): some villages hold no kickoff meeting, some let a
        # plan slip past its date, some have a sage teach the village's main occupation
        # outside their own expertise.
        moo = int(self.village.code[-2:])
        plans = [] if moo % 7 == 3 else [("kickoff", sages[0], kickoff)]
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
                if moo % 5 == 2 and planned >= self.today - timedelta(days=20):
                    held = None  # the plan slipped: not held, not moved
            occupation = sage.expertise
            if activity == "training" and sage is not sages[0] and moo % 4 == 1:
                occupation = sages[0].expertise
            sessions.append(_Session(activity, sage, planned, held, occupation))
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
            "occupation": session.occupation,
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
                    "items/quantity": decimal_text(qty),
                    "items/unit": unit,
                    "items/value_thb": decimal_text(round(qty * rng.randint(p_lo, p_hi))),
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
        occ = round_to(rng.uniform(200, 1500), 100) if already else 0
        hh_income = (
            hh.baseline
            if rng.random() < 0.8
            else round_to(hh.baseline * rng.uniform(0.9, 1.1), 500)
        )
        fields = {
            "hh_code": hh.code,
            "round": "baseline",
            "survey_date": (hh.registered + timedelta(days=rng.randint(0, 10))).isoformat(),
            "practising": "yes" if already else "no",
            "occ_income": str(occ),
            "hh_income": str(hh_income),
            "costs": str(round_to(occ * 0.3, 50) if occ else 0),
        }
        self._emit(INCOME, date.fromisoformat(fields["survey_date"]), fields)

    def _followup_income(self, hh: _Household, day: date) -> None:
        rng = self.rng
        practising = rng.random() < 0.85
        if practising:
            lo, hi = OCCUPATION_INCOME[hh.occupation]
            occ = round_to(rng.uniform(lo, hi), 100)
            growth = rng.uniform(0.03, 0.30) if rng.random() < 0.8 else rng.uniform(-0.10, 0.02)
        else:
            occ, growth = 0, rng.uniform(-0.05, 0.02)
        fields = {
            "hh_code": hh.code,
            "round": "followup",
            "survey_date": day.isoformat(),
            "practising": "yes" if practising else "no",
            "occ_income": str(occ),
            "hh_income": str(round_to(hh.baseline * (1 + growth), 100)),
            "costs": str(round_to(occ * rng.uniform(0.1, 0.4), 50) if occ else 0),
        }
        # step 10: the problem found on the visit and what was agreed about it
        struggling = not practising or growth < 0.02
        problem = rng.choice(list(ACTIONS)) if struggling or rng.random() < 0.15 else "none"
        fields["problem"] = problem
        if problem != "none" and not (self.spec.dirty and rng.random() < 0.1):
            fields["action_agreed"] = ACTIONS[problem]
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
            "product/name": rng.choice(PRODUCTS[occupation]),
            "product/type": OTOP_TYPE[occupation],
            "product/standards": self._standards(OTOP_TYPE[occupation], ready),
            "product/packaging": _yes(rng, 0.85 if ready else 0.5),
            "product/label": _yes(rng, 0.8 if ready else 0.4),
            "product/local_materials": _yes(rng, 0.8),
            "sales/monthly_sales": str(round_to(rng.uniform(2000, 60000 if ready else 20000), 100)),
            "sales/months_recorded": str(rng.randint(3, 6) if ready else rng.randint(0, 6)),
            "otop_status": otop,
            **self._market(OTOP_TYPE[occupation], ready, base_name),
        }
        self._emit(
            GROUP, self._day_between(formed, min(formed + timedelta(days=10), self.today)), fields
        )

    def _market(self, otop_type: str, ready: bool, village_name: str) -> Answers:
        """Where the group sells, to whom, and at what price and cost per unit (the cost is
        often not known)."""
        rng = self.rng
        channels = ("otop_fair", "shop", "online", "coop") if ready else ("local_market",
                    "middleman", "shop", "none")  # fmt: skip
        channel = rng.choice(channels)
        if channel == "none":
            return {"market/channel": channel}
        unit, (lo, hi) = SALE_UNITS[otop_type]
        price = round_to(rng.uniform(lo, hi), 5)
        answers: Answers = {
            "market/channel": channel,
            "market/buyer": BUYERS[channel].format(village=village_name),
            "market/unit": unit,
            "market/price_per_unit": decimal_text(price),
        }
        if rng.random() < 0.7:
            answers["market/cost_per_unit"] = decimal_text(
                round_to(price * rng.uniform(0.4, 0.8), 1)
            )
        return answers

    def _standards(self, otop_type: str, ready: bool) -> str:
        rng = self.rng
        if rng.random() < (0.4 if ready else 0.75):
            return "none"
        options = ["tcps", "fda"] if otop_type in ("food", "beverage") else ["tcps", "tis"]
        return " ".join(sorted(rng.sample(options, k=rng.choice((1, 1, 2))), key=options.index))


def _device_time(local: datetime) -> str:
    """ODK/Enketo device time: milliseconds and the +07:00 offset."""
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}+07:00"


def _yes(rng: random.Random, p: float) -> str:
    return "yes" if rng.random() < p else "no"
