"""The phone pages: self-contained, Thai, charts inline, nothing a browser would run."""

from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from sammachip.reports import charts


@pytest.fixture(scope="module")
def page(report_dir: Path) -> str:
    return (report_dir / "off01.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def index(report_dir: Path) -> str:
    return (report_dir / "index.html").read_text(encoding="utf-8")


def test_pages_are_self_contained_and_allow_no_script(page: str, index: str) -> None:
    for doc in (page, index):
        assert '<html lang="th">' in doc
        assert 'name="viewport" content="width=device-width' in doc
        assert "default-src 'none'" in doc  # CSP: no script, no fetch, no external asset
        assert not re.search(r"<(script|link|iframe|img|object)\b", doc, re.IGNORECASE)
        assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:)?//", doc)
        assert not re.search(r"@import|url\((?!#)", doc)  # only in-page SVG gradients


def test_the_officer_page_has_the_lists_in_thai(page: str) -> None:
    assert "นางสาวพรทิพย์ ศรีสุข" in page
    assert "ประจำวันที่ 01/03/2569" in page
    for section in ("ใหม่วันนี้ (new today)", "ค้างจากวันก่อน (still open)", "ความพร้อม OTOP"):
        assert section in page
    assert "แจ้งครัวเรือนก่อนวันกิจกรรม" in page  # the session in three days
    assert '<a href="tel:0811234567">' in page
    assert "✓ มีมาตรฐาน (อย./มผช./มอก.)" in page  # the OTOP checklist
    assert "เลื่อนถึง 15/03/2569" in page  # the snoozed alert


def test_the_officer_page_draws_three_charts(page: str) -> None:
    charts_section = page[page.index('id="charts"') : page.index('id="kpi"')]
    assert charts_section.count("<svg") == 3
    assert "หมู่ 1 ต.ม่วงสามสิบ" in charts_section  # villages on the axes, in Thai


def test_hostile_text_is_shown_not_run(page: str, hostile: SimpleNamespace) -> None:
    assert hostile.script not in page
    assert html.escape(hostile.script) in page
    assert html.escape("'" + hostile.formula) in page  # same guard as the spreadsheets
    assert hostile.national_id not in page
    assert "x-xxxx-xxxx5-63-5" in page


def test_the_index_shows_kpis_and_links_every_officer_file(index: str, report_dir: Path) -> None:
    assert "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ" in index
    for kpi in ("ครัวเรือนที่ผ่านการอบรมนำไปประกอบอาชีพ", "หมู่บ้านที่มีกลุ่มอาชีพ"):
        assert kpi in index
    assert "เป้าหมาย ≥ 85.0%" in index
    links = re.findall(r'href="([^"#]+)"', index)
    assert {"off01.html", "off01.xlsx", "off02.html", "district.html"} <= set(links)
    assert all((report_dir / link).exists() for link in links)
    assert index.count("<svg") == 3  # per tambon


def test_charts_have_nothing_to_draw_without_data() -> None:
    assert charts.attendance_chart([]) is None
    assert charts.income_chart([{"area": "x", "practising": False}]) is None
    assert charts.readiness_chart([]) is None


def test_chart_labels_are_escaped_text() -> None:
    svg = charts.readiness_chart([{"status": "ready"}, {"status": "not_ready"}])
    assert svg is not None and svg.startswith("<svg") and "พร้อมขึ้นทะเบียน" in svg
    hostile = [
        {"area": "<script>x</script>", "month": charts.date(2026, 1, 1), "invited": 2, "present": 1}
    ]
    svg = charts.attendance_chart(hostile)
    assert svg is not None and "<script" not in svg and "&lt;script&gt;" in svg
