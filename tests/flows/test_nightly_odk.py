"""The nightly and reconcile flows against the ODK Central simulator: the same warehouse
guarantees through a different server — OData paging, watermark re-reads, review states,
soft deletions — and the same clean tables downstream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from connectors.simulators.cohort import CohortSpec, generate_cohort
from connectors.simulators.odk import OdkStore, seed_odk_from_cohort, serve_odk
from flows.nightly import RunSummary, nightly, reconcile
from warehouse.load import open_warehouse
from warehouse.query import connect

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


@pytest.fixture(scope="module")
def odk_run(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdkRun]:
    workdir = tmp_path_factory.mktemp("odk")
    store = OdkStore()
    forms = seed_odk_from_cohort(store, generate_cohort(CohortSpec(seed=3, villages=3,
                                                                    today=TODAY)))  # fmt: skip
    env = {"SAMMACHIP_ODK_EMAIL": EMAIL, "SAMMACHIP_ODK_PASSWORD": PASSWORD,
           "SAMMACHIP_ODK_PROJECT": "1"}  # fmt: skip
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
    raw = dict(odk_run.sql("select form_id, count(distinct submission_key) from raw_submissions "
                           "where source = 'odk' group by 1"))  # fmt: skip
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
