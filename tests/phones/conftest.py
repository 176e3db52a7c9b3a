"""The phones' servers on loopback (the ODK Central and Kobo simulators with the follow-up form)
and a small `worklist` mart of the mart's own schema."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sammachip.connectors.kobo import KoboForm, KoboServer, KoboSource
from sammachip.connectors.odk import OdkForm, OdkSource
from sammachip.connectors.odk.client import OdkServer
from sammachip.connectors.sources import HttpPolicy
from sammachip.schemas import followup_form
from sammachip.schemas.tables import WORKLIST_SCHEMA as WORKLIST
from sammachip.simulators.kobo import KoboStore, serve_kobo
from sammachip.simulators.odk import OdkStore, entity_store, serve_odk, xlsform_definition
from sammachip.simulators.odk.entities import EntityStore
from sammachip.simulators.odk.field import Phone, phones
from sammachip.warehouse.load import open_warehouse
from sammachip.warehouse.store import Warehouse
from tests.smtp import smtp  # noqa: F401  (a fixture: a real SMTP server on loopback)

EMAIL, PASSWORD = "cdd.ubon@example.org", "รหัสผ่าน-Strong-2568!"
TOKEN = "f" * 40
KOBO_UID = "aFollowupForm000000001"
FAST = HttpPolicy(timeout=10, attempts=2, backoff_cap=0.01)

# The mart's own columns, and one it might one day carry that must stay home.
WORKLIST_SCHEMA = WORKLIST.append(pa.field("national_id", pa.string()))

RULES = {
    "R04": ("R04_TRAINED_NO_MATERIALS", "อบรมแล้วยังไม่ได้รับวัสดุ", "Trained, no materials"),
    "R05": ("R05_NO_FOLLOWUP_INCOME", "ยังไม่ติดตามรายได้", "No follow-up income survey"),
    "R06": (
        "R06_OUTCOME_BELOW_TARGET",
        "ไม่ได้ประกอบอาชีพหรือรายได้ไม่เพิ่ม",
        "Not practising or income not up",
    ),
    "R07": ("R07_VILLAGE_NO_GROUP", "หมู่บ้านยังไม่มีกลุ่มอาชีพ", "Village without a group"),
    "R01": ("R01_CONTACT_BEFORE_SESSION", "แจ้งครัวเรือนก่อนวันกิจกรรม", "Contact before session"),
}
OFFICERS = {"off01": "นางสาวพรทิพย์ ศรีสุข", "off02": "นายสมชาย บุญมา"}


def row(
    officer: str,
    subject_type: str,
    subject_id: str,
    title: str,
    rules: list[str],
    *,
    village: str = "บ้านหนองบัว",
    moo: int = 5,
    house_no: str | None = None,
    order: int = 1,
    priority: int = 2,
) -> dict[str, Any]:
    due = date(2026, 12, 10)
    return {
        "officer_id": officer,
        "officer_name": OFFICERS.get(officer, "สำนักงานพัฒนาชุมชนอำเภอม่วงสามสิบ"),
        "item_id": f"{subject_type}:{subject_id}",
        "subject_type": subject_type,
        "subject_id": subject_id,
        "title_th": title,
        "title_en": title,
        "village_code": "34140105",
        "village_name": village,
        "moo": moo,
        "tambon_code": "341401",
        "tambon_name": "ยางโยภาพ",
        "house_no": house_no,
        "phone": "0812345678" if subject_type == "household" else None,
        "lat": None,
        "lon": None,
        "geo_uri": None,
        "priority": priority,
        "due_date": due,
        "overdue_days": 0,
        "bucket": "today",
        "visit_order": order,
        "reasons": [
            {
                "alert_id": f"{RULES[r][0]}:{subject_id}",
                "rule_id": RULES[r][0],
                "rule_th": RULES[r][1],
                "rule_en": RULES[r][2],
                "priority": priority,
                "due_date": due,
                "detail_th": RULES[r][1],
                "detail_en": RULES[r][2],
                "first_seen": date(2026, 11, 20),
            }
            for r in rules
        ],
        "call_list": [],
        "first_seen": date(2026, 11, 20),
        "national_id": "1341400012345" if subject_type == "household" else None,
    }


def base_rows() -> list[dict[str, Any]]:
    """off01: two households and a session's call list; off02: a group and a sage."""
    return [
        row("off01", "household", "34140105-07", "นายสมศักดิ์ ใจดี", ["R04"], house_no="12"),
        row(
            "off01",
            "household",
            "34140105-08",
            "นางบุญมี แสงทอง",
            ["R05", "R06"],
            house_no="15/2",
            order=2,
        ),
        row(
            "off01",
            "session",
            "T34140105-03",
            "โทรแจ้ง 4 ครัวเรือนก่อนวันที่ 10/12/2569",
            ["R01"],
            order=3,
            priority=1,
        ),
        row("off02", "group", "G34140407-1", "กลุ่มทอผ้าบ้านโนนสวรรค์", ["R07"], village="บ้านโนนสวรรค์"),
        row("off02", "sage", "S34140407-1", "นายคำพอง ศรีวงศ์", ["R04"], village="บ้านโนนสวรรค์"),
    ]


