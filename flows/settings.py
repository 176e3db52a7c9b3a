"""Configuration: a TOML file (defaults bundled) plus environment variables for secrets.

Tokens are resolved at the edge — from an environment variable or a Prefect Secret block —
and live only in memory (`repr=False`); they are never logged or written anywhere.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.kobo import KoboServer, SyncPolicy
from warehouse.marts import AlertRules, Officer

DEFAULT_CONFIG = Path(__file__).parent / "default_config.toml"


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message says what to set."""


@dataclass(frozen=True)
class KoboSource:
    server: KoboServer
    page_size: int = 1000
    assets: dict[str, str] = field(default_factory=dict)  # explicit uid → form id


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path | str  # a folder, or a bucket URI such as s3://office-data/warehouse
    reports_path: Path
    kobo: tuple[KoboSource, ...]
    rules: AlertRules
    sync: SyncPolicy = field(default_factory=SyncPolicy)
    attachments_path: Path | None = None  # set: media files are downloaded there


def _token(entry: dict[str, Any]) -> str:
    if env := entry.get("token_env"):
        if token := os.environ.get(env):
            return token
        raise ConfigError(
            f"Kobo server '{entry.get('name', entry['url'])}': set the environment "
            f"variable {env} to its API token"
        )
    if block := entry.get("token_block"):
        from prefect.blocks.system import Secret

        return Secret.load(block).get()
    raise ConfigError(
        f"Kobo server '{entry.get('name', entry['url'])}': give token_env or token_block"
    )


def _kobo_sources(doc: dict[str, Any]) -> list[KoboSource]:
    sources = [
        KoboSource(
            KoboServer(e["url"], _token(e), e.get("name", "")),
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


def _rules(doc: dict[str, Any]) -> AlertRules:
    alerts = doc.get("alerts", {})
    district = doc.get("district", {})
    return AlertRules(
        min_attendance=float(alerts.get("min_attendance", 0.8)),
        materials_within_days=int(alerts.get("materials_within_days", 30)),
        followup_within_days=int(alerts.get("followup_within_days", 120)),
        act_within_days=int(alerts.get("act_within_days", 7)),
        roster=tuple(
            Officer(o["id"], o["name"], tuple(o["tambons"])) for o in doc.get("officers", [])
        ),
        district_officer=Officer(
            district.get("id", "district"), district.get("name", "สำนักงานพัฒนาชุมชนอำเภอ"), ()
        ),
    )


def load_settings(
    path: Path | None = None, *, base_dir: Path | None = None, require_sources: bool = True
) -> Settings:
    """Read the config (the bundled default when none is given); relative paths are taken
    from `base_dir` (the current directory by default)."""
    path = path or (Path(p) if (p := os.environ.get("SAMMACHIP_CONFIG")) else DEFAULT_CONFIG)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    base = base_dir or Path.cwd()
    sources = _kobo_sources(doc)
    if require_sources and not sources:
        raise ConfigError(
            "no Kobo server configured: add a [[kobo]] table to the config, or set "
            "SAMMACHIP_KOBO_URL and SAMMACHIP_KOBO_TOKEN (try `sammachip demo` "
            "for a run against the built-in simulator)"
        )
    return Settings(
        warehouse_path=_location(base, doc.get("warehouse", {}).get("path", "data/warehouse")),
        reports_path=base / doc.get("reports", {}).get("path", "data/reports"),
        kobo=tuple(sources),
        rules=_rules(doc),
        sync=SyncPolicy(**doc.get("sync", {})),
        attachments_path=_attachments_path(doc, base),
    )


def _location(base: Path, text: str) -> Path | str:
    """A bucket URI stays as written; a folder is taken relative to the base directory."""
    return text if "://" in text else base / text


def _attachments_path(doc: dict[str, Any], base: Path) -> Path | None:
    section = doc.get("attachments", {})
    return base / section.get("path", "data/attachments") if section.get("download") else None
