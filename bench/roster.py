"""A realistic officer roster for the province benchmark.

The bundled config's roster is Muang Sam Sip's four officers: at province scale every other
village would land on the one district list, and the reports stage would time one giant
workbook instead of the many small ones an office writes. So the province benchmark gets
generated `[[officers]]` tables — one พัฒนากร per tambon (a tambon has 8–16 villages in the
generated geography, about what one officer covers), Thai names drawn deterministically —
read through `flows.settings.alert_rules`, as the nightly reads a config file.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from sammachip.marts.rules import AlertRules
from sammachip.schemas.admin_codes import UBON_RATCHATHANI, province_name
from sammachip.simulators.cohort import FAMILY_NAMES, FEMALE_NAMES, MALE_NAMES, select_villages


def officer_name(rng: random.Random) -> str:
    """A government officer's name as written on a roster: always with a title."""
    if rng.random() < 0.5:
        return f"นาย{rng.choice(MALE_NAMES)} {rng.choice(FAMILY_NAMES)}"
    return f"{rng.choice(('นาง', 'นางสาว'))}{rng.choice(FEMALE_NAMES)} {rng.choice(FAMILY_NAMES)}"


def roster_tables(seed: int, villages: int) -> dict[str, Any]:
    """`[[officers]]` and `[district]` config tables for a cohort's villages: one officer per
    tambon; the provincial office gets the lists of areas nobody covers (none, here)."""
    tambons = sorted({v.tambon for v in select_villages(seed, villages)})
    officers = [
        {"id": f"off{t}", "name": officer_name(random.Random(f"officer:{t}")), "tambons": [t]}
        for t in tambons
    ]
    office = f"สำนักงานพัฒนาชุมชนจังหวัด{province_name(UBON_RATCHATHANI)}"
    return {"officers": officers, "district": {"name": office}}


def describe(rules: AlertRules, seed: int, villages: int | None) -> str:
    """One line for the results: who gets a list, and how many villages each covers."""
    per_tambon = Counter(v.tambon for v in select_villages(seed, villages))
    covered = {t for o in rules.roster for t in o.tambons}
    loads = [sum(per_tambon[t] for t in o.tambons) for o in rules.roster]
    left = sorted(set(per_tambon) - covered)
    spread = f"{min(loads)}–{max(loads)} villages each" if loads else "no officers"
    return (
        f"{len(rules.roster)} officers ({spread}); {len(left)} of {len(per_tambon)} tambons "
        f"({sum(per_tambon[t] for t in left)} villages) on the list of "
        f"{rules.district_officer.name}"
    )
