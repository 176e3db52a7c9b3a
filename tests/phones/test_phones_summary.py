"""What the run summary says of the phones: one line per server, a failure once in full with
its fix, and the fallback of an older Central."""

from __future__ import annotations

from datetime import date

import pytest
from rich.console import Console

from sammachip.flows import summary as summary_module
from sammachip.flows.nightly import RunSummary
from sammachip.flows.summary import print_phones
from sammachip.phones.odk import PushResult


def said(summary: RunSummary, monkeypatch: pytest.MonkeyPatch) -> str:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    monkeypatch.setattr(summary_module, "console", console)
    print_phones(summary)
    return console.export_text()


def test_each_server_is_a_line_and_a_failure_names_its_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = (
        "server kf: lists not pushed (form aFollow: HTTP 403 — the token's user may not edit "
        "this form: replacing its media and redeploying needs the 'Edit form' permission (or "
        "its owner)); the next run pushes again"
    )
    summary = RunSummary(
        "r1",
        date(2026, 12, 5),
        phones=[
            PushResult("central", "odk", created=3, updated=1, unchanged=40, officers=4),
            PushResult("kf", "kobo", error=refused),
        ],
    )
    text = " ".join(said(summary, monkeypatch).split())  # the lines as read, folded at 80
    assert "central: 4 officers, 3 new, 1 changed, 0 closed, 0 back, 40 unchanged" in text
    assert text.count("Edit form") == 1
    assert "✗ phones server kf: lists not pushed" in text
