"""Configuration: a TOML file (defaults bundled) plus environment variables for secrets.

Tokens are resolved at the edge — from an environment variable or a Prefect Secret block —
and live only in memory (`repr=False`); they are never logged or written anywhere.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from connectors.kobo import KoboServer, KoboSource
from connectors.odk import OdkServer, OdkSource
from connectors.sources import HttpPolicy, SyncPolicy
from connectors.webhook import WebhookSettings
from warehouse.mailer import MailSettings, mail_settings_from_config
from warehouse.rules import _ALERT_KEYS, AlertRules, KpiTargets, OtopRules, rules_from_config

DEFAULT_CONFIG = Path(__file__).parent / "default_config.toml"


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path | str  # a folder, or a bucket URI such as s3://office-data/warehouse
    reports_path: Path
    kobo: tuple[KoboSource, ...]
    rules: AlertRules
    odk: tuple[OdkSource, ...] = ()
    sync: SyncPolicy = field(default_factory=SyncPolicy)
    attachments_path: Path | None = None  # set: media files are downloaded there
    workers: int = 1  # >1: forms fetched and validated concurrently on the task runner
    report_processes: int = 1  # processes writing officers' files (from 16 officers on)
    mail: MailSettings | None = None  # set: officers get their lists by e-mail
    http: HttpPolicy = field(default_factory=HttpPolicy)

    @property
    def server_names(self) -> list[str]:
        """Every configured server's name (its identity in the warehouse), Kobo's first."""
        return [src.name for src in (*self.kobo, *self.odk)]


def _kobo_sources(doc: dict[str, Any]) -> list[KoboSource]:
    sources = [
        KoboSource(
            KoboServer(
                e["url"], _secret(e, "API token", "token_env", "token_block"), e.get("name", ""),
                _secret_origin(e, "token_env", "token_block"),
            ),
            int(e.get("page_size", 1000)),
            dict(e.get("assets", {})),
        )
        for e in doc.get("kobo", [])
    ]
    # Quick set-up without a config file: one server from the environment.
    if url := os.environ.get("SAMMACHIP_KOBO_URL"):
        token = os.environ.get("SAMMACHIP_KOBO_TOKEN")
        if not token:
            raise ConfigError("SAMMACHIP_KOBO_URL is set: also set SAMMACHIP_KOBO_TOKEN")
        name = _env_name("SAMMACHIP_KOBO_NAME")
        sources.append(KoboSource(KoboServer(url, token, name)))
    return sources


def _secret(entry: dict[str, Any], what: str, env_key: str, block_key: str) -> str:
    """A secret from the environment variable or Prefect Secret block the config names."""
    label = entry.get("name", entry["url"])
    if env := entry.get(env_key):
        if value := os.environ.get(env):
            return value
        raise ConfigError(f"server '{label}': set the environment variable {env} to its {what}")
    if block := entry.get(block_key):
        from prefect.blocks.system import Secret

        return Secret.load(block).get()
    raise ConfigError(f"server '{label}': give {env_key} or {block_key} for its {what}")


def _secret_origin(entry: dict[str, Any], env_key: str, block_key: str) -> str:
    """Where `_secret` read it, for an error that says which secret to fix."""
    if env := entry.get(env_key):
        return f"the environment variable {env}"
    return f"the Prefect Secret block '{entry.get(block_key)}'"


def _odk_sources(doc: dict[str, Any]) -> list[OdkSource]:
    sources = [
        OdkSource(
            OdkServer(
                e["url"],
                e["email"],
                _secret(e, "password", "password_env", "password_block"),
                int(e.get("project_id", 1)),
                e.get("name", ""),
                _secret_origin(e, "password_env", "password_block"),
            ),
            int(e.get("page_size", 1000)),
            dict(e.get("forms", {})),
        )
        for e in doc.get("odk", [])
    ]
    if url := os.environ.get("SAMMACHIP_ODK_URL"):
        email = os.environ.get("SAMMACHIP_ODK_EMAIL")
        password = os.environ.get("SAMMACHIP_ODK_PASSWORD")
        if not (email and password):
            raise ConfigError(
                "SAMMACHIP_ODK_URL is set: also set SAMMACHIP_ODK_EMAIL and SAMMACHIP_ODK_PASSWORD"
            )
        project = int(os.environ.get("SAMMACHIP_ODK_PROJECT", "1"))
        name = _env_name("SAMMACHIP_ODK_NAME")
        sources.append(OdkSource(OdkServer(url, email, password, project, name,
                                           "the environment variable SAMMACHIP_ODK_PASSWORD")))
    return sources


# ---- server names: a server's identity in the warehouse ------------------------------------

# Letters, digits and . _ - (and ":", which names taken from a host:port before servers had
# names carry): a name is part of every submission key and cursor of its server.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


def _env_name(variable: str) -> str:
    name = os.environ.get(variable, "")
    if name and not _NAME.fullmatch(name):
        raise ConfigError(f"{variable}={name!r}: {_NAME_RULE}")
    return name


_NAME_RULE = ("a server name is Latin letters, digits, '.', '-' or '_' (it is part of "
              "every submission key of that server)")  # fmt: skip


def _check_names(sources: Iterable[KoboSource | OdkSource]) -> None:
    """Every server has a name of its own (Kobo and ODK alike: the run's record of what failed
    is kept by name): two under one name would share submission keys and cursors."""
    by_name: dict[str, list[str]] = {}
    for src in sources:
        by_name.setdefault(src.name, []).append(src.server.url)
    for name, urls in by_name.items():
        if len(urls) > 1:
            raise ConfigError(
                f"{len(urls)} servers are named '{name}' ({', '.join(urls)}): give each "
                "[[kobo]]/[[odk]] table a name of its own (a Kobo server without one is "
                "'kobo', an ODK server 'odk'; the quick set-up's are SAMMACHIP_KOBO_NAME and "
                "SAMMACHIP_ODK_NAME). The name is the server's identity in the warehouse: "
                "choose it once, the URL may change"
            )


def _rules(doc: dict[str, Any], base: Path) -> AlertRules:
    try:
        return rules_from_config(doc, base)
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"alert settings: {err}") from None


def _mail(doc: dict[str, Any]) -> MailSettings | None:
    section = doc.get("mail", {})
    if not section.get("enabled"):
        return None
    password = os.environ.get(section.get("password_env", "SAMMACHIP_SMTP_PASSWORD"))
    try:
        return mail_settings_from_config(section, password)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The config TOML as a dict: `path`, else $SAMMACHIP_CONFIG, else the bundled default."""
    path = path or (Path(p) if (p := os.environ.get("SAMMACHIP_CONFIG")) else DEFAULT_CONFIG)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None


