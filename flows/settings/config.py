"""The config file: where it is read from, every table and setting it may hold (anything else
is refused, naming the closest known one), and the one rule by which the environment
overrides it:

    SAMMACHIP_<TABLE>_<SETTING>=value  overrides  [table] setting = value

for every setting of every table (`[[...]]` arrays excepted: servers, officers and seasons are
written in the file). SAMMACHIP_LANDING_PATH, SAMMACHIP_WEBHOOK_PORT, SAMMACHIP_RUN_WORKERS …
The value is read as the setting's kind: text, a whole number, a number, or true/false; a
variable of a table's prefix that names no setting of it stops the run (a typo must not be
silently ignored), unless the config names it as the holder of a secret
(SAMMACHIP_WEBHOOK_PASSWORD …). Besides this rule, only the file's location (SAMMACHIP_CONFIG),
the quick set-up of one server (SAMMACHIP_KOBO_* / SAMMACHIP_ODK_*, `flows.settings.servers`)
and the secrets the config names are read from the environment.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

from sammachip.connectors.sources import HttpPolicy, SyncPolicy
from sammachip.connectors.webhook import WebhookSettings
from sammachip.flows.settings.model import IngestSettings
from sammachip.marts.rules import AlertRules, KpiTargets, OtopRules, WorklistRules
from sammachip.reports.mailer import MailSettings

DEFAULT_CONFIG = Path(__file__).parents[1] / "default_config.toml"
PREFIX = "SAMMACHIP_"


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message says what to set."""


