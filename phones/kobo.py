"""Each officer's list on KoboToolbox: the follow-up form's media file `followups.csv`.

Kobo has no per-user lists: the file holds every officer's items and the form's
`choice_filter` shows each officer theirs. The phones are asked first what they are served
(the deployed form's manifest): the file is replaced and the form redeployed only when its
content changed (`MediaClient.replace_media`), so a push that finds the same list sends
nothing, and one that died between the upload and the redeploy is finished by the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from urllib.parse import urlsplit, urlunsplit

from sammachip.connectors.kobo import KoboForm
from sammachip.connectors.kobo.media import MediaClient
from sammachip.phones.items import PhoneItem, VisitWindow, media_csv, officers
from sammachip.phones.odk import PushResult
from sammachip.phones.record import Held
from sammachip.schemas.followup_form import LIST_NAME

DESCRIPTION = "sammachip: รายการติดตามของพัฒนากร (officers' follow-up lists)"


def openrosa_url(url: str) -> str:
    """Where KoboCollect talks to: kpi's OpenRosa host, `kc.` beside the `kf.` API host on
    kobotoolbox.org and on kobo-install servers; the same host otherwise."""
    parts = urlsplit(url)
    host = parts.netloc
    return urlunsplit(parts._replace(netloc="kc." + host[3:])) if host.startswith("kf.") else url


def push_kobo(
    form: KoboForm, items: Sequence[PhoneItem], visited: Mapping[str, date], window: VisitWindow
) -> PushResult:
    """`visited`: item_id → the day of its last visit that reached them (the phones cannot
    mark items on Kobo; the visits that came back do)."""
    result = PushResult(form.server_name, "kobo", form.form_uid)
    content = media_csv(items, visited, window)
    server = form.source.server
    options = form.http.client_options()
    with MediaClient(server, openrosa_url=openrosa_url(server.url), **options) as client:
        changed = client.replace_media(
            form.form_uid, f"{LIST_NAME}.csv", content, description=DESCRIPTION
        )
    # A file has no per-item versions: every item counts as updated when the file changed.
    result.updated, result.unchanged = (len(items), 0) if changed else (0, len(items))
    result.officers = len(officers(items))
    result.held = [Held(i.item_id, i.officer_id, i.uuid, None, i.content_hash) for i in items]
    return result
