"""The run's settings (`flows.settings`), parsed once for every room: what the bundled config
means, and the `[http]` section — how long the server clients wait and how often they retry —
from the config file to every client a run builds, with a clear error for a value that cannot
work; servers' names (their identity in the warehouse); a config that holds only what the code
reads; the alert rules, mail and webhook tables; and the one rule by which the environment
overrides any setting (SAMMACHIP_<TABLE>_<SETTING>)."""

from __future__ import annotations

import inspect
import os
import re
import time
from pathlib import Path

import pytest

from sammachip.connectors.discovery import discover
from sammachip.connectors.kobo import KoboClient, KoboForm
from sammachip.connectors.odk import OdkClient
from sammachip.connectors.sources import HttpPolicy, SyncPolicy
from sammachip.connectors.webhook import HeaderAuth, WebhookSettings
from sammachip.flows.settings import DEFAULT_CONFIG, ConfigError, IngestSettings, load_settings
from sammachip.flows.settings.config import ARRAYS, TABLES
from sammachip.marts.rules import ISAN_SEASONS, AlertRules, KpiTargets, OtopRules
from sammachip.reports.mailer import MailSettings
from sammachip.simulators.faults import Fault
from sammachip.simulators.kobo import KoboStore, serve_kobo

TOKEN = "d" * 40
ASSETS = "/api/v2/assets/"


