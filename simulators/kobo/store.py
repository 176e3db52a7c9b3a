"""The Kobo simulator's store: assets and their submissions, and every change a kpi server
makes to them (submit, Enketo edit, hard delete, validation status, attachment, a count that
times out).

Speed matters because the pipeline is benchmarked against it: each asset keeps its submissions in
an `_id`-sorted list, `_id` ranges are answered with bisect (`_submission_time` and review-time
ranges through sorted indexes, as Mongo's would, see `query.py`), and every submission's JSON is
rendered once so a page is a join of bytes.
"""

from __future__ import annotations

import hashlib
import random
import threading
import uuid
from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from sammachip.simulators.faults import FaultPlan
from sammachip.simulators.kobo.query import (
    Plan,
    SortedIndex,
    count_may_time_out,
    project,
    review_time,
)

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
# Shared by every document: docs are never mutated in place (a change builds a new dict).
_NO_ATTACHMENTS: list[Any] = []
_NO_LOCATION: list[float | None] = [None, None]


def kobo_uid(prefix: str, rng: random.Random) -> str:
    """Kobo-style uid: a one-letter prefix and 21 base57 characters (`a…` asset, `v…` version)."""
    return prefix + "".join(rng.choice(_UID_ALPHABET) for _ in range(21))


def epoch(moment: datetime) -> int:
    """A naive UTC moment as epoch seconds (kpi's validation-status timestamps)."""
    return int(moment.replace(tzinfo=UTC).timestamp())


@dataclass(slots=True)
class Record:
    """A stored submission: its document and that document rendered once."""

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
    by_time: SortedIndex = field(default_factory=SortedIndex)
    by_review: SortedIndex = field(default_factory=SortedIndex)
    records: dict[int, Record] = field(default_factory=dict)
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
        asset.records[_id] = Record(doc, _render(doc))
        asset.by_time.add(doc["_submission_time"], _id)
        asset.by_review.add(review_time(doc), _id)

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
            asset.records[_id] = Record(doc, _render(doc))

    def delete(self, uid: str, _id: int) -> None:
        """Hard delete, like Kobo: no tombstone."""
        with self._lock:
            asset = self._require(uid)
            record = asset.records.pop(_id)
            i = bisect_left(asset.ids, _id)
            del asset.ids[i]
            asset.by_time.remove(record.doc["_submission_time"], _id)
            asset.by_review.remove(review_time(record.doc), _id)
            asset.by_root.pop(record.doc["meta/rootUuid"], None)

    def set_validation_status(
        self, uid: str, _id: int, status_uid: str | None, by_whom: str, timestamp: int
    ) -> None:
        """Set (or with None clear) a validation status; the timestamp is epoch seconds."""
        with self._lock:
            asset = self._require(uid)
            doc = dict(asset.records[_id].doc)
            asset.by_review.remove(review_time(doc), _id)
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
            asset.records[_id] = Record(doc, _render(doc))

    def attach(
        self,
        uid: str,
        _id: int,
        question_xpath: str,
        basename: str,
        content: bytes,
        mimetype: str,
    ) -> str:
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
            }
            doc["_attachments"] = [*doc["_attachments"], item]
            asset.files[att] = (content, mimetype)
            asset.records[_id] = Record(doc, _render(doc))
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
        plan = Plan.build(query or {}, sort or {"_id": 1})
        with self._lock:
            asset = self._require(uid)
            count_may_time_out(asset, plan)
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
        return count, [orjson.dumps(project(r.doc, fields)) for r in records]


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
        "timestamp": epoch(at),
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
