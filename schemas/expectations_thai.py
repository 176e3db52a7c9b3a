"""Custom Great Expectations for Thai programme data, registered the GX way.

Importing this module registers the metric and the expectation with GX, so suites stored as
JSON can name `expect_column_values_to_be_valid_thai_national_id` like any built-in one.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnPairMapMetricProvider,
    column_pair_condition_partial,
)

from sammachip.schemas.admin_codes import is_known_tambon
from sammachip.schemas.normalise import is_valid_national_id


class ColumnValuesValidThaiNationalId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_thai_national_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: object) -> pd.Series:
        return column.map(lambda v: is_valid_national_id(str(v)))


class ExpectColumnValuesToBeValidThaiNationalId(ColumnMapExpectation):
    """13 digits, first digit 1–8, checksum digit right (weights 13..2, mod 11)."""

    map_metric = "column_values.valid_thai_national_id"
    success_keys = ("mostly",)


class ColumnPairValuesCodeInArea(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.code_in_area"
    condition_domain_keys = ("column_A", "column_B", "ignore_row_if")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: object) -> pd.Series:
        return pd.Series(
            [code_in_area(a, b) for a, b in zip(column_A, column_B, strict=True)],
            index=column_A.index,
        )


class ExpectColumnPairValuesToBeCodeInArea(ColumnPairMapExpectation):
    """A programme code (household `34140105-07`, sage `S34140105-1` …) starts with the
    village code of the same row: DOPA codes nest province ⊂ amphoe ⊂ tambon ⊂ village."""

    # A missing value is a not-null expectation's business, not this one's.
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "either_value_is_missing"
    )
    map_metric = "column_pair_values.code_in_area"
    success_keys = ("column_A", "column_B", "mostly", "ignore_row_if")


class ColumnValuesKnownTambon(ColumnMapMetricProvider):
    condition_metric_name = "column_values.known_tambon"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: object) -> pd.Series:
        return column.map(lambda v: is_known_tambon(str(v)))


class ExpectColumnValuesToBeKnownTambon(ColumnMapExpectation):
    """The tambon (6-digit DOPA code) exists in the bundled code list (geothai)."""

    map_metric = "column_values.known_tambon"
    success_keys = ("mostly",)


def code_in_area(code: object, village: object) -> bool:
    return str(code).lstrip("STG").startswith(str(village))
