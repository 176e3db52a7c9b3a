"""Set-up for the reliability trials: a tiny district on the Kobo simulator with the
fingerprint of its uninterrupted run, clients that retry without waiting, and one hostile
night through the real `nightly` flow (read by the permanent-error and the secrets tests)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the crash-safety helpers are imported as `tests.warehouse…`
    sys.path.insert(0, str(ROOT))

from sammachip.connectors.kobo import KoboClient  # noqa: E402
from sammachip.connectors.odk import OdkClient  # noqa: E402
from sammachip.flows.nightly import nightly  # noqa: E402
from sammachip.schemas.validation import SuiteRunner  # noqa: E402
from sammachip.simulators.cohort import HOUSEHOLD, SESSION  # noqa: E402
from sammachip.simulators.faults import Fault, FaultPlan  # noqa: E402
from sammachip.simulators.kobo import KoboStore, seed_from_cohort, serve_kobo  # noqa: E402
from sammachip.simulators.odk import OdkStore, serve_odk  # noqa: E402
from sammachip.warehouse import failpoints  # noqa: E402
from tests.reliability.helpers import (  # noqa: E402
    EMAIL,
    KOBO_TOKEN,
    ODK_PASSWORD,
    TODAY,
    TOKEN,
    BucketDistrict,
    District,
    Night,
    arm_on_request,
    captured_logs,
    captured_output,
    fingerprint,
    in_child,
    mirror,
    seed_kobo,
    seed_odk,
    sync,
    sync_to,
    tiny_cohort,
)
from tests.reliability.s3_server import serve_s3  # noqa: E402

BUCKET = "sammachip-trials"


@pytest.fixture(scope="module", autouse=True)
def fast_clients() -> Iterator[None]:
    """Retries are exercised for real but wait milliseconds (Retry-After is still honoured,
    up to `[http] backoff_cap`). The backoff base is the clients' own default, not a setting;
    timeout, attempts and cap come from `[http]` (settings) as in production."""
    with pytest.MonkeyPatch.context() as mp:
        for cls in (KoboClient, OdkClient):
            defaults = dict(cls.__init__.__kwdefaults__ or {})
            mp.setattr(cls.__init__, "__kwdefaults__", {**defaults, "backoff": 0.001})
        yield


@pytest.fixture(scope="session")
def district(
    suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[District]:
    store = KoboStore()
    uids = seed_kobo(store)
    with serve_kobo(store, TOKEN, max_page_size=10) as url:
        workdir = tmp_path_factory.mktemp("reference")
        os.environ[failpoints.ENV] = "*:0"  # count every failpoint pass, never die
        failpoints.reset()
        try:
            sync(workdir, url, suite_runner)
        finally:
            del os.environ[failpoints.ENV]
        passes = failpoints.passes()
        failpoints.reset()
        yield District(store, url, uids, fingerprint(workdir), passes)


@pytest.fixture
def kobo_faults(district: District) -> Iterator[FaultPlan]:
    """The district's fault plan, empty before and after the test."""
    district.store.faults.clear()
    yield district.store.faults
    district.store.faults.clear()


# ---- the district's sync into a bucket (test_s3_kills.py, test_s3_faults.py) -------------


@pytest.fixture(scope="session")
def s3(
    district: District, suite_runner: SuiteRunner, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BucketDistrict]:
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
    with serve_s3(BUCKET) as bucket, pytest.MonkeyPatch.context() as mp:
        for key, value in {**env, "SAMMACHIP_S3_ENDPOINT": bucket.endpoint}.items():
            mp.setenv(key, value)  # forked children inherit them
        root, uri = tmp_path_factory.mktemp("s3-reference"), bucket.uri("reference")

        def uninterrupted() -> dict[str, Any]:  # in a child, as the trials' runs are
            started = time.perf_counter()
            sync_to(uri, root, district.url, suite_runner)
            seconds = time.perf_counter() - started
            return {"seconds": seconds, "fingerprint": fingerprint(mirror(uri, root / "copy"))}

        outcome = in_child(uninterrupted)
        assert outcome.error is None, outcome.trace
        uploads = {
            kind: n for (prefix, kind), n in bucket.switch.uploads.items() if prefix == "reference"
        }
        result = outcome.result
        yield BucketDistrict(
            bucket, district.url, result["fingerprint"], result["seconds"], uploads
        )  # type: ignore[arg-type]


# ---- one hostile night through the real flow ---------------------------------------------


def _night_servers(kobo: KoboStore, odk: OdkStore) -> tuple[dict[str, str], dict[str, str]]:
    uids = seed_from_cohort(kobo, tiny_cohort(11))
    forms = seed_odk(odk)  # its hostile households reach the officer files as alerts
    household = uids[HOUSEHOLD]
    arm_on_request(kobo.faults, f"{household}/data", 2, [Fault("status", 403, target=household)])
    kobo.faults.add(Fault("reset", target=uids[SESSION]))
    arm_on_request(odk.faults, ".svc/Submissions", 2, action=odk.expire_sessions)
    odk.faults.add(Fault("status", 403, target=f"{forms[SESSION]}.svc"))
    return uids, forms


def _prefect_record() -> tuple[list[dict[str, Any]], list[Path]]:
    """Every flow and task run the API holds (parameters, state messages), and its DB files."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    with get_client(sync_client=True) as client:
        runs = [*client.read_flow_runs(), *client.read_task_runs()]
    records = [
        {
            "name": r.name,
            "parameters": getattr(r, "parameters", {}),
            "message": r.state.message if r.state else None,
        }
        for r in runs
    ]
    secret = get_current_settings().server.database.connection_url
    url = secret.get_secret_value() if secret else ""
    db = Path(url.partition(":///")[2]) if url.startswith("sqlite") else None
    files = sorted(db.parent.glob(db.name + "*")) if db else []
    return records, files


@pytest.fixture(scope="session")
def night(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    """The `nightly` flow, once, under the Prefect test API, every log record and byte of
    terminal output captured (see `Night`)."""
    workdir = tmp_path_factory.mktemp("night")
    kobo, odk = KoboStore(), OdkStore()
    uids, forms = _night_servers(kobo, odk)
    env = {
        "SAMMACHIP_KOBO_TOKEN": KOBO_TOKEN,
        "SAMMACHIP_ODK_EMAIL": EMAIL,
        "SAMMACHIP_ODK_PASSWORD": ODK_PASSWORD,
        "SAMMACHIP_ODK_PROJECT": "1",
    }
    with (
        serve_kobo(kobo, KOBO_TOKEN, max_page_size=10) as kobo_url,
        serve_odk(odk, EMAIL, ODK_PASSWORD) as odk_url,
    ):
        env |= {"SAMMACHIP_KOBO_URL": kobo_url, "SAMMACHIP_ODK_URL": odk_url}
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            with captured_logs() as logs, captured_output() as output:
                summary = nightly(workdir=str(workdir), today=TODAY)
        runs, db_files = _prefect_record()
        yield Night(workdir, summary, uids, forms, logs, "".join(output), runs, db_files)
