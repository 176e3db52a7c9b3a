"""The servers a run syncs from, behind one small interface, so the flows treat a Kobo asset
and an ODK Central form alike: list them, stream what changed, tell what was deleted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from connectors import kobo, odk
from connectors.retry import TransientError, parse_utc
from flows.settings import HttpPolicy, KoboSource, OdkSource, Settings
from schemas.records import Submission, submission_key
from schemas.registry import FORMS, form_for_asset

SourceError = (kobo.KoboError, odk.OdkError)  # permanent: skip the form, say what to fix
Batches = Iterator[tuple[list[Submission], int]]  # submissions, count left in this pass


class FormSource(Protocol):
    form_id: str
    form_uid: str

    @property
    def cursor_key(self) -> str: ...
    @property
    def key_prefix(self) -> str: ...
    def batches(self, cursor: dict[str, Any], settings: Settings, now: datetime,
                full_rescan: bool) -> Batches: ...  # fmt: skip
    def deleted_keys(self, held: set[str]) -> set[str]: ...
    def download(self, url: str, dest: Any) -> bool: ...


@runtime_checkable
class DeletionFeed(Protocol):
    """A source whose server lists what it deleted, and when (ODK Central's soft deletes): read
    every night, not only by the weekly reconcile."""

    def deletions(self, cursor: dict[str, Any], settings: Settings,
                  full: bool) -> dict[str, datetime]: ...  # fmt: skip


@dataclass(frozen=True)
class KoboForm:
    source: KoboSource
    form_uid: str  # asset uid
    form_id: str
    http: HttpPolicy = field(default_factory=HttpPolicy)  # the run's `[http]`

    @property
    def cursor_key(self) -> str:
        return f"kobo:{self.source.server.host}:{self.form_uid}"

    @property
    def key_prefix(self) -> str:
        return submission_key("kobo", self.source.server.host, self.form_uid, "")

    def client(self) -> kobo.KoboClient:
        return kobo.KoboClient(self.source.server, page_size=self.source.page_size,
                               **self.http.client_options())  # fmt: skip

    def batches(self, cursor: dict[str, Any], settings: Settings, now: datetime,
                full_rescan: bool) -> Batches:  # fmt: skip
        """Streams batches; `cursor` is updated in place as rows are seen."""
        position = kobo.KoboCursor.from_json(cursor)
        host = self.source.server.host
        with self.client() as client:
            for raw, remaining in kobo.changes(client, self.form_uid, position, settings.sync,
                                               now=now, full_rescan=full_rescan):  # fmt: skip
                subs = [kobo.to_submission(r, server=host, asset_uid=self.form_uid,
                                           form_id=self.form_id) for r in raw]  # fmt: skip
                yield subs, remaining
                cursor.update(position.to_json())
        cursor.update(position.to_json())

    def deleted_keys(self, held: set[str]) -> set[str]:
        """Kobo hard-deletes: whatever we hold that the id list no longer has."""
        with self.client() as client:
            on_server = {str(i) for page in client.ids(self.form_uid) for i in page}
        prefix = self.key_prefix
        return {k for k in held if k.startswith(prefix) and k[len(prefix) :] not in on_server}

    def download(self, url: str, dest: Any) -> bool:
        with self.client() as client:
            return client.download(url, dest)


@dataclass(frozen=True)
class OdkForm:
    source: OdkSource
    form_uid: str  # "<project>/<xmlFormId>"
    form_id: str
    http: HttpPolicy = field(default_factory=HttpPolicy)  # the run's `[http]`

    @property
    def xml_form_id(self) -> str:
        return self.form_uid.split("/", 1)[1]

    @property
    def cursor_key(self) -> str:
        return f"odk:{self.source.server.host}:{self.form_uid}"

    @property
    def key_prefix(self) -> str:
        return submission_key("odk", self.source.server.host, self.form_uid, "")

    def client(self) -> odk.OdkClient:
        return odk.OdkClient(self.source.server, page_size=self.source.page_size,
                             **self.http.client_options())  # fmt: skip

    def batches(self, cursor: dict[str, Any], settings: Settings, now: datetime,
                full_rescan: bool) -> Batches:  # fmt: skip
        """Everything created or changed since the watermark (minus an overlap), re-read and
        upserted by `__id`, oldest first; the watermark is the newest submissionDate/updatedAt
        seen. Submissions deleted lately are asked for by id too: a restore moves no
        timestamp, so only that shows them live again.

        Central pages newest first, and each batch is checked for duplicate codes against the
        batches before it, so the pass is read whole and re-batched by (submitted_at, id):
        the earlier registration keeps the code whatever the page size. The cost is holding
        one form's pass in memory (a district's delta or, on a rescan, its few thousand rows).
        """
        since = None if full_rescan or not cursor.get("since") else parse_utc(cursor["since"])
        overlap = timedelta(hours=settings.sync.odk_overlap_hours)
        host, project = self.source.server.host, self.source.server.project_id
        newest = since
        rows: dict[str, dict] = {}
        with self.client() as client:
            for page, _count in client.pages(self.xml_form_id, since=since, overlap=overlap):
                rows.update((str(r["__id"]), r) for r in page)
            watched = _watched(cursor, now)  # a rescan reads them anyway
            for r in _flat(client.rows(self.xml_form_id, [] if full_rescan else watched)):
                rows.setdefault(str(r["__id"]), r)  # live again: a restore
        for r in rows.values():
            system = r.get("__system") or {}
            for stamp in (system.get("updatedAt"), system.get("submissionDate")):
                if stamp and (newest is None or parse_utc(stamp) > newest):
                    newest = parse_utc(stamp)
        subs = [odk.to_submission(r, server=host, project_id=project,
                                  xml_form_id=self.xml_form_id, form_id=self.form_id)
                for r in rows.values()]  # fmt: skip
        subs.sort(key=lambda s: (s.submitted_at, s.submission_id))
        size = settings.sync.batch_size  # as Kobo's: what is validated and staged together
        for start in range(0, len(subs), size):
            yield subs[start : start + size], len(subs) - start  # this batch and those after
        if newest is not None:
            cursor["since"] = newest.isoformat()
        watch = cursor.get("watch") or {}
        cursor["watch"] = {i: t for i, t in sorted(watch.items()) if i not in rows}

    def deletions(self, cursor: dict[str, Any], settings: Settings,
                  full: bool) -> dict[str, datetime]:  # fmt: skip
        """Submission key → Central's deletion time, for what it soft-deleted since the
        deletion watermark (minus the overlap), or everything it still lists as deleted
        (`full`). The watermark moves to the newest deletion seen; each one is watched for a
        restore (see `batches`) until Central would have purged it."""
        since = None if full or not cursor.get("deleted_since") else parse_utc(
            cursor["deleted_since"])  # fmt: skip
        overlap = timedelta(hours=settings.sync.odk_overlap_hours)
        with self.client() as client:
            found = {str(r["__id"]): parse_utc((r.get("__system") or {})["deletedAt"])
                     for r in _flat(client.deleted(self.xml_form_id, since=since,
                                                       overlap=overlap))}  # fmt: skip
        newest = max([*found.values(), *([since] if since else [])], default=None)
        if newest is not None:
            cursor["deleted_since"] = newest.isoformat()
        watch = {**(cursor.get("watch") or {}), **{i: t.isoformat() for i, t in found.items()}}
        cursor["watch"] = dict(sorted(watch.items()))
        return {self.key_prefix + i: t for i, t in found.items()}

    def deleted_keys(self, held: set[str]) -> set[str]:
        """Whatever we hold that Central's id list lacks: soft-deleted (the deleted feed gives
        their time) or purged 30 days later, without a trace."""
        prefix = self.key_prefix
        with self.client() as client:
            live = {i for page in client.ids(self.xml_form_id) for i in page}
        return {k for k in held if k.startswith(prefix) and k[len(prefix) :] not in live}

    def download(self, url: str, dest: Any) -> bool:
        return False  # ODK attachments are not fetched yet (see docs/design.md)


# Central purges a soft-deleted submission 30 days after its deletion (its default): until
# then it can be restored, so a deleted submission is asked for by id until a little after.
RESTORE_WINDOW = timedelta(days=31)


def _watched(cursor: dict[str, Any], now: datetime) -> list[str]:
    """Ids deleted within the restore window, oldest first; older ones leave the cursor."""
    watch = cursor.get("watch") or {}
    kept = {i: t for i, t in sorted(watch.items()) if parse_utc(t) > now - RESTORE_WINDOW}
    cursor["watch"] = kept
    return sorted(kept, key=lambda i: (kept[i], i))


def _flat(pages: Iterator[list[dict]]) -> Iterator[dict]:
    """The rows of a client's pages."""
    for page in pages:
        yield from page