def load_settings(
    path: Path | None = None,
    *,
    base_dir: Path | None = None,
    require_sources: bool = True,
    servers: bool = True,
) -> Settings:
    """Read the config (the bundled default when none is given); relative paths are taken
    from `base_dir` (the current directory by default).

    servers: False for commands that talk to no server (`report`): the server tables are
    checked, but no secret is read and `kobo`/`odk` stay empty.
    """
    doc = read_config(path)
    check_config(doc)
    base = base_dir or Path.cwd()
    sources = _kobo_sources(doc) if servers else []
    odk_sources = _odk_sources(doc) if servers else []
    _check_names([*sources, *odk_sources])
    if servers and require_sources and not (sources or odk_sources):
        raise ConfigError(
            "no server configured: add a [[kobo]] or [[odk]] table to the config, or set "
            "SAMMACHIP_KOBO_URL and SAMMACHIP_KOBO_TOKEN (try `sammachip demo` for a run "
            "against the built-in simulator)"
        )
    return Settings(
        warehouse_path=_location(base, doc.get("warehouse", {}).get("path", "data/warehouse")),
        reports_path=base / doc.get("reports", {}).get("path", "data/reports"),
        kobo=tuple(sources),
        odk=tuple(odk_sources),
        rules=_rules(doc, base),
        mail=_mail(doc),
        sync=_sync(doc),
        attachments_path=_attachments_path(doc, base),
        workers=_workers(doc),
        report_processes=_report_processes(doc),
        http=_http(doc),
    )


