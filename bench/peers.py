"""Peers: other Python clients of the Kobo API v2 that install from PyPI, timed fetching the
same data from the same simulator as the pipeline.

They install into a venv of their own, `bench/.venv-peers` (made by the benchmark on first use,
pinned below), so their dependencies (requests, pandas 2 or 3) never meet the project's. Each
fetch runs in a process of its own, so its time and peak RSS are the peer's alone. A peer that
cannot install, cannot reach a server at a custom URL, fails on the simulator or fetches less
than all the data is reported with the reason instead of a time.

This file is also the peer-side script, run by the peers' interpreter: stdlib imports only.

    bench/.venv-peers/bin/python bench/peers.py koboextractor --url URL --token T --assets JSON
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

VENV = Path(__file__).resolve().parent / ".venv-peers"
PYTHON = VENV / "bin" / "python"
PEERS = {"koboextractor": "koboextractor==0.2.1", "pykobo": "pykobo==0.1.7"}
# How each one fetches, as its README shows it: said beside its figure.
HOW = {
    "koboextractor": "`get_data(uid, start, limit)` per page until `next` is null "
    "(requests, a new connection per page)",
    "pykobo": "`Manager.get_forms()` (GET /api/v2/assets.json), then `form.fetch_data()`: one "
    "GET of the asset's `data` URL per form, no paging (requests → pandas)",
}


class PeerError(RuntimeError):
    """The peer could not fetch the data; the message says why."""


# =========================================================================== benchmark side


def ensure_installed() -> dict[str, str | None]:
    """Make the peers' venv and install each peer: {peer: None, or why it is not there}."""
    if not PYTHON.exists():
        made = _run([sys.executable, "-m", "venv", str(VENV)])
        if made:
            return dict.fromkeys(PEERS, f"could not make {VENV.name}: {made}")
    return {name: _install(spec) for name, spec in PEERS.items()}


def _install(spec: str) -> str | None:
    """pip-install one peer, once: a stamp remembers a pin that installed."""
    stamp = VENV / f".installed-{spec.split('==')[0]}"
    if stamp.exists() and stamp.read_text() == spec:
        return None
    failed = _run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", spec]
    )
    if failed is None:
        stamp.write_text(spec)
        return None
    return f"`pip install {spec}` failed: {failed}"


def _run(cmd: list[str]) -> str | None:
    """None when the command succeeds, else the last line it printed."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        return "timed out after 900 s"
    if proc.returncode == 0:
        return None
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


def run(
    peer: str, url: str, token: str, assets: dict[str, str], expected: int, page: int
) -> dict[str, Any]:
    """Time one peer's fetch of every form (`page` rows a request where the peer lets the
    caller choose), in its own process: seconds, submissions, RSS — or an `error` saying why
    there is no comparable time."""
    cmd = [
        str(PYTHON),
        __file__,
        peer,
        "--url",
        url,
        "--token",
        token,
        "--assets",
        json.dumps(assets),
        "--page",
        str(page),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "did not finish within an hour"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            break
    else:
        return {"error": f"crashed: {proc.stderr.strip().splitlines()[-1:]}"}
    fetched = result.get("submissions")
    if "error" not in result and fetched != expected:
        result["error"] = f"fetched {fetched:,} of the {expected:,} submissions"
    return result


# =========================================================================== peer side


def fetch_koboextractor(url: str, token: str, assets: dict[str, str], page_size: int) -> int:
    from koboextractor import KoboExtractor

    kobo = KoboExtractor(token, f"{url}/api/v2")
    rows = 0
    for uid in assets.values():
        results: list[dict[str, Any]] = []  # kept, as a caller would keep them
        while True:
            page = kobo.get_data(uid, start=len(results), limit=page_size)
            if "results" not in page:
                raise PeerError(f"get_data answered {str(page)[:200]}")
            results.extend(page["results"])
            if not page.get("next") or not page["results"]:
                break
        rows += len(results)
    return rows


def fetch_pykobo(url: str, token: str, assets: dict[str, str], _page_size: int) -> int:
    """pykobo chooses no page size: `fetch_data` is one request per form."""
    import pykobo

    manager = pykobo.Manager(url=url, api_version=2, token=token)
    wanted = set(assets.values())
    forms = [form for form in manager.get_forms() if form.uid in wanted]
    if len(forms) < len(wanted):
        listing = f"{url}/api/v2/assets.json"
        raise PeerError(
            f"Manager.get_forms() listed {len(forms)} of the {len(wanted)} forms: "
            f"it reads GET /api/v2/assets.json, which answered "
            f"{_status(listing, token)}"
        )
    rows = 0
    for form in forms:
        form.fetch_data()
        rows += len(form.data)
    return rows


FETCHERS = {"koboextractor": fetch_koboextractor, "pykobo": fetch_pykobo}


def _status(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"


def _where(exc: BaseException) -> str:
    """The innermost frame inside the peer's own package, to point at the line that broke."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "site-packages" in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    short = frame.filename.split("site-packages/")[-1]
    return f" (in {frame.name}, {short}:{frame.lineno})"


def peer_main() -> None:
    from importlib import import_module
    from importlib.metadata import version

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("peer", choices=list(FETCHERS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--assets", required=True, help="JSON: form id → asset uid")
    parser.add_argument("--page", type=int, default=1000, help="rows a request")
    args = parser.parse_args()
    fetch = FETCHERS[args.peer]
    result: dict[str, Any] = {"version": version(args.peer)}
    import_module(args.peer)  # imported before the clock starts: their fetch alone is timed
    started = time.perf_counter()
    try:
        result["submissions"] = fetch(args.url, args.token, json.loads(args.assets), args.page)
        result["seconds"] = time.perf_counter() - started
    except Exception as exc:  # any failure is a finding to report, not a crash
        result["error"] = f"{type(exc).__name__}: {exc}{_where(exc)}"
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    peer_main()
