"""Secrets and personal data. After a real night through the `nightly` flow (Prefect API,
both servers, a refused form, a dropped connection, an expired ODK session, hostile names),
the Kobo token and the ODK password appear nowhere: not in any log record or terminal output,
not in Prefect's run parameters, states or database, not in any exception or summary, not in
any file the run wrote (Parquet decoded, manifests, officer files, GX Data Docs). National IDs
are whole in the warehouse and nowhere else the run writes or says."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sammachip.connectors.kobo import KoboServer
from sammachip.connectors.odk import OdkServer
from sammachip.flows.settings import load_settings
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.query import connect
from tests.reliability.helpers import (
    BAD_ID,
    EMAIL,
    KOBO_TOKEN,
    ODK_PASSWORD,
    SECRET_MARK,
    Night,
    as_text,
)

# 13 digits in a row, or printed the Thai way (1-2345-67890-12-3).
WHOLE_ID = re.compile(r"(?<!\d)\d(?:[- ]?\d){12}(?!\d)")


def file_text(path: Path) -> str:
    """What a file holds, readably: Parquet and XLSX decoded (both are compressed)."""
    if path.suffix == ".parquet":
        return as_text(pq.read_table(path).to_pylist())
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            return "".join(book.read(name).decode("utf-8", "replace") for name in book.namelist())
    return path.read_bytes().decode("utf-8", "replace")


def written(night: Night) -> dict[Path, str]:
    return {p: file_text(p) for p in night.workdir.rglob("*") if p.is_file()}


def secrets_in(text: str) -> bool:
    return any(s in text for s in (SECRET_MARK, KOBO_TOKEN, ODK_PASSWORD))


def test_the_night_really_used_both_secrets(night: Night) -> None:
    synced = {(f.form_uid, f.fetched > 0) for f in night.summary.forms if not f.error}
    assert any(uid.startswith("1/") and got for uid, got in synced)  # ODK: logged in
    assert any("/" not in uid and got for uid, got in synced)  # Kobo: token accepted


def test_no_secret_in_logs_terminal_output_exceptions_or_the_summary(night: Night) -> None:
    assert any("skipped" in line for line in night.logs)  # the capture saw the flow's log
    assert not [line for line in night.logs if secrets_in(line)]
    assert not secrets_in(night.output)
    assert not secrets_in(as_text([f.error for f in night.summary.forms]))
    assert not secrets_in(repr(night.summary))


def test_no_secret_in_prefect_parameters_states_or_database(night: Night) -> None:
    nightly_runs = [r for r in night.prefect_runs if r["parameters"]]
    assert nightly_runs  # the flow run is there, with its (harmless) parameters
    assert not [r for r in night.prefect_runs if secrets_in(as_text(r))]
    assert night.prefect_db, "the Prefect API database was not found"
    for path in night.prefect_db:
        assert SECRET_MARK.encode() not in path.read_bytes(), path


def test_no_secret_in_any_file_the_run_wrote(night: Night) -> None:
    files = written(night)
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".csv" for p in files)
    assert [p for p, text in files.items() if secrets_in(text)] == []


def test_settings_and_server_records_never_print_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMMACHIP_KOBO_URL", "https://kf.example.org")
    monkeypatch.setenv("SAMMACHIP_KOBO_TOKEN", KOBO_TOKEN)
    monkeypatch.setenv("SAMMACHIP_ODK_URL", "https://central.example.org")
    monkeypatch.setenv("SAMMACHIP_ODK_EMAIL", EMAIL)
    monkeypatch.setenv("SAMMACHIP_ODK_PASSWORD", ODK_PASSWORD)
    shown = [
        repr(load_settings()),
        repr(KoboServer("https://kf.example.org", KOBO_TOKEN)),
        repr(OdkServer("https://c.example.org", EMAIL, ODK_PASSWORD, 1)),
    ]
    assert not [s for s in shown if secrets_in(s)]


# ---- national IDs --------------------------------------------------------------------------


def sent(night: Night, kobo_key: str, odk_path: str, digits: int) -> set[str]:
    """Every household answer the servers sent (Kobo: flat keys; ODK: nested groups), as the
    warehouse's raw layer holds it, ASCII digits only, where it has at least `digits`."""
    wh = open_warehouse(str(night.workdir / "data" / "warehouse"))
    sql = f"""
        select distinct regexp_replace(coalesce(
            json_extract_string(payload, '$."{kobo_key}"'),
            json_extract_string(payload, '$.{odk_path}')), '[^0-9]', '', 'g')
        from raw_submissions where form_id = 'sammachip_household'"""
    return {r[0] for r in connect(wh).execute(sql).fetchall() if r[0] and len(r[0]) >= digits}


def national_ids(night: Night) -> set[str]:
    """Every ID the servers sent (valid or mistyped)."""
    return {i for i in sent(night, "head/national_id", "head.national_id", 13) if len(i) == 13}


def test_national_ids_are_whole_in_the_clean_tables(night: Night) -> None:
    wh = open_warehouse(str(night.workdir / "data" / "warehouse"))
    clean = set(wh.read("households", columns=["national_id"])["national_id"].to_pylist())
    assert clean and clean <= national_ids(night)
    assert BAD_ID in national_ids(night) and BAD_ID not in clean  # quarantined, not clean


def officer_files(night: Night) -> dict[Path, str]:
    """The lists officers get (CSV, and the HTML and XLSX other writers add); not GX's docs."""
    return {
        p: t
        for p, t in written(night).items()
        if "reports" in p.parts and "data_docs" not in p.parts
    }


def test_officer_files_show_no_whole_national_id(night: Night) -> None:
    files = officer_files(night)
    assert any(p.suffix == ".csv" for p in files)
    ids = national_ids(night)
    assert {
        p.name: [i for i in ids if i in t] for p, t in files.items() if any(i in t for i in ids)
    } == {}
    csvs = {p.name: WHOLE_ID.findall(t) for p, t in files.items() if p.suffix == ".csv"}
    assert {name: found for name, found in csvs.items() if found} == {}


def test_the_mistyped_id_reaches_the_officer_as_an_alert_without_the_id(night: Night) -> None:
    """The quarantined registration is a 'data to fix' alert naming the household code."""
    text = "".join(t for p, t in officer_files(night).items() if p.suffix == ".csv")
    assert "34140101-90" in text and BAD_ID not in text


def test_logs_and_terminal_output_show_no_national_id(night: Night) -> None:
    said = "\n".join([*night.logs, night.output])
    assert [i for i in national_ids(night) if i in said] == []


def test_data_docs_beside_the_officer_files_show_no_national_id_or_phone(night: Night) -> None:
    """GX lists failing rows by row number only (the values are the quarantine table's), so the
    mistyped national ID the docs report on is not shown, nor any phone."""
    files = written(night)
    docs = {p: t for p, t in files.items() if "data_docs" in p.parts}
    assert any("validations" in p.parts for p in docs)  # this run's results are there
    ids = national_ids(night)
    personal = ids | sent(night, "head/phone", "head.phone", 9)
    assert BAD_ID in personal and "0812345678" in personal
    assert [p.name for p, t in docs.items() if any(v in t for v in personal)] == []
    reports = {p: t for p, t in files.items() if "reports" in p.parts}  # docs and officer files
    assert [p.name for p, t in reports.items() if any(i in t for i in ids)] == []
