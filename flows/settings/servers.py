"""The servers a run syncs from: `[[kobo]]` and `[[odk]]` tables, or one server from the
environment (the quick set-up: SAMMACHIP_KOBO_URL and _TOKEN, or SAMMACHIP_ODK_URL, _EMAIL and
_PASSWORD; _NAME and SAMMACHIP_ODK_PROJECT optional).

Tokens and passwords are resolved here, at the edge — from the environment variable or the
Prefect Secret block the config names — and live only in memory (`repr=False`); they are
never logged or written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sammachip.connectors.kobo import KoboServer, KoboSource
from sammachip.connectors.odk import OdkServer, OdkSource
from sammachip.flows.settings.config import NAME, NAME_RULE, ConfigError


def kobo_sources(doc: dict[str, Any], environ: Mapping[str, str]) -> list[KoboSource]:
    sources = [
        KoboSource(
            KoboServer(
                e["url"],
                _secret(e, "API token", "token_env", "token_block", environ),
                e.get("name", ""),
                _secret_origin(e, "token_env", "token_block"),
            ),
            int(e.get("page_size", 1000)),
            dict(e.get("assets", {})),
        )
        for e in doc.get("kobo", [])
    ]
    # Quick set-up without a config file: one server from the environment.
    if url := environ.get("SAMMACHIP_KOBO_URL"):
        token = environ.get("SAMMACHIP_KOBO_TOKEN")
        if not token:
            raise ConfigError("SAMMACHIP_KOBO_URL is set: also set SAMMACHIP_KOBO_TOKEN")
        name = _env_name("SAMMACHIP_KOBO_NAME", environ)
        sources.append(KoboSource(KoboServer(url, token, name)))
    return sources


def odk_sources(doc: dict[str, Any], environ: Mapping[str, str]) -> list[OdkSource]:
    sources = [
        OdkSource(
            OdkServer(
                e["url"],
                e["email"],
                _secret(e, "password", "password_env", "password_block", environ),
                int(e.get("project_id", 1)),
                e.get("name", ""),
                _secret_origin(e, "password_env", "password_block"),
            ),
            int(e.get("page_size", 1000)),
            dict(e.get("forms", {})),
        )
        for e in doc.get("odk", [])
    ]
    if url := environ.get("SAMMACHIP_ODK_URL"):
        email = environ.get("SAMMACHIP_ODK_EMAIL")
        password = environ.get("SAMMACHIP_ODK_PASSWORD")
        if not (email and password):
            raise ConfigError(
                "SAMMACHIP_ODK_URL is set: also set SAMMACHIP_ODK_EMAIL and SAMMACHIP_ODK_PASSWORD"
            )
        project = environ.get("SAMMACHIP_ODK_PROJECT", "1")
        if not (project.isascii() and project.isdigit()):
            raise ConfigError(
                f"SAMMACHIP_ODK_PROJECT={project!r}: the project's number on "
                "Central (in its address), e.g. 1"
            )
        name = _env_name("SAMMACHIP_ODK_NAME", environ)
        sources.append(
            OdkSource(
                OdkServer(
                    url,
                    email,
                    password,
                    int(project),
                    name,
                    "the environment variable SAMMACHIP_ODK_PASSWORD",
                )
            )
        )
    return sources


def _secret(
    entry: dict[str, Any], what: str, env_key: str, block_key: str, environ: Mapping[str, str]
) -> str:
    """A secret from the environment variable or Prefect Secret block the config names."""
    label = entry.get("name", entry["url"])
    if env := entry.get(env_key):
        if value := environ.get(env):
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


# ---- server names: a server's identity in the warehouse ------------------------------------


def _env_name(variable: str, environ: Mapping[str, str]) -> str:
    name = environ.get(variable, "")
    if name and not NAME.fullmatch(name):
        raise ConfigError(f"{variable}={name!r}: {NAME_RULE}")
    return name


def check_names(sources: Iterable[KoboSource | OdkSource]) -> None:
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
