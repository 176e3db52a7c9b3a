"""A cohort from its spec: every village built from its own `random.Random`, seeded by the spec's
seed and the village's code, so a village looks the same whether 3 or 2,700 villages are
generated; then all submissions in the order the server received them.
"""

from __future__ import annotations

import random
from datetime import datetime, time

from sammachip.simulators.cohort.events import VillageBuilder
from sammachip.simulators.cohort.model import (
    DEVICE_TZ,
    Cohort,
    CohortSpec,
    GeneratedSubmission,
    paused_gc,
)
from sammachip.simulators.cohort.places import select_villages


def generate_cohort(spec: CohortSpec) -> Cohort:
    villages = select_villages(spec.seed, spec.villages, intake=spec.intake)
    cutoff = datetime.combine(spec.today, time(23, 59, 59)) - DEVICE_TZ
    submissions: list[GeneratedSubmission] = []
    with paused_gc():
        for village in villages:
            rng = random.Random(f"{spec.seed}:{village.code}")
            submissions.extend(VillageBuilder(spec, village, rng, cutoff).build())
    # Stable: ties keep generation order.
    submissions.sort(key=lambda s: s.received_at)
    return Cohort(spec=spec, villages=villages, submissions=submissions)
