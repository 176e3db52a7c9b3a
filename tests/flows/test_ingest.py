"""The ingest flow: webhook deliveries waiting in the landing area → the same warehouse rows the
nightly would make. Real Prefect (the session harness), real GX, the Kobo simulator on
loopback for asset discovery; deliveries are landed directly (the receiver has its own tests).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from sammachip.connectors.landing import Landing
from sammachip.connectors.webhook import delivery_key
from sammachip.flows import ingest as ingest_module
from sammachip.flows import nightly as nightly_module
from sammachip.flows.ingest import IngestSummary, ingest, wait_for_scheduled_start
from sammachip.flows.nightly import nightly, reconcile
from sammachip.flows.officer_files import write_reports
from sammachip.flows.serve import TIMEZONE, deployment_specs, ingest_trigger
from sammachip.flows.settings import DEFAULT_CONFIG, IngestSettings, load_settings
from sammachip.reports import fixes as fixes_module
from sammachip.reports.fixes import PAGE as FIXES_PAGE
from sammachip.reports.fixes import Senders
from sammachip.reports.mailer import MailSettings
from sammachip.simulators.cohort import CohortSpec, generate_cohort
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect

TODAY = date(2026, 11, 24)
TOKEN = "e" * 40
HOUSEHOLD = "sammachip_household"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Kobo:
    store: KoboStore
    assets: dict[str, str]  # form id → asset uid

    def docs(self, form_id: str, n: int | None = None) -> list[dict[str, Any]]:
        uid = self.assets[form_id]
        ids = self.store.asset(uid).ids  # type: ignore[union-attr]
        return [self.store.get(uid, i) for i in ids[:n]]


@pytest.fixture(scope="module")
def kobo(prefect_harness: None) -> Iterator[Kobo]:
    cohort = generate_cohort(CohortSpec(seed=11, villages=1, today=TODAY))
    store = KoboStore()
    assets = seed_from_cohort(store, cohort)
    with serve_kobo(store, TOKEN) as url:
        os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"] = url, TOKEN
        try:
            yield Kobo(store, assets)
        finally:
            del os.environ["SAMMACHIP_KOBO_URL"], os.environ["SAMMACHIP_KOBO_TOKEN"]


def landing_of(workdir: Path) -> Landing:
    return Landing(workdir / "data" / "landing")


def land(workdir: Path, docs: list[dict[str, Any]]) -> None:
    """What the receiver does with each delivery."""
    for doc in docs:
        submission_id, instance = delivery_key(doc)
        landing_of(workdir).put(
            "kobo", doc["_xform_id_string"], f"{submission_id}_{instance}", orjson.dumps(doc)
        )


def run_ingest(workdir: Path) -> IngestSummary:
    return ingest(workdir=str(workdir), today=TODAY)


def sql(workdir: Path, query: str) -> list[tuple]:
    return connect(open_warehouse(str(workdir / "data" / "warehouse"))).execute(query).fetchall()


def household_result(summary: IngestSummary) -> Any:
    return next(f for f in summary.run.forms if f.form_id == HOUSEHOLD)


# ------------------------------------------------------------------ the happy path


def test_landed_submissions_reach_the_clean_tables_and_leave_the_landing_area(
    kobo: Kobo, tmp_path: Path
) -> None:
    docs = kobo.docs(HOUSEHOLD, 12)
    land(tmp_path, docs)
    summary = run_ingest(tmp_path)
    result = household_result(summary)
    assert (summary.landed, summary.removed, summary.waiting) == (12, 12, 0)
    assert result.new_versions == result.clean + result.quarantined == 12
    assert landing_of(tmp_path).pending("kobo") == []
    [(clean,)] = sql(tmp_path, "select count(*) from households")
    [(quarantined,)] = sql(tmp_path, "select count(distinct submission_key) from quarantine")
    assert (clean, quarantined) == (result.clean, result.quarantined)
    assert summary.run.warehouse_version == 1


def test_a_burst_across_forms_is_one_run_and_one_warehouse_version(
    kobo: Kobo, tmp_path: Path
) -> None:
    land(tmp_path, kobo.docs(HOUSEHOLD, 5) + kobo.docs("sammachip_sage", 3))
    summary = run_ingest(tmp_path)
    assert {f.form_id: f.new_versions for f in summary.run.forms} == {
        HOUSEHOLD: 5,
        "sammachip_sage": 3,
    }
    assert summary.run.warehouse_version == 1  # one commit holds both forms and the marts


def test_rows_carry_the_keys_and_hashes_the_nightly_would_produce(
    kobo: Kobo, tmp_path: Path
) -> None:
    pushed = kobo.docs(HOUSEHOLD, 8)
    land(tmp_path, pushed)
    run_ingest(tmp_path)
    summary = nightly(workdir=str(tmp_path), today=TODAY)
    household = next(f for f in summary.forms if f.form_id == HOUSEHOLD)
    on_server = len(kobo.docs(HOUSEHOLD))
    # The nightly re-reads everything on a first sync; the 8 pushed ones are known versions.
    assert household.new_versions == on_server - len(pushed)
    [(versions,)] = sql(
        tmp_path, f"select count(*) from raw_submissions where form_id = '{HOUSEHOLD}'"
    )
    assert versions == on_server  # no second version of a pushed submission


def test_nothing_landed_is_a_quick_no_op(kobo: Kobo, tmp_path: Path) -> None:
    summary = run_ingest(tmp_path)
    assert (summary.landed, summary.run.forms) == (0, [])
    assert not (tmp_path / "data" / "warehouse").exists()


# ------------------------------------------------------------------ replays and crashes


def test_a_replayed_delivery_is_a_no_op(kobo: Kobo, tmp_path: Path) -> None:
    docs = kobo.docs(HOUSEHOLD, 6)
    land(tmp_path, docs)
    run_ingest(tmp_path)
    before = sql(tmp_path, "select submission_key, payload_hash from raw_submissions")
    land(tmp_path, docs)  # Kobo retried after the first copies were loaded
    summary = run_ingest(tmp_path)
    assert household_result(summary).new_versions == 0
    assert summary.removed == 6
    assert sql(tmp_path, "select submission_key, payload_hash from raw_submissions") == before


def test_a_crash_before_the_commit_leaves_the_files_for_the_next_run(
    kobo: Kobo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land(tmp_path, kobo.docs(HOUSEHOLD, 4))

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut while building the marts")

    monkeypatch.setattr(ingest_module, "build_marts", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        run_ingest(tmp_path)
    assert len(landing_of(tmp_path).pending("kobo")) == 4
    assert open_warehouse(str(tmp_path / "data" / "warehouse")).snapshot().version == 0

    monkeypatch.undo()
    summary = run_ingest(tmp_path)
    assert (summary.removed, household_result(summary).new_versions) == (4, 4)


def test_a_crash_after_the_commit_only_means_a_harmless_replay(
    kobo: Kobo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land(tmp_path, kobo.docs(HOUSEHOLD, 4))

    def crash(self: Landing, files: object) -> int:
        raise OSError("killed before the files were removed")

    monkeypatch.setattr(Landing, "remove", crash)
    with pytest.raises(OSError, match="killed"):
        run_ingest(tmp_path)
    assert len(landing_of(tmp_path).pending("kobo")) == 4  # still there ...
    assert sql(tmp_path, "select count(*) from raw_submissions") == [(4,)]  # ... and committed

    monkeypatch.undo()
    summary = run_ingest(tmp_path)
    assert (summary.removed, household_result(summary).new_versions) == (4, 0)
    assert sql(tmp_path, "select count(*) from raw_submissions") == [(4,)]


def test_ingest_and_reconcile_rewrite_the_officer_files_but_only_the_nightly_mails_them(
    kobo: Kobo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp: tuple[Any, MailSettings]
) -> None:
    """Officers get their lists by e-mail once a day: an ingest runs on every delivery and
    every half hour, the reconcile on Sunday after the nightly; neither mails them again."""
    inbox, mail = smtp
    config = DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
        'name = "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"\n',
        'name = "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"\nemail = "district@example.org"\n',
    ) + (
        f'\n[mail]\nenabled = true\nhost = "{mail.host}"\nport = {mail.port}\n'
        f'sender = "{mail.sender}"\nsecurity = "none"\n'
    )
    (tmp_path / "sammachip.toml").write_text(config, encoding="utf-8")
    monkeypatch.setenv("SAMMACHIP_CONFIG", str(tmp_path / "sammachip.toml"))
    land(tmp_path, kobo.docs(HOUSEHOLD, 3))
    summary = run_ingest(tmp_path)
    assert (
        summary.removed == 3
        and (tmp_path / "data" / "reports" / str(TODAY) / "index.html").exists()
    )
    assert inbox.messages == []
    reconcile(workdir=str(tmp_path), today=TODAY)
    assert inbox.messages == []
    nightly(workdir=str(tmp_path), today=TODAY)
    assert [rcpt for rcpt, _, _ in inbox.messages] == [["district@example.org"]]


def officer_files(workdir: Path) -> dict[str, bytes]:
    """The day's officer lists as CSV (the pages and workbooks say when they were written)."""
    folder = workdir / "data" / "reports" / str(TODAY)
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))}


