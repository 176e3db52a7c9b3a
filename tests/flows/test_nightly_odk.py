"""The nightly and reconcile flows against the ODK Central simulator: the same warehouse
guarantees through a different server — OData paging, watermark re-reads, review states,
soft deletions and restores, new form versions — and the same clean tables downstream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from sammachip.connectors.discovery import discover
from sammachip.connectors.retry import parse_utc
from sammachip.flows.nightly import FormResult, RunSummary, nightly, reconcile
from sammachip.flows.settings import load_settings
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.odk import OdkField, OdkStore, seed_odk_from_cohort, serve_odk
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from tests.reliability.helpers import captured_logs

TODAY = date(2026, 11, 24)
EMAIL, PASSWORD = "officer@cdd.example", "correct horse battery staple"


@dataclass
class OdkRun:
    workdir: Path
    store: OdkStore
    forms: dict[str, str]
    first: RunSummary

    def sql(self, query: str) -> list[tuple]:
        wh = open_warehouse(str(self.workdir / "data" / "warehouse"))
        return connect(wh).execute(query).fetchall()

    def night(self, form_id: str) -> FormResult:
        """A nightly run; the result of `form_id`."""
        summary = nightly(workdir=str(self.workdir), today=TODAY)
        return next(f for f in summary.forms if f.form_id == form_id)


@pytest.fixture(scope="module")
def odk_run(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdkRun]:
    workdir = tmp_path_factory.mktemp("odk")
    store = OdkStore()
    forms = seed_odk_from_cohort(
        store, generate_cohort(CohortSpec(seed=3, villages=3, today=TODAY))
    )
    env = {
        "SAMMACHIP_ODK_EMAIL": EMAIL,
        "SAMMACHIP_ODK_PASSWORD": PASSWORD,
        "SAMMACHIP_ODK_PROJECT": "1",
    }
    with serve_odk(store, EMAIL, PASSWORD) as url:
        os.environ.update(env, SAMMACHIP_ODK_URL=url)
        try:
            yield OdkRun(workdir, store, forms, nightly(workdir=str(workdir), today=TODAY))
        finally:
            for key in [*env, "SAMMACHIP_ODK_URL"]:
                del os.environ[key]


def test_every_form_syncs_and_counts_reconcile(odk_run: OdkRun) -> None:
    assert {f.form_id for f in odk_run.first.forms} == set(odk_run.forms)
    for form in odk_run.first.forms:
        assert form.error is None
        assert form.fetched == form.new_versions == form.clean + form.quarantined > 0, form
    live = {f: odk_run.store.count(x) for f, x in odk_run.forms.items()}
    raw = dict(
        odk_run.sql(
            "select form_id, count(distinct submission_key) from raw_submissions "
            "where source = 'odk' group by 1"
        )
    )
    assert raw == live


def test_repeats_arrive_as_child_rows(odk_run: OdkRun) -> None:
    (attendance,) = odk_run.sql("select count(*) from attendance")[0]
    assert attendance > 0


def test_edits_reviews_and_deletions_reach_the_warehouse(odk_run: OdkRun) -> None:
    xml = odk_run.forms["sammachip_household"]
    rows = odk_run.sql("select submission_id, hh_code from households order by 1 limit 3")
    (edited, _), (rejected, rejected_hh), (deleted, _) = rows
    odk_run.store.edit(xml, edited, {"members": "9"})
    odk_run.store.set_review_state(xml, rejected, "rejected")
    odk_run.store.delete(xml, deleted)
    second = nightly(workdir=str(odk_run.workdir), today=TODAY)
    household = next(f for f in second.forms if f.form_id == "sammachip_household")
    assert household.new_versions == 2  # the edit and the review; the deletion is silent
    assert odk_run.sql(f"select members from households where submission_id = '{edited}'") == [(9,)]
    assert odk_run.sql(
        f"select review_status from households where submission_id = '{rejected}'"
    ) == [("rejected",)]
    assert odk_run.sql(
        f"select count(*) from alerts where subject_id = '{rejected_hh}' and status = 'open'"
    ) == [(0,)]
    assert reconcile(workdir=str(odk_run.workdir), today=TODAY)
    assert odk_run.sql(
        f"select deleted_at is not null from households where submission_id = '{deleted}'"
    ) == [(True,)]


def test_a_deletion_reaches_the_warehouse_the_next_night_with_centrals_time(
    odk_run: OdkRun,
) -> None:
    xml = odk_run.forms["sammachip_group"]
    ((group_id,),) = odk_run.sql(
        "select submission_id from groups where deleted_at is null "
        "order by submission_id desc limit 1"
    )
    odk_run.store.delete(xml, group_id)
    deleted_at = parse_utc(odk_run.store.row(xml, group_id)["__system"]["deletedAt"])
    assert odk_run.night("sammachip_group").deleted == 1  # not left for the weekly reconcile
    held = odk_run.sql(f"select deleted_at from groups where submission_id = '{group_id}'")
    assert held == [(deleted_at,)]
    again = odk_run.night("sammachip_group")  # the deleted feed's overlap lists it again
    assert (again.deleted, again.new_versions) == (0, 0)


def test_a_restored_handout_is_live_again_the_next_night_and_its_alert_closes(
    odk_run: OdkRun,
) -> None:
    """Central's restore moves no timestamp: the incremental feed never shows it, so what was
    deleted lately is asked for by id. The false "trained, no materials" alert the deletion
    opened closes again."""
    xml = odk_run.forms["sammachip_materials"]
    ((sub_id, hh),) = odk_run.sql(f"""
        select m.submission_id, m.hh_code from materials m join household_outcomes o using (hh_code)
        where m.deleted_at is null and o.first_trained < date '{TODAY}' - 60
          and (select count(*) from materials n where n.hh_code = m.hh_code) = 1
        order by 1 limit 1""")
    no_materials = (
        f"select status from alerts where rule_id = 'R04_TRAINED_NO_MATERIALS' "
        f"and subject_id = '{hh}'"
    )
    odk_run.store.delete(xml, sub_id)
    assert odk_run.night("sammachip_materials").deleted == 1
    assert odk_run.sql(no_materials) == [("open",)]
    odk_run.store.restore(xml, sub_id)
    assert odk_run.store.row(xml, sub_id)["__system"]["updatedAt"] is None  # nothing moved
    restored = odk_run.night("sammachip_materials")
    assert (restored.restored, restored.new_versions, restored.deleted) == (1, 1, 0)
    live = odk_run.sql(f"select deleted_at from materials where submission_id = '{sub_id}'")
    assert live == [(None,)]
    assert odk_run.sql(no_materials) == [("resolved",)]
    versions = odk_run.sql(
        f"select deleted from raw_submissions where submission_id = '{sub_id}' "
        "order by ingested_at, deleted"
    )
    assert versions == [(False,), (True,), (False,)]  # held, tombstoned, held again
    assert odk_run.night("sammachip_materials").new_versions == 0  # and it stays at that


def test_the_reconcile_restores_what_the_nightly_could_not_see(odk_run: OdkRun) -> None:
    xml = odk_run.forms["sammachip_sage"]
    ((sub_id,),) = odk_run.sql(
        "select submission_id from sages where deleted_at is null order by 1 limit 1"
    )
    odk_run.store.delete(xml, sub_id)
    assert odk_run.night("sammachip_sage").deleted == 1
    odk_run.store.restore(xml, sub_id)
    wh = open_warehouse(str(odk_run.workdir / "data" / "warehouse"))
    with wh.transaction() as tx:  # as if the restore came after the nightly stopped watching
        for key, cursor in wh.snapshot().cursors.items():
            if key.endswith(xml):
                tx.set_cursor(key, {**cursor, "watch": {}})
    summary = reconcile(workdir=str(odk_run.workdir), today=TODAY)
    sages = next(f for f in summary.forms if f.form_id == "sammachip_sage")
    assert (sages.restored, sages.deleted) == (1, 0)
    live = odk_run.sql(f"select deleted_at from sages where submission_id = '{sub_id}'")
    assert live == [(None,)]


def test_a_new_form_version_makes_no_old_submission_new(odk_run: OdkRun) -> None:
    """Central shows old rows through the new version: its questions arrive as null (a new
    group as an object of nulls). No answer changed: nothing new, nothing validated again."""
    xml = odk_run.forms["sammachip_household"]
    form = odk_run.store.form(1, xml)
    assert form is not None
    raw = "select count(*) from raw_submissions where form_id = 'sammachip_household'"
    (before,) = odk_run.sql(raw)
    added = [
        OdkField("water_source", "select1"),
        OdkField("land", "structure"),
        OdkField("land/rai", "decimal"),
        OdkField("land/owned", "select1"),
    ]
    odk_run.store.publish(xml, [*form.fields, *added], "2026120101")
    ((sub_id,),) = odk_run.sql(
        "select submission_id from households where deleted_at is null order by 1 desc limit 1"
    )
    row = odk_run.store.row(xml, sub_id)
    assert (row["water_source"], row["land"]) == (None, {"rai": None, "owned": None})
    # A rescan re-reads every row, through the new version.
    summary = reconcile(workdir=str(odk_run.workdir), today=TODAY)
    households = next(f for f in summary.forms if f.form_id == "sammachip_household")
    assert households.fetched > 0 and households.new_versions == 0
    assert odk_run.sql(raw) == [before]
    odk_run.store.edit(xml, sub_id, {"land/rai": "4.5"})  # an answer to the new question is new
    assert odk_run.night("sammachip_household").new_versions == 1


def test_a_server_before_v2024_3_still_syncs_and_says_deletions_wait_for_the_reconcile(
    odk_run: OdkRun,
) -> None:
    xml = odk_run.forms["sammachip_sage"]
    ((edited,), (deleted,)) = odk_run.sql(
        "select submission_id from sages where deleted_at is null order by 1 desc limit 2"
    )
    odk_run.store.edit(xml, edited, {"sage/phone": "0812345678"})
    odk_run.store.delete(xml, deleted)
    odk_run.store.deleted_at_filter = False
    try:
        with captured_logs() as logs:
            sages = odk_run.night("sammachip_sage")
        assert (sages.error, sages.new_versions, sages.deleted) == (None, 1, 0)
        assert any("cannot list deleted submissions" in line and "v2024.3" in line for line in logs)
        summary = reconcile(workdir=str(odk_run.workdir), today=TODAY)  # the id scan finds it
        assert next(f for f in summary.forms if f.form_id == "sammachip_sage").deleted == 1
    finally:
        odk_run.store.deleted_at_filter = True


def test_a_wrong_password_names_the_entry_the_email_and_the_variable(
    odk_run: OdkRun, tmp_path: Path
) -> None:
    config = tmp_path / "office.toml"
    url = os.environ["SAMMACHIP_ODK_URL"]
    config.write_text(
        f"""
