"""The Kobo simulator's query engine: kpi's Mongo-style `query` (the operators kpi lets through,
Mongo's type brackets and cross-type sort order), `sort` and `fields`, and a plan that answers a
query from the asset's sorted indexes by bisection before any document is looked at.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from sammachip.simulators.kobo.store import Asset, Record


class QueryError(ValueError):
    """A query or sort the server would reject (kpi answers 400 ["Unsupported query"])."""


class CountTimedOut(QueryError):
    """Mongo's ExecutionTimeout is an OperationFailure: kpi answers it as any bad query."""


_MISSING = object()
_KEY_WHITELIST = frozenset(
    {
        "$or",
        "$and",
        "$in",
        "$nin",
        "$not",
        "$exists",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$regex",
        "$options",
        "$all",
        "$elemMatch",
        "$ne",
        "$expr",
        "$ifNull",
    }
)
Predicate = Callable[[Mapping[str, Any]], bool]


def _never(_doc: Mapping[str, Any]) -> bool:
    return False


def _getter(key: str) -> Callable[[Mapping[str, Any]], Any]:
    if key.startswith("_validation_status."):  # the one nested path kpi keeps dotted
        sub = key.removeprefix("_validation_status.")
        return lambda doc: doc.get("_validation_status", {}).get(sub, _MISSING)
    if "." in key:  # kpi base64-escapes dotted keys into a field name no document has
        return lambda doc: _MISSING
    return lambda doc: doc.get(key, _MISSING)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same_bracket(a: Any, b: Any) -> bool:
    """Mongo compares only within a type bracket: numbers with numbers, strings with strings."""
    if _is_number(a) and _is_number(b):
        return True
    return type(a) is type(b) and isinstance(a, str | bool)


def _eq(value: Any, target: Any) -> bool:
    if target is None:
        return value is _MISSING or value is None
    if value is _MISSING:
        return False
    if isinstance(value, list) and not isinstance(target, list):
        return any(_eq(v, target) for v in value)
    if isinstance(value, bool) != isinstance(target, bool):
        return False
    return bool(value == target)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _compare(op: str, target: Any) -> Callable[[Any], bool]:
    fn = _COMPARE[op]

    def check(value: Any) -> bool:
        values = value if isinstance(value, list) else [value]
        return any(v is not _MISSING and _same_bracket(v, target) and fn(v, target) for v in values)

    return check


def _regex(pattern: Any, options: Any) -> Callable[[Any], bool]:
    if not isinstance(pattern, str):
        raise QueryError("$regex has to be a string")
    flags = 0
    for letter in str(options or ""):
        flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}.get(letter, 0)
    compiled = re.compile(pattern, flags)
    return lambda v: isinstance(v, str) and compiled.search(v) is not None


