"""The servers a run syncs from, behind one small interface, so the flows treat a Kobo asset
and an ODK Central form alike: list them, stream what changed, tell what was deleted."""

from __future__ import annotations

import difflib
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
_MAX_NAMED = 5  # unrecognised assets named in one warning; the rest are counted


@dataclass(frozen=True)
class Skipped:
    """A server, or a form on it, that a run does not sync, in a line saying what to do.

    An error (a server that fails, a form the config lists that cannot be read) fails the run;
    a warning (a survey nobody listed that matches no form) is only said."""

    where: str  # the server's name, or the asset's uid
    message: str
    form_id: str = "*"  # the form it was meant to be, when that is known
    warning: bool = False
    server: str = ""  # the server's name (its identity), for the run's freshness record


def cursor_key(source: str, server: str, form_uid: str) -> str:
    """Where a form's sync position is kept in the warehouse: by the server's name (its
    identity), like the form's submission keys — never by its URL."""
    return f"{source}:{server}:{form_uid}"


def parse_cursor_key(key: str) -> tuple[str, str, str] | None:
    """(source, server name, form uid) of a form's cursor key; None for any other key. Names
    taken from a host:port (before servers had names) may hold a ':'; form uids do not."""
    source, _, rest = key.partition(":")
    server, _, form_uid = rest.rpartition(":")
    return (source, server, form_uid) if source in ("kobo", "odk") and server else None