# ---- what a config may hold --------------------------------------------------------------

# Every table the code reads, with its settings. Anything else is a typo — `[[officer]]` once
# sent every alert to the district's list — refused with the closest known name.
_TABLES: dict[str, tuple[str, ...]] = {
    "warehouse": ("path",),
    "reports": ("path",),
    "sync": tuple(SyncPolicy.__dataclass_fields__),
    "http": tuple(HttpPolicy.__dataclass_fields__),
    "run": ("workers", "report_processes"),
    "attachments": ("download", "path"),
    "alerts": (*_ALERT_KEYS, "snooze_file"),
    "district": ("id", "name", "email"),
    "otop": tuple(OtopRules.__dataclass_fields__),
    "kpi": tuple(KpiTargets.__dataclass_fields__),
    "mail": (
        "enabled",
        *(f.name for f in fields(MailSettings) if f.name != "password"),
        "password_env",
    ),
    "webhook": tuple(f.name for f in fields(WebhookSettings) if f.name != "landing_path"),
    "landing": ("path",),  # flows/ingest.py `landing_path`
    "ingest": ("window_seconds", "sweep_cron"),  # flows/ingest.py `IngestSettings`
}
# Arrays of tables, `[[name]]`: one table per server, officer or farm season.
_ARRAYS: dict[str, tuple[str, ...]] = {
    "kobo": ("name", "url", "token_env", "token_block", "page_size", "assets"),
    "odk": (
        "name",
        "url",
        "email",
        "password_env",
        "password_block",
        "project_id",
        "page_size",
        "forms",
    ),
    "officers": ("id", "name", "tambons", "email"),
    "seasons": ("season", "name_th", "name_en", "start", "end", "province"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "kobo": ("url",),
    "odk": ("url", "email"),
    "officers": ("id", "name"),
    "seasons": ("season", "name_th", "start", "end"),
}
_ONE_PER = {"kobo": "server", "odk": "server", "officers": "officer", "seasons": "season"}
_LABEL = {"kobo": "name", "odk": "name", "officers": "id", "seasons": "season"}  # says which


def _bracketed(name: str) -> str:
    return f"[[{name}]]" if name in _ARRAYS else f"[{name}]"


def _unknown_setting(where: str, given: str, known: Iterable[str]) -> ConfigError:
    known = list(known)
    return ConfigError(f"{where}: unknown setting {given!r}{_did_you_mean(given, known, repr)} "
                       f"(known: {', '.join(known)})")  # fmt: skip


def _did_you_mean(given: str, known: Iterable[str], show: Callable[[str], str]) -> str:
    """The closest known name: the fix is usually a letter or two away."""
    close = difflib.get_close_matches(given, list(known), n=1, cutoff=0.6)
    return f" — did you mean {show(close[0])}?" if close else ""


def check_config(doc: dict[str, Any]) -> None:
    """Every table and setting of the config is one the code reads, in the shape it reads it;
    raises ConfigError naming the first one that is not."""
    for name, value in doc.items():
        if name in _TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{_wrote(name, value)} must be written [{name}]: "
                                  "one table of settings")  # fmt: skip
            if unknown := [k for k in value if k not in _TABLES[name]]:
                raise _unknown_setting(f"[{name}]", unknown[0], _TABLES[name])
        elif name in _ARRAYS:
            if not (isinstance(value, list) and all(isinstance(e, dict) for e in value)):
                raise ConfigError(f"{_wrote(name, value)} must be written [[{name}]]: one "
                                  f"[[{name}]] table per {_ONE_PER[name]}")  # fmt: skip
            for number, entry in enumerate(value, 1):
                _check_entry(name, number, entry)
        else:
            known = [*_TABLES, *_ARRAYS]
            tables = ", ".join(map(_bracketed, known))
            if not isinstance(value, dict | list):
                raise ConfigError(f"{_wrote(name, value)} at the top of the config: settings go "
                                  f"in their table ({tables})")  # fmt: skip
            hint = _did_you_mean(name, known, _bracketed)
            raise ConfigError(f"unknown table {_wrote(name, value)}{hint} (known: {tables})")