def test_files_a_run_left_older_than_its_commit_are_written_by_the_next_ingest(
    kobo: Kobo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A run that stops between its commit and its officer files (killed, a full disk) leaves
    lists older than the warehouse, and nothing is left waiting to trigger another run: the
    next ingest, every half hour, finds the files behind, writes them and says so."""
    land(tmp_path, kobo.docs(HOUSEHOLD, 3))
    run_ingest(tmp_path)
    first = officer_files(tmp_path)

    def disk_full(*_args: Any, **_kwargs: Any) -> list[Path]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nightly_module, "write_reports", disk_full)
    day = [doc for form_id in kobo.assets for doc in kobo.docs(form_id)]  # the village's year
    land(tmp_path, day)
    with pytest.raises(OSError):
        run_ingest(tmp_path)
    monkeypatch.undo()
    assert sql(tmp_path, "select count(*) from raw_submissions") == [(len(day),)]
    assert officer_files(tmp_path) == first  # committed, but the lists do not show it

    summary = run_ingest(tmp_path)  # nothing waiting: the half-hourly sweep
    assert summary.landed == 0
    assert "older than the warehouse" in caplog.text
    caught_up = officer_files(tmp_path)
    assert caught_up != first
    write_reports.fn(load_settings(base_dir=tmp_path, servers=False), TODAY)
    assert officer_files(tmp_path) == caught_up  # what a fresh write of the warehouse gives
    caplog.clear()
    run_ingest(tmp_path)  # and once caught up, a sweep writes nothing
    assert "older than the warehouse" not in caplog.text


# ------------------------------------------------------------------ what cannot be loaded


def test_deliveries_for_an_asset_no_server_lists_wait(kobo: Kobo, tmp_path: Path) -> None:
    doc = {**kobo.docs(HOUSEHOLD, 1)[0], "_xform_id_string": "aRetiredAsset"}
    land(tmp_path, [doc])
    summary = run_ingest(tmp_path)
    assert (summary.landed, summary.waiting, summary.removed) == (1, 1, 0)
    assert len(landing_of(tmp_path).pending("kobo")) == 1


def test_an_unreadable_delivery_is_set_aside_and_the_rest_load(kobo: Kobo, tmp_path: Path) -> None:
    land(tmp_path, kobo.docs(HOUSEHOLD, 2))
    uid = kobo.assets[HOUSEHOLD]
    landing_of(tmp_path).put("kobo", uid, "999_broken", b"{not json")
    summary = run_ingest(tmp_path)
    assert (summary.set_aside, summary.removed) == (1, 2)
    aside = tmp_path / "data" / "landing" / "_set_aside" / "kobo" / uid
    assert (aside / "999_broken.json").exists()


# ------------------------------------------------------------------ micro-batch timing


def test_a_run_started_early_waits_for_its_scheduled_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prefect.runtime.flow_run as flow_run

    slept: list[float] = []
    monkeypatch.setattr(ingest_module.time, "sleep", slept.append)
    soon = datetime.now(UTC) + timedelta(seconds=8)
    monkeypatch.setattr(flow_run, "scheduled_start_time", soon)
    assert 7 < wait_for_scheduled_start() <= 8
    monkeypatch.setattr(flow_run, "scheduled_start_time", datetime.now(UTC) - timedelta(1))
    assert wait_for_scheduled_start() == 0
    assert len(slept) == 1


# ------------------------------------------------------------------ settings and deployments


def test_ingest_settings_come_from_the_config_with_env_overrides(tmp_path: Path) -> None:
    config = tmp_path / "office.toml"
    config.write_text(
        '[landing]\npath = "spool"\n\n[ingest]\nwindow_seconds = 90\n', encoding="utf-8"
    )
    s = load_settings(config, base_dir=tmp_path, require_sources=False, environ={})
    assert (s.landing_path, s.ingest) == (tmp_path / "spool", IngestSettings(90, "*/30 * * * *"))
    env = {
        "SAMMACHIP_INGEST_WINDOW_SECONDS": "5",
        "SAMMACHIP_INGEST_SWEEP_CRON": "",
        "SAMMACHIP_LANDING_PATH": "/srv/landing",
    }
    s = load_settings(config, base_dir=tmp_path, require_sources=False, environ=env)
    assert (s.ingest.window_seconds, s.ingest.sweep_cron) == (5, None)
    assert s.landing_path == Path("/srv/landing")


def test_prefect_yaml_and_serve_define_the_same_deployments() -> None:
    """Two ways to run (workers or `sammachip serve`), one set of schedules and triggers."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    doc = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    by_name = {d["name"]: d for d in doc["deployments"]}
    defaults = IngestSettings()
    for spec in deployment_specs(defaults):
        dep = by_name[spec.name]
        assert dep["entrypoint"] == spec.entrypoint
        assert dep["concurrency_limit"] == {"limit": 1, "collision_strategy": spec.collision}
        crons = [(s["cron"], s["timezone"]) for s in dep.get("schedules", [])]
        assert crons == ([(spec.cron, TIMEZONE)] if spec.cron else [])
        assert bool(dep.get("triggers")) == spec.triggered
    (trigger,) = by_name["ingest"]["triggers"]
    from_yaml = DeploymentEventTrigger.model_validate(trigger)
    from_serve = ingest_trigger(defaults.window_seconds)
    fields = ("match", "expect", "posture", "threshold", "within", "schedule_after")
    assert {f: getattr(from_yaml, f) for f in fields} == {f: getattr(from_serve, f) for f in fields}


def fixes_files(workdir: Path) -> dict[str, tuple[int, bytes]]:
    """The day's data manager's page and enumerator files: inode and bytes."""
    folder = workdir / "data" / "reports" / str(TODAY)
    paths = [folder / FIXES_PAGE, *sorted(folder.glob("fixes_*.csv"))]
    return {p.name: (p.stat().st_ino, p.read_bytes()) for p in paths}


def test_a_delivery_rewrites_only_the_fixes_of_the_enumerator_it_came_from(
    kobo: Kobo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three enumerators each sent a household with a national ID that fails its checksum.
    One of them sends hers again, corrected in part (the head's name) but the ID still wrong:
    after that delivery's ingest only her file of fixes and the data manager's page are new,
    the others keep their bytes, and every file is what a fresh write gives."""
    bad_id = "3341404166020"
    docs = kobo.docs(HOUSEHOLD, 6)
    for doc, by in zip(docs, ["enum_a", "enum_b", "enum_c"], strict=False):
        doc |= {"_submitted_by": by, "head/national_id": bad_id}
    land(tmp_path, docs)
    run_ingest(tmp_path)
    before = fixes_files(tmp_path)
    assert {"fixes_enum_a.csv", "fixes_enum_b.csv", "fixes_enum_c.csv"} <= set(before)

    again = {
        **docs[1],
        "meta/instanceID": "uuid:edited-b",
        "_uuid": "edited-b",
        "meta/deprecatedID": docs[1]["meta/instanceID"],
        "head/name": "นางบัวผัน ใจงาม",
    }
    land(tmp_path, [again])
    assert run_ingest(tmp_path).removed == 1
    after = fixes_files(tmp_path)
    new = {name for name, (inode, _) in after.items() if before.get(name, (None,))[0] != inode}
    assert new == {FIXES_PAGE, "fixes_enum_b.csv"}
    assert "นางบัวผัน ใจงาม" in after["fixes_enum_b.csv"][1].decode("utf-8-sig")

    # a fresh write: a new day's folder in a process that remembers nothing
    shutil.rmtree(tmp_path / "data" / "reports" / str(TODAY))
    monkeypatch.setattr(fixes_module, "SENDERS", Senders())
    write_reports.fn(load_settings(base_dir=tmp_path, servers=False), TODAY)
    assert {k: b for k, (_, b) in fixes_files(tmp_path).items()} == {
        k: b for k, (_, b) in after.items()
    }
