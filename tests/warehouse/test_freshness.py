"""What the warehouse remembers of each sync, per server, and what officers are told of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sammachip.reports.officer_lists import sync_banner
from sammachip.warehouse.freshness import SyncNotice, data_as_of, record_sync, sync_notice
from sammachip.warehouse.load import open_warehouse

NIGHT = datetime(2026, 11, 23, 19, 30, tzinfo=UTC)  # 02:30 in Bangkok
SERVERS = ("kf", "central")  # a Kobo server and an ODK Central one, by their names


@dataclass(frozen=True)
class Outcome:
    """What a run learnt of one form ("*": of the whole server), as the flows report it."""

    form_id: str
    server: str = ""
    error: str | None = None


def night(path: Path, when: datetime, *outcomes: Outcome) -> None:
    with open_warehouse(str(path)).transaction() as tx:
        record_sync(tx, SERVERS, outcomes, when)


def told(path: Path) -> SyncNotice | None:
    return sync_notice(open_warehouse(str(path)).snapshot().cursors)


def test_a_failed_server_keeps_the_time_of_its_last_complete_sync(tmp_path: Path) -> None:
    night(tmp_path, NIGHT)
    assert told(tmp_path) is None  # everything fetched: nothing to tell
    refused = Outcome("sammachip_household", "kf", "HTTP 403")
    night(tmp_path, NIGHT + timedelta(days=1), refused)
    night(tmp_path, NIGHT + timedelta(days=2), refused)
    notice = told(tmp_path)
    assert notice is not None
    assert notice.attempted_at == NIGHT + timedelta(days=2)
    assert notice.data_as_of == NIGHT  # the last night kf gave everything
    assert notice.failed == ("ทะเบียนครัวเรือนเป้าหมาย (Target household registration) · เซิร์ฟเวอร์ kf",)
    assert notice.errors == ("kf: HTTP 403",)
    night(tmp_path, NIGHT + timedelta(days=3))
    assert told(tmp_path) is None


def test_a_server_that_never_synced_in_full_has_no_data_as_of(tmp_path: Path) -> None:
    night(tmp_path, NIGHT, Outcome("*", "central", "down"))
    notice = told(tmp_path)
    assert notice is not None and notice.data_as_of is None
    assert notice.failed == ("ทุกแบบฟอร์ม (every form) · เซิร์ฟเวอร์ central",)
    assert "ยังไม่เคยดึงข้อมูลได้ครบ (no complete sync yet)" in sync_banner(notice)[0]


def test_a_failure_that_names_no_server_counts_against_every_server(tmp_path: Path) -> None:
    night(tmp_path, NIGHT)
    night(tmp_path, NIGHT + timedelta(days=1), Outcome("*", error="odd"))
    notice = told(tmp_path)
    assert notice is not None and notice.data_as_of == NIGHT
    assert [f.rsplit(" ", 1)[1] for f in notice.failed] == ["kf", "central"]


def test_every_file_can_say_when_its_data_were_last_complete(tmp_path: Path) -> None:
    def as_of() -> datetime | None:
        return data_as_of(open_warehouse(str(tmp_path)).snapshot().cursors)

    assert as_of() is None  # no sync recorded yet
    night(tmp_path, NIGHT)
    assert as_of() == NIGHT  # a good night: its time, though there is nothing to warn of
    night(tmp_path, NIGHT + timedelta(days=1), Outcome("sammachip_household", "kf", "HTTP 403"))
    assert as_of() == NIGHT  # central is current, kf is not: the older one counts
