"""A generated cohort as the warehouse holds it once loaded: clean rows, latest versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from sammachip.schemas.flatten import flatten
from sammachip.schemas.records import Submission
from sammachip.schemas.tables import CLEAN_TABLES
from sammachip.simulators.cohort import CohortSpec, generate_cohort


def cohort_tables(spec: CohortSpec) -> dict[str, pa.Table]:
    """Every submission of the cohort (edits applied) flattened into its clean tables; no
    validation, so pass a clean (`dirty=False`) spec."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in CLEAN_TABLES}
    now = datetime.now(UTC)
    for i, gen in enumerate(generate_cohort(spec).submissions):
        answers = dict(gen.answers)
        for _, changes in gen.edits:
            answers.update(changes)
        received = gen.received_at.replace(tzinfo=UTC)
        sub = Submission(
            "kobo", "sim", gen.form_id, gen.form_id, str(i), f"uuid:{i}",
            None, None, received, None, None, None, answers,
        )  # fmt: skip
        for name, table_rows in flatten(sub, "test", now).tables.items():
            rows[name] += table_rows
    return {
        name: pa.Table.from_pylist(
            [{c: r.get(c) for c in spec.column_names} for r in rows[name]], schema=spec.schema
        )
        for name, spec in CLEAN_TABLES.items()
    }
