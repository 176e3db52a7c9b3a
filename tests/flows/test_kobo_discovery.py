"""Which Kobo assets a run syncs, and what it says about the ones it does not: the simulator
over loopback, the config as an office writes it, and the `sammachip nightly` command's summary
and exit code."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sammachip.connectors.discovery import Skipped, discover
from sammachip.connectors.kobo import KoboForm
from sammachip.connectors.sources import FormSource
from sammachip.flows import cli
from sammachip.flows import summary as summary_module
from sammachip.flows.settings import load_settings
from sammachip.simulators.kobo import KoboStore, serve_kobo

TOKEN = "c" * 40
T0 = datetime(2026, 11, 20, 3, 0)
HOUSEHOLDS = "aHouseholdsInParens001"
SESSIONS = "aSessionsInBrackets001"
UNRELATED = "aLastYearsMarketSurvey"
DRAFT_GROUPS = "aGroupsStillADraft0001"
LISTED_DRAFT = "aListedButADraft000001"
LISTED_GONE = "aListedNotOnServer0001"
LISTED_TYPO = "aListedWithATypo000001"


@pytest.fixture
def server() -> Iterator[tuple[KoboStore, str]]:
    store = KoboStore()
    store.add_asset(HOUSEHOLDS, "Household register (sammachip_household)", "x")
    store.add_asset(SESSIONS, "[sammachip_session] อบรม 2569", "x")
    store.add_asset(UNRELATED, "Market survey 2025", "x")
    store.add_asset(DRAFT_GROUPS, "sammachip_group v2", "x", deployment_status="draft")
    store.add_asset(LISTED_DRAFT, "Materials (new)", "x", deployment_status="draft")
    store.add_asset(LISTED_TYPO, "Income", "x")
    store.submit(HOUSEHOLDS, {"hh/hh_code": "34140101-01", "head/name": "สมศรี"}, T0)
    with serve_kobo(store, TOKEN) as url:
        yield store, url


def write_config(tmp_path: Path, url: str, assets: dict[str, str]) -> Path:
    listed = ", ".join(f'"{uid}" = "{form}"' for uid, form in assets.items())
    path = tmp_path / "office.toml"
    path.write_text(
        f'[warehouse]\npath = "{tmp_path / "warehouse"}"\n\n[reports]\npath = "{tmp_path / "r"}"\n'
        f'\n[run]\nreport_processes = 1\n\n[[kobo]]\nname = "office"\nurl = "{url}/api/v2/"\n'
        f'token_env = "OFFICE_KOBO_TOKEN"\nassets = {{ {listed} }}\n',
        encoding="utf-8",
    )
    return path


LISTED = {
    LISTED_DRAFT: "sammachip_materials",
    LISTED_GONE: "sammachip_income",
    LISTED_TYPO: "sammachip_incme",
}


def discovered(config: Path) -> tuple[list[FormSource], list[Skipped]]:
    settings = load_settings(config)
    return discover(settings.kobo, settings.odk, settings.http)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICE_KOBO_TOKEN", TOKEN)


def test_form_ids_in_brackets_or_parentheses_are_recognised(
    server: tuple[KoboStore, str], tmp_path: Path
) -> None:
    _, url = server
    forms, _ = discovered(write_config(tmp_path, url, {}))
    assert {(f.form_uid, f.form_id) for f in forms if isinstance(f, KoboForm)} == {
        (HOUSEHOLDS, "sammachip_household"),
        (SESSIONS, "sammachip_session"),
    }


def test_every_listed_asset_that_cannot_be_synced_is_an_error_saying_why(
    server: tuple[KoboStore, str], tmp_path: Path
) -> None:
    _, url = server
    _, skipped = discovered(write_config(tmp_path, url, LISTED))
    errors = {s.where: s for s in skipped if not s.warning}
    assert set(errors) == set(LISTED)
    assert "is not deployed" in errors[LISTED_DRAFT].message
    assert "is not on the server" in errors[LISTED_GONE].message
    assert (
        "'sammachip_incme', which sammachip does not know: did you mean 'sammachip_income'?"
    ) in errors[LISTED_TYPO].message
    assert all("'office'" in s.message for s in errors.values())  # which [[kobo]] entry
    assert errors[LISTED_DRAFT].form_id == "sammachip_materials"


def test_surveys_that_match_no_form_are_a_warning_not_silence(
    server: tuple[KoboStore, str], tmp_path: Path
) -> None:
    _, url = server
    _, skipped = discovered(write_config(tmp_path, url, {}))
    warnings = [s.message for s in skipped if s.warning]
    assert [s for s in skipped if not s.warning] == []
    (unmatched,) = [w for w in warnings if "match no sammachip form" in w]
    assert UNRELATED in unmatched and "Market survey 2025" in unmatched
    (draft,) = [w for w in warnings if DRAFT_GROUPS in w]
    assert "looks like sammachip_group but is not deployed" in draft


def test_the_nightly_summary_shows_each_skipped_asset_and_exits_2_for_listed_ones(
    prefect_harness: None,
    server: tuple[KoboStore, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = server
    shown = io.StringIO()
    monkeypatch.setattr(summary_module, "console", Console(file=shown, width=1000))
    runner = CliRunner()
    args = ["nightly", "--today", "2026-11-24", "--config"]
    failing = runner.invoke(cli.app, [*args, str(write_config(tmp_path, url, LISTED))])
    assert failing.exit_code == 2, failing.output
    summary = shown.getvalue()
    for uid in (*LISTED, UNRELATED, DRAFT_GROUPS):
        assert uid in summary
    assert "sammachip_household" in summary  # the recognised forms still synced

    shown.truncate(0)
    passing = runner.invoke(cli.app, [*args, str(write_config(tmp_path, url, {}))])
    assert passing.exit_code == 0, passing.output
    assert "match no sammachip form" in shown.getvalue()  # said, but not a failure


def test_a_refused_token_names_the_configured_variable(
    server: tuple[KoboStore, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = server
    monkeypatch.setenv("OFFICE_KOBO_TOKEN", "d" * 40)
    _, skipped = discovered(write_config(tmp_path, url, {}))
    (error,) = skipped
    assert "401" in error.message and "OFFICE_KOBO_TOKEN" in error.message
    assert "SAMMACHIP_KOBO_TOKEN" not in error.message
