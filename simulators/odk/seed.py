"""A generated cohort loaded into the simulated Central, as its phones and reviewers would have
made it: the programme's forms from their XLSForms, then submissions, edits and reviews in the
order they happened, so a cohort can be replayed in steps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sammachip.schemas.registry import FORMS
from sammachip.simulators.cohort import APPROVED, FORM_IDS, NOT_APPROVED, ON_HOLD, Cohort, paused_gc
from sammachip.simulators.odk.forms import xlsform_definition
from sammachip.simulators.odk.store import OdkStore

KOBO_TO_REVIEW = {APPROVED: "approved", NOT_APPROVED: "rejected", ON_HOLD: "hasIssues"}
PUBLIC_LINK = "ลิงก์สาธารณะ"  # the actor of anonymous web-form submissions (a Public Access Link)


def _device_id(submitter: str | None) -> str | None:
    """Collect's `collect:<16 chars>`; None for web-form (Enketo) submissions."""
    if submitter is None:
        return None
    return "collect:" + hashlib.sha1(submitter.encode()).hexdigest()[:16]


@dataclass(frozen=True, order=True)
class _Event:
    at: datetime
    n: int  # generation order breaks ties
    xml_form_id: str = field(compare=False)
    root: str = field(compare=False)
    changes: dict[str, Any] | None = field(compare=False)  # an edit, or else a review
    review: str | None = field(compare=False, default=None)


def seed_odk_from_cohort(
    store: OdkStore,
    cohort: Cohort,
    project_id: int = 1,
    *,
    after: datetime | None = None,
    as_of: datetime | None = None,
) -> dict[str, str]:
    """Load a cohort into the store; returns {form_id: xmlFormId}.

    Forms come from the programme's XLSForms. Only what happened in (after, as_of] is applied:
    submissions by receive time, then edits and reviews in time order (a review after an edit
    wins, an edit after a review sets "edited"), so a cohort can be replayed in steps. Kobo
    validation statuses map to review states: not approved → rejected, on hold → hasIssues.
    """

    def in_window(moment: datetime | None) -> bool:
        return (
            moment is not None
            and (after is None or moment > after)
            and (as_of is None or moment <= as_of)
        )

    if store.project(project_id) is None:
        store.add_project(project_id, "สัมมาชีพชุมชน")
    xml_ids: dict[str, str] = {}
    for form_id in FORM_IDS:
        definition = xlsform_definition(FORMS[form_id].xlsform)
        if store.form(project_id, definition.xml_form_id) is None:
            store.add_definition(project_id, definition)
        xml_ids[form_id] = definition.xml_form_id
    events: list[_Event] = []
    with paused_gc():
        for n, sub in enumerate(cohort.submissions):  # already in received_at order
            xml_id, root = xml_ids[sub.form_id], str(sub.answers.get("meta/instanceID"))
            if in_window(sub.received_at):
                store.submit(
                    xml_id,
                    sub.answers,
                    sub.received_at,
                    project_id=project_id,
                    submitter=sub.submitted_by or PUBLIC_LINK,
                    device_id=_device_id(sub.submitted_by),
                )
            events += [
                _Event(at, n, xml_id, root, changes) for at, changes in sub.edits if in_window(at)
            ]
            review = KOBO_TO_REVIEW.get(sub.validation_status or "")
            if review and sub.validated_at and in_window(sub.validated_at):
                events.append(_Event(sub.validated_at, n, xml_id, root, None, review))
        for event in sorted(events):
            _apply(store, project_id, event)
    return xml_ids


def _apply(store: OdkStore, project_id: int, event: _Event) -> None:
    try:
        if event.changes is not None:
            store.edit(
                event.xml_form_id, event.root, event.changes, project_id=project_id, at=event.at
            )
        elif event.review is not None:
            store.set_review_state(
                event.xml_form_id, event.root, event.review, project_id=project_id, at=event.at
            )
    except KeyError:  # received before `after`, in a replay step this store never saw
        pass
