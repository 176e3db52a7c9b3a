"""Which registered forms each configured server offers a run, and what is not synced: a
server that fails, a form the config lists that cannot be read, a survey that matches no form,
or a form the warehouse holds under another server's name."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sammachip.connectors.kobo import Asset, KoboClient, KoboError, KoboForm, KoboSource
from sammachip.connectors.odk import OdkClient, OdkError, OdkForm, OdkSource
from sammachip.connectors.retry import TransientError
from sammachip.connectors.sources import FormSource, HttpPolicy, parse_cursor_key
from sammachip.schemas.registry import FORMS, form_for_asset

SourceError = (KoboError, OdkError)  # permanent: skip the form, say what to fix
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


def held_under_other_names(
    forms: list[FormSource],
    cursors: dict[str, Any],
    kobo: Sequence[KoboSource],
    odk: Sequence[OdkSource],
) -> tuple[list[FormSource], list[tuple[FormSource, str]]]:
    """The forms to sync, and those the warehouse holds only from a server of another name that
    no configured server has — a renamed server, or a warehouse written before servers had
    names (its keys hold the server's host:port). Syncing those would load every submission a
    second time under new keys (and quarantine each household as a duplicate of itself), so
    they wait for the name to be put back."""
    names = {"kobo": {s.name for s in kobo}, "odk": {s.name for s in odk}}
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
        held.append((form, _held_message(form, source, other)))
    return keep, held


def _held_message(form: FormSource, source: str, other: str) -> str:
    return (
        f"form {form.form_uid}: the warehouse holds it from {source} server '{other}', and no "
        f"configured server is named so (this one is '{form.server_name}'). A server's name "
        f"is its identity in the warehouse: if '{other}' is this server, set "
        f'name = "{other}" in its [[{source}]] table (or SAMMACHIP_{source.upper()}_NAME) — '
        'see docs/operations.md, "Server names"; nothing of this form was synced'
    )


def discover(
    kobo: Sequence[KoboSource], odk: Sequence[OdkSource], http: HttpPolicy
) -> tuple[list[FormSource], list[Skipped]]:
    """Every registered form on every configured server, and what is skipped: servers that
    fail, forms the config lists that cannot be synced, surveys that match no form. `http`
    is the run's: every client of it, listing included, waits and retries alike."""
    found: list[FormSource] = []
    failed: list[Skipped] = []
    for src in kobo:
        try:
            with KoboClient(src.server, page_size=src.page_size, **http.client_options()) as client:
                assets = client.assets()
        except (*SourceError, TransientError) as err:
            failed.append(Skipped(src.name, str(err), server=src.name))
            continue
        forms, skipped = _kobo_forms(src, assets, http)
        found.extend(forms)
        failed.extend(skipped)
    for osrc in odk:
        try:
            with OdkClient(
                osrc.server, page_size=osrc.page_size, **http.client_options()
            ) as client:
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
    src: KoboSource, assets: list[Asset], http: HttpPolicy
) -> tuple[list[KoboForm], list[Skipped]]:
    """The assets of one Kobo server that are synced, and a line for each one that is not: an
    error for an asset the config lists, a warning for a survey whose name names no form (or
    a form that is not deployed)."""
    forms: list[KoboForm] = []
    skipped = [_unusable(src, uid, form_id, assets) for uid, form_id in src.assets.items()]
    skipped = [s for s in skipped if s is not None]
    unusable = {s.where for s in skipped}
    unmatched: list[Asset] = []
    for asset in assets:
        if asset.uid in unusable:
            continue
        spec = form_for_asset(asset.name, src.assets, asset.uid)
        if spec is None:
            unmatched.append(asset)
        elif asset.deployed:
            forms.append(KoboForm(src, asset.uid, spec.form_id, http))
        else:
            skipped.append(
                Skipped(
                    asset.uid,
                    f"asset {asset.uid} {asset.name!r} on "
                    f"{_label(src)} looks like {spec.form_id} but is not "
                    "deployed: not synced",
                    spec.form_id,
                    warning=True,
                    server=src.name,
                )
            )
    if unmatched:
        skipped.append(
            Skipped(src.name, _unmatched_warning(src, unmatched), warning=True, server=src.name)
        )
    return forms, skipped


def _unusable(src: KoboSource, uid: str, form_id: str, assets: list[Asset]) -> Skipped | None:
    """Why an asset the config's `[[kobo]] assets` lists cannot be synced (None: it can)."""
    asset = next((a for a in assets if a.uid == uid), None)
    where = f"asset {uid} (listed in [[kobo]] {_label(src)} assets)"
    if form_id not in FORMS:
        close = difflib.get_close_matches(form_id, FORMS, n=1)
        problem = f"is listed as form {form_id!r}, which sammachip does not know: " + (
            f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(FORMS)}"
        )
    elif asset is None:
        problem = (
            "is not on the server, or its project is not shared with the token's "
            "user: check the uid (in the project's address, #/forms/<uid>/) and the "
            "project's sharing"
        )
    elif not asset.deployed:
        problem = "is not deployed: deploy it in KoboToolbox, or take it out of the config"
    else:
        return None
    return Skipped(uid, f"{where} {problem}", form_id, server=src.name)


def _unmatched_warning(src: KoboSource, assets: list[Asset]) -> str:
    named = ", ".join(f"{a.name!r} ({a.uid})" for a in assets[:_MAX_NAMED])
    more = f" and {len(assets) - _MAX_NAMED} more" if len(assets) > _MAX_NAMED else ""
    return (
        f"{len(assets)} survey(s) on {_label(src)} match no sammachip form and are not "
        f"synced: {named}{more}. To sync one, put its form id in its name (e.g. "
        "'sammachip_household · …') or list its uid under [[kobo]] assets"
    )


def _label(src: KoboSource) -> str:
    """How the run summary names a configured server: its name (its identity)."""
    return f"'{src.name}'"