def write_config(tmp_path: Path, http: str, url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "sammachip.toml"
    path.write_text(
        f'[[kobo]]\nurl = "{url}"\ntoken_env = "TEST_KOBO_TOKEN"\n\n[http]\n{http}\n',
        encoding="utf-8",
    )
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
        (
            "timout = 30",
            "unknown setting 'timout' — did you mean 'timeout'? (known: timeout, "
            "attempts, backoff_cap)",
        ),
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
        (
            "[sync]\nbatch_sise = 100",
            "[sync]: unknown setting 'batch_sise' — did you mean 'batch_size'? (known: overlap_ids",
        ),
        ("[sync]\nbatch_size = 0", "[sync] batch_size must be a whole number, 1 or more, not 0"),
        ('[sync]\nlookback_days = "14"', "[sync] lookback_days must be a whole number, 0 or"),
        ("[sync]\nodk_overlap_hours = -1", "[sync] odk_overlap_hours must be a number of hours"),
        ("[run]\nworkers = 0", "[run] workers must be a whole number, 1 or more, not 0"),
        (
            "[run]\nworker = 2",
            "[run]: unknown setting 'worker' — did you mean 'workers'? (known: workers, report_",
        ),
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

    assert (
        keys("https://kf.kobotoolbox.org")
        == keys("http://127.0.0.1:8123/kobo")
        == ("kobo:kf:aUid:", "kobo:kf:aUid")
    )


def test_the_one_unnamed_server_is_named_after_its_kind_from_the_config_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = servers_config(
        tmp_path,
        KOBO.format(url="https://kf.kobotoolbox.org"),
        ODK.format(url="https://central.example.org"),
    )
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
        (
            [KOBO.format(url="https://a.example"), KOBO.format(url="https://b.example")],
            {},
            "2 servers are named 'kobo' (https://a.example, https://b.example): give each",
        ),
        (
            [KOBO.format(url="https://a.example")],
            {"SAMMACHIP_KOBO_URL": "http://127.0.0.1:1"},
            "2 servers are named 'kobo' (https://a.example, http://127.0.0.1:1)",
        ),
        (
            [
                KOBO.format(url="https://a.example") + 'name = "main"\n',
                ODK.format(url="https://b.example") + 'name = "main"\n',
            ],
            {},
            "2 servers are named 'main'",
        ),
        (
            [KOBO.format(url="https://a.example") + 'name = "สำนักงาน"\n'],
            {},
            "[[kobo]] #1 ('สำนักงาน'): a server name is Latin letters, digits",
        ),
        (
            [],
            {"SAMMACHIP_KOBO_URL": "http://127.0.0.1:1", "SAMMACHIP_KOBO_NAME": "a b"},
            "SAMMACHIP_KOBO_NAME='a b': a server name is Latin letters, digits",
        ),
    ],
)
def test_servers_need_names_of_their_own(
    tables: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
        (
            '[[officer]]\nid = "o1"\nname = "ก"',
            "unknown table [[officer]] — did you mean [[officers]]?",
        ),
        (
            '[kobo]\nurl = "https://kf.kobotoolbox.org"',
            "[kobo] must be written [[kobo]]: one [[kobo]] table per server",
        ),
        ('[[warehouse]]\npath = "x"', "[[warehouse]] must be written [warehouse]"),
        ('path = "data"', "path = 'data' at the top of the config: settings go in their table"),
        (
            '[[kobo]]\nurl = "https://kf.kobotoolbox.org"\ntokn_env = "T"',
            "[[kobo]] #1: unknown setting 'tokn_env' — did you mean 'token_env'?",
        ),
        (
            '[[odk]]\nname = "c"\nurl = "https://c.example"\nemail = "e"\nprojet_id = 2',
            "[[odk]] #1 ('c'): unknown setting 'projet_id' — did you mean 'project_id'?",
        ),
        (
            '[[officers]]\nid = "o1"\nname = "ก"\ntambon = ["341401"]',
            "[[officers]] #1 ('o1'): unknown setting 'tambon' — did you mean 'tambons'?",
        ),
        ('[[officers]]\nid = "o1"', "[[officers]] #1 ('o1'): name is missing"),
        ('[[kobo]]\ntoken_env = "T"', "[[kobo]] #1: url is missing"),
        ('[[kobo]]\nurl = "kf.kobotoolbox.org"', "url must start with https:// or http://"),
        ('[[kobo]]\nurl = "https://k.example"\npage_size = 0', "page_size must be a whole"),
        (
            '[alerts]\nsnooze_fiel = "s.csv"',
            "[alerts]: unknown setting 'snooze_fiel' — did you mean 'snooze_file'?",
        ),
        (
            '[mail]\nenabled = false\nhots = "smtp"',
            "[mail]: unknown setting 'hots' — did you mean 'host'?",
        ),
        ("[webhook]\nprot = 9000", "[webhook]: unknown setting 'prot' — did you mean 'port'?"),
        (
            "[ingest]\nwindow = 30",
            "[ingest]: unknown setting 'window' — did you mean 'window_seconds'?",
        ),
        ('[landing]\npaht = "x"', "[landing]: unknown setting 'paht' — did you mean 'path'?"),
        (
            "[kpi]\npractising = 0.9",
            "[kpi]: unknown setting 'practising' — did you mean 'practising_share'?",
        ),
        (
            '[[seasons]]\nseason = "h"\nname_th = "ก"\nstart = "10-20"\nend = "12-31"\nprovice = '
            '"34"',
            "[[seasons]] #1 ('h'): unknown setting 'provice' — did you mean 'province'?",
        ),
    ],
)
def test_a_table_or_setting_the_code_does_not_read_is_named_with_the_closest_known_one(
    toml: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "sammachip.toml"
    path.write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_settings(path, base_dir=tmp_path, require_sources=False)
    assert "\n" not in str(raised.value)  # one line


def test_report_style_loading_checks_server_tables_but_reads_no_secret(tmp_path: Path) -> None:
    config = servers_config(
        tmp_path, '[[kobo]]\nurl = "https://kf.kobotoolbox.org"\ntoken_env = "NOT_SET_ANYWHERE"\n'
    )
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
    for table, keys in [*TABLES.items(), *ARRAYS.items()]:
        header = f"[[{table}]]" if table in ARRAYS else f"[{table}]"
        at = lines.index(header)
        end = next((i for i in headers if i > at), len(lines))
        assert any("#" in line for line in raw[at - 1 : end]), f"{header} has no comment"
        for key in keys:
            assert any(line.startswith(f"{key} =") for line in lines[at:end]), f"{header} {key}"
    settings = load_settings(require_sources=False, base_dir=tmp_path, environ={})
    defaults = AlertRules()
    for name in TABLES["alerts"].keys() - {"snooze_file"}:
        assert getattr(settings.rules, name) == getattr(defaults, name), name
    assert (settings.rules.otop, settings.rules.kpi) == (OtopRules(), KpiTargets())
    assert (settings.sync, settings.http) == (SyncPolicy(), HttpPolicy())
    assert settings.rules.seasons == ISAN_SEASONS and settings.attachments_path is None
    assert (settings.webhook, settings.ingest) == (WebhookSettings(), IngestSettings())
    assert settings.landing_path == tmp_path / "data" / "landing"
    assert settings.mail is None


# ---- the marts' rules, mail and the receiver, from the same file ---------------------------

OFFICE = """
[alerts]
upcoming_within_days = 10
contact_lead_days = 5
keep_resolved_days = 7
snooze_file = "data/snoozes.csv"

[district]
id = "d3414"
name = "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"
email = "muangsamsip@example.org"

[[officers]]
id = "off01"
name = "นางสาวพรทิพย์ ศรีสุข"
tambons = ["341401"]
email = "porntip@example.org"

[[seasons]]
season = "planting"
name_th = "ช่วงปักดำ"
start = "06-01"
end = "08-15"

[[seasons]]
province = "40"
season = "cane"
name_th = "ช่วงตัดอ้อย"
name_en = "cane cutting"
start = "12-01"
end = "03-31"

[otop]
min_members = 10

[kpi]
practising_share = 0.9

[worklist]
per_day = 15

[mail]
enabled = true
host = "smtp.example.org"
port = 465
security = "ssl"
sender = "sammachip@example.org"
password_env = "OFFICE_SMTP_PASSWORD"

[webhook]
port = 9000
auth = "header"
max_body_bytes = 2048
header = "X-Kobo-Key"
secret_env = "OFFICE_HOOK_SECRET"
body_timeout = 12
"""


def office(tmp_path: Path, text: str = OFFICE) -> Path:
    path = tmp_path / "office.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_rooms_settings_are_read_from_one_file(tmp_path: Path) -> None:
    env = {"OFFICE_SMTP_PASSWORD": "secret", "OFFICE_HOOK_SECRET": "k"}
    settings = load_settings(
        office(tmp_path), base_dir=tmp_path, require_sources=False, environ=env
    )
    rules = settings.rules
    assert (rules.upcoming_within_days, rules.contact_lead_days, rules.keep_resolved_days) == (
        10,
        5,
        7,
    )
    assert rules.min_attendance == 0.8  # left out: default
    assert rules.snooze_file == tmp_path / "data" / "snoozes.csv"
    assert rules.roster[0].email == "porntip@example.org"
    assert (rules.district_officer.officer_id, rules.district_officer.tambons) == ("d3414", ())
    assert [w.start for w in rules.seasons] == [(6, 1)]  # replaces the Isan calendar
    assert rules.seasons_of("40")[0].end == (3, 31)
    assert (rules.otop.min_members, rules.kpi.practising_share) == (10, 0.9)
    assert rules.worklist.per_day == 15
    assert settings.mail == MailSettings(
        "smtp.example.org", 465, "sammachip@example.org", security="ssl", password="secret"
    )
    assert "secret" not in repr(settings.mail)
    hook = settings.webhook
    assert (hook.host, hook.port, hook.auth, hook.max_body_bytes, hook.body_timeout) == (
        "127.0.0.1",
        9000,
        "header",
        2048,
        12.0,
    )
    auth = hook.authenticator(env)
    assert isinstance(auth, HeaderAuth) and auth.header == "X-Kobo-Key"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[seasons]]\nseason = "x"\nname_th = "x"\nstart = "02-30"\nend = "03-01"', "day"),
        ("[alerts]\nupcoming_within_days = 2", "contact_lead_days (3)"),
        ('[mail]\nenabled = true\nhost = "smtp"\nsecurity = "tls"', "[mail] security must be"),
        ("[mail]\nenabled = true", "[mail] host is missing"),
        ('[webhook]\nauth = "none"', "[webhook]: webhook auth must be 'basic' or 'header'"),
        ("[ingest]\nwindow_seconds = 0", "[ingest] window_seconds must be a whole number"),
        ("[worklist]\nper_day = 0", "[worklist] per_day must be a whole number, 1 or more"),
    ],
)
def test_a_value_a_room_cannot_use_is_named_when_the_config_is_read(
    toml: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(
            office(tmp_path, toml + "\n"), base_dir=tmp_path, require_sources=False, environ={}
        )


def test_an_empty_config_means_the_defaults_and_no_mail(tmp_path: Path) -> None:
    empty = load_settings(
        office(tmp_path, ""), base_dir=tmp_path, require_sources=False, environ={}
    )
    assert (empty.rules, empty.mail, empty.webhook) == (AlertRules(), None, WebhookSettings())
    config = office(tmp_path, '[mail]\nenabled = false\nhost = "smtp.example.org"\n')
    assert load_settings(config, base_dir=tmp_path, require_sources=False).mail is None


# ---- the environment: SAMMACHIP_<TABLE>_<SETTING> overrides [table] setting ---------------


def test_any_setting_of_any_table_is_overridden_by_its_variable(tmp_path: Path) -> None:
    env = {
        "SAMMACHIP_WAREHOUSE_PATH": "s3://office/warehouse",
        "SAMMACHIP_HTTP_ATTEMPTS": "2",
        "SAMMACHIP_HTTP_TIMEOUT": "7.5",
        "SAMMACHIP_RUN_WORKERS": "3",
        "SAMMACHIP_RUN_REPORT_PROCESSES": "1",
        "SAMMACHIP_ALERTS_MIN_ATTENDANCE": "0.5",
        "SAMMACHIP_ALERTS_SNOOZE_FILE": "snoozes.toml",
        "SAMMACHIP_DISTRICT_ID": "3414",
        "SAMMACHIP_KPI_INCOME_CHANGE": "0.05",
        "SAMMACHIP_ATTACHMENTS_DOWNLOAD": "true",
        "SAMMACHIP_MAIL_PORT": "2525",
        "SAMMACHIP_WEBHOOK_HOST": "0.0.0.0",
        "SAMMACHIP_WEBHOOK_BODY_TIMEOUT": "4.5",
        "SAMMACHIP_LANDING_PATH": "spool",
        "SAMMACHIP_INGEST_WINDOW_SECONDS": "5",
        "SAMMACHIP_INGEST_SWEEP_CRON": "",  # no sweep
        # secrets the config names are not settings, whatever their prefix
        "SAMMACHIP_WEBHOOK_PASSWORD": "p",
        "OFFICE_SMTP_PASSWORD": "s",
        "OFFICE_HOOK_SECRET": "k",
    }
    s = load_settings(office(tmp_path), base_dir=tmp_path, require_sources=False, environ=env)
    assert s.warehouse_path == "s3://office/warehouse"
    assert (s.http.attempts, s.http.timeout, s.workers, s.report_processes) == (2, 7.5, 3, 1)
    assert (s.rules.min_attendance, s.rules.contact_lead_days) == (0.5, 5)  # the file's kept
    assert s.rules.snooze_file == tmp_path / "snoozes.toml"
    assert (s.rules.district_officer.officer_id, s.rules.kpi.income_change) == ("3414", 0.05)
    assert s.attachments_path == tmp_path / "data" / "attachments"
    assert s.mail is not None and (s.mail.host, s.mail.port) == ("smtp.example.org", 2525)
    assert (s.webhook.host, s.webhook.port, s.webhook.body_timeout) == ("0.0.0.0", 9000, 4.5)
    assert (s.landing_path, s.ingest) == (tmp_path / "spool", IngestSettings(5, None))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "SAMMACHIP_HTTP_ATTEMPT",
            "2",
            "SAMMACHIP_HTTP_ATTEMPT: [http] has no setting "
            "'attempt' — did you mean SAMMACHIP_HTTP_ATTEMPTS? (known: SAMMACHIP_HTTP_TIMEOUT,",
        ),
        (
            "SAMMACHIP_WEBHOOK_PROT",
            "9000",
            "[webhook] has no setting 'prot' — did you mean SAMMACHIP_WEBHOOK_PORT?",
        ),
        (
            "SAMMACHIP_RUN_WORKERS",
            "two",
            "SAMMACHIP_RUN_WORKERS='two': [run] workers must be a whole number",
        ),
        ("SAMMACHIP_WEBHOOK_PORT", "", "[webhook] port must be a whole number"),
        ("SAMMACHIP_HTTP_TIMEOUT", "soon", "[http] timeout must be a number"),
        ("SAMMACHIP_ATTACHMENTS_DOWNLOAD", "yes", "[attachments] download must be true or false"),
        ("SAMMACHIP_HTTP_TIMEOUT", "0", "[http] timeout must be a number of seconds above 0"),
        ("SAMMACHIP_RUN_REPORT_PROCESSES", "all", '[run] report_processes must be "auto" or'),
    ],
)
def test_a_variable_that_names_no_setting_or_holds_a_wrong_value_stops_the_run(
    variable: str, value: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(base_dir=tmp_path, require_sources=False, environ={variable: value})
