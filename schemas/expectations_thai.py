"""Custom Great Expectations for Thai programme data, registered the GX way.

Importing this module registers the metric and the expectation with GX, so suites stored as
JSON can name `expect_column_values_to_be_valid_thai_national_id` like any built-in one.
"""

from __future__ import annotations

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from schemas.normalise import is_valid_national_id


class ColumnValuesValidThaiNationalId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_thai_national_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: object) -> pd.Series:
        return column.map(lambda v: is_valid_national_id(str(v)))


class ExpectColumnValuesToBeValidThaiNationalId(ColumnMapExpectation):
    """13 digits, first digit 1–8, checksum digit right (weights 13..2, mod 11)."""

    map_metric = "column_values.valid_thai_national_id"
    success_keys = ("mostly",)