def discover(settings: Settings) -> tuple[list[FormSource], list[tuple[str, str]]]:
    """Every registered form on every configured server; (server, error) for those that fail."""
    found: list[FormSource] = []
    failed: list[tuple[str, str]] = []
    http = settings.http  # every client of the run, listing included, waits and retries alike
    for src in settings.kobo:
        try:
            with kobo.KoboClient(src.server, page_size=src.page_size,
                                 **http.client_options()) as client:  # fmt: skip
                assets = client.assets()
        except (*SourceError, TransientError) as err:
            failed.append((src.server.host, str(err)))
            continue
        for asset in assets:
            spec = form_for_asset(asset.name, src.assets, asset.uid)
            if spec and asset.deployed:
                found.append(KoboForm(src, asset.uid, spec.form_id, http))
    for osrc in settings.odk:
        try:
            with odk.OdkClient(osrc.server, page_size=osrc.page_size,
                               **http.client_options()) as client:  # fmt: skip
                forms = client.forms()
        except (*SourceError, TransientError) as err:
            failed.append((osrc.server.host, str(err)))
            continue
        for form in forms:
            form_id = osrc.forms.get(form.xml_form_id, form.xml_form_id)
            if form_id in FORMS:  # on Central the XLSForm's form_id is the xmlFormId
                uid = f"{osrc.server.project_id}/{form.xml_form_id}"
                found.append(OdkForm(osrc, uid, form_id, http))
    order = list(FORMS)
    found.sort(key=lambda f: (order.index(f.form_id), f.cursor_key))
    return found, failed
