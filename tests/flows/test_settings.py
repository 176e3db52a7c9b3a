"""The run's settings (`flows/settings.py`): what the bundled config means, and the `[http]`
section — how long the server clients wait and how often they retry — from the config file
to every client a run builds, with a clear error for a value that cannot work."""

from __future__ import annotations

import inspect
import os
import re
import time
from pathlib import Path

import pytest

from connectors.kobo import KoboClient
from connectors.odk import OdkClient
from connectors.simulators.faults import Fault
from connectors.simulators.kobo import KoboStore, serve_kobo
from flows.settings import ConfigError, HttpPolicy, load_settings
from flows.sources import discover

TOKEN = "d" * 40
ASSETS = "/api/v2/assets/"


def write_config(tmp_path: Path, http: str, url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "sammachip.toml"
    path.write_text(f'[[kobo]]\nurl = "{url}"\ntoken_env = "TEST_KOBO_TOKEN"\n\n[http]\n{http}\n',
                    encoding="utf-8")  # fmt: skip
    return path


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KOBO_TOKEN", TOKEN)


def client_defaults(cls: type) -> dict[str, object]:
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    return {name: params[name].default for name in ("timeout", "attempts", "backoff_cap")}


def test_the_bundled_config_keeps_the_clients_own_timeout_and_retries() -> None:
    http = load_settings(require_sources=False).http
    assert http == HttpPolicy()
    assert http.client_options() == client_defaults(KoboClient) == client_defaults(OdkClient)


def test_http_settings_reach_the_clients_a_run_builds(tmp_path: Path) -> None:
    """One retry, no wait beyond the cap, a 0.2 s timeout: the asset list first answers 503
    asking for 100 s of patience (capped to 0), then too slowly; with two tries, discovery
    gives up on the server at once. With the clients' defaults it would wait, then succeed."""
    store = KoboStore()
    store.faults.add(Fault("status", 503, retry_after=100, target=ASSETS))
    store.faults.add(Fault("slow", delay=0.6, target=ASSETS))
    with serve_kobo(store, TOKEN) as url:
        config = write_config(tmp_path, "timeout = 0.2\nattempts = 2\nbackoff_cap = 0", url)
        settings = load_settings(config, base_dir=tmp_path)
        started = time.perf_counter()
        forms, failed = discover(settings)
        elapsed = time.perf_counter() - started
    assert settings.http == HttpPolicy(timeout=0.2, attempts=2, backoff_cap=0.0)
    assert forms == [] and len(failed) == 1
    assert "ReadTimeout" in failed[0][1]  # the second try timed out, and there was no third
    assert elapsed < 5  # Retry-After: 100 was capped at backoff_cap = 0
    assert store.faults.served == 2


@pytest.mark.parametrize(
    ("http", "message"),
    [
        ("timeout = 0", "timeout must be a number of seconds above 0, not 0"),
        ("timeout = -5", "timeout must be a number of seconds above 0, not -5"),
        ('timeout = "60"', "timeout must be a number of seconds above 0, not '60'"),
        ("timeout = inf", "timeout must be a number of seconds above 0, not inf"),
        ("attempts = 0", "attempts must be a whole number, 1 or more"),
        ("attempts = 2.5", "attempts must be a whole number, 1 or more"),
        ("attempts = true", "attempts must be a whole number, 1 or more"),
        ("backoff_cap = -1", "backoff_cap must be a number of seconds, 0 or more, not -1"),
        ("timout = 30", "unknown setting 'timout' — did you mean 'timeout'? (known: timeout, "
                        "attempts, backoff_cap)"),
    ],
)
def test_a_wrong_http_setting_is_named_with_what_it_must_be(
    http: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"^\[http\].*" + re.escape(message)):
        load_settings(write_config(tmp_path, http), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[sync]\nbatch_sise = 100", "[sync]: unknown setting 'batch_sise' — did you mean "
                                     "'batch_size'? (known: overlap_ids"),
        ("[sync]\nbatch_size = 0", "[sync] batch_size must be a whole number, 1 or more, not 0"),
        ('[sync]\nlookback_days = "14"', "[sync] lookback_days must be a whole number, 0 or"),
        ("[sync]\nodk_overlap_hours = -1", "[sync] odk_overlap_hours must be a number of hours"),
        ("[run]\nworkers = 0", "[run] workers must be a whole number, 1 or more, not 0"),
        ("[run]\nworker = 2", "[run]: unknown setting 'worker' — did you mean 'workers'? "
                               "(known: workers, report_"),
        ("[run]\nreport_processes = 0", '[run] report_processes must be "auto" or a whole'),
        ('[run]\nreport_processes = "all"', "whole number, 1 or more, not 'all'"),
    ],
)
def test_a_wrong_sync_or_run_setting_is_named_with_what_it_must_be(
    section: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "sammachip.toml"
    path.write_text(section + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(path, base_dir=tmp_path, require_sources=False)


def test_officer_files_are_written_by_one_process_per_core_unless_set(tmp_path: Path) -> None:
    path = tmp_path / "sammachip.toml"
    path.write_text("[run]\nworkers = 1\n", encoding="utf-8")
    auto = load_settings(path, base_dir=tmp_path, require_sources=False).report_processes
    assert auto == min(4, len(os.sched_getaffinity(0)))
    path.write_text("[run]\nreport_processes = 1\n", encoding="utf-8")
    assert load_settings(path, base_dir=tmp_path, require_sources=False).report_processes == 1
