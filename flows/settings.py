"""Configuration: a TOML file (defaults bundled) plus environment variables for secrets.

Tokens are resolved at the edge — from an environment variable or a Prefect Secret block —
and live only in memory (`repr=False`); they are never logged or written anywhere.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from connectors.kobo import KoboServer, SyncPolicy
from connectors.odk import OdkServer
from warehouse.mailer import MailSettings, mail_settings_from_config
from warehouse.rules import AlertRules, rules_from_config

DEFAULT_CONFIG = Path(__file__).parent / "default_config.toml"


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message says what to set."""


@dataclass(frozen=True)
class KoboSource:
    server: KoboServer
    page_size: int = 1000
    assets: dict[str, str] = field(default_factory=dict)  # explicit uid → form id


@dataclass(frozen=True)
class OdkSource:
    server: OdkServer
    page_size: int = 1000
    forms: dict[str, str] = field(default_factory=dict)  # xmlFormId → form id, if they differ


@dataclass(frozen=True)
class HttpPolicy:
    """How the server clients wait and retry (`[http]`); the defaults are the clients' own."""

    timeout: float = 60.0  # seconds to connect, send, or wait for the next part of an answer
    attempts: int = 6  # tries of one request, the first included (1: never retry)
    backoff_cap: float = 30.0  # longest wait between two tries, a server's Retry-After included

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for `KoboClient` and `OdkClient`."""
        return asdict(self)


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


def _kobo_sources(doc: dict[str, Any]) -> list[KoboSource]:
    sources = [
        KoboSource(
            KoboServer(
                e["url"], _secret(e, "API token", "token_env", "token_block"), e.get("name", "")
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
        sources.append(KoboSource(KoboServer(url, token, "env")))
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


def _secret_source(entry: dict[str, Any], env_key: str, block_key: str) -> str:
    """Where `_secret` took a secret from, for messages that say what to fix."""
    if env := entry.get(env_key):
        return f"${env}"
    return f"Prefect Secret block '{entry.get(block_key)}'"


def _odk_sources(doc: dict[str, Any]) -> list[OdkSource]:
    sources = [
        OdkSource(
            OdkServer(
                e["url"],
                e["email"],
                _secret(e, "password", "password_env", "password_block"),
                int(e.get("project_id", 1)),
                e.get("name", ""),
                _secret_source(e, "password_env", "password_block"),
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
        sources.append(OdkSource(OdkServer(url, email, password, project, "env",
                                           "$SAMMACHIP_ODK_PASSWORD")))  # fmt: skip
    return sources


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
    path: Path | None = None, *, base_dir: Path | None = None, require_sources: bool = True
) -> Settings:
    """Read the config (the bundled default when none is given); relative paths are taken
    from `base_dir` (the current directory by default)."""
    doc = read_config(path)
    base = base_dir or Path.cwd()
    sources = _kobo_sources(doc)
    odk_sources = _odk_sources(doc)
    if require_sources and not (sources or odk_sources):
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


def _section(doc: dict[str, Any], name: str, known: Iterable[str]) -> dict[str, Any]:
    """A config table whose keys must all be `known`: a typo would otherwise be ignored (or
    fail far from the line to fix)."""
    section = doc.get(name, {})
    known = list(known)
    if not isinstance(section, dict):
        raise ConfigError(f"[{name}] must be a table: {', '.join(known)}")
    if unknown := sorted(set(section) - set(known)):
        raise ConfigError(f"[{name}]: unknown setting {', '.join(map(repr, unknown))} "
                          f"(known: {', '.join(known)})")  # fmt: skip
    return section


def _whole(name: str, value: object, least: int) -> int:
    if type(value) is not int or value < least:
        raise ConfigError(f"{name} must be a whole number, {least} or more, not {value!r}")
    return value


def _sync(doc: dict[str, Any]) -> SyncPolicy:
    policy = SyncPolicy(**_section(doc, "sync", SyncPolicy.__dataclass_fields__))
    for name, least in (("overlap_ids", 0), ("lookback_days", 0), ("batch_size", 1)):
        _whole(f"[sync] {name}", getattr(policy, name), least)
    if not _is_number(policy.odk_overlap_hours) or policy.odk_overlap_hours < 0:
        raise ConfigError(f"[sync] odk_overlap_hours must be a number of hours, 0 or more, "
                          f"not {policy.odk_overlap_hours!r}")  # fmt: skip
    return policy


def _run(doc: dict[str, Any]) -> dict[str, Any]:
    return _section(doc, "run", ["workers", "report_processes"])


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
    policy = HttpPolicy(**_section(doc, "http", HttpPolicy.__dataclass_fields__))
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
