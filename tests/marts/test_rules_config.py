"""Rules and mail settings from the config file; defaults for whatever is left out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from marts.rules import ISAN_SEASONS, AlertRules, rules_from_config
from reports.mailer import mail_settings_from_config

DEFAULT_CONFIG = Path(__file__).parents[2] / "flows" / "default_config.toml"

EXAMPLE = """
[alerts]
upcoming_within_days = 10
contact_lead_days = 5
keep_resolved_days = 7
snooze_file = "data/snoozes.csv"

[district]
id = "d3414"
name = "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"
email = "muangsamsip@example.org"

[[officers]]
id = "off01"
name = "นางสาวพรทิพย์ ศรีสุข"
tambons = ["341401"]
email = "porntip@example.org"

[[seasons]]
season = "planting"
name_th = "ช่วงปักดำ"
start = "06-01"
end = "08-15"

[[seasons]]
province = "40"
season = "cane"
name_th = "ช่วงตัดอ้อย"
name_en = "cane cutting"
start = "12-01"
end = "03-31"

[otop]
min_members = 10

[kpi]
practising_share = 0.9

[mail]
enabled = true
host = "smtp.example.org"
port = 465
security = "ssl"
sender = "sammachip@example.org"
password_env = "SAMMACHIP_SMTP_PASSWORD"
"""


def test_nothing_configured_means_the_defaults() -> None:
    assert rules_from_config({}, Path("/w")) == AlertRules()


def test_every_section_is_read(tmp_path: Path) -> None:
    doc = tomllib.loads(EXAMPLE)
    rules = rules_from_config(doc, tmp_path)
    assert (rules.upcoming_within_days, rules.contact_lead_days, rules.keep_resolved_days) == (
        10, 5, 7,
    )  # fmt: skip
    assert rules.min_attendance == 0.8  # left out: default
    assert rules.snooze_file == tmp_path / "data" / "snoozes.csv"
    assert rules.roster[0].email == "porntip@example.org"
    assert (rules.district_officer.officer_id, rules.district_officer.tambons) == ("d3414", ())
    assert [w.start for w in rules.seasons] == [(6, 1)]  # replaces the Isan calendar
    assert rules.seasons_of("40")[0].end == (3, 31)
    assert (rules.otop.min_members, rules.kpi.practising_share) == (10, 0.9)
    mail = mail_settings_from_config(doc["mail"], password="secret")
    assert mail is not None and (mail.port, mail.security, mail.password) == (465, "ssl", "secret")
    assert "secret" not in repr(mail)


def test_the_bundled_config_still_loads() -> None:
    doc = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    rules = rules_from_config(doc, Path("."))
    assert len(rules.roster) >= 1 and rules.seasons == ISAN_SEASONS


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"alerts": {"min_attendence": 0.7}}, "unknown setting"),
        ({"seasons": [{"season": "x", "name_th": "x", "start": "02-30", "end": "03-01"}]}, "day"),
        ({"alerts": {"upcoming_within_days": 2}}, "contact_lead_days"),
    ],
)
def test_a_wrong_setting_is_named(doc: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules_from_config(doc, Path("."))


def test_mail_is_off_unless_enabled() -> None:
    assert mail_settings_from_config({}) is None
    assert mail_settings_from_config({"enabled": False, "host": "x"}) is None
