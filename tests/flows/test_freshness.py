"""What the warehouse remembers of each sync, per server, and what officers are told of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.kobo import KoboServer
from connectors.odk import OdkServer
from flows.freshness import record_sync, sync_notice
from flows.nightly import FormResult
from flows.settings import KoboSource, OdkSource, Settings, load_settings
from reports.officer_lists import SyncNotice
from warehouse.load import open_warehouse

NIGHT = datetime(2026, 11, 23, 19, 30, tzinfo=UTC)  # 02:30 in Bangkok


def two_servers(tmp_path: Path) -> Settings:
    settings = load_settings(base_dir=tmp_path, require_sources=False)
    kobo = KoboSource(KoboServer("https://kf.kobotoolbox.org", "t", "kf"))
    odk = OdkSource(OdkServer("https://central.example.org", "e@example.org", "p", 1, "central"))
    return replace(settings, kobo=(kobo,), odk=(odk,))


def night(settings: Settings, when: datetime, *results: FormResult) -> None:
    with open_warehouse(str(settings.warehouse_path)).transaction() as tx:
        record_sync(tx, settings, results, when)


def told(settings: Settings) -> SyncNotice | None:
    return sync_notice(open_warehouse(str(settings.warehouse_path)).snapshot().cursors)


def test_a_failed_server_keeps_the_time_of_its_last_complete_sync(tmp_path: Path) -> None:
    settings = two_servers(tmp_path)
    night(settings, NIGHT)
    assert told(settings) is None  # everything fetched: nothing to tell
    refused = FormResult("sammachip_household", "aHh", error="HTTP 403", server="kf")
    night(settings, NIGHT + timedelta(days=1), refused)
    night(settings, NIGHT + timedelta(days=2), refused)
    notice = told(settings)
    assert notice is not None
    assert notice.attempted_at == NIGHT + timedelta(days=2)
    assert notice.data_as_of == NIGHT  # the last night kf gave everything
    assert notice.failed == ("ทะเบียนครัวเรือนเป้าหมาย (Target household registration) · "
                             "เซิร์ฟเวอร์ kf",)  # fmt: skip
    assert notice.errors == ("kf: HTTP 403",)
    night(settings, NIGHT + timedelta(days=3))
    assert told(settings) is None


def test_a_server_that_never_synced_in_full_has_no_data_as_of(tmp_path: Path) -> None:
    settings = two_servers(tmp_path)
    night(settings, NIGHT, FormResult("*", "central", error="down", server="central"))
    notice = told(settings)
    assert notice is not None and notice.data_as_of is None
    assert notice.failed == ("ทุกแบบฟอร์ม (every form) · เซิร์ฟเวอร์ central",)
    assert "ยังไม่เคยดึงข้อมูลได้ครบ (no complete sync yet)" in notice.banner()[0]


def test_a_failure_that_names_no_server_counts_against_every_server(tmp_path: Path) -> None:
    settings = two_servers(tmp_path)
    night(settings, NIGHT)
    night(settings, NIGHT + timedelta(days=1), FormResult("*", "?", error="odd"))
    notice = told(settings)
    assert notice is not None and notice.data_as_of == NIGHT
    assert [f.rsplit(" ", 1)[1] for f in notice.failed] == ["kf", "central"]
