"""The phone pages rendered by a real browser (headless Chromium) at phone width.

Slow (a few seconds per page) and needs Debian's chromium and a Thai font:
    apt-get install -y chromium fonts-thai-tlwg
Set SAMMACHIP_SCREENSHOTS=<dir> to keep the PNGs for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.reports.browser import CHROMIUM, browser, needs_chromium

WIDTH, HEIGHT = 390, 2400
PHONE_SCREEN = 844  # a 390 px wide phone's screen height (CSS px)
DESKTOP = 1280

pytestmark = [pytest.mark.slow, needs_chromium]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # IHDR comes first
    return width, height


def screenshot(page: Path, png: Path, profile: Path) -> Path:
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    if keep := os.environ.get("SAMMACHIP_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
    return png


def test_a_thai_font_is_installed_for_the_browser() -> None:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        pytest.skip("fontconfig not installed")
    fonts = subprocess.run([fc_list, ":lang=th", "family"], capture_output=True, text=True)
    assert fonts.stdout.strip(), "no Thai font: apt-get install -y fonts-thai-tlwg"


@pytest.mark.parametrize("page", ["off01.html", "index.html"])
def test_the_page_renders_at_phone_width(report_dir: Path, tmp_path: Path, page: str) -> None:
    png = screenshot(report_dir / page, tmp_path / page.replace(".html", ".png"), tmp_path / "p")
    assert png_size(png) == (WIDTH, HEIGHT)
    assert png.stat().st_size > 50_000  # a page of text and charts, not a blank screen


# Measured in the laid-out page: the first card of today, the heat map and its cells.
MEASURE = """(() => {
  const box = (el) => el && el.getBoundingClientRect();
  const card = box(document.querySelector("#today .card"));
  const heat = document.querySelector("#charts figure svg");
  const cells = [...(heat ? heat.querySelectorAll('path[aria-roledescription="rect mark"]') : [])];
  return {
    screen: innerHeight,
    width: document.documentElement.scrollWidth,
    firstCard: card && {top: card.top, bottom: card.bottom},
    firstTitle: document.querySelector("#today .card h3")?.textContent,
    heatmap: heat && {width: box(heat).width, viewBox: heat.viewBox.baseVal.width},
    cellWidths: cells.map((c) => box(c).width),
    labelHeights: [...(heat ? heat.querySelectorAll("text") : [])].map((t) => box(t).height),
  };
})()"""


def test_the_first_phone_screen_shows_todays_first_item(report_dir: Path, tmp_path: Path) -> None:
    with browser(tmp_path / "profile") as chromium:
        chromium.open(report_dir / "off01.html", WIDTH, PHONE_SCREEN)
        seen = chromium.evaluate(MEASURE)
        png = chromium.screenshot(tmp_path / "off01-first-screen.png")
    assert seen["width"] <= WIDTH  # nothing wider than the phone: no sideways scrolling
    card = seen["firstCard"]
    assert card is not None and 0 < card["top"] < card["bottom"] <= seen["screen"] == PHONE_SCREEN
    assert seen["firstTitle"].startswith("1. ")  # today's first visit
    assert png_size(png) == (WIDTH, PHONE_SCREEN)


def test_the_heatmap_is_readable_on_a_phone_and_charts_grow_on_a_desktop(
    report_dir: Path, tmp_path: Path
) -> None:
    with browser(tmp_path / "profile") as chromium:
        chromium.open(report_dir / "off01.html", WIDTH, PHONE_SCREEN)
        phone = chromium.evaluate(MEASURE)
        chromium.open(report_dir / "index.html", DESKTOP, 900)
        desktop = chromium.evaluate(MEASURE)
    heat = phone["heatmap"]
    assert heat is not None and heat["width"] <= WIDTH
    assert min(phone["cellWidths"]) >= 24  # a month's cell holds its percentage
    assert min(phone["labelHeights"]) >= 9  # no label smaller than 9 px
    assert desktop["heatmap"]["width"] > desktop["heatmap"]["viewBox"]  # scaled to the page
