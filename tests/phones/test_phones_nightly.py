"""The loop on ODK Central, under real Prefect: the nightly puts each officer's worklist on their
phone; the next night pushes nothing; a visit sent from an officer's phone comes back through
the same sync as every form into `followup_visits`, closes the reasons it resolved and takes the
item off the phone's list; a server that cannot take the lists leaves the night's data
committed and says why."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sammachip.connectors.odk import OdkForm, OdkSource
from sammachip.connectors.odk.client import OdkServer
from sammachip.flows.nightly import RunSummary, nightly
from sammachip.flows.settings import DEFAULT_CONFIG
from sammachip.reports.mailer import MailSettings
from sammachip.schemas import followup_form
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.faults import Fault
from sammachip.simulators.odk import (
    OdkStore,
    entity_store,
    seed_odk_from_cohort,
    serve_odk,
    xlsform_definition,
)
from sammachip.simulators.odk.field import visit_instance
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from tests.phones.conftest import EMAIL, FAST, PASSWORD, Central

pytestmark = pytest.mark.slow

TODAY = date(2026, 11, 24)


@dataclass
class Field:
    workdir: Path
    central: Central
    first: RunSummary

    def sql(self, query: str) -> list[tuple]:
        wh = open_warehouse(str(self.workdir / "data" / "warehouse"))
        return connect(wh).execute(query).fetchall()

    def night(self) -> RunSummary:
        return nightly(workdir=str(self.workdir), today=TODAY)


@pytest.fixture(scope="module")
def field(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Field]:
    """A district on Central with the follow-up form published, and a first night."""
    workdir = tmp_path_factory.mktemp("phones")
    store = OdkStore()
    seed_odk_from_cohort(store, generate_cohort(CohortSpec(seed=3, villages=3, today=TODAY)))
    entity_store(store).publish_form(1, xlsform_definition(followup_form.ODK_FILE))
    env = {
        "SAMMACHIP_ODK_EMAIL": EMAIL,
        "SAMMACHIP_ODK_PASSWORD": PASSWORD,
        "SAMMACHIP_ODK_PROJECT": "1",
        "SAMMACHIP_ODK_NAME": "central",
        "SAMMACHIP_PHONES_ENABLED": "true",
    }
    with serve_odk(store, EMAIL, PASSWORD) as url:
        os.environ.update(env, SAMMACHIP_ODK_URL=url)
        source = OdkSource(OdkServer(url, EMAIL, PASSWORD, project_id=1, name="central"))
        form = OdkForm(source, f"1/{followup_form.FORM_ID}", followup_form.FORM_ID, FAST)
        try:
            central = Central(store, url, form)
            yield Field(workdir, central, nightly(workdir=str(workdir), today=TODAY))
        finally:
            for key in [*env, "SAMMACHIP_ODK_URL"]:
                del os.environ[key]


def test_the_night_puts_each_officers_worklist_on_their_phone(field: Field) -> None:
    (pushed,) = field.first.phones
    assert (pushed.server, pushed.error, pushed.warning) == ("central", None, None)
    worklist: dict[str, set[str]] = {}
    for officer, item in field.sql("select officer_id, item_id from worklist"):
        worklist.setdefault(officer, set()).add(item)
    assert pushed.created == sum(len(v) for v in worklist.values()) > 0
    for officer, items in worklist.items():
        assert {r["item_id"] for r in field.central.phone_list(officer)} == items
    recorded = field.sql("select item_id, version from phone_items where server = 'central'")
    assert {i for i, _ in recorded} == set().union(*worklist.values())


def test_the_next_night_pushes_nothing(field: Field) -> None:
    before = field.central.held()
    (pushed,) = field.night().phones
    assert (pushed.changed, pushed.error) == (0, None)
    assert field.central.held() == before


def test_a_visit_from_the_phone_closes_its_reasons_and_shortens_the_list(field: Field) -> None:
    officer, item_id = field.sql(
        "select officer_id, item_id from worklist where subject_type = 'household' "
        "order by officer_id, visit_order limit 1"
    )[0]
    before = field.central.phone_list(officer)
    item = next(r for r in before if r["item_id"] == item_id)
    visit = visit_instance(item, "uuid:visit-0001", officer_id=officer, day=date(2026, 11, 25))
    assert field.central.phone(officer).send(visit).status_code == 201
    assert field.central.held()[item_id]["data"]["status"] == "visited"  # offline, at once
    summary = field.night()
    visits = field.sql("select item_id, officer_id, reached, n_resolved from followup_visits")
    assert visits == [(item_id, officer, True, int(item["n_reasons"]))]
    subject = item_id.split(":", 1)[1]
    closed = field.sql(
        "select alert_id, status from alerts where closed_by_visit = "
        "(select submission_key from followup_visits) order by alert_id"
    )
    assert closed == [(f"{r}:{subject}", "resolved") for r in sorted(item["reason_ids"].split())]
    (pushed,) = summary.phones
    assert (pushed.error, pushed.deleted) == (None, 1)  # every reason resolved: off the list
    after = {r["item_id"] for r in field.central.phone_list(officer)}
    assert after == {r["item_id"] for r in before} - {item_id}


def test_a_push_the_server_refuses_leaves_the_nights_data_and_says_why(field: Field) -> None:
    version = open_warehouse(str(field.workdir / "data" / "warehouse")).snapshot().version
    # the account lost its Project Manager role: Entity Lists refuse it, the forms still sync
    field.central.store.faults.add(Fault("status", 403, target="/datasets"), times=100)
    try:
        summary = field.night()
    finally:
        field.central.store.faults.clear()
    (pushed,) = summary.phones
    assert pushed.error and "needs the Project Manager role" in pushed.error
    assert "the next run pushes again" in pushed.error
    assert not any(f.error for f in summary.forms)  # the night's data are committed
    assert summary.warehouse_version >= version
    # the night's files, written again after its push, tell the officers their phones hold
    # older lists
    assert PHONES_STALE in district_page(field)
    (again,) = field.night().phones  # and the next night, with the role back, is fine
    assert again.error is None
    assert PHONES_STALE not in district_page(field)


def test_the_mail_leaves_after_the_push_and_says_what_the_phones_hold(
    field: Field, monkeypatch: pytest.MonkeyPatch, smtp: tuple[Any, MailSettings]
) -> None:
    """The district office reads its page in the mail, not on the disk: a night whose push
    failed mails the page that says so."""
    inbox, mail = smtp
    config = field.workdir / "mail.toml"
    config.write_text(
        DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
            'name = "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"\n',
            'name = "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"\nemail = "district@example.org"\n',
        )
        + f'\n[mail]\nenabled = true\nhost = "{mail.host}"\nport = {mail.port}\n'
        f'sender = "{mail.sender}"\nsecurity = "none"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SAMMACHIP_CONFIG", str(config))
    field.central.store.faults.add(Fault("status", 403, target="/datasets"), times=100)
    try:
        (pushed,) = field.night().phones
    finally:
        field.central.store.faults.clear()
    assert pushed.error
    ((rcpt, message, _),) = inbox.messages
    assert rcpt == ["district@example.org"]
    (page,) = [
        part.get_content()
        for part in message.iter_attachments()
        if part.get_filename() == "index.html"
    ]
    assert PHONES_STALE in (page if isinstance(page, str) else page.decode("utf-8"))


PHONES_STALE = "รายการบนโทรศัพท์ไม่ได้ปรับปรุง"


def district_page(field: Field) -> str:
    return (field.workdir / "data" / "reports" / TODAY.isoformat() / "index.html").read_text(
        encoding="utf-8"
    )
