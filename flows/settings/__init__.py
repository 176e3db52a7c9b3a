"""The run's configuration, parsed once: the config file (the bundled default unless one is
given) with the environment's overrides (`flows.settings.config`: SAMMACHIP_<TABLE>_<SETTING>)
and the servers' secrets, read into one `Settings` that is passed to whatever needs it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sammachip.flows.settings import sections
from sammachip.flows.settings.config import (
    DEFAULT_CONFIG,
    ConfigError,
    check_config,
    read_config,
    section,
    with_overrides,
)
from sammachip.flows.settings.model import IngestSettings, Settings
from sammachip.flows.settings.sections import alert_rules
from sammachip.flows.settings.servers import check_names, kobo_sources, odk_sources

__all__ = [
    "DEFAULT_CONFIG",
    "ConfigError",
    "IngestSettings",
    "Settings",
    "alert_rules",
    "load_settings",
    "read_config",
]


def load_settings(
    path: Path | None = None,
    *,
    base_dir: Path | None = None,
    require_sources: bool = True,
    servers: bool = True,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Read the config (the bundled default when none is given); relative paths are taken
    from `base_dir` (the current directory by default).

    servers: False for commands that talk to no server (`report`): the server tables are
    checked, but no secret is read and `kobo`/`odk` stay empty.
    """
    doc = read_config(path, environ)
    check_config(doc)
    doc = with_overrides(doc, environ)
    base = base_dir or Path.cwd()
    kobo = kobo_sources(doc, environ) if servers else []
    odk = odk_sources(doc, environ) if servers else []
    check_names([*kobo, *odk])
    if servers and require_sources and not (kobo or odk):
        raise ConfigError(
            "no server configured: add a [[kobo]] or [[odk]] table to the config, or set "
            "SAMMACHIP_KOBO_URL and SAMMACHIP_KOBO_TOKEN (try `sammachip demo` for a run "
            "against the built-in simulator)"
        )
    warehouse = str(section(doc, "warehouse").get("path", "data/warehouse"))
    rules = alert_rules(doc, base)
    return Settings(
        warehouse_path=sections.location(base, warehouse),
        reports_path=sections.folder(doc, "reports", "data/reports", base),
        kobo=tuple(kobo),
        odk=tuple(odk),
        rules=rules,
        mail=sections.mail(doc, environ),
        sync=sections.sync(doc),
        attachments_path=sections.attachments_path(doc, base),
        workers=sections.workers(doc),
        report_processes=sections.report_processes(doc),
        http=sections.http(doc),
        landing_path=sections.folder(doc, "landing", "data/landing", base),
        webhook=sections.webhook(doc),
        ingest=sections.ingest(doc),
        phones=sections.phones(doc, [s.name for s in (*kobo, *odk)] if servers else None, rules),
    )
