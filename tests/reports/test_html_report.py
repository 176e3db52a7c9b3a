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


def section(page: str, anchor: str, until: str) -> str:
    return page[page.index(f'id="{anchor}"') : page.index(f'id="{until}"')]


def test_the_officer_page_opens_on_today_with_how_current_it_is(page: str) -> None:
    assert "นางสาวพรทิพย์ ศรีสุข" in page
    assert "ประจำวันที่ 01/03/2569 · วันนี้ 5 · ภายหลัง 8 · เลยกำหนด 1" in page
    assert "ข้อมูล ณ 01/03/2569 08:00 น. (data as of)" in page
    main = page[page.index("<main>") :]
    order = [main.index(f'id="{a}"') for a in ("today", "later", "otop", "charts", "kpi")]
    assert order == sorted(order)  # today first, the rest after
    nav = page[page.index("<nav>") : page.index("</nav>")]
    for anchor in ("today", "later", "otop", "charts", "kpi"):  # one tap away
        assert f'href="#{anchor}"' in nav


def test_today_cards_say_who_where_why_and_how_to_reach_them(page: str) -> None:
    today = section(page, "today", "later")
    assert today.count('class="card p') == 5
    assert [int(n) for n in re.findall(r'<span class="n">(\d+)\.</span>', today)] == [1, 2, 3, 4, 5]
    first = today[
        today.index('class="card p') : today.index(
            'class="card p', today.index('class="card p') + 1
        )
    ]
    for said in ("บ้านเลขที่ 11", "บ้านม่วงสามสิบ หมู่ 1", "ต.ม่วงสามสิบ", "ยังไม่ติดตามรายได้", "เข้าร่วมอบรมน้อย"):
        assert said in first, said
    assert "ต.ต." not in first  # the mart's tambon name already says "ต."
    assert '<a class="tel" href="tel:0811234567">☎ 081-123-4567</a>' in first
    assert 'href="geo:15.51234,104.71234?q=15.51234,104.71234(' in first
    assert "15.51234, 104.71234" in first  # the coordinates beside the map link
    assert "เลยกำหนด 4 วัน" in first
    # the session's call list: each household with a tap-to-call link
    assert "โทรแจ้ง 3 ครัวเรือนก่อนวันที่ 04/03/2569" in today
    calls = today[today.index('<ol class="calls">') : today.index("</ol>")]
    assert calls.count('href="tel:') == 3 and "นางบุญมี ใจดี" in calls


def test_no_raw_ids_on_the_cards(page: str) -> None:
    cards = section(page, "today", "otop")
    for raw in ("34140101-01", "R05_NO_FOLLOWUP_INCOME", "TPLAN", "G34140102-1", "S34140103"):
        assert raw not in cards, raw


def test_later_is_folded_by_reason_with_counts(page: str) -> None:
    later = section(page, "later", "otop")
    summaries = re.findall(r"<summary>(.*?)</summary>", later)
    assert [re.sub(r"<[^>]+>", "", s) for s in summaries] == [
        "สำคัญยังไม่ติดตามรายได้ · 5",
        "สำคัญเข้าร่วมอบรมน้อย · 3",
    ]
    assert '<details class="group">' in later and "open" not in later  # folded


def test_snoozed_and_resolved_stay_one_tap_away(page: str) -> None:
    snoozed = section(page, "snoozed", "resolved")
    assert "เลื่อนถึง 15/03/2569" in snoozed


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
    for kpi in ("ครัวเรือนที่ผ่านการอบรมนำไปประกอบอาชีพ", "กลุ่มอาชีพที่จัดตั้ง"):
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


def test_kpi_cards_show_what_each_share_is_made_of_and_where_its_target_comes_from(
    page: str,
) -> None:
    kpis = page[page.index('id="kpi"') :]
    cards = re.findall(r'<div class="card kpi">(.*?)</div>\n</div>', kpis, re.DOTALL)
    practising = next(c for c in cards if "ครัวเรือนที่ผ่านการอบรมนำไปประกอบอาชีพ" in c)
    assert "8 จาก 25" in practising and "เป้าหมาย ≥ 85.0%" in practising
    assert "ที่มาของเป้าหมาย: ตัวชี้วัดโครงการสัมมาชีพชุมชน" in practising
    followed = next(c for c in cards if "ได้รับการติดตามผล" in c)
    assert "10 จาก 25" in followed and "เป้าหมาย" not in followed  # a figure, not a target
