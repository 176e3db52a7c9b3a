"""GX Data Docs as the district office opens them: in headless Chromium with the network
off. As GX writes it the index is blank (its tables are filled by scripts from CDNs); once
`make_offline` has rewritten the site, the index lists the validation runs and the suites,
each a link that opens, and nothing is fetched from anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from sammachip.reports.data_docs import make_offline
from sammachip.schemas.batch import validate_form
from sammachip.schemas.validation import SuiteRunner
from tests.reports.browser import browser, needs_chromium
from tests.reports.test_fixes import BAD_ID, FORM, GOOD_ID, NOW, kobo

pytestmark = [pytest.mark.slow, needs_chromium]

# What a reader sees of the index: the rows of its two tables and any link that leaves.
SEEN = """(() => {
  const rows = (sel) => [...document.querySelectorAll(sel + " tbody tr")]
    .filter((tr) => tr.offsetHeight > 0).map((tr) => tr.innerText.trim());
  return {
    runs: rows(".ge-index-page-validation-results-table"),
    suites: rows("#section-1-content-block-2-2-body-table"),
    firstRun: document.querySelector(".ge-index-page-validation-results-table tbody a")?.href,
  };
})()"""


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same Data Docs site as GX built it and as the office gets it: a GX context of its
    own, holding this one run (the suite's shared runner holds every other test's runs)."""
    runner = SuiteRunner()
    subs = [kobo(1, "enum_somchai", BAD_ID, "นายอุดม ทองแสง"), kobo(2, "x", GOOD_ID, "นางสาย")]
    validate_form(FORM, subs, runner, batch="b", now=NOW)
    built = runner.build_data_docs(tmp_path_factory.mktemp("gx") / "data_docs").parent
    offline = tmp_path_factory.mktemp("office") / "data_docs"
    shutil.copytree(built, offline)
    assert make_offline(offline)
    assert make_offline(offline) == []  # a second pass leaves the site as it is
    return {"gx": built, "office": offline}


def seen_offline(index: Path, profile: Path) -> tuple[dict[str, Any], list[str]]:
    with browser(profile) as chromium:
        chromium.offline()
        chromium.open(index, 1280, 900)
        seen = chromium.evaluate(SEEN)
        requested = chromium.requested()
    return seen, requested


def test_as_gx_writes_it_the_index_is_blank_offline(sites: dict[str, Path], tmp_path: Path) -> None:
    seen, requested = seen_offline(sites["gx"] / "index.html", tmp_path / "p")
    assert seen["runs"] == [] and seen["suites"] == []
    assert any(url.startswith("https://") for url in requested)  # the CDNs it needed


def test_the_office_copy_renders_with_the_network_off(
    sites: dict[str, Path], tmp_path: Path
) -> None:
    seen, requested = seen_offline(sites["office"] / "index.html", tmp_path / "p")
    assert len(seen["runs"]) == 1 and "households" in seen["runs"][0]
    assert "households_suite" in seen["suites"] and len(seen["suites"]) >= 8
    assert not [url for url in requested if not url.startswith("file:")]  # nothing fetched
    run_page = Path(seen["firstRun"].removeprefix("file://"))
    assert run_page.exists() and run_page.is_relative_to(sites["office"])
    seen, requested = seen_offline(run_page, tmp_path / "q")
    assert not [url for url in requested if not url.startswith("file:")]
