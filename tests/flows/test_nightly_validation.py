"""The nightly's validation process ends with the run, whether the run succeeded or raised;
real Prefect, the Kobo simulator over loopback, GX in its own process."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psutil
import pytest

from sammachip.flows.nightly import nightly

TODAY = date(2026, 11, 24)


def validation_processes() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "sammachip.schemas.validation_process" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # ended while we looked
            continue
    return found


def test_a_nightly_validates_in_its_own_process_and_leaves_none_behind(
    prefect_harness: None, kobo_env: None, tmp_path: Path
) -> None:
    summary = nightly(workdir=str(tmp_path), today=TODAY)
    assert summary.reconciles and not [f.error for f in summary.forms if f.error]
    assert sum(f.clean for f in summary.forms) > 0
    assert summary.data_docs is not None and summary.data_docs.exists()  # built by the child
    assert validation_processes() == []


def test_a_nightly_that_raises_leaves_no_validation_process(
    prefect_harness: None, kobo_env: None, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "warehouse").write_text("not a folder", encoding="utf-8")
    with pytest.raises(OSError):  # after GX started: the warehouse is read to list the forms
        nightly(workdir=str(tmp_path), today=TODAY)
    assert validation_processes() == []
