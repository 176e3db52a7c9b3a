"""The phone pages rendered by a real browser (headless Chromium) at phone width.

Slow (a few seconds per page) and needs Debian's chromium and a Thai font:
    apt-get install -y chromium fonts-thai-tlwg
Set SAMMACHIP_SCREENSHOTS=<dir> to keep the PNGs for a person to look at.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 390, 2400
PHONE_SCREEN = 844  # a 390 px wide phone's screen height (CSS px)
DESKTOP = 1280

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="headless Chromium not installed: apt-get install -y chromium fonts-thai-tlwg",
    ),
]


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


class Browser:
    """Headless Chromium driven over the DevTools protocol: a viewport of exactly the size
    asked for (a phone's 390 px; the window itself cannot be narrower than 500 px)."""

    def __init__(self, ws_url: str) -> None:
        self.ws = connect(ws_url, max_size=None)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message["result"]

    def open(self, page: Path, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 500,
        )
        self.call("Page.navigate", url=page.as_uri())
        deadline = time.monotonic() + 60
        while self.evaluate("document.readyState") != "complete":
            assert time.monotonic() < deadline, "the page did not finish loading"

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self, png: Path) -> Path:
        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))
        if keep := os.environ.get("SAMMACHIP_SCREENSHOTS"):
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(png, Path(keep) / png.name)
        return png


@contextmanager
def browser(profile: Path) -> Iterator[Browser]:
    """A Chromium of this test's own, ended when the test is done."""
    process = subprocess.Popen(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            assert process.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)
        port = port_file.read_text().splitlines()[0]
        listing = f"http://127.0.0.1:{port}/json/list"  # Chromium's targets, on loopback
        with urllib.request.urlopen(listing, timeout=30) as answer:
            targets = json.loads(answer.read())
        page = next(t for t in targets if t["type"] == "page")
        driver = Browser(page["webSocketDebuggerUrl"])
        try:
            yield driver
        finally:
            driver.ws.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


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
