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

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 390, 2400

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