class FormSource(Protocol):
    form_id: str
    form_uid: str

    @property
    def server_name(self) -> str: ...
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
    def server_name(self) -> str:
        return self.source.name

    @property
    def cursor_key(self) -> str:
        return cursor_key("kobo", self.server_name, self.form_uid)

    @property
    def key_prefix(self) -> str:
        return submission_key("kobo", self.server_name, self.form_uid, "")

    def client(self) -> kobo.KoboClient:
        return kobo.KoboClient(self.source.server, page_size=self.source.page_size,
                               **self.http.client_options())  # fmt: skip

    def batches(self, cursor: dict[str, Any], settings: Settings, now: datetime,
                full_rescan: bool) -> Batches:  # fmt: skip
        """Streams batches; `cursor` is updated in place as rows are seen."""
        position = kobo.KoboCursor.from_json(cursor)
        server = self.server_name
        with self.client() as client:
            for raw, remaining in kobo.changes(client, self.form_uid, position, settings.sync,
                                               now=now, full_rescan=full_rescan):  # fmt: skip
                subs = [kobo.to_submission(r, server=server, asset_uid=self.form_uid,
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
    def server_name(self) -> str:
        return self.source.name

    @property
    def cursor_key(self) -> str:
        return cursor_key("odk", self.server_name, self.form_uid)

    @property
    def key_prefix(self) -> str:
        return submission_key("odk", self.server_name, self.form_uid, "")

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
        server, project = self.server_name, self.source.server.project_id
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
        subs = [odk.to_submission(r, server=server, project_id=project,
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


def held_under_other_names(
    forms: list[FormSource], cursors: dict[str, Any], settings: Settings
) -> tuple[list[FormSource], list[tuple[FormSource, str]]]:
    """The forms to sync, and those the warehouse holds only from a server of another name that
    no configured server has — a renamed server, or a warehouse written before servers had
    names (its keys hold the server's host:port). Syncing those would load every submission a
    second time under new keys (and quarantine each household as a duplicate of itself), so
    they wait for the name to be put back."""
    names = {"kobo": {s.name for s in settings.kobo}, "odk": {s.name for s in settings.odk}}
    orphans: dict[tuple[str, str], str] = {}  # (source, form uid) → the other server's name
    for key in cursors:
        if (parsed := parse_cursor_key(key)) and parsed[1] not in names.get(parsed[0], ()):
            orphans[(parsed[0], parsed[2])] = parsed[1]
    keep: list[FormSource] = []
    held: list[tuple[FormSource, str]] = []
    for form in forms:
        source = form.cursor_key.partition(":")[0]
        other = orphans.get((source, form.form_uid))
        if other is None or form.cursor_key in cursors:  # synced under its own name already
            keep.append(form)
            continue
        held.append((form, (
            f"form {form.form_uid}: the warehouse holds it from {source} server '{other}', and "
            f"no configured server is named so (this one is '{form.server_name}'). A server's "
            f"name is its identity in the warehouse: if '{other}' is this server, set "
            f'name = "{other}" in its [[{source}]] table (or SAMMACHIP_{source.upper()}_NAME) '
            "— see docs/operations.md, \"Server names\"; nothing of this form was synced"
        )))  # fmt: skip
    return keep, held


def discover(settings: Settings) -> tuple[list[FormSource], list[Skipped]]:
    """Every registered form on every configured server, and what is skipped: servers that
    fail, forms the config lists that cannot be synced, surveys that match no form."""
    found: list[FormSource] = []
    failed: list[Skipped] = []
    http = settings.http  # every client of the run, listing included, waits and retries alike
    for src in settings.kobo:
        try:
            with kobo.KoboClient(src.server, page_size=src.page_size,
                                 **http.client_options()) as client:  # fmt: skip
                assets = client.assets()
        except (*SourceError, TransientError) as err:
            failed.append(Skipped(src.name, str(err), server=src.name))
            continue
        forms, skipped = _kobo_forms(src, assets, http)
        found.extend(forms)
        failed.extend(skipped)
    for osrc in settings.odk:
        try:
            with odk.OdkClient(osrc.server, page_size=osrc.page_size,
                               **http.client_options()) as client:  # fmt: skip
                forms = client.forms()
        except (*SourceError, TransientError) as err:
            failed.append(Skipped(osrc.name, str(err), server=osrc.name))
            continue
        for form in forms:
            form_id = osrc.forms.get(form.xml_form_id, form.xml_form_id)
            if form_id in FORMS:  # on Central the XLSForm's form_id is the xmlFormId
                uid = f"{osrc.server.project_id}/{form.xml_form_id}"
                found.append(OdkForm(osrc, uid, form_id, http))
    order = list(FORMS)
    found.sort(key=lambda f: (order.index(f.form_id), f.cursor_key))
    return found, failed


def _kobo_forms(
    src: KoboSource, assets: list[kobo.Asset], http: HttpPolicy
) -> tuple[list[KoboForm], list[Skipped]]:
    """The assets of one Kobo server that are synced, and a line for each one that is not: an
    error for an asset the config lists, a warning for a survey whose name names no form (or
    a form that is not deployed)."""
    forms: list[KoboForm] = []
    skipped = [_unusable(src, uid, form_id, assets) for uid, form_id in src.assets.items()]
    skipped = [s for s in skipped if s is not None]
    unusable = {s.where for s in skipped}
    unmatched: list[kobo.Asset] = []
    for asset in assets:
        if asset.uid in unusable:
            continue
        spec = form_for_asset(asset.name, src.assets, asset.uid)
        if spec is None:
            unmatched.append(asset)
        elif asset.deployed:
            forms.append(KoboForm(src, asset.uid, spec.form_id, http))
        else:
            skipped.append(Skipped(asset.uid, f"asset {asset.uid} {asset.name!r} on "
                                   f"{_label(src)} looks like {spec.form_id} but is not "
                                   "deployed: not synced", spec.form_id, warning=True,
                                   server=src.name))  # fmt: skip
    if unmatched:
        skipped.append(Skipped(src.name, _unmatched_warning(src, unmatched), warning=True,
                               server=src.name))
    return forms, skipped


def _unusable(
    src: KoboSource, uid: str, form_id: str, assets: list[kobo.Asset]
) -> Skipped | None:
    """Why an asset the config's `[[kobo]] assets` lists cannot be synced (None: it can)."""
    asset = next((a for a in assets if a.uid == uid), None)
    where = f"asset {uid} (listed in [[kobo]] {_label(src)} assets)"
    if form_id not in FORMS:
        close = difflib.get_close_matches(form_id, FORMS, n=1)
        problem = (f"is listed as form {form_id!r}, which sammachip does not know: "
                   + (f"did you mean {close[0]!r}?" if close else
                      f"use one of {', '.join(FORMS)}"))  # fmt: skip
    elif asset is None:
        problem = ("is not on the server, or its project is not shared with the token's "
                   "user: check the uid (in the project's address, #/forms/<uid>/) and the "
                   "project's sharing")  # fmt: skip
    elif not asset.deployed:
        problem = "is not deployed: deploy it in KoboToolbox, or take it out of the config"
    else:
        return None
    return Skipped(uid, f"{where} {problem}", form_id, server=src.name)


def _unmatched_warning(src: KoboSource, assets: list[kobo.Asset]) -> str:
    named = ", ".join(f"{a.name!r} ({a.uid})" for a in assets[:_MAX_NAMED])
    more = f" and {len(assets) - _MAX_NAMED} more" if len(assets) > _MAX_NAMED else ""
    return (f"{len(assets)} survey(s) on {_label(src)} match no sammachip form and are not "
            f"synced: {named}{more}. To sync one, put its form id in its name (e.g. "
            "'sammachip_household · …') or list its uid under [[kobo]] assets")


def _label(src: KoboSource) -> str:
    """How the run summary names a configured server: its name (its identity)."""
    return f"'{src.name}'"
