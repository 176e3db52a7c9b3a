"""Officers in the field, for the demo and the tests: a phone (ODK Collect) that downloads its
officer's list from the simulated Central under its App User's key, and sends follow-up visits
over HTTP as Collect does — the instance of the follow-up form (`schemas.followup_form`) with
its entity update.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import httpx

from sammachip.schemas.followup_form import FORM_ID, LIST_NAME, OPEN, VERSION
from sammachip.simulators.odk.entities import AppUser, EntityStore

OPENROSA = {"X-OpenRosa-Version": "1.0"}


def visit_instance(
    item: dict[str, str],
    instance_id: str,
    *,
    officer_id: str,
    day: date,
    states: Sequence[str] | None = None,
    reached: bool = True,
) -> bytes:
    """The instance ODK Collect finalises when an officer records a visit to `item` (a row of
    the `followups.csv` their phone downloaded): one state per open reason."""
    rule_ids, names = item["reason_ids"].split(), item["reason_names"].split()
    states = list(states or ["resolved"] * len(rule_ids))
    reasons = "".join(
        f"<reasons><rule_id>{r}</rule_id><rule_name>{n}</rule_name><state>{s}</state></reasons>"
        for r, n, s in zip(rule_ids, names, states, strict=True)
    )
    answer, status = ("yes", "visited") if reached else ("no", OPEN)
    return (
        '<?xml version="1.0"?><data xmlns:jr="http://openrosa.org/javarosa" '
        'xmlns:entities="http://www.opendatakit.org/xforms/entities" '
        f'id="{FORM_ID}" version="{VERSION}">'
        f"<start>{day}T08:30:00.000+07:00</start><end>{day}T08:55:00.000+07:00</end>"
        f"<today>{day}</today><officer_id>{officer_id}</officer_id>"
        f"<item>{item['name']}</item><item_id>{item['item_id']}</item_id>"
        f"<subject_type>{item['subject_type']}</subject_type>"
        f"<subject_id>{item['subject_id']}</subject_id>"
        f"<reason_ids>{item['reason_ids']}</reason_ids>"
        f"<reason_names>{item['reason_names']}</reason_names>"
        f"<n_reasons>{item['n_reasons']}</n_reasons><reached>{answer}</reached>{reasons}"
        "<problem>ยังไม่มีตลาด</problem><action>พาไปออกร้านที่อำเภอ</action>"
        f"<next_visit>{day + timedelta(days=14)}</next_visit><photo/>"
        f"<status>{status}</status><visited_on>{day}</visited_on>"
        f'<meta><entity dataset="{LIST_NAME}" update="{int(reached)}" '
        f'baseVersion="{item["__version"]}" trunkVersion="" branchId="" id="{item["name"]}"/>'
        f"<instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


@dataclass
class Phone:
    """An officer's ODK Collect, configured with their App User's QR code."""

    url: str  # the simulated Central
    user: AppUser
    project_id: int = 1

    @property
    def officer_id(self) -> str:
        """The App User's `officer_id`, or on a Central without actor properties the id in
        its name, `<name> (<officer id>)`, as the push names it."""
        named = self.user.display_name.rsplit("(", 1)[-1].rstrip(")")
        return self.user.properties.get("officer_id") or named

    def _key(self) -> str:
        return f"{self.url}/v1/key/{self.user.token}/projects/{self.project_id}"

    def items(self) -> list[dict[str, str]]:
        """The list as the phone downloads it (`followups.csv` of the follow-up form)."""
        answer = httpx.get(f"{self._key()}/forms/{FORM_ID}/attachments/{LIST_NAME}.csv")
        answer.raise_for_status()
        return list(csv.DictReader(io.StringIO(answer.text)))

    def open_items(self) -> list[dict[str, str]]:
        """What the form offers the officer: their items not visited yet."""
        return [i for i in self.items() if i["status"] == OPEN]

    def send(self, instance: bytes) -> httpx.Response:
        files = {"xml_submission_file": ("submission.xml", instance, "text/xml")}
        return httpx.post(f"{self._key()}/submission", files=files, headers=OPENROSA)


def phones(url: str, store: EntityStore, project_id: int = 1) -> dict[str, Phone]:
    """officer_id → their phone, for every App User of the project."""
    users = store.app_users(project_id)
    return {p.officer_id: p for p in (Phone(url, u, project_id) for u in users)}


@dataclass(frozen=True)
class Visit:
    officer_id: str
    item_id: str
    label: str
    outcome: str  # resolved | in_progress | not_reached


def field_day(phone: Phone, day: date, visits: int = 3) -> list[Visit]:
    """An officer visits the first `visits` households their form offers (other items after
    them): the first resolves every reason, the second finds them still in progress, the
    third finds nobody home."""
    done = []
    plan = ("resolved", "in_progress", "not_reached")
    offered = sorted(phone.open_items(), key=lambda i: i["subject_type"] != "household")
    for n, item in enumerate(offered[:visits]):
        outcome = plan[n % len(plan)]
        states = ["resolved" if outcome == "resolved" else "in_progress"] * int(item["n_reasons"])
        instance = visit_instance(
            item,
            f"uuid:{day}-{phone.officer_id}-{n:02d}-{item['name'][:8]}",
            officer_id=phone.officer_id,
            day=day,
            states=states,
            reached=outcome != "not_reached",
        )
        phone.send(instance).raise_for_status()
        done.append(Visit(phone.officer_id, item["item_id"], item["label"], outcome))
    return done
