"""A server's name, not its address, is its identity in the warehouse: the demo run twice in
one folder, or a named server reached on another port, loads nothing a second time; a
server whose name changed waits, saying which name to put back. Real simulators on loopback,
real Prefect, tables read back with DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sammachip.connectors.discovery import held_under_other_names
from sammachip.connectors.odk import OdkForm, OdkServer, OdkSource
from sammachip.flows import cli
from sammachip.flows.nightly import RunSummary, nightly
from sammachip.flows.settings import load_settings
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo
from tests.flows.test_nightly import snapshot_tables
from tests.reliability.helpers import TODAY, TOKEN, tiny_cohort

QUICK_SET_UP = (
    "SAMMACHIP_KOBO_URL",
    "SAMMACHIP_KOBO_TOKEN",
    "SAMMACHIP_KOBO_NAME",
    "SAMMACHIP_ODK_URL",
    "SAMMACHIP_ODK_EMAIL",
    "SAMMACHIP_ODK_PASSWORD",
    "SAMMACHIP_ODK_PROJECT",
    "SAMMACHIP_ODK_NAME",
)


@dataclass
class Demos:
    workdir: Path
    outputs: list[str]
    codes: list[int]
    tables: list[dict[str, list[tuple]]]


@pytest.fixture(scope="module")
def demos(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demos]:
    """`sammachip demo` twice in one folder (each serves the cohort on a new port)."""
    workdir = tmp_path_factory.mktemp("demo")
    runs = Demos(workdir, [], [], [])
    with pytest.MonkeyPatch.context() as mp:
        for key in QUICK_SET_UP:  # the demo points this process at its simulator: undone below
            mp.setenv(key, "")
        mp.setenv("COLUMNS", "100")
        for _ in range(2):
            result = CliRunner().invoke(
                cli.app,
                [
                    "demo",
                    "--villages",
                    "1",
                    "--today",
                    TODAY.isoformat(),
                    "--workdir",
                    str(workdir),
                ],
            )
            runs.outputs.append(result.output)
            runs.codes.append(result.exit_code)
            runs.tables.append(snapshot_tables(workdir))
    yield runs


def test_the_demo_run_twice_in_one_folder_leaves_the_same_warehouse(demos: Demos) -> None:
    assert demos.codes == [0, 0], demos.outputs
    first, second = demos.tables
    assert len(first["households"]) > 0 and len(first["raw_submissions"]) > 0
    assert second == first
    # and the second run said so: every form fetched again, none of it new
    rows = [line.split("│") for line in demos.outputs[1].splitlines() if line.startswith("│")]
    sync_rows = [r for r in rows if len(r) == 8]  # form, 4 counts, note (and the borders)
    assert sync_rows and all(r[3].strip() == "0" and "ok" in r[6] for r in sync_rows)


def test_the_odk_demo_in_the_kobo_demos_folder_says_where_to_run_it_and_writes_nothing(
    demos: Demos, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in QUICK_SET_UP:
        monkeypatch.setenv(key, "")
    result = CliRunner().invoke(
        cli.app, ["demo", "--source", "odk", "--villages", "1", "--workdir", str(demos.workdir)]
    )
    said = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "holds data from the kobo demo" in said
    assert "sammachip demo --source odk --workdir odk-demo" in said
    assert snapshot_tables(demos.workdir) == demos.tables[-1]


def test_the_demo_never_writes_into_a_warehouse_of_a_real_server(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KoboStore()
    seed_from_cohort(store, tiny_cohort())
    with serve_kobo(store, TOKEN) as url:
        run_nightly(tmp_path, url, "office")
    before = snapshot_tables(tmp_path)
    for key in QUICK_SET_UP:
        monkeypatch.setenv(key, "")
    result = CliRunner().invoke(cli.app, ["demo", "--villages", "1", "--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert "holds data from kobo server 'office'" in " ".join(result.output.split())
    assert snapshot_tables(tmp_path) == before


def run_nightly(workdir: Path, url: str, name: str) -> RunSummary:
    """The nightly flow with a config naming the one Kobo server."""
    config = workdir / "office.toml"
    config.write_text(
        f'[[kobo]]\nname = "{name}"\nurl = "{url}"\ntoken_env = "OFFICE_TOKEN"\n', encoding="utf-8"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OFFICE_TOKEN", TOKEN)
        return nightly(config=str(config), workdir=str(workdir), today=TODAY)


def test_a_named_server_on_another_port_loads_nothing_new_and_a_renamed_one_waits(
    prefect_harness: None, tmp_path: Path
) -> None:
    store = KoboStore()
    seed_from_cohort(store, tiny_cohort())
    with serve_kobo(store, TOKEN) as url:
        first = run_nightly(tmp_path, url, "office")
    tables = snapshot_tables(tmp_path)
    assert sum(f.new_versions for f in first.forms) > 0 and not any(f.error for f in first.forms)

    with serve_kobo(store, TOKEN) as moved:  # the same data, reached at another address
        assert moved != url
        again = run_nightly(tmp_path, moved, "office")
        assert [f.error for f in again.forms] == [None] * len(first.forms)
        assert [f.fetched > 0 for f in again.forms] == [f.fetched > 0 for f in first.forms]
        assert sum(f.new_versions for f in again.forms) == 0
        assert snapshot_tables(tmp_path) == tables

        renamed = run_nightly(tmp_path, moved, "district-kobo")
    assert len(renamed.forms) == len(first.forms)
    for form in renamed.forms:
        assert form.error and form.fetched == 0
        assert "the warehouse holds it from kobo server 'office'" in form.error
        assert 'set name = "office" in its [[kobo]] table' in form.error
    assert snapshot_tables(tmp_path) == tables  # nothing loaded under the new name


def test_a_form_waits_only_when_the_warehouse_holds_it_under_no_configured_name() -> None:
    central = OdkSource(OdkServer("https://c.example", "e@example.org", "pw", 1, "district"))
    form = OdkForm(central, "1/sammachip_household", "sammachip_household")
    settings = replace(load_settings(require_sources=False), kobo=(), odk=(central,))

    def waits(*keys: str) -> list[str]:
        _, held = held_under_other_names(
            [form], {key: {} for key in keys}, settings.kobo, settings.odk
        )
        return [message for _, message in held]

    assert waits() == []  # a new warehouse
    assert waits("odk:district:1/sammachip_household") == []
    # An old server's copy of the same form beside this one's own: both are kept apart.
    assert waits("odk:retired:1/sammachip_household", "odk:district:1/sammachip_household") == []
    # Only under the address an older sammachip used as the name: wait, saying which name.
    (message,) = waits("odk:c.example:8443:1/sammachip_household", "sync_status")
    assert "from odk server 'c.example:8443'" in message
    assert 'set name = "c.example:8443" in its [[odk]] table' in message
