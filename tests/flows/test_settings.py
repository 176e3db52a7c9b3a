"""The run's settings (`flows/settings.py`): what the bundled config means, and the `[http]`
section — how long the server clients wait and how often they retry — from the config file
to every client a run builds, with a clear error for a value that cannot work; servers'
names (their identity in the warehouse); and a config that holds only what the code reads."""

from __future__ import annotations

import inspect
import os
import re
import time
from pathlib import Path

import pytest

from connectors.discovery import discover
from connectors.kobo import KoboClient, KoboForm
from connectors.odk import OdkClient
from connectors.simulators.faults import Fault
from connectors.simulators.kobo import KoboStore, serve_kobo
from connectors.sources import HttpPolicy, SyncPolicy
from connectors.webhook import WebhookSettings
from flows.ingest import IngestSettings, landing_path
from flows.settings import (
    _ARRAYS,
    _TABLES,
    DEFAULT_CONFIG,
    ConfigError,
    load_settings,
    read_config,
)
from warehouse.rules import _ALERT_KEYS, ISAN_SEASONS, AlertRules, KpiTargets, OtopRules

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
        forms, failed = discover(settings.kobo, settings.odk, settings.http)
        elapsed = time.perf_counter() - started
    assert settings.http == HttpPolicy(timeout=0.2, attempts=2, backoff_cap=0.0)
    assert forms == [] and len(failed) == 1
    assert "ReadTimeout" in failed[0].message  # the second try timed out, and there was no third
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


# ---- server names: a server's identity in the warehouse -------------------------------------


