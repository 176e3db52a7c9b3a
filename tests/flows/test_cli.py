"""The `sammachip` command as a user meets it: help that reads right, a missing warehouse or a
date written the Thai way, and a run summary that fits an 80-column terminal."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from sammachip.flows import cli
from sammachip.flows import summary as summary_module
from sammachip.flows.nightly import FormResult, RunSummary, build_marts
from sammachip.flows.settings import load_settings
from sammachip.flows.summary import print_summary
from sammachip.warehouse.load import open_warehouse

runner = CliRunner()


def sammachip(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.output


def test_no_help_text_is_swallowed_and_no_flag_shows_a_bool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    group = get_command(cli.app)
    commands = [[name] for name in group.commands if name != "simulate"]  # type: ignore[attr-defined]
    helps = {
        " ".join(c): sammachip(*c, "--help")
        for c in [[], *commands, ["simulate", "kobo"], ["simulate", "odk"]]
    }
    for command, (code, text) in helps.items():
        assert code == 0, command
        assert "<bool>" not in text, command
        assert max(map(len, text.splitlines())) <= 80, command
    nightly = " ".join(helps["nightly"][1].split())
    assert "`[run] workers` processes (pip install 'sammachip[dask]')" in nightly
    assert "--today <date> Reference date: 2026-12-05 or 05/12/2569" in nightly
    # Each command's line in the overview is whole, not cut off mid-sentence.
    overview = helps[""][1]
    assert "..." not in overview[overview.index("Commands:") :]


@pytest.mark.parametrize("command", [["query", "select 1"], ["tables"], ["compact"], ["vacuum"]])
def test_a_warehouse_that_is_not_there_is_an_error_not_an_empty_answer(
    command: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "data" / "warehouse"
    code, output = sammachip(*command, "--warehouse", str(missing))
    assert code == 1
    assert f"no warehouse at {missing}" in " ".join(output.split())
    assert "sammachip nightly" in output
    assert not missing.exists()  # and none was made


def write_config(tmp_path: Path) -> Path:
    """A Kobo server whose token is nowhere in the environment."""
    config = tmp_path / "office.toml"
    config.write_text(
        f'[warehouse]\npath = "{tmp_path / "wh"}"\n[reports]\npath = "{tmp_path / "reports"}"\n'
        '[[kobo]]\nurl = "https://kf.kobotoolbox.org"\ntoken_env = "SAMMACHIP_TEST_NO_TOKEN"\n',
        encoding="utf-8",
    )
    return config


def test_report_on_a_missing_warehouse_says_so_and_writes_nothing(tmp_path: Path) -> None:
    code, output = sammachip("report", "--config", str(write_config(tmp_path)))
    assert code == 1 and "no warehouse at" in output
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("written", ["05/12/2569", "๐๕/๑๒/๒๕๖๙", "2026-12-05", "5/12/69"])
def test_report_takes_the_date_as_officers_write_it_and_no_servers_secret(
    written: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config, servers=False)
    with open_warehouse(str(settings.warehouse_path)).transaction() as tx:
        build_marts.fn(tx, settings, date(2026, 12, 5))
    code, output = sammachip("report", "--config", str(config), "--today", written)
    assert code == 0, output
    assert (tmp_path / "reports" / "2026-12-05" / "index.html").exists()


@pytest.mark.parametrize("written", ["31/02/2569", "tomorrow", "12/2569"])
def test_a_date_that_is_not_one_says_how_to_write_it(written: str) -> None:
    code, output = sammachip("nightly", "--today", written)
    assert code == 2
    assert "write it as 2026-12-05 or 05/12/2569 (day/month/year, Buddhist Era)" in output


def summary_text(summary: RunSummary, monkeypatch: pytest.MonkeyPatch, **kwargs: bool) -> str:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    monkeypatch.setattr(summary_module, "console", console)
    print_summary(summary, **kwargs)
    return console.export_text()


def test_the_sync_table_fits_80_columns_and_says_a_failure_once_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = (
        'form aUid1234567890abcdefg: HTTP 403 {"detail": "You do not have permission"} '
        "— the token's user lacks 'view submissions' on this form: share the project"
    )
    summary = RunSummary(
        "r1",
        date(2026, 12, 5),
        forms=[
            FormResult("sammachip_household", "aUid1234567890abcdefg", error=error, server="kf"),
            FormResult("sammachip_session", "aSes", 120, 12, 10, 2, server="kf"),
            FormResult("sammachip_materials", "aMat", 7, 7, 6, 0, server="kf"),
        ],
    )
    text = summary_text(summary, monkeypatch)
    assert max(map(len, text.splitlines())) <= 80
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│")}
    assert "✗ 1 failed" in rows["household"] and "ok" in rows["session"]
    assert "≠ counts" in rows["materials"]  # 7 new, 6 + 0 accounted for
    said = " ".join(text.split())
    assert said.count("share the project") == 1
    assert "✗ 1 sammachip_household: form aUid1234567890abcdefg: HTTP 403" in said


def test_a_reconcile_summary_counts_what_it_deleted_per_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = RunSummary(
        "r2",
        date(2026, 12, 6),
        forms=[
            FormResult("sammachip_household", "aHh", 300, 0, 0, 0, deleted=4, server="kf"),
            FormResult("sammachip_income", "aInc", 90, 1, 1, 0, deleted=0, server="kf"),
        ],
    )
    text = summary_text(summary, monkeypatch, deletions=True)
    header = next(line for line in text.splitlines() if "fetched" in line)
    assert re.search(r"deleted", header)
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    deleted_at = [c.strip() for c in header.split("┃")].index("deleted")
    assert [r[deleted_at].strip() for r in rows] == ["4", "0"]
    assert "deleted" not in summary_text(summary, monkeypatch)  # the nightly's table