[[odk]]
name = "muang-sam-sip"
url = "{url}"
email = "{EMAIL}"
password_env = "MSS_ODK_PASSWORD"
project_id = 1
""",
        encoding="utf-8",
    )
    os.environ["MSS_ODK_PASSWORD"] = "not the password"
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SAMMACHIP_ODK_")}
    try:
        settings = load_settings(config, base_dir=tmp_path)
        found, failed = discover(settings.kobo, settings.odk, settings.http)
    finally:
        os.environ.update(saved)
        del os.environ["MSS_ODK_PASSWORD"]
    assert found == []
    (skipped,) = failed
    message = skipped.message
    entry = "[[odk]] entry 'muang-sam-sip'"
    for part in ("401", entry, EMAIL, "environment variable MSS_ODK_PASSWORD"):
        assert part in message, message
    assert "not the password" not in message


def test_a_late_registration_and_a_deleted_original_refresh_what_was_checked_against_them(
    odk_run: OdkRun,
) -> None:
    """What a form was checked against can change after it was loaded: a household is
    registered after a session it attended, the first registration of a code is deleted
    while a second one was set aside as its duplicate. The rows checked against them are
    checked again that night — as one full sync of the final state would check them."""
    store, forms = odk_run.store, odk_run.forms
    hh_form, session_form = forms["sammachip_household"], forms["sammachip_session"]
    households, sessions = store.form(1, hh_form), store.form(1, session_form)
    assert households is not None and sessions is not None
    session = dict(next(iter(sessions.records.values())).answers)
    village = session["village_code"]
    ((original, code),) = odk_run.sql(
        "select submission_id, hh_code from households where deleted_at is null "
        f"and village_code = '{village}' order by 1 desc limit 1"
    )
    answers = dict(households.records[original].answers)
    del answers["meta/instanceID"], session["meta/instanceID"]
    duplicate = store.submit(hh_form, answers, store.now(), submitter="enum02")
    newcomer = {**answers, "hh/hh_code": f"{village}-77", "head/national_id": "1101700203450"}
    session["session_code"] = f"T{village}-77"
    session["attendees"] = [
        {"attendees/hh_code": newcomer["hh/hh_code"], "attendees/present": "yes"}
    ]
    attended = store.submit(session_form, session, store.now(), submitter="enum02")
    nightly(workdir=str(odk_run.workdir), today=TODAY)
    flags = f"select dq_flags from sessions where submission_id = '{attended}'"
    assert odk_run.sql(flags) == [
        (["attendance.household_registered: household is not in the household register"],)
    ]
    set_aside = f"select count(*) from quarantine where submission_id = '{duplicate}'"
    assert odk_run.sql(set_aside) == [(1,)]

    store.submit(hh_form, newcomer, store.now(), submitter="enum02")  # registered late
    store.delete(hh_form, original)
    summary = nightly(workdir=str(odk_run.workdir), today=TODAY)
    households_result = next(f for f in summary.forms if f.form_id == "sammachip_household")
    assert households_result.rechecked == {"sammachip_household": 1, "sammachip_session": 1}
    assert odk_run.sql(flags) == [([],)]
    assert odk_run.sql(set_aside) == [(0,)]
    held = f"select hh_code, deleted_at from households where submission_id = '{duplicate}'"
    assert odk_run.sql(held) == [(code, None)]  # the code's holder now
