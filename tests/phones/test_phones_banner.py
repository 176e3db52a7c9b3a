"""The officers' banner of the phones: after a push the server refuses, every officer file and
the district's page written carry a line (the phones hold older lists since then, and what
to do); after a good push it is gone; none while `[phones]` is off."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from sammachip.flows.officer_files import write_reports
from sammachip.flows.settings import Settings, load_settings
from sammachip.phones.odk import PushResult
from sammachip.phones.push import PhoneSettings, push_lists
from sammachip.simulators.faults import Fault
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.store import Warehouse
from tests.phones.conftest import Central, base_rows, put_worklist

TODAY = date(2026, 12, 5)
NIGHT = datetime(2026, 12, 4, 13, 5, tzinfo=UTC)  # 4/12/2569 20:05 in Bangkok
NOT_UPDATED = "รายการบนโทรศัพท์ไม่ได้ปรับปรุง ส่งไม่สำเร็จตั้งแต่ 04/12/2569 20:05 น."
FILES = ["off01.html", "off02.html", "index.html"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    loaded = load_settings(base_dir=tmp_path, servers=False)
    return replace(loaded, phones=PhoneSettings(enabled=True))


@pytest.fixture
def wh_of(settings: Settings) -> Warehouse:
    wh = open_warehouse(str(settings.warehouse_path))
    put_worklist(wh, base_rows())
    return wh


def push(wh: Warehouse, settings: Settings, central: Central, at: datetime) -> PushResult:
    (result,) = push_lists(wh, settings.phones, ["central"], [central.form], at, "run")
    return result


def refused(wh: Warehouse, settings: Settings, central: Central, at: datetime) -> PushResult:
    """The account lost its Project Manager role: Central refuses every Entity List call."""
    central.store.faults.add(Fault("status", 403, target="/datasets"), times=100)
    try:
        return push(wh, settings, central, at)
    finally:
        central.store.faults.clear()


def page_text(path: Path) -> str:
    """A page's text as a browser shows it (tags off, entities read)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", path.read_text("utf-8"))).split())


def said(settings: Settings) -> dict[str, str]:
    """The files written now: each page's text and the top line of each workbook sheet."""
    write_reports.fn(settings, TODAY)
    out = settings.reports_path / TODAY.isoformat()
    texts = {name: page_text(out / name) for name in FILES}
    for book in ["off01.xlsx", "off02.xlsx"]:
        for sheet in load_workbook(out / book).worksheets:
            texts[f"{book}:{sheet.title}"] = " ".join(str(sheet["A1"].value).split())
    return texts


def test_a_refused_push_puts_the_banner_on_every_file_written_after_it(
    settings: Settings, wh_of: Warehouse, central: Central
) -> None:
    result = refused(wh_of, settings, central, NIGHT)
    assert result.error and "Project Manager" in result.error
    texts = said(settings)
    for name, text in texts.items():
        assert NOT_UPDATED in text, name
        assert "the lists on the phones were not updated" in text, name
        assert "tell the data manager" in text, name
    # the server's answer and its fix: on the district's page, not in the officers' files
    assert "Project Manager" in texts["index.html"]
    assert "Project Manager" not in texts["off01.html"]


def test_the_banner_keeps_the_time_the_failures_began(
    settings: Settings, wh_of: Warehouse, central: Central
) -> None:
    refused(wh_of, settings, central, NIGHT)
    refused(wh_of, settings, central, datetime(2026, 12, 5, 1, 0, tzinfo=UTC))
    assert NOT_UPDATED in said(settings)["off01.html"]


def test_a_good_push_takes_the_banner_off(
    settings: Settings, wh_of: Warehouse, central: Central
) -> None:
    refused(wh_of, settings, central, NIGHT)
    assert push(wh_of, settings, central, datetime(2026, 12, 5, 1, 0, tzinfo=UTC)).error is None
    for name, text in said(settings).items():
        assert "โทรศัพท์ไม่ได้ปรับปรุง" not in text, name


def test_a_good_push_alone_commits_no_status(
    settings: Settings, wh_of: Warehouse, central: Central
) -> None:
    push(wh_of, settings, central, NIGHT)
    version = wh_of.snapshot().version
    assert push(wh_of, settings, central, NIGHT).error is None
    assert wh_of.snapshot().version == version  # nothing failed, nothing to say: no commit


def test_no_banner_while_the_phones_are_off(
    settings: Settings, wh_of: Warehouse, central: Central
) -> None:
    refused(wh_of, settings, central, NIGHT)
    off = replace(settings, phones=PhoneSettings(enabled=False))
    for name, text in said(off).items():
        assert "โทรศัพท์ไม่ได้ปรับปรุง" not in text, name
