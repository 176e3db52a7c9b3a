"""`[phones]`: off unless an office turns it on; which servers' phones get the lists, checked
against the configured servers when the config is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from sammachip.flows.settings import ConfigError, load_settings
from sammachip.phones.push import PhoneSettings

SERVERS = """
[[kobo]]
name = "kf"
url = "http://127.0.0.1:9"
token_env = "TEST_KOBO_TOKEN"

[[odk]]
name = "central"
url = "http://127.0.0.1:9"
email = "a@example.org"
password_env = "TEST_ODK_PASSWORD"
project_id = 1
"""


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KOBO_TOKEN", "d" * 40)
    monkeypatch.setenv("TEST_ODK_PASSWORD", "x")


def config(tmp_path: Path, phones: str) -> Path:
    path = tmp_path / "sammachip.toml"
    path.write_text(SERVERS + phones, encoding="utf-8")
    return path


def test_lists_stay_off_the_phones_until_an_office_turns_them_on(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "")).phones == PhoneSettings(enabled=False)
    assert load_settings(None, require_sources=False).phones.enabled is False


def test_the_servers_that_get_the_lists_are_named_in_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, '[phones]\nenabled = true\nservers = ["central"]\n')
    assert load_settings(path).phones == PhoneSettings(True, ("central",))
    monkeypatch.setenv("SAMMACHIP_PHONES_SERVERS", "kf, central")
    assert load_settings(path).phones.servers == ("kf", "central")


def test_a_server_name_that_is_no_configured_server_stops_the_run(tmp_path: Path) -> None:
    path = config(tmp_path, '[phones]\nenabled = true\nservers = ["centrall"]\n')
    with pytest.raises(ConfigError, match=r"\[phones\] servers names 'centrall'.*kf, central"):
        load_settings(path)