def read_config(
    path: Path | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """The config TOML as a dict: `path`, else $SAMMACHIP_CONFIG, else the bundled default."""
    path = path or (Path(p) if (p := environ.get("SAMMACHIP_CONFIG")) else DEFAULT_CONFIG)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None


# ---- what a config may hold --------------------------------------------------------------

Kind = Callable[[str], Any]  # an environment variable's text → the setting's value


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


def _whole_or_text(text: str) -> int | str:
    return int(text) if text.isascii() and text.isdigit() else text


_KINDS: dict[Any, Kind] = {int: int, float: float, bool: _flag}
_KIND_NAMES = {int: "a whole number", float: "a number", _flag: "true or false"}


def _kinds(cls: type, skip: Iterable[str] = ()) -> dict[str, Kind]:
    """The settings of a table that fills the dataclass `cls`, by their kind (its fields'
    types: int, float, bool, anything else text)."""
    hints = get_type_hints(cls)
    return {f.name: _KINDS.get(hints[f.name], str) for f in fields(cls) if f.name not in skip}


# The numbers of `AlertRules`: its other fields come from other tables.
_ALERT_THRESHOLDS = {k: kind for k, kind in _kinds(AlertRules).items() if kind in (int, float)}

# Every table the code reads, with its settings. Anything else is a typo — `[[officer]]` once
# sent every alert to the district's list — refused with the closest known name.
TABLES: dict[str, dict[str, Kind]] = {
    "warehouse": {"path": str},
    "reports": {"path": str},
    "sync": _kinds(SyncPolicy),
    "http": _kinds(HttpPolicy),
    "run": {"workers": int, "report_processes": _whole_or_text},  # "auto", or how many
    "attachments": {"download": _flag, "path": str},
    "alerts": {**_ALERT_THRESHOLDS, "snooze_file": str},
    "district": {"id": str, "name": str, "email": str},
    "otop": _kinds(OtopRules),
    "kpi": _kinds(KpiTargets),
    "worklist": _kinds(WorklistRules),
    "mail": {"enabled": _flag, **_kinds(MailSettings, skip=["password"]), "password_env": str},
    "webhook": _kinds(WebhookSettings),
    "landing": {"path": str},
    "ingest": _kinds(IngestSettings),
}
# Arrays of tables, `[[name]]`: one table per server, officer or farm season.
ARRAYS: dict[str, tuple[str, ...]] = {
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
REQUIRED: dict[str, tuple[str, ...]] = {
    "kobo": ("url",),
    "odk": ("url", "email"),
    "officers": ("id", "name"),
    "seasons": ("season", "name_th", "start", "end"),
}
_ONE_PER = {"kobo": "server", "odk": "server", "officers": "officer", "seasons": "season"}
_LABEL = {"kobo": "name", "odk": "name", "officers": "id", "seasons": "season"}  # says which

# Letters, digits and . _ - (and ":", which names taken from a host:port before servers had
# names carry): a name is part of every submission key and cursor of its server.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
NAME_RULE = (
    "a server name is Latin letters, digits, '.', '-' or '_' (it is part of "
    "every submission key of that server)"
)


def _bracketed(name: str) -> str:
    return f"[[{name}]]" if name in ARRAYS else f"[{name}]"


def _unknown_setting(where: str, given: str, known: Iterable[str]) -> ConfigError:
    known = list(known)
    return ConfigError(
        f"{where}: unknown setting {given!r}{_did_you_mean(given, known, repr)} "
        f"(known: {', '.join(known)})"
    )


def _did_you_mean(given: str, known: Iterable[str], show: Callable[[str], str]) -> str:
    """The closest known name: the fix is usually a letter or two away."""
    close = difflib.get_close_matches(given, list(known), n=1, cutoff=0.6)
    return f" — did you mean {show(close[0])}?" if close else ""


def check_config(doc: dict[str, Any]) -> None:
    """Every table and setting of the config is one the code reads, in the shape it reads it;
    raises ConfigError naming the first one that is not."""
    for name, value in doc.items():
        if name in TABLES:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{_wrote(name, value)} must be written [{name}]: one table of settings"
                )
            if unknown := [k for k in value if k not in TABLES[name]]:
                raise _unknown_setting(f"[{name}]", unknown[0], TABLES[name])
        elif name in ARRAYS:
            if not (isinstance(value, list) and all(isinstance(e, dict) for e in value)):
                raise ConfigError(
                    f"{_wrote(name, value)} must be written [[{name}]]: one "
                    f"[[{name}]] table per {_ONE_PER[name]}"
                )
            for number, entry in enumerate(value, 1):
                _check_entry(name, number, entry)
        else:
            known = [*TABLES, *ARRAYS]
            tables = ", ".join(map(_bracketed, known))
            if not isinstance(value, dict | list):
                raise ConfigError(
                    f"{_wrote(name, value)} at the top of the config: settings go "
                    f"in their table ({tables})"
                )
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
    if unknown := [k for k in entry if k not in ARRAYS[array]]:
        raise _unknown_setting(where, unknown[0], ARRAYS[array])
    if missing := [k for k in REQUIRED[array] if k not in entry]:
        raise ConfigError(f"{where}: {missing[0]} is missing")
    if array not in ("kobo", "odk"):
        return
    url = entry["url"]
    if not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise ConfigError(f"{where}: url must start with https:// or http://, not {url!r}")
    if "name" in entry and not (isinstance(entry["name"], str) and NAME.fullmatch(entry["name"])):
        raise ConfigError(f"{where}: {NAME_RULE}")
    for key in ("page_size", "project_id"):
        if key in entry:
            whole(f"{where} {key}", entry[key], 1)


# ---- the environment's overrides -----------------------------------------------------------

# Variables the receiver and the mailer read their secrets from unless the config names others.
_DEFAULT_SECRETS = {
    WebhookSettings.password_env,
    WebhookSettings.secret_env,
    "SAMMACHIP_SMTP_PASSWORD",
}


def with_overrides(doc: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """`doc` with every SAMMACHIP_<TABLE>_<SETTING> variable of `environ` in its table (see
    the module's docstring); raises ConfigError naming a variable that names no setting or
    holds a value the setting cannot take."""
    out = {name: dict(value) if name in TABLES else value for name, value in doc.items()}
    secrets = _DEFAULT_SECRETS | _secret_variables(doc)
    for variable, text in sorted(environ.items()):
        if (found := _overridden(variable)) is None or variable in secrets:
            continue
        table, key = found
        kinds = TABLES[table]
        if key not in kinds:
            known = [f"{PREFIX}{table.upper()}_{k.upper()}" for k in kinds]
            raise ConfigError(
                f"{variable}: [{table}] has no setting {key!r}"
                f"{_did_you_mean(variable, known, str)} (known: "
                f"{', '.join(known)})"
            )
        try:
            value = kinds[key](text)
        except ValueError:
            what = _KIND_NAMES.get(kinds[key], "text")
            raise ConfigError(f"{variable}={text!r}: [{table}] {key} must be {what}") from None
        out.setdefault(table, {})[key] = value
    return out


def _overridden(variable: str) -> tuple[str, str] | None:
    """([table], setting) a variable overrides, by the table its name starts with."""
    for table in sorted(TABLES, key=len, reverse=True):
        start = f"{PREFIX}{table.upper()}_"
        if variable.startswith(start) and len(variable) > len(start):
            return table, variable[len(start) :].lower()
    return None


def _secret_variables(doc: dict[str, Any]) -> set[str]:
    """The variables the config names as holders of a secret (`token_env`, `password_env`…)."""
    entries = [
        *doc.get("kobo", []),
        *doc.get("odk", []),
        doc.get("webhook", {}),
        doc.get("mail", {}),
    ]
    return {str(v) for e in entries for k, v in e.items() if k.endswith("_env")}


# ---- the checks shared by every table's reader ----------------------------------------------


def section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A config table (`check_config` has refused any setting the code does not read)."""
    return doc.get(name, {})


def whole(name: str, value: object, least: int) -> int:
    if type(value) is not int or value < least:
        raise ConfigError(f"{name} must be a whole number, {least} or more, not {value!r}")
    return value


def is_number(value: object) -> bool:
    """A finite int or float; TOML's `true` is not a number of seconds."""
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