def servers_config(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "servers.toml"
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


KOBO = '[[kobo]]\nurl = "{url}"\ntoken_env = "TEST_KOBO_TOKEN"\n'
ODK = '[[odk]]\nurl = "{url}"\nemail = "e@example.org"\npassword_env = "TEST_KOBO_TOKEN"\n'


def test_a_named_server_keeps_its_keys_and_cursors_whatever_its_url(tmp_path: Path) -> None:
    def keys(url: str) -> tuple[str, str]:
        config = servers_config(tmp_path, KOBO.format(url=url) + 'name = "kf"\n')
        form = KoboForm(load_settings(config, base_dir=tmp_path).kobo[0], "aUid", "sammachip_sage")
        return form.key_prefix, form.cursor_key

    assert keys("https://kf.kobotoolbox.org") == keys("http://127.0.0.1:8123/kobo") == (
        "kobo:kf:aUid:", "kobo:kf:aUid")  # fmt: skip


def test_the_one_unnamed_server_is_named_after_its_kind_from_the_config_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = servers_config(tmp_path, KOBO.format(url="https://kf.kobotoolbox.org"),
                            ODK.format(url="https://central.example.org"))  # fmt: skip
    settings = load_settings(config, base_dir=tmp_path)
    assert [s.name for s in (*settings.kobo, *settings.odk)] == ["kobo", "odk"]
    # The quick set-up names its server the same way: moving to a config file keeps the keys.
    monkeypatch.setenv("SAMMACHIP_KOBO_URL", "http://127.0.0.1:8787")
    monkeypatch.setenv("SAMMACHIP_KOBO_TOKEN", TOKEN)
    assert [s.name for s in load_settings(base_dir=tmp_path).kobo] == ["kobo"]
    monkeypatch.setenv("SAMMACHIP_KOBO_NAME", "office")
    assert [s.name for s in load_settings(base_dir=tmp_path).kobo] == ["office"]


@pytest.mark.parametrize(
    ("tables", "env", "message"),
    [
        ([KOBO.format(url="https://a.example"), KOBO.format(url="https://b.example")], {},
         "2 servers are named 'kobo' (https://a.example, https://b.example): give each"),
        ([KOBO.format(url="https://a.example")], {"SAMMACHIP_KOBO_URL": "http://127.0.0.1:1"},
         "2 servers are named 'kobo' (https://a.example, http://127.0.0.1:1)"),
        ([KOBO.format(url="https://a.example") + 'name = "main"\n',
          ODK.format(url="https://b.example") + 'name = "main"\n'], {},
         "2 servers are named 'main'"),
        ([KOBO.format(url="https://a.example") + 'name = "สำนักงาน"\n'], {},
         "[[kobo]] #1 ('สำนักงาน'): a server name is Latin letters, digits"),
        ([], {"SAMMACHIP_KOBO_URL": "http://127.0.0.1:1", "SAMMACHIP_KOBO_NAME": "a b"},
         "SAMMACHIP_KOBO_NAME='a b': a server name is Latin letters, digits"),
    ],
)  # fmt: skip
def test_servers_need_names_of_their_own(
    tables: list[str], env: dict[str, str], message: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("SAMMACHIP_KOBO_TOKEN", TOKEN)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(servers_config(tmp_path, *tables), base_dir=tmp_path)


# ---- the config holds only what the code reads ----------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[warehous]\npath = "x"', "unknown table [warehous] — did you mean [warehouse]?"),
        ('[[officer]]\nid = "o1"\nname = "ก"', "unknown table [[officer]] — did you mean "
                                               "[[officers]]?"),
        ('[kobo]\nurl = "https://kf.kobotoolbox.org"',
         "[kobo] must be written [[kobo]]: one [[kobo]] table per server"),
        ('[[warehouse]]\npath = "x"', "[[warehouse]] must be written [warehouse]"),
        ('path = "data"', "path = 'data' at the top of the config: settings go in their table"),
        ('[[kobo]]\nurl = "https://kf.kobotoolbox.org"\ntokn_env = "T"',
         "[[kobo]] #1: unknown setting 'tokn_env' — did you mean 'token_env'?"),
        ('[[odk]]\nname = "c"\nurl = "https://c.example"\nemail = "e"\nprojet_id = 2',
         "[[odk]] #1 ('c'): unknown setting 'projet_id' — did you mean 'project_id'?"),
        ('[[officers]]\nid = "o1"\nname = "ก"\ntambon = ["341401"]',
         "[[officers]] #1 ('o1'): unknown setting 'tambon' — did you mean 'tambons'?"),
        ('[[officers]]\nid = "o1"', "[[officers]] #1 ('o1'): name is missing"),
        ('[[kobo]]\ntoken_env = "T"', "[[kobo]] #1: url is missing"),
        ('[[kobo]]\nurl = "kf.kobotoolbox.org"', "url must start with https:// or http://"),
        ('[[kobo]]\nurl = "https://k.example"\npage_size = 0', "page_size must be a whole"),
        ('[alerts]\nsnooze_fiel = "s.csv"', "[alerts]: unknown setting 'snooze_fiel' — did you "
                                            "mean 'snooze_file'?"),
        ('[mail]\nenabled = false\nhots = "smtp"', "[mail]: unknown setting 'hots' — did you "
                                                   "mean 'host'?"),
        ("[webhook]\nprot = 9000", "[webhook]: unknown setting 'prot' — did you mean 'port'?"),
        ("[ingest]\nwindow = 30", "[ingest]: unknown setting 'window' — did you mean "
                                  "'window_seconds'?"),
        ('[landing]\npaht = "x"', "[landing]: unknown setting 'paht' — did you mean 'path'?"),
        ("[kpi]\npractising = 0.9", "[kpi]: unknown setting 'practising' — did you mean "
                                    "'practising_share'?"),
        ('[[seasons]]\nseason = "h"\nname_th = "ก"\nstart = "10-20"\nend = "12-31"\nprovice = '
         '"34"', "[[seasons]] #1 ('h'): unknown setting 'provice' — did you mean 'province'?"),
    ],
)  # fmt: skip
def test_a_table_or_setting_the_code_does_not_read_is_named_with_the_closest_known_one(
    toml: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "sammachip.toml"
    path.write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_settings(path, base_dir=tmp_path, require_sources=False)
    assert "\n" not in str(raised.value)  # one line


def test_report_style_loading_checks_server_tables_but_reads_no_secret(tmp_path: Path) -> None:
    config = servers_config(tmp_path, '[[kobo]]\nurl = "https://kf.kobotoolbox.org"\n'
                                      'token_env = "NOT_SET_ANYWHERE"\n')  # fmt: skip
    with pytest.raises(ConfigError, match="set the environment variable NOT_SET_ANYWHERE"):
        load_settings(config, base_dir=tmp_path)
    settings = load_settings(config, base_dir=tmp_path, servers=False)
    assert settings.kobo == settings.odk == ()


def test_the_bundled_config_shows_every_table_and_setting_with_the_codes_own_defaults(
    tmp_path: Path,
) -> None:
    """Every table and setting the code reads is in flows/default_config.toml (the optional
    ones commented out), under a comment, with the value the code uses without it."""
    raw = DEFAULT_CONFIG.read_text(encoding="utf-8").splitlines()
    lines = [line.strip().removeprefix("#").strip() for line in raw]  # commented ones too
    headers = [i for i, line in enumerate(lines) if re.fullmatch(r"\[\[?[a-z_]+\]\]?", line)]
    for table, keys in [*_TABLES.items(), *_ARRAYS.items()]:
        header = f"[[{table}]]" if table in _ARRAYS else f"[{table}]"
        at = lines.index(header)
        end = next((i for i in headers if i > at), len(lines))
        assert any("#" in line for line in raw[at - 1 : end]), f"{header} has no comment"
        for key in keys:
            assert any(line.startswith(f"{key} =") for line in lines[at:end]), f"{header} {key}"
    settings = load_settings(require_sources=False, base_dir=tmp_path)
    defaults = AlertRules()
    for name in _ALERT_KEYS:
        assert getattr(settings.rules, name) == getattr(defaults, name), name
    assert (settings.rules.otop, settings.rules.kpi) == (OtopRules(), KpiTargets())
    assert (settings.sync, settings.http) == (SyncPolicy(), HttpPolicy())
    assert settings.rules.seasons == ISAN_SEASONS and settings.attachments_path is None
    doc = read_config()
    assert WebhookSettings.from_mapping(doc["webhook"], landing_path=Path("x"), environ={}) == \
        WebhookSettings(landing_path=Path("x"))  # fmt: skip
    assert IngestSettings.from_config(doc, tmp_path, environ={}) == IngestSettings(
        landing_path(doc, tmp_path))
    assert landing_path(doc, tmp_path) == tmp_path / "data" / "landing"
