"""A KoboToolbox API v2 simulator: an in-memory store and a Starlette app served by uvicorn.

It reproduces what a sync client meets on a real kpi server:
paging with `start`/`limit` (default 100, silently capped at 1000, 400 on bad values), DRF-style
absolute `next`/`previous` links with sorted query parameters, Mongo-style `query` / `sort` /
`fields` JSON parameters, the exact meta keys of a submission, edits that keep `_id` and
`meta/rootUuid` but change `_uuid`, hard deletes, validation statuses, and token auth errors;
assets in draft (never deployed: their data answers 400) or archived; and a count that times out
(`KoboStore.slow_count`: kpi answers 400 ["Unsupported query"] when Mongo gives up counting).

Speed matters because the pipeline is benchmarked against it: each asset keeps its submissions in
an `_id`-sorted list, `_id` ranges are answered with bisect (`_submission_time` and review-time
ranges through sorted indexes, as Mongo's would), and every submission's JSON is rendered once
so a page is a join of bytes.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.serving import run_forever, serve_in_thread
from simulators.cohort import FORM_IDS, FORM_TITLES, HOUSEHOLD, Cohort, paused_gc
from simulators.faults import FaultPlan, with_faults

VALIDATION_LABELS: dict[str, str] = {
    "validation_status_not_approved": "Not Approved",
    "validation_status_approved": "Approved",
    "validation_status_on_hold": "On Hold",
}
_UID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # shortuuid's base57
# kpi's asset `deployment_status`: a draft was never deployed; an archived form takes no new
# submissions but its data stays readable.
DeploymentStatus = Literal["deployed", "draft", "archived"]
# Keys the server adds; everything else in a document is an answer.
_SERVER_KEYS = frozenset(
    {
        "_id",
        "formhub/uuid",
        "__version__",
        "meta/instanceID",
        "meta/deprecatedID",
        "meta/rootUuid",
        "_xform_id_string",
        "_uuid",
        "_attachments",
        "_status",
        "_geolocation",
        "_submission_time",
        "_validation_status",
        "_submitted_by",
    }
)
_ALWAYS_PROJECTED = ("_id", "_uuid", "meta/rootUuid")
# Shared by every document: docs are never mutated in place (a change builds a new dict).
_NO_ATTACHMENTS: list[Any] = []
_NO_LOCATION: list[float | None] = [None, None]
REVIEWER = "cdd_reviewer"


def kobo_uid(prefix: str, rng: random.Random) -> str:
    """Kobo-style uid: a one-letter prefix and 21 base57 characters (`a…` asset, `v…` version)."""
    return prefix + "".join(rng.choice(_UID_ALPHABET) for _ in range(21))


def _epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _drf_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# =========================================================================== store


@dataclass(slots=True)
class _Record:
    doc: dict[str, Any]
    raw: bytes  # orjson rendering of doc, reused by every page that contains it


@dataclass
class Asset:
    uid: str
    name: str
    form_id: str
    owner: str
    version_id: str
    deployment_uuid: str  # XForm uuid = each submission's formhub/uuid
    date_created: datetime
    geopoint_keys: tuple[str, ...] = ()
    deployment_status: DeploymentStatus = "deployed"
    ids: list[int] = field(default_factory=list)  # sorted
    # Secondary indexes, as Mongo would keep: the nightly's look-back and review passes must
    # not cost a scan of every document per page.
    by_time: _SortedIndex = field(default_factory=lambda: _SortedIndex())
    by_review: _SortedIndex = field(default_factory=lambda: _SortedIndex())
    records: dict[int, _Record] = field(default_factory=dict)
    by_root: dict[str, int] = field(default_factory=dict)
    last_submission_time: datetime | None = None
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # att uid → (bytes, mime)
    # Counting matches times out past this many examined submissions (None: never), for the
    # next `count_timeouts_left` such counts (None: for as long as the count is that large).
    count_limit: int | None = None
    count_timeouts_left: int | None = None

    @property
    def has_deployment(self) -> bool:
        return self.deployment_status != "draft"


class KoboStore:
    """Thread-safe in-memory KoboToolbox: assets and their submissions."""

    def __init__(self, owner: str = "sammachip") -> None:
        self.owner = owner
        self._lock = threading.RLock()
        self._assets: dict[str, Asset] = {}
        self._next_id = 1  # one sequence across assets, like Postgres logger_instance.id
        self.faults = FaultPlan()  # tests queue failures here
        self.public_url = "http://kf.local"  # what kpi would put in attachment links

    # -- assets

    def add_asset(
        self,
        uid: str,
        name: str,
        form_id: str,
        *,
        version_id: str | None = None,
        deployment_uuid: str | None = None,
        date_created: datetime | None = None,
        geopoint_keys: tuple[str, ...] = (),
        deployment_status: DeploymentStatus = "deployed",
    ) -> Asset:
        rng = random.Random(f"asset-meta:{uid}")
        asset = Asset(
            uid=uid,
            name=name,
            form_id=form_id,
            owner=self.owner,
            version_id=version_id or kobo_uid("v", rng),
            deployment_uuid=deployment_uuid or f"{rng.getrandbits(128):032x}",
            date_created=date_created or datetime(2025, 1, 1),
            geopoint_keys=geopoint_keys,
            deployment_status=deployment_status,
        )
        with self._lock:
            if uid in self._assets:
                raise ValueError(f"asset {uid} exists")
            self._assets[uid] = asset
        return asset

    def asset(self, uid: str) -> Asset | None:
        return self._assets.get(uid)

    def assets(self) -> list[Asset]:
        with self._lock:
            return list(self._assets.values())

    def _require(self, uid: str) -> Asset:
        asset = self._assets.get(uid)
        if asset is None:
            raise KeyError(uid)
        return asset

    # -- submissions

    def submit(
        self,
        uid: str,
        answers: Mapping[str, Any],
        received_at: datetime,
        validation_status: str | Mapping[str, Any] | None = None,
        *,
        submitted_by: str | None = None,
    ) -> int:
        """Store a new submission received at `received_at` (UTC, naive); returns its `_id`.

        Repeat lists are kept by reference (memory at province scale): don't mutate them later.
        """
        with self._lock:
            asset = self._require(uid)
            _id = self._next_id
            instance_id = answers.get("meta/instanceID") or derived_uuid(f"{uid}:{_id}")
            if instance_id in asset.by_root:
                raise ValueError(f"conflicting rootUuid {instance_id}")  # Kobo answers 409
            self._next_id += 1
            status = _status_dict(validation_status, received_at, self.owner)
            doc = _build_doc(
                asset,
                _id,
                answers,
                instance_id=instance_id,
                root_uuid=instance_id,
                deprecated_id=None,
                submission_time=received_at.isoformat(timespec="seconds"),
                validation=status,
                submitted_by=submitted_by,
            )
            self._insert(asset, _id, doc)
            if asset.last_submission_time is None or received_at > asset.last_submission_time:
                asset.last_submission_time = received_at
            asset.by_root[instance_id] = _id
            return _id

    def _insert(self, asset: Asset, _id: int, doc: dict[str, Any]) -> None:
        if asset.ids and _id < asset.ids[-1]:  # only when someone submits with a foreign id order
            insort(asset.ids, _id)
        else:
            asset.ids.append(_id)
        asset.records[_id] = _Record(doc, _render(doc))
        asset.by_time.add(doc["_submission_time"], _id)
        asset.by_review.add(_review_time(doc), _id)

    def edit(self, uid: str, _id: int, changes: Mapping[str, Any]) -> None:
        """Apply an Enketo-style edit: same `_id`, rootUuid and time; new instanceID/_uuid.

        `changes` maps answer keys to new values (None removes an answer); a
        `meta/instanceID` in it is used as the new instance id.
        """
        with self._lock:
            asset = self._require(uid)
            old = asset.records[_id].doc
            answers = {k: v for k, v in old.items() if k not in _SERVER_KEYS}
            for key, value in changes.items():
                if key in _SERVER_KEYS:
                    continue
                if value is None:
                    answers.pop(key, None)
                else:
                    answers[key] = value
            new_id = changes.get("meta/instanceID") or derived_uuid(old["meta/instanceID"])
            doc = _build_doc(
                asset,
                _id,
                answers,
                instance_id=new_id,
                root_uuid=old["meta/rootUuid"],
                deprecated_id=old["meta/instanceID"],
                submission_time=old["_submission_time"],
                validation=old["_validation_status"],
                submitted_by=old["_submitted_by"],
            )
            doc["_attachments"] = old["_attachments"]  # files stay with the submission
            asset.records[_id] = _Record(doc, _render(doc))

    def delete(self, uid: str, _id: int) -> None:
        """Hard delete, like Kobo: no tombstone."""
        with self._lock:
            asset = self._require(uid)
            record = asset.records.pop(_id)
            i = bisect_left(asset.ids, _id)
            del asset.ids[i]
            asset.by_time.remove(record.doc["_submission_time"], _id)
            asset.by_review.remove(_review_time(record.doc), _id)
            asset.by_root.pop(record.doc["meta/rootUuid"], None)

    def set_validation_status(
        self, uid: str, _id: int, status_uid: str | None, by_whom: str, timestamp: int
    ) -> None:
        """Set (or with None clear) a validation status; the timestamp is epoch seconds."""
        with self._lock:
            asset = self._require(uid)
            doc = dict(asset.records[_id].doc)
            asset.by_review.remove(_review_time(doc), _id)
            if status_uid is not None:
                asset.by_review.add(int(timestamp), _id)
            doc["_validation_status"] = (
                {}
                if status_uid is None
                else {
                    "timestamp": int(timestamp),
                    "uid": status_uid,
                    "by_whom": by_whom,
                    "label": VALIDATION_LABELS[status_uid],
                }
            )
            asset.records[_id] = _Record(doc, _render(doc))

    def attach(
        self, uid: str, _id: int, question_xpath: str, basename: str, content: bytes,
        mimetype: str,
    ) -> str:  # fmt: skip
        """Add a media file to a submission, as a phone upload does; returns its `att…` uid."""
        with self._lock:
            asset = self._require(uid)
            doc = dict(asset.records[_id].doc)
            att = "att" + hashlib.sha1(f"{uid}/{_id}/{basename}".encode()).hexdigest()[:21]
            root = doc["meta/rootUuid"].removeprefix("uuid:")
            # kpi builds the link from KOBOFORM_URL, which behind a proxy may not be the host
            # clients use: the client re-bases it, so a placeholder host is faithful enough.
            path = f"/api/v2/assets/{uid}/data/{_id}/attachments/{att}/"
            item = {
                "download_url": self.public_url + path,
                "mimetype": mimetype,
                "filename": f"{self.owner}/attachments/{asset.deployment_uuid}/{root}/{basename}",
                "media_file_basename": basename,
                "uid": att,
                "is_deleted": False,
                "question_xpath": question_xpath,
            }  # fmt: skip
            doc["_attachments"] = [*doc["_attachments"], item]
            asset.files[att] = (content, mimetype)
            asset.records[_id] = _Record(doc, _render(doc))
            return att

    def attachment(self, uid: str, att: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._require(uid).files.get(att)

    def get(self, uid: str, _id: int) -> dict[str, Any]:
        with self._lock:
            return orjson.loads(self._require(uid).records[_id].raw)

    def find_by_root(self, uid: str, root_uuid: str) -> int | None:
        return self._require(uid).by_root.get(root_uuid)

    def count(self, uid: str) -> int:
        return len(self._require(uid).ids)

    def slow_count(self, uid: str, *, over: int | None, times: int | None = None) -> None:
        """Make counting an asset's matches time out, as Mongo's `count_documents` does past
        `maxTimeMS` on a large or busy collection (kpi then answers 400 ["Unsupported
        query"]): a count that examines more than `over` submissions fails — every such
        count, or only the next `times` (a server busy for a while). `over=None` heals it.

        What a count examines is what the `{_userform_id, _id}` index cannot skip: the
        asset's submissions within the query's `_id` range (all of them without one), however
        narrow the rest of the query is and whatever the page's `limit`."""
        with self._lock:
            asset = self._require(uid)
            asset.count_limit, asset.count_timeouts_left = over, times

    # -- reading pages

    def page(
        self,
        uid: str,
        *,
        query: Mapping[str, Any] | None = None,
        sort: Mapping[str, Any] | None = None,
        fields: list[str] | None = None,
        start: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[bytes]]:
        """(count, rendered rows) for one page; raises KeyError, QueryError."""
        plan = _Plan.build(query or {}, sort or {"_id": 1})
        with self._lock:
            asset = self._require(uid)
            _count_may_time_out(asset, plan)
            ids, lo, hi, predicate = plan.scan(asset)
            if predicate is None and plan.by_id is not None:
                count = hi - lo
                records = [asset.records[i] for i in plan.window(ids, lo, hi, start, limit)]
            else:
                matched = [asset.records[i] for i in ids[lo:hi]]
                if predicate is not None:
                    matched = [r for r in matched if predicate(r.doc)]
                count = len(matched)
                records = plan.sorted(matched)[start : start + limit]
        if fields is None:
            return count, [r.raw for r in records]
        return count, [orjson.dumps(_project(r.doc, fields)) for r in records]


def _count_may_time_out(asset: Asset, plan: _Plan) -> None:
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


def _render(doc: Mapping[str, Any]) -> bytes:
    """orjson's output keeps an over-allocated buffer (~8 KiB for a 1 KiB document); a cached
    copy of exact size makes the store several times smaller and, at scale, faster."""
    return memoryview(orjson.dumps(doc)).tobytes()


def derived_uuid(seed: str) -> str:
    """A stable uuid4-shaped id for submissions that arrive without one (and for edits)."""
    return f"uuid:{uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4)}"


def _status_dict(
    status: str | Mapping[str, Any] | None, at: datetime, by_whom: str
) -> dict[str, Any]:
    if status is None:
        return {}
    if isinstance(status, Mapping):
        return dict(status)
    return {
        "timestamp": _epoch(at),
        "uid": status,
        "by_whom": by_whom,
        "label": VALIDATION_LABELS[status],
    }


def _geolocation(asset: Asset, answers: Mapping[str, Any]) -> list[float | None]:
    for key in asset.geopoint_keys:
        parts = str(answers.get(key) or "").split()
        if len(parts) >= 2:
            try:
                return [float(parts[0]), float(parts[1])]
            except ValueError:
                continue
    return _NO_LOCATION


def _build_doc(
    asset: Asset,
    _id: int,
    answers: Mapping[str, Any],
    *,
    instance_id: str,
    root_uuid: str,
    deprecated_id: str | None,
    submission_time: str,
    validation: dict[str, Any],
    submitted_by: str | None,
) -> dict[str, Any]:
    """Key order follows a kpi v2 response: _id, formhub, answers, then the server keys."""
    doc: dict[str, Any] = {"_id": _id, "formhub/uuid": asset.deployment_uuid}
    doc.update(answers)
    for key in _SERVER_KEYS.intersection(answers):  # usually just meta/instanceID
        del doc[key]
    doc["_id"] = _id
    doc["formhub/uuid"] = asset.deployment_uuid
    doc["__version__"] = asset.version_id
    doc["meta/instanceID"] = instance_id
    if deprecated_id is not None:
        doc["meta/deprecatedID"] = deprecated_id
    doc["meta/rootUuid"] = root_uuid
    doc["_xform_id_string"] = asset.uid
    doc["_uuid"] = instance_id.removeprefix("uuid:")
    doc["_attachments"] = _NO_ATTACHMENTS
    doc["_status"] = "submitted_via_web"
    doc["_geolocation"] = _geolocation(asset, answers)
    doc["_submission_time"] = submission_time
    doc["_validation_status"] = validation
    doc["_submitted_by"] = submitted_by
    return doc


def _project(doc: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    """Mongo inclusion projection plus what kpi always adds (_uuid, rootUuid, status)."""
    wanted = {*fields, *_ALWAYS_PROJECTED}
    out = {k: v for k, v in doc.items() if k in wanted}
    out.setdefault("_validation_status", doc.get("_validation_status", {}))
    return out


# =========================================================================== Mongo-style queries


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


class _SortedIndex:
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


def _review_time(doc: Mapping[str, Any]) -> int | float | None:
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
class _Plan:
    """How to answer a query: index ranges from bisect, then an optional residual filter."""

    id_bounds: _Bounds | None
    time_bounds: _Bounds | None
    review_bounds: _Bounds | None  # on `_validation_status.timestamp`
    residual: dict[str, Any]
    sort: list[tuple[str, int]]
    predicate: Predicate = _never

    @classmethod
    def build(cls, query: Mapping[str, Any], sort: Mapping[str, Any]) -> _Plan:
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

    def sorted(self, records: list[_Record]) -> list[_Record]:
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


# =========================================================================== HTTP app


class _ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def _replace_query_param(url: str, key: str, value: Any) -> str:
    """DRF's replace_query_param: parameters re-encoded sorted by name."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    params[key] = [str(value)]
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def _remove_query_param(url: str, key: str) -> str:
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    params.pop(key, None)
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def _page_links(url: str, offset: int, limit: int, count: int) -> tuple[str | None, str | None]:
    """DRF LimitOffsetPagination next/previous with `start` as the offset parameter."""
    following = None
    if offset + limit < count:
        following = _replace_query_param(
            _replace_query_param(url, "limit", limit), "start", offset + limit
        )
    previous = None
    if offset > 0:
        base = _replace_query_param(url, "limit", limit)
        previous = (
            _remove_query_param(base, "start")
            if offset - limit <= 0
            else _replace_query_param(base, "start", offset - limit)
        )
    return following, previous


def _envelope(count: int, following: str | None, previous: str | None, rows: list[bytes]) -> bytes:
    return b"".join(
        (
            b'{"count":',
            str(count).encode(),
            b',"next":',
            orjson.dumps(following),
            b',"previous":',
            orjson.dumps(previous),
            b',"results":[',
            b",".join(rows),
            b"]}",
        )
    )


def _lenient_int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


class _KoboApi:
    """Request handlers; one instance per app, bound to a store and a token."""

    def __init__(
        self, store: KoboStore, token: str, max_page_size: int, default_page_size: int
    ) -> None:
        self.store, self.token = store, token
        self.max_page_size, self.default_page_size = max_page_size, default_page_size

    # -- shared steps

    def authenticate(self, request: Request) -> None:
        """DRF TokenAuthentication, with its exact messages."""
        parts = request.headers.get("authorization", "").split()
        challenge = {"WWW-Authenticate": "Token"}
        if not parts or parts[0].lower() != "token":
            raise _ApiError(
                401, {"detail": "Authentication credentials were not provided."}, challenge
            )
        if len(parts) == 1:
            raise _ApiError(
                401, {"detail": "Invalid token header. No credentials provided."}, challenge
            )
        if len(parts) > 2:
            raise _ApiError(
                401,
                {"detail": "Invalid token header. Token string should not contain spaces."},
                challenge,
            )
        if parts[1] != self.token:
            raise _ApiError(401, {"detail": "Invalid token."}, challenge)

    def asset_of(self, request: Request) -> Asset:
        asset = self.store.asset(request.path_params["uid"])
        if asset is None:
            raise _ApiError(404, {"detail": "Not found."})
        return asset

    def page_size(self, raw: str | None) -> int:
        if raw is None:
            return self.default_page_size
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise _ApiError(400, {"limit": "A positive integer is required"})
        return min(value, self.max_page_size)

    @staticmethod
    def json_param(request: Request, name: str) -> Any:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _ApiError(400, {name: "Value must be valid JSON."}) from None

    @staticmethod
    def start_of(request: Request) -> int:
        raw = request.query_params.get("start", "0")
        try:
            start = int(raw)
        except ValueError:
            start = -1
        if start < 0:
            raise _ApiError(400, {"start": "A positive integer is required."})
        return start

    @staticmethod
    def link_offset(request: Request, start: int, limit: int) -> int:
        """Offset used for links: DRF also reads `offset`/`page`, but the skip uses only start."""
        params = request.query_params
        if "start" in params:
            return start
        if "offset" in params:
            return max(0, _lenient_int(params["offset"], 0))
        if "page" in params:
            return max(0, _lenient_int(params["page"], 1) - 1) * limit
        return 0

    def base(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    # -- endpoints

    async def data(self, request: Request) -> Response:
        self.authenticate(request)
        asset = self.asset_of(request)
        if not asset.has_deployment:  # kpi's ObjectDeploymentDoesNotExist is a 400
            raise _ApiError(400, {"detail": "The specified asset has not been deployed"})
        if (
            not request.url.path.endswith(".json")
            and request.query_params.get("format", "json") != "json"
        ):
            raise _ApiError(404, {"detail": "Not found."})  # DRF: no renderer for that format
        params = request.query_params
        if "count" in params:
            raise _ApiError(
                400,
                {
                    "count": "This param is not implemented. "
                    "Use `count` property of the response instead."
                },
            )
        limit = self.page_size(params.get("limit"))
        start = self.start_of(request)
        query, sort, fields = (self.json_param(request, n) for n in ("query", "sort", "fields"))
        if fields is not None and not (
            isinstance(fields, list) and all(isinstance(f, str) for f in fields)
        ):
            raise _ApiError(400, {"fields": "Value must be valid JSON."})
        fields = fields or None  # kpi projects only for a non-empty list
        try:
            count, rows = self.store.page(
                asset.uid, query=query, sort=sort, fields=fields, start=start, limit=limit
            )
        except QueryError as exc:
            body = [str(exc)] if str(exc) == "$all needs an array" else ["Unsupported query"]
            raise _ApiError(400, body) from None
        following, previous = _page_links(
            str(request.url), self.link_offset(request, start, limit), limit, count
        )
        return Response(_envelope(count, following, previous, rows), media_type="application/json")

    async def submission(self, request: Request) -> Response:
        self.authenticate(request)
        asset = self.asset_of(request)
        if not asset.has_deployment:
            raise _ApiError(400, {"detail": "The specified asset has not been deployed"})
        sid = request.path_params["sid"]
        if sid.isascii() and sid.isdigit():
            query: dict[str, Any] = {"_id": int(sid)}
        else:
            query = {"$or": [{"meta/rootUuid": f"uuid:{sid}"}, {"_uuid": sid}]}
        _count, rows = self.store.page(asset.uid, query=query, limit=1)
        if not rows:
            raise _ApiError(404, {"detail": "Not found."})
        return Response(rows[0], media_type="application/json")

    async def attachment(self, request: Request) -> Response:
        self.authenticate(request)
        found = self.store.attachment(request.path_params["uid"], request.path_params["att"])
        if found is None:
            raise _ApiError(404, {"detail": "Not found."})
        content, mimetype = found
        return Response(content, media_type=mimetype)

    async def assets(self, request: Request) -> Response:
        self.authenticate(request)
        params = request.query_params
        limit = min(
            max(1, _lenient_int(params.get("limit"), self.default_page_size)), self.max_page_size
        )
        start = max(0, _lenient_int(params.get("start"), 0))
        items = self.store.assets()
        rows = [orjson.dumps(self.asset_summary(request, a)) for a in items[start : start + limit]]
        following, previous = _page_links(str(request.url), start, limit, len(items))
        return Response(
            _envelope(len(items), following, previous, rows), media_type="application/json"
        )

    async def asset_detail(self, request: Request) -> Response:
        self.authenticate(request)
        asset = self.asset_of(request)
        body = self.asset_summary(request, asset)
        url = body["url"]
        deployed = [self.deployed_version(asset, url)] if asset.has_deployment else []
        body.update(
            {
                "deployed_versions": {
                    "count": len(deployed),
                    "next": None,
                    "previous": None,
                    "results": deployed,
                },
                "version_count": 1,
                "content": {
                    "schema": "1",
                    "survey": [],
                    "choices": [],
                    "settings": {"form_id": asset.form_id},
                },
                "files": [],
                "xform_link": f"{url}xform/",
                "hooks_link": f"{url}hooks/",
                "xls_link": f"{url}xls/",
                "advanced_features": {},
            }
        )
        return _json(body)

    def deployed_version(self, asset: Asset, url: str) -> dict[str, Any]:
        deployed_at = _drf_time(asset.date_created + timedelta(hours=1))
        return {
            "uid": asset.version_id,
            "url": f"{url}versions/{asset.version_id}/",
            "content_hash": hashlib.sha1(asset.version_id.encode()).hexdigest(),
            "date_deployed": deployed_at,
            "date_modified": deployed_at,
        }

    def asset_summary(self, request: Request, asset: Asset) -> dict[str, Any]:
        base = self.base(request)
        url = f"{base}/api/v2/assets/{asset.uid}/"
        last = asset.last_submission_time
        created = _drf_time(asset.date_created)
        deployed = _drf_time(asset.date_created + timedelta(hours=1))
        has_deployment = asset.has_deployment
        return {
            "url": url,
            "date_created": created,
            "date_modified": deployed,
            "date_deployed": deployed if has_deployment else None,
            "owner": f"{base}/api/v2/users/{asset.owner}/",
            "owner__username": asset.owner,
            "owner_label": asset.owner,
            "parent": None,
            "uid": asset.uid,
            "tag_string": "",
            "settings": {},
            "kind": "asset",
            "name": asset.name,
            "asset_type": "survey",
            "version_id": asset.version_id,
            "has_deployment": has_deployment,
            "deployed_version_id": asset.version_id if has_deployment else None,
            "deployment__active": asset.deployment_status == "deployed",
            "deployment__submission_count": len(asset.ids),
            "deployment__last_submission_time": (
                f"{last:%Y-%m-%dT%H:%M:%S}.{last.microsecond // 1000:03d}Z" if last else None
            ),
            "deployment__encrypted": False,
            "deployment__uuid": asset.deployment_uuid if has_deployment else None,
            "deployment_status": asset.deployment_status,
            # kpi's asset summary (geo: the form has a geopoint question); clients such as
            # pykobo read it from the list
            "summary": {
                "geo": bool(asset.geopoint_keys),
                "labels": [],
                "columns": [],
                "languages": [],
                "row_count": 0,
            },
            "permissions": [],
            "downloads": [{"format": "xls", "url": f"{base}/api/v2/assets/{asset.uid}.xls"}],
            "data": f"{url}data/",
            "status": "private",
            "access_types": None,
            "subscribers_count": 0,
            "children": {"count": 0},
        }


def create_app(
    store: KoboStore, token: str, *, max_page_size: int = 1000, default_page_size: int = 100
) -> Starlette:
    api = _KoboApi(store, token, max_page_size, default_page_size)

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except _ApiError as exc:
                return _json(exc.body, exc.status, exc.headers)

        return with_faults(lambda: store.faults, answer)

    async def http_error(request: Request, exc: Exception) -> Response:
        """DRF-style bodies for router errors (unknown path, wrong method)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = {404: "Not found.", 405: f'Method "{request.method}" not allowed.'}.get(
            status, str(getattr(exc, "detail", "Server error."))
        )
        return _json({"detail": detail}, status)

    routes = [
        Route("/api/v2/assets/", guarded(api.assets)),
        Route("/api/v2/assets.json", guarded(api.assets)),  # DRF's format suffix, as kpi's
        Route("/api/v2/assets/{uid}/", guarded(api.asset_detail)),
        Route("/api/v2/assets/{uid}.json", guarded(api.asset_detail)),
        Route("/api/v2/assets/{uid}/data/", guarded(api.data)),
        Route("/api/v2/assets/{uid}/data.json", guarded(api.data)),
        Route("/api/v2/assets/{uid}/data/{sid}/", guarded(api.submission)),
        Route("/api/v2/assets/{uid}/data/{sid}/attachments/{att}/", guarded(api.attachment)),
    ]
    from simulators.kobo.media import media_routes  # it imports this module

    routes += media_routes(store, api, guarded)
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


# =========================================================================== seeding


def asset_uid_for(form_id: str) -> str:
    """Deterministic asset uid per form, so configs and tests can name it."""
    return kobo_uid("a", random.Random(f"kobo-asset:{form_id}"))


def seed_from_cohort(
    store: KoboStore,
    cohort: Cohort,
    *,
    after: datetime | None = None,
    as_of: datetime | None = None,
) -> dict[str, str]:
    """Load a cohort into the store; returns {form_id: asset uid}.

    Only what happened in the window (after, as_of] is applied (submissions by receive time,
    edits by edit time, statuses by validation time), so a cohort can be replayed in steps to
    exercise incremental sync. Assets are created on first use.
    """

    def in_window(moment: datetime | None) -> bool:
        return (
            moment is not None
            and (after is None or moment > after)
            and (as_of is None or moment <= as_of)
        )

    first = min((s.received_at for s in cohort.submissions), default=datetime(2025, 1, 1))
    uids = {}
    for form_id in FORM_IDS:
        uid = uids[form_id] = asset_uid_for(form_id)
        if store.asset(uid) is None:
            store.add_asset(
                uid,
                f"{form_id} · {FORM_TITLES[form_id]}",
                form_id,
                date_created=first.replace(microsecond=0) - timedelta(days=14),
                geopoint_keys=("location",) if form_id == HOUSEHOLD else (),
            )
    with paused_gc():
        for sub in cohort.submissions:  # already in received_at order
            if in_window(sub.received_at):
                store.submit(
                    uids[sub.form_id], sub.answers, sub.received_at, submitted_by=sub.submitted_by
                )
        _apply_edits(store, cohort, uids, in_window)
        _apply_statuses(store, cohort, uids, in_window)
    return uids


def _apply_edits(
    store: KoboStore,
    cohort: Cohort,
    uids: dict[str, str],
    in_window: Callable[[datetime | None], bool],
) -> None:
    edits = sorted(
        (
            (at, n, sub, changes)
            for n, sub in enumerate(cohort.submissions)
            for at, changes in sub.edits
            if in_window(at)
        ),
        key=lambda e: (e[0], e[1]),
    )
    for _at, _n, sub, changes in edits:
        _id = store.find_by_root(uids[sub.form_id], sub.answers["meta/instanceID"])
        if _id is not None:
            store.edit(uids[sub.form_id], _id, changes)


def _apply_statuses(
    store: KoboStore,
    cohort: Cohort,
    uids: dict[str, str],
    in_window: Callable[[datetime | None], bool],
) -> None:
    for sub in cohort.submissions:
        if sub.validation_status is None or sub.validated_at is None:
            continue
        if in_window(sub.validated_at):
            _id = store.find_by_root(uids[sub.form_id], sub.answers["meta/instanceID"])
            if _id is not None:
                store.set_validation_status(
                    uids[sub.form_id],
                    _id,
                    sub.validation_status,
                    REVIEWER,
                    _epoch(sub.validated_at),
                )


# =========================================================================== serving


@contextmanager
def serve_kobo(
    store: KoboStore,
    token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    max_page_size: int = 1000,
    default_page_size: int = 100,
) -> Iterator[str]:
    """Serve the store on loopback in a background thread; yields the base URL."""
    app = create_app(store, token, max_page_size=max_page_size, default_page_size=default_page_size)
    with serve_in_thread(lambda _url: app, host=host, port=port, name="kobo-simulator") as url:
        yield url


def run_kobo_forever(
    store: KoboStore,
    token: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_page_size: int = 1000,
    default_page_size: int = 100,
) -> None:
    """Run the simulator in the foreground until interrupted (for a CLI command)."""
    app = create_app(store, token, max_page_size=max_page_size, default_page_size=default_page_size)
    run_forever(app, host, port)