def worklist(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=WORKLIST_SCHEMA)


def put_worklist(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    """The marts' commit of a night: the worklist as the run leaves it."""
    with wh.transaction() as tx:
        tx.replace("worklist", worklist(rows))


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return open_warehouse(str(tmp_path / "warehouse"))


# ---- ODK Central ------------------------------------------------------------------------------


@dataclass
class Central:
    store: OdkStore
    url: str
    form: OdkForm

    @property
    def entities(self) -> EntityStore:
        return entity_store(self.store)

    def held(self) -> dict[str, dict[str, Any]]:
        """item_id → the live entity (uuid, version, label, data), as the server holds it."""
        dataset = self.entities.dataset(1, followup_form.LIST_NAME)
        return {
            e.current.data["item_id"]: {
                "uuid": e.uuid,
                "version": e.current.version,
                "label": e.current.label,
                "data": dict(e.current.data),
            }
            for e in dataset.live()
        }

    def phone(self, officer_id: str) -> Phone:
        """The officer's ODK Collect, under the App User the push made for them."""
        return phones(self.url, self.entities)[officer_id]

    def phone_list(self, officer_id: str) -> list[dict[str, str]]:
        """What the officer's phone downloads as `followups.csv`."""
        return self.phone(officer_id).items()


@pytest.fixture(scope="module")
def central_server() -> Iterator[tuple[OdkStore, str]]:
    store = OdkStore()
    with serve_odk(store, EMAIL, PASSWORD) as url:
        yield store, url


@pytest.fixture
def central(central_server: tuple[OdkStore, str]) -> Central:
    """A Central project with the follow-up form published (Central then holds the list with
    the properties the form saves), nothing pushed yet."""
    store, url = central_server
    store.reset()
    store.faults.clear()
    entity_store(store).reset()
    store.add_project(1, "สัมมาชีพชุมชน")
    entity_store(store).publish_form(1, xlsform_definition(followup_form.ODK_FILE))
    source = OdkSource(OdkServer(url, EMAIL, PASSWORD, project_id=1, name="central"))
    form = OdkForm(source, f"1/{followup_form.FORM_ID}", followup_form.FORM_ID, FAST)
    return Central(store, url, form)


# ---- KoboToolbox ------------------------------------------------------------------------------


@dataclass
class Kobo:
    store: KoboStore
    url: str
    form: KoboForm

    def served(self) -> tuple[str, list[dict[str, str]]]:
        """What KoboCollect gets: the deployed form's version and the rows of followups.csv."""
        http = httpx.Client(base_url=self.url, headers={"Authorization": f"Token {TOKEN}"})
        with http:
            listing = http.get("/formList").text
            version = listing.split(f"<formID>{KOBO_UID}</formID>")[1]
            version = version.split("<version>")[1].split("</version>")[0]
            manifest = http.get(listing.split("<manifestUrl>")[1].split("</manifestUrl>")[0]).text
            url = manifest.split("<downloadUrl>")[1].split("</downloadUrl>")[0]
            body = http.get(url).content.decode()
        return version, list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def kobo() -> Iterator[Kobo]:
    store = KoboStore()
    store.add_asset(KOBO_UID, "ติดตามเยี่ยม (sammachip_followup)", followup_form.FORM_ID)
    with serve_kobo(store, TOKEN) as url:
        source = KoboSource(KoboServer(url, TOKEN, name="kf"))
        yield Kobo(store, url, KoboForm(source, KOBO_UID, followup_form.FORM_ID, FAST))