def _operator(op: str, arg: Any, ops: Mapping[str, Any]) -> Callable[[Any], bool]:
    if op in _COMPARE:
        return _compare(op, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise QueryError(f"{op} needs an array")

        def inside(v: Any) -> bool:
            return any(_eq(v, t) for t in arg)

        return inside if op == "$in" else (lambda v: not inside(v))
    if op == "$ne":
        return lambda v: not _eq(v, arg)
    if op == "$exists":
        return (lambda v: v is not _MISSING) if arg else (lambda v: v is _MISSING)
    if op == "$regex":
        return _regex(arg, ops.get("$options"))
    if op == "$not":
        if not isinstance(arg, dict):
            raise QueryError("$not needs a regex or a document")
        inner = _value_test(arg)
        return lambda v: not inner(v)
    if op == "$all":
        if not isinstance(arg, list):
            raise QueryError("$all needs an array")
        return lambda v: v is not _MISSING and all(_eq(v, t) for t in arg)
    if op == "$elemMatch":
        if not isinstance(arg, dict):
            raise QueryError("$elemMatch needs an Object")
        return _elem_match(arg)
    raise QueryError(f"{op} is not simulated")  # $expr, $ifNull


def _elem_match(arg: dict[str, Any]) -> Callable[[Any], bool]:
    if arg and all(k.startswith("$") for k in arg):
        scalar = _value_test(arg)
        return lambda v: isinstance(v, list) and any(scalar(e) for e in v)
    sub = compile_query(arg)
    return lambda v: isinstance(v, list) and any(isinstance(e, dict) and sub(e) for e in v)


def _value_test(cond: Any) -> Callable[[Any], bool]:
    """Test for one field's value: an operator document or an equality target."""
    if not (isinstance(cond, dict) and cond and any(k.startswith("$") for k in cond)):
        return lambda v: _eq(v, cond)
    if not all(k.startswith("$") for k in cond):
        raise QueryError("unknown operator")
    if any(k not in _KEY_WHITELIST for k in cond):
        return lambda v: False  # kpi escapes the key: an embedded document nothing equals
    if "$options" in cond and "$regex" not in cond:
        raise QueryError("$options needs a $regex")
    tests = [_operator(op, arg, cond) for op, arg in cond.items() if op != "$options"]
    return lambda v: all(t(v) for t in tests)


def compile_query(query: Mapping[str, Any]) -> Predicate:
    """Compile a Mongo-style filter into a predicate over submission documents."""
    if not isinstance(query, Mapping):
        raise QueryError("query must be an object")
    tests: list[Predicate] = []
    for key, cond in query.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise QueryError(f"{key} must be a nonempty array")
            parts = [compile_query(c) for c in cond]
            combine = all if key == "$and" else any
            tests.append(lambda doc, p=parts, c=combine: c(t(doc) for t in p))
        elif key.startswith("$"):
            return _never  # escaped into a field name
        else:
            get, test = _getter(key), _value_test(_int_id(key, cond))
            tests.append(lambda doc, g=get, t=test: t(g(doc)))
    return lambda doc: all(t(doc) for t in tests)


def _int_id(key: str, cond: Any) -> Any:
    """kpi int-casts a scalar `_id` (but not values nested under operators)."""
    if key == "_id" and isinstance(cond, str) and cond.isascii() and cond.isdigit():
        return int(cond)
    return cond


@dataclass(frozen=True)
class _Bounds:
    low: Any = None
    low_inclusive: bool = True
    high: Any = None
    high_inclusive: bool = True

    def indices(self, keys: list[Any], key: Callable[[Any], Any] | None = None) -> tuple[int, int]:
        lo, hi = 0, len(keys)
        if self.low is not None:
            lo = (bisect_left if self.low_inclusive else bisect_right)(keys, self.low, key=key)
        if self.high is not None:
            hi = (bisect_right if self.high_inclusive else bisect_left)(keys, self.high, key=key)
        return lo, hi


class SortedIndex:
    """(value, _id) pairs in order: the ids whose value lies within bounds, by bisection."""

    def __init__(self) -> None:
        self._entries: list[tuple[Any, int]] = []

    def add(self, value: Any, _id: int) -> None:
        if value is not None:
            insort(self._entries, (value, _id))

    def remove(self, value: Any, _id: int) -> None:
        if value is None:
            return
        i = bisect_left(self._entries, (value, _id))
        if i < len(self._entries) and self._entries[i] == (value, _id):
            del self._entries[i]

    def ids(self, bounds: _Bounds) -> list[int]:
        lo, hi = bounds.indices(self._entries, key=_first)
        return sorted(_id for _, _id in self._entries[lo:hi])


def _first(entry: tuple[Any, int]) -> Any:
    return entry[0]


def review_time(doc: Mapping[str, Any]) -> int | float | None:
    """The review timestamp a numeric range can match (Mongo compares numbers with numbers)."""
    value = (doc.get("_validation_status") or {}).get("timestamp")
    return value if _is_number(value) else None


def _range_of(cond: Any, accepts: Callable[[Any], bool]) -> _Bounds | None:
    """Bounds for a condition made only of equality / $gt/$gte/$lt/$lte, else None."""
    if accepts(cond):
        return _Bounds(cond, True, cond, True)
    if not isinstance(cond, dict) or not cond or not set(cond) <= set(_COMPARE):
        return None
    if not all(accepts(v) for v in cond.values()):
        return None
    low = high = None
    low_inc = high_inc = True
    for op, v in cond.items():  # the tightest bound wins when both $gt and $gte are given
        if op in ("$gt", "$gte") and (low is None or v > low or (v == low and op == "$gt")):
            low, low_inc = v, op == "$gte"
        if op in ("$lt", "$lte") and (high is None or v < high or (v == high and op == "$lt")):
            high, high_inc = v, op == "$lte"
    return _Bounds(low, low_inc, high, high_inc)


@dataclass
class Plan:
    """How to answer a query: index ranges from bisect, then an optional residual filter."""

    id_bounds: _Bounds | None
    time_bounds: _Bounds | None
    review_bounds: _Bounds | None  # on `_validation_status.timestamp`
    residual: dict[str, Any]
    sort: list[tuple[str, int]]
    predicate: Predicate = _never

    @classmethod
    def build(cls, query: Mapping[str, Any], sort: Mapping[str, Any]) -> Plan:
        if not isinstance(query, Mapping):
            raise QueryError("query must be an object")
        residual = dict(query)
        id_bounds = _range_of(_int_id("_id", residual.get("_id")), _is_number)
        if id_bounds is not None:
            del residual["_id"]
        time_bounds = _range_of(residual.get("_submission_time"), lambda v: isinstance(v, str))
        review_bounds = _range_of(residual.get("_validation_status.timestamp"), _is_number)
        plan = cls(id_bounds, time_bounds, review_bounds, residual, _sort_spec(sort))
        plan.predicate = compile_query(residual)
        return plan

    def scan(self, asset: Asset) -> tuple[list[int], int, int, Predicate | None]:
        """Ids to consider (in `_id` order; the range [lo, hi) of that list), and a filter for
        them (None: take all). A submission-time or review-time range narrows the ids through
        the asset's index; the filter still holds the whole query, so the answer is exact."""
        ids = asset.ids
        if self.time_bounds:
            ids = asset.by_time.ids(self.time_bounds)
        elif self.review_bounds:
            ids = asset.by_review.ids(self.review_bounds)
        lo, hi = self.id_bounds.indices(ids) if self.id_bounds else (0, len(ids))
        return ids, lo, max(lo, hi), (self.predicate if self.residual else None)

    @property
    def by_id(self) -> int | None:
        """1 or -1 when the sort is by _id alone."""
        return self.sort[0][1] if len(self.sort) == 1 and self.sort[0][0] == "_id" else None

    def window(self, ids: list[int], lo: int, hi: int, start: int, limit: int) -> list[int]:
        """One page of ids[lo:hi] in _id order (ascending or descending)."""
        if self.by_id == 1:
            return ids[lo + start : min(hi, lo + start + limit)]
        top = hi - start
        return ids[max(lo, top - limit) : top][::-1] if top > lo else []

    def sorted(self, records: list[Record]) -> list[Record]:
        if self.by_id is not None:  # records come in _id order already
            return records if self.by_id == 1 else records[::-1]
        # Stable sorts from the last key to the first give a multi-key sort; ties keep _id order.
        for key, direction in reversed(self.sort):
            get = _getter(key)
            records.sort(key=lambda r, g=get: _sort_key(g(r.doc)), reverse=direction < 0)
        return records


def _sort_spec(sort: Any) -> list[tuple[str, int]]:
    if not isinstance(sort, Mapping):
        raise QueryError("sort must be an object")
    spec = []
    for key, direction in sort.items():
        if direction not in (1, -1) or isinstance(direction, bool):
            raise QueryError("bad sort specification")
        spec.append((key, int(direction)))
    return spec or [("_id", 1)]


def _sort_key(value: Any) -> tuple[int, Any]:
    """Mongo's cross-type order: null/missing < numbers < strings < objects < arrays < bools."""
    if value is _MISSING or value is None:
        return (0, 0)
    if _is_number(value):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, dict):
        return (3, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    if isinstance(value, list):
        return (4, orjson.dumps(value))
    return (5, bool(value))


def count_may_time_out(asset: Asset, plan: Plan) -> None:
    """Raise CountTimedOut when counting this query would examine more than the asset's
    count limit allows (see `KoboStore.slow_count`)."""
    if asset.count_limit is None or asset.count_timeouts_left == 0:
        return
    lo, hi = plan.id_bounds.indices(asset.ids) if plan.id_bounds else (0, len(asset.ids))
    if hi - lo <= asset.count_limit:
        return
    if asset.count_timeouts_left is not None:
        asset.count_timeouts_left -= 1
    raise CountTimedOut(f"operation exceeded time limit ({hi - lo} submissions to count)")


_ALWAYS_PROJECTED = ("_id", "_uuid", "meta/rootUuid")


def project(doc: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    """Mongo inclusion projection plus what kpi always adds (_uuid, rootUuid, status)."""
    wanted = {*fields, *_ALWAYS_PROJECTED}
    out = {k: v for k, v in doc.items() if k in wanted}
    out.setdefault("_validation_status", doc.get("_validation_status", {}))
    return out
