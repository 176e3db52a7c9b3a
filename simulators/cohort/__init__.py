"""Synthetic สัมมาชีพชุมชน cohort: villages, sages, households, sessions, materials, incomes, groups.

Everything is shaped like KoboToolbox submissions of the six forms in docs/forms.md (answers are
strings, grouped keys `group/field`, repeats are lists of dicts with full-path keys) and is
deterministic for a given spec: each village draws from its own `random.Random`, so a village
looks the same whether 3 or 2,700 villages are generated.

Dirty data (Thai digits, Buddhist-Era years, bad ID checksums, duplicates, +66 phones, missing
answers, edits, rejected statuses) is injected on purpose and recorded in `defects`, so validation
tests have a ground truth to compare with.

By concern: `model` (the spec, villages, submissions, the cohort, form ids and statuses),
`places` and `people` (villages and their names, house numbers and locations; names, national
IDs, phones), `catalogue` (what each occupation hands out, earns and sells), `events` (the
programme as it happens in one village), `defects` (injected dirt, edits, review statuses) and
`generate` (a cohort from its spec, each village from its own seeded Random).
"""

from sammachip.simulators.cohort.catalogue import ITEMS, OTOP_TYPE
from sammachip.simulators.cohort.events import in_harvest, in_planting
from sammachip.simulators.cohort.generate import generate_cohort
from sammachip.simulators.cohort.model import (
    APPROVED,
    DEVICE_TZ,
    FORM_IDS,
    FORM_TITLES,
    GROUP,
    HOUSEHOLD,
    INCOME,
    MATERIALS,
    NOT_APPROVED,
    ON_HOLD,
    SAGE,
    SESSION,
    Cohort,
    CohortSpec,
    GeneratedSubmission,
    Village,
    paused_gc,
)
from sammachip.simulators.cohort.people import (
    FAMILY_NAMES,
    FEMALE_NAMES,
    MALE_NAMES,
    id_check_digit,
)
from sammachip.simulators.cohort.places import select_villages

__all__ = [
    "APPROVED",
    "DEVICE_TZ",
    "FAMILY_NAMES",
    "FEMALE_NAMES",
    "FORM_IDS",
    "FORM_TITLES",
    "GROUP",
    "HOUSEHOLD",
    "INCOME",
    "ITEMS",
    "MALE_NAMES",
    "MATERIALS",
    "NOT_APPROVED",
    "ON_HOLD",
    "OTOP_TYPE",
    "SAGE",
    "SESSION",
    "Cohort",
    "CohortSpec",
    "GeneratedSubmission",
    "Village",
    "generate_cohort",
    "id_check_digit",
    "in_harvest",
    "in_planting",
    "paused_gc",
    "select_villages",
]
