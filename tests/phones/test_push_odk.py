"""Each officer's worklist pushed to ODK Central over loopback: what the server holds and what
each officer's phone downloads afterwards; a second push sends nothing; an interrupted push is
finished by the next without doubles; a visit made while the pipeline changes the item keeps
its status."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sammachip.connectors.odk.entities import entity_uuid
from sammachip.phones.push import PhoneSettings, push_lists
from sammachip.schemas.followup_form import FORM_ID, LIST_NAME
from sammachip.simulators.faults import Fault
from sammachip.simulators.odk import apply_form_update
from sammachip.warehouse.store import Warehouse
from tests.phones.conftest import Central, base_rows, put_worklist, row

ON = PhoneSettings(enabled=True)
NOW = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)


def push(wh: Warehouse, central: Central, run: str = "run1"):  # type: ignore[no-untyped-def]
    (result,) = push_lists(wh, ON, ["central"], [central.form], NOW, run)
    return result


def test_each_officers_phone_downloads_only_their_open_items(
    wh: Warehouse, central: Central
) -> None:
    put_worklist(wh, base_rows())
    result = push(wh, central)
    assert (result.error, result.warning) == (None, None)
    assert (result.created, result.officers) == (5, 2)
    off01 = central.phone_list("off01")
    assert [r["item_id"] for r in off01] == [
        "session:T34140105-03",
        "household:34140105-08",
        "household:34140105-07",
    ]  # Central's order: newest first; the form sorts nothing away
    assert {r["item_id"] for r in central.phone_list("off02")} == {
        "group:G34140407-1",
        "sage:S34140407-1",
    }
    somsak = next(r for r in off01 if r["item_id"] == "household:34140105-07")
    assert somsak["name"] == entity_uuid("household:34140105-07")
    assert somsak["label"] == "นายสมศักดิ์ ใจดี · บ้านหนองบัว หมู่ 5 · บ้านเลขที่ 12 · อบรมแล้วยังไม่ได้รับวัสดุ"
    assert (somsak["status"], somsak["__version"], somsak["phone"]) == ("open", "1", "0812345678")
    boonmee = next(r for r in off01 if r["item_id"] == "household:34140105-08")
    assert boonmee["reason_ids"] == "R05_NO_FOLLOWUP_INCOME R06_OUTCOME_BELOW_TARGET"
    assert boonmee["n_reasons"] == "2"
    # no national ID leaves the warehouse, whatever the mart carries
    pushed = repr(central.held())
    assert "1341400012345" not in pushed and not re.search(r"\b\d{13}\b", pushed)


def test_the_list_is_filtered_on_the_server_for_each_officers_app_user(
    wh: Warehouse, central: Central
) -> None:
    put_worklist(wh, base_rows())
    push(wh, central)
    dataset = central.entities.dataset(1, LIST_NAME)
    assert dataset.access_filter == {
        "type": "property",
        "rules": [{"datasetProperty": "officer_id", "actorProperty": "officer_id"}],
    }
    users = {u.properties["officer_id"]: u for u in central.entities.app_users(1)}
    assert set(users) == {"off01", "off02"}
    assert all(FORM_ID in u.forms for u in users.values())


def test_a_second_push_sends_nothing_and_records_nothing_new(
    wh: Warehouse, central: Central
) -> None:
    put_worklist(wh, base_rows())
    push(wh, central)
    versions, held = wh.snapshot().version, central.held()
    requests: list[str] = []
    central.store.faults.on_request(requests.append)
    again = push(wh, central, "run2")
    assert (again.created, again.updated, again.deleted, again.unchanged) == (0, 0, 0, 5)
    assert central.held() == held
    assert wh.snapshot().version == versions  # the record already said so
    writes = [p for p in requests if "/entities" in p and not p.endswith(".svc/Entities")]
    assert writes == []  # and only reads went to the server


def test_changed_items_are_updated_closed_ones_deleted_new_ones_created(
    wh: Warehouse, central: Central
) -> None:
    put_worklist(wh, base_rows())
    push(wh, central)
    rows = base_rows()
    rows[0] = row(
        "off01", "household", "34140105-07", "นายสมศักดิ์ ใจดี", ["R04", "R05"], house_no="12"
    )
    del rows[1]  # its reasons cleared: closed
    rows.append(row("off02", "household", "34140407-02", "นางคำ ดีใจ", ["R05"], house_no="3"))
    put_worklist(wh, rows)
    result = push(wh, central, "run2")
    assert (result.created, result.updated, result.deleted) == (1, 1, 1)
    held = central.held()
    assert "household:34140105-08" not in held
    assert held["household:34140105-07"]["version"] == 2
    assert held["household:34140105-07"]["data"]["n_reasons"] == "2"
    assert "household:34140105-08" not in {r["item_id"] for r in central.phone_list("off01")}
    record = {r["item_id"]: r for r in wh.read("phone_items").to_pylist()}
    assert set(record) == set(held)
    assert record["household:34140105-07"]["version"] == 2


def test_an_item_that_comes_back_is_restored_not_refused(wh: Warehouse, central: Central) -> None:
    put_worklist(wh, base_rows())
    push(wh, central)
    put_worklist(wh, base_rows()[1:])
    assert push(wh, central, "run2").deleted == 1
    put_worklist(wh, base_rows())
    result = push(wh, central, "run3")
    assert (result.restored, result.created, result.error) == (1, 0, None)
    assert "household:34140105-07" in central.held()


def test_a_push_interrupted_half_way_is_finished_by_the_next_without_doubles(
    wh: Warehouse, central: Central
) -> None:
    put_worklist(wh, base_rows())
    push(wh, central)
    rows = [
        row("off01", "household", "34140105-07", "นายสมศักดิ์ ใจดี", ["R04", "R05"], house_no="12"),
        *base_rows()[2:],
        row("off02", "household", "34140407-02", "นางคำ ดีใจ", ["R05"], house_no="3"),
    ]
    put_worklist(wh, rows)
    recorded = wh.read("phone_items")

    created: list[str] = []

    def fail_after_the_create(path: str) -> None:
        if created:  # the bulk create went through; from the next request on the server dies
            central.store.faults.add(Fault("status", 503))
        if path.endswith("/entities"):
            created.append(path)

    central.store.faults.on_request(fail_after_the_create)
    broken = push(wh, central, "run2")
    assert broken.error and "the next run pushes again" in broken.error
    assert wh.read("phone_items") == recorded  # no record of a push that did not finish
    assert "household:34140407-02" in central.held()  # created before the server died
    central.store.faults.clear()
    done = push(wh, central, "run3")
    assert done.error is None
    assert (done.created, done.updated, done.deleted) == (0, 1, 1)
    held = central.held()
    assert sorted(held) == sorted(r["item_id"] for r in rows)  # each item once
    assert len({h["uuid"] for h in held.values()}) == len(rows)
    record = {
        r["item_id"]: (r["entity_uuid"], r["version"]) for r in wh.read("phone_items").to_pylist()
    }
    assert record == {k: (h["uuid"], h["version"]) for k, h in held.items()}


def test_a_visit_while_the_pipeline_changes_the_item_keeps_the_fields_status(
    wh: Warehouse, central: Central
) -> None:
    put_worklist(wh, base_rows())
    push(wh, central)
    somsak = entity_uuid("household:34140105-07")
    phone = next(u for u in central.entities.app_users(1) if u.properties["officer_id"] == "off01")

    def visit_lands_first(path: str) -> None:
        # the officer's visit reaches Central between the push's read and its update
        if path.endswith(f"/entities/{somsak}") and not central.entities.received:
            central.entities.received[(1, "uuid:visit-1")] = b"<data/>"
            apply_form_update(
                central.entities,
                1,
                LIST_NAME,
                somsak,
                {"status": "visited", "visited_on": "2026-12-05", "next_visit": "2026-12-19"},
                base_version=1,
                user=phone,
                instance_id="uuid:visit-1",
            )

    central.store.faults.on_request(visit_lands_first)
    rows = base_rows()
    rows[0]["priority"] = 1  # the data moved it up meanwhile
    put_worklist(wh, rows)
    result = push(wh, central, "run2")
    assert (result.error, result.updated, result.field_kept) == (None, 1, 1)
    item = central.held()["household:34140105-07"]
    assert item["data"]["status"] == "visited"  # the field's status won
    assert item["data"]["next_visit"] == "2026-12-19"
    assert item["data"]["priority"] == "1"  # and the pipeline's change landed too
    assert item["version"] == 3
    mine = {r["item_id"]: r for r in central.phone_list("off01")}
    assert mine["household:34140105-07"]["status"] == "visited"  # the form no longer offers it


def test_a_central_before_v2026_2_gets_the_district_list_on_every_phone_and_says_so(
    wh: Warehouse, central: Central
) -> None:
    central.entities.access_filters = False  # no actor properties, no access filters
    put_worklist(wh, base_rows())
    result = push(wh, central)
    assert result.error is None and result.created == 5
    assert result.warning and "before v2026.2" in result.warning
    # the fallback: every phone downloads the whole list; the form filters by officer id
    for officer in ("off01", "off02"):
        assert len(central.phone_list(officer)) == 5
    assert all(u.properties == {} for u in central.entities.app_users(1))


def test_an_item_the_data_still_list_after_the_window_is_back_on_the_phone(
    wh: Warehouse, central: Central
) -> None:
    put_worklist(wh, base_rows())
    push(wh, central)
    phone = next(u for u in central.entities.app_users(1) if u.properties["officer_id"] == "off01")
    for n, (item_id, day) in enumerate(
        [("household:34140105-07", "2026-11-15"), ("household:34140105-08", "2026-12-01")]
    ):
        apply_form_update(
            central.entities,
            1,
            LIST_NAME,
            entity_uuid(item_id),
            {"status": "visited", "visited_on": day, "next_visit": ""},
            base_version=1,
            user=phone,
            instance_id=f"uuid:visit-{n}",
        )
    result = push(wh, central, "run2")  # 6 December in Bangkok; the window is 14 days
    assert (result.reopened, result.updated) == (1, 1)
    mine = {r["item_id"]: r["status"] for r in central.phone_list("off01")}
    assert mine["household:34140105-07"] == "open"  # visited 21 days ago, still listed
    assert mine["household:34140105-08"] == "visited"  # visited 5 days ago
