"""The officers' lists on KoboToolbox over loopback: the follow-up form's `followups.csv`
replaced and the form redeployed only when the list changed; what KoboCollect is served."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from sammachip.phones.kobo import openrosa_url
from sammachip.phones.push import PhoneSettings, push_lists
from sammachip.schemas.tables import CLEAN_TABLES
from sammachip.simulators.kobo import media_store
from sammachip.warehouse.store import Warehouse
from tests.phones.conftest import KOBO_UID, Kobo, base_rows, put_worklist

ON = PhoneSettings(enabled=True)
NOW = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)


def push(wh: Warehouse, kobo: Kobo, run: str = "run1"):  # type: ignore[no-untyped-def]
    (result,) = push_lists(wh, ON, ["kf"], [kobo.form], NOW, run)
    return result


def test_kobocollect_is_served_every_officers_items_once_pushed(wh: Warehouse, kobo: Kobo) -> None:
    put_worklist(wh, base_rows())
    result = push(wh, kobo)
    assert (result.error, result.updated, result.officers) == (None, 5, 2)
    _, rows = kobo.served()
    assert [(r["officer_id"], r["item_id"]) for r in rows] == [
        ("off01", "household:34140105-07"),
        ("off01", "household:34140105-08"),
        ("off01", "session:T34140105-03"),
        ("off02", "group:G34140407-1"),
        ("off02", "sage:S34140407-1"),
    ]
    assert {r["status"] for r in rows} == {"open"}
    assert rows[0]["label"].startswith("นายสมศักดิ์ ใจดี · บ้านหนองบัว หมู่ 5 · บ้านเลขที่ 12")
    assert "1341400012345" not in repr(rows)


def test_the_same_list_again_is_neither_uploaded_nor_redeployed(wh: Warehouse, kobo: Kobo) -> None:
    put_worklist(wh, base_rows())
    push(wh, kobo)
    version, _ = kobo.served()
    deployment = media_store(kobo.store).deployment(kobo.store.asset(KOBO_UID))  # type: ignore[arg-type]
    files = len(deployment.files)
    recorded = wh.snapshot().version
    again = push(wh, kobo, "run2")
    assert (again.updated, again.unchanged) == (0, 5)
    assert kobo.served()[0] == version  # no redeploy: phones fetch nothing
    assert len(deployment.files) == files  # nothing uploaded
    assert wh.snapshot().version == recorded


def test_a_changed_list_replaces_the_file_and_redeploys(wh: Warehouse, kobo: Kobo) -> None:
    put_worklist(wh, base_rows())
    push(wh, kobo)
    version, _ = kobo.served()
    put_worklist(wh, base_rows()[1:])
    result = push(wh, kobo, "run2")
    assert result.updated == 4
    new_version, rows = kobo.served()
    assert new_version != version
    assert "household:34140105-07" not in {r["item_id"] for r in rows}
    assert {r["item_id"] for r in wh.read("phone_items").to_pylist()} == {
        r["item_id"] for r in rows
    }


def test_the_phones_host_is_kpis_openrosa_host() -> None:
    assert openrosa_url("https://kf.kobotoolbox.org") == "https://kc.kobotoolbox.org"
    assert openrosa_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


def visits(wh: Warehouse, *days: tuple[str, date, bool]) -> None:
    """Follow-up visits as the sync loads them (item, day, reached)."""
    rows = [
        {"submission_key": f"kobo:kf:{KOBO_UID}:{n}", "item_id": item, "visit_date": day}
        | {"reached": reached, "review_status": None, "deleted_at": None}
        for n, (item, day, reached) in enumerate(days)
    ]
    schema = CLEAN_TABLES["followup_visits"].schema
    with wh.transaction() as tx:
        tx.replace("followup_visits", pa.Table.from_pylist(rows, schema=schema))


def test_items_visited_lately_leave_kobocollects_list_until_the_window_ends(
    wh: Warehouse, kobo: Kobo
) -> None:
    put_worklist(wh, base_rows())
    visits(
        wh,
        ("household:34140105-07", date(2026, 12, 1), True),  # 5 days ago: off the list
        ("household:34140105-08", date(2026, 11, 1), True),  # past the 14 days: back on it
        ("group:G34140407-1", date(2026, 12, 4), False),  # not reached: still to do
    )
    assert push(wh, kobo).error is None
    status = {r["item_id"]: (r["status"], r["visited_on"]) for r in kobo.served()[1]}
    assert status["household:34140105-07"] == ("visited", "2026-12-01")
    assert status["household:34140105-08"] == ("open", "")
    assert status["group:G34140407-1"] == ("open", "")


def test_unless_servers_are_named_only_those_with_the_form_get_the_lists(
    wh: Warehouse, kobo: Kobo
) -> None:
    put_worklist(wh, base_rows())
    (only,) = push_lists(wh, ON, ["kf", "central"], [kobo.form], NOW, "r1")
    assert (only.server, only.error) == ("kf", None)  # central has no follow-up form: left out
    named = PhoneSettings(enabled=True, servers=("kf", "central"))
    results = {
        r.server: r for r in push_lists(wh, named, ["kf", "central"], [kobo.form], NOW, "r2")
    }
    assert results["kf"].error is None
    assert "follow-up form (sammachip_followup) is not there" in str(results["central"].error)
    (none,) = push_lists(wh, ON, ["central"], [], NOW, "r3")
    assert none.error and "deploy schemas/forms/followup.xlsx" in none.error
