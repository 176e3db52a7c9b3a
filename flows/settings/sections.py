"""Each table of the config (overrides applied) read into the typed settings of the room that
uses it, checked when the config is read: a value that cannot work stops the run at start,
naming the setting and what it must be, rather than failing far from the line to fix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from sammachip.connectors.sources import HttpPolicy, SyncPolicy
from sammachip.connectors.webhook import WebhookConfigError, WebhookSettings
from sammachip.flows.settings.config import TABLES, ConfigError, is_number, section, whole
from sammachip.flows.settings.model import IngestSettings
from sammachip.marts.rules import (
    ISAN_SEASONS,
    AlertRules,
    KpiTargets,
    Officer,
    OtopRules,
    SeasonWindow,
    WorklistRules,
)
from sammachip.reports.mailer import MailSettings

# ---- where things are ----------------------------------------------------------------------


def location(base: Path, text: str) -> Path | str:
    """A bucket URI stays as written; a folder is taken relative to the base directory."""
    return text if "://" in text else base / text


def folder(doc: dict[str, Any], table: str, default: str, base: Path) -> Path:
    """`[table] path`, taken relative to the base directory."""
    return base / str(section(doc, table).get("path", default))


def attachments_path(doc: dict[str, Any], base: Path) -> Path | None:
    return (
        folder(doc, "attachments", "data/attachments", base)
        if section(doc, "attachments").get("download")
        else None
    )


# ---- how a run syncs and runs --------------------------------------------------------------


def sync(doc: dict[str, Any]) -> SyncPolicy:
    policy = SyncPolicy(**section(doc, "sync"))
    for name, least in (("overlap_ids", 0), ("lookback_days", 0), ("batch_size", 1)):
        whole(f"[sync] {name}", getattr(policy, name), least)
    if not is_number(policy.odk_overlap_hours) or policy.odk_overlap_hours < 0:
        raise ConfigError(
            f"[sync] odk_overlap_hours must be a number of hours, 0 or more, "
            f"not {policy.odk_overlap_hours!r}"
        )
    return policy


def http(doc: dict[str, Any]) -> HttpPolicy:
    """`[http]`: a zero or a negative number would make every request of the night fail."""
    policy = HttpPolicy(**section(doc, "http"))
    if not is_number(policy.timeout) or policy.timeout <= 0:
        raise ConfigError(
            f"[http] timeout must be a number of seconds above 0, not {policy.timeout!r}"
        )
    whole("[http] attempts", policy.attempts, 1)  # 1: never retry
    if not is_number(policy.backoff_cap) or policy.backoff_cap < 0:
        raise ConfigError(
            f"[http] backoff_cap must be a number of seconds, 0 or more, not {policy.backoff_cap!r}"
        )
    return HttpPolicy(float(policy.timeout), policy.attempts, float(policy.backoff_cap))


def workers(doc: dict[str, Any]) -> int:
    return whole("[run] workers", section(doc, "run").get("workers", 1), 1)


def report_processes(doc: dict[str, Any]) -> int:
    """`auto` (the default): one per core this process may use, at most 4 — officers' files
    are the longest stage of a first run, and the machine is otherwise idle by then."""
    value = section(doc, "run").get("report_processes", "auto")
    if value == "auto":
        return min(
            4,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1,
        )
    if type(value) is not int or value < 1:
        raise ConfigError(
            f'[run] report_processes must be "auto" or a whole number, 1 or more, not {value!r}'
        )
    return value


# ---- what the marts check: thresholds, farm calendar, roster --------------------------------


def alert_rules(doc: dict[str, Any], base: Path) -> AlertRules:
    """`AlertRules` from `[alerts]`, `[[officers]]`, `[district]`, `[[seasons]]`, `[otop]`,
    `[kpi]` and `[worklist]`; anything left out keeps its default."""
    try:
        return _alert_rules(doc, base)
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"alert settings: {err}") from None


def _alert_rules(doc: dict[str, Any], base: Path) -> AlertRules:
    alerts = dict(section(doc, "alerts"))
    snooze = alerts.pop("snooze_file", None)
    seasons = [(e.get("province"), _season(e)) for e in doc.get("seasons", [])]
    by_province: dict[str, list[SeasonWindow]] = {}
    for province, window in seasons:
        if province:
            by_province.setdefault(str(province), []).append(window)
    kinds = TABLES["alerts"]
    return AlertRules(
        **{k: kinds[k](v) for k, v in alerts.items()},
        roster=tuple(_officer(o) for o in doc.get("officers", [])),
        district_officer=_officer(
            {"id": "district", "name": "สำนักงานพัฒนาชุมชนอำเภอ", **section(doc, "district")},
            tambons=False,
        ),
        snooze_file=base / str(snooze) if snooze else None,
        seasons=tuple(w for p, w in seasons if not p) or ISAN_SEASONS,
        province_seasons=tuple((p, tuple(w)) for p, w in by_province.items()),
        otop=OtopRules(**section(doc, "otop")),
        kpi=KpiTargets(**section(doc, "kpi")),
        worklist=WorklistRules(**section(doc, "worklist")),
    )


def _month_day(text: str) -> tuple[int, int]:
    month, day = (int(p) for p in str(text).split("-"))
    date(2024, month, day)  # a real day of a (leap) year, or ValueError
    return month, day


def _season(entry: dict[str, Any]) -> SeasonWindow:
    return SeasonWindow(
        str(entry["season"]),
        str(entry["name_th"]),
        str(entry.get("name_en", entry["season"])),
        _month_day(entry["start"]),
        _month_day(entry["end"]),
    )


def _officer(entry: dict[str, Any], tambons: bool = True) -> Officer:
    return Officer(
        str(entry["id"]),
        str(entry["name"]),
        tuple(str(t) for t in entry.get("tambons", ())) if tambons else (),
        str(entry.get("email", "")),
    )


# ---- what reaches officers and what receives deliveries ------------------------------------


def mail(doc: dict[str, Any], environ: Mapping[str, str]) -> MailSettings | None:
    """`[mail]` when enabled; the password from the variable `password_env` names."""
    table = section(doc, "mail")
    if not table.get("enabled"):
        return None
    if table.get("security", "starttls") not in ("starttls", "ssl", "none"):
        raise ConfigError("[mail] security must be starttls, ssl or none")
    if "host" not in table:
        raise ConfigError("[mail] host is missing: the SMTP server to send the lists through")
    password = environ.get(str(table.get("password_env", "SAMMACHIP_SMTP_PASSWORD")))
    values = {k: v for k, v in table.items() if k not in ("enabled", "password_env")}
    return MailSettings(**values, password=password)


def webhook(doc: dict[str, Any]) -> WebhookSettings:
    """`[webhook]`: where the receiver listens and how Kobo authenticates (secrets are read
    when the receiver starts)."""
    table = section(doc, "webhook")
    default = WebhookSettings()
    try:
        return WebhookSettings(
            host=str(table.get("host", default.host)),
            port=int(table.get("port", default.port)),
            max_body_bytes=int(table.get("max_body_bytes", default.max_body_bytes)),
            body_timeout=float(table.get("body_timeout", default.body_timeout)),
            auth=str(table.get("auth", default.auth)),  # type: ignore[arg-type]
            username=str(table.get("username", default.username)),
            password_env=str(table.get("password_env", default.password_env)),
            header=str(table.get("header", default.header)),
            secret_env=str(table.get("secret_env", default.secret_env)),
            secret_block=table.get("secret_block"),
        )
    except (WebhookConfigError, ValueError) as err:
        raise ConfigError(f"[webhook]: {err}") from None


def ingest(doc: dict[str, Any]) -> IngestSettings:
    table = section(doc, "ingest")
    window = whole("[ingest] window_seconds", table.get("window_seconds", 60), 1)
    sweep = table.get("sweep_cron", IngestSettings.sweep_cron)
    return IngestSettings(window_seconds=window, sweep_cron=str(sweep) if sweep else None)