def _wrote(name: str, value: object) -> str:
    """How the file spells what it holds under `name`."""
    if isinstance(value, dict):
        return f"[{name}]"
    if isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
        return f"[[{name}]]"
    return f"{name} = {value!r}"


def _check_entry(array: str, number: int, entry: dict[str, Any]) -> None:
    label = entry.get(_LABEL[array])
    where = f"[[{array}]] #{number}" + (f" ({label!r})" if label is not None else "")
    if unknown := [k for k in entry if k not in _ARRAYS[array]]:
        raise _unknown_setting(where, unknown[0], _ARRAYS[array])
    if missing := [k for k in _REQUIRED[array] if k not in entry]:
        raise ConfigError(f"{where}: {missing[0]} is missing")
    if array not in ("kobo", "odk"):
        return
    url = entry["url"]
    if not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise ConfigError(f"{where}: url must start with https:// or http://, not {url!r}")
    if "name" in entry and not (isinstance(entry["name"], str) and _NAME.fullmatch(entry["name"])):
        raise ConfigError(f"{where}: {_NAME_RULE}")
    for key in ("page_size", "project_id"):
        if key in entry:
            _whole(f"{where} {key}", entry[key], 1)


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A config table (`check_config` has refused any setting the code does not read)."""
    return doc.get(name, {})


def _whole(name: str, value: object, least: int) -> int:
    if type(value) is not int or value < least:
        raise ConfigError(f"{name} must be a whole number, {least} or more, not {value!r}")
    return value


def _sync(doc: dict[str, Any]) -> SyncPolicy:
    policy = SyncPolicy(**_section(doc, "sync"))
    for name, least in (("overlap_ids", 0), ("lookback_days", 0), ("batch_size", 1)):
        _whole(f"[sync] {name}", getattr(policy, name), least)
    if not _is_number(policy.odk_overlap_hours) or policy.odk_overlap_hours < 0:
        raise ConfigError(f"[sync] odk_overlap_hours must be a number of hours, 0 or more, "
                          f"not {policy.odk_overlap_hours!r}")  # fmt: skip
    return policy


def _run(doc: dict[str, Any]) -> dict[str, Any]:
    return _section(doc, "run")


def _workers(doc: dict[str, Any]) -> int:
    return _whole("[run] workers", _run(doc).get("workers", 1), 1)


def _report_processes(doc: dict[str, Any]) -> int:
    """`auto` (the default): one per core this process may use, at most 4 — officers' files
    are the longest stage of a first run, and the machine is otherwise idle by then."""
    value = _run(doc).get("report_processes", "auto")
    if value == "auto":
        return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)  # fmt: skip
    if type(value) is not int or value < 1:
        raise ConfigError(f'[run] report_processes must be "auto" or a whole number, 1 or '
                          f"more, not {value!r}")  # fmt: skip
    return value


def _http(doc: dict[str, Any]) -> HttpPolicy:
    """`[http]`, checked when the config is read: a zero or a negative number would make every
    request of the night fail, far from the line to fix."""
    policy = HttpPolicy(**_section(doc, "http"))
    if not _is_number(policy.timeout) or policy.timeout <= 0:
        raise ConfigError(f"[http] timeout must be a number of seconds above 0, "
                          f"not {policy.timeout!r}")  # fmt: skip
    _whole("[http] attempts", policy.attempts, 1)  # 1: never retry
    if not _is_number(policy.backoff_cap) or policy.backoff_cap < 0:
        raise ConfigError(f"[http] backoff_cap must be a number of seconds, 0 or more, "
                          f"not {policy.backoff_cap!r}")  # fmt: skip
    return HttpPolicy(float(policy.timeout), policy.attempts, float(policy.backoff_cap))


def _is_number(value: object) -> bool:
    """A finite int or float; TOML's `true` is not a number of seconds."""
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _location(base: Path, text: str) -> Path | str:
    """A bucket URI stays as written; a folder is taken relative to the base directory."""
    return text if "://" in text else base / text


def _attachments_path(doc: dict[str, Any], base: Path) -> Path | None:
    section = doc.get("attachments", {})
    return base / section.get("path", "data/attachments") if section.get("download") else None
