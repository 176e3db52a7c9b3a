"""Attachment downloads under faults. A photo arrives whole under its final name or not at all:
dropped connections and 5xx bursts are retried, a server down past every retry leaves no file
(the next run fetches it), and a file the server does not have is a clear, permanent error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sammachip.connectors.kobo import KoboClient, KoboError, KoboServer
from sammachip.connectors.retry import TransientError
from sammachip.simulators.faults import Fault
from sammachip.simulators.kobo import KoboStore, serve_kobo
from tests.reliability.helpers import TOKEN, seed_kobo

PHOTO = bytes(range(256)) * 1024  # 256 KiB: several chunks, so a reset lands mid-file
HOUSEHOLD = "sammachip_household"


class Photo:
    def __init__(self, store: KoboStore, url: str, link: str) -> None:
        self.store, self.url, self.link = store, url, link

    def client(self) -> KoboClient:
        return KoboClient(KoboServer(self.url, TOKEN))


@pytest.fixture
def photo() -> Iterator[Photo]:
    store = KoboStore()
    uid = seed_kobo(store)[HOUSEHOLD]
    asset = store.asset(uid)
    assert asset is not None
    first = asset.ids[0]
    att = store.attach(uid, first, "photo", "บ้าน นาง ก.jpg", PHOTO, "image/jpeg")
    with serve_kobo(store, TOKEN) as url:
        yield Photo(store, url, f"{url}/api/v2/assets/{uid}/data/{first}/attachments/{att}/")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_resets_and_5xx_mid_download_end_in_the_whole_file(photo: Photo, tmp_path: Path) -> None:
    for fault in (Fault("reset"), Fault("status", 503), Fault("reset"), Fault("status", 502)):
        photo.store.faults.add(Fault(fault.kind, fault.status, target="/attachments/"))
    dest = tmp_path / "a" / "photo.jpg"
    with photo.client() as client:
        assert client.download(photo.link, dest) is True
    assert dest.read_bytes() == PHOTO
    assert photo.store.faults.served == 4
    assert leftovers(tmp_path) == ["photo.jpg"]


def test_a_server_down_past_every_retry_leaves_no_file_and_the_next_run_fetches_it(
    photo: Photo, tmp_path: Path
) -> None:
    photo.store.faults.add(Fault("reset", target="/attachments/"), times=50)
    dest = tmp_path / "a" / "photo.jpg"
    with photo.client() as client, pytest.raises(TransientError):
        client.download(photo.link, dest)
    assert not dest.exists()  # never a half file under the final name
    photo.store.faults.clear()
    with photo.client() as client:
        assert client.download(photo.link, dest) is True
    assert dest.read_bytes() == PHOTO
    assert leftovers(tmp_path) == ["photo.jpg"]  # the partial file was written over


def test_a_file_the_server_does_not_have_is_a_permanent_error(photo: Photo, tmp_path: Path) -> None:
    missing = photo.link.replace("/attachments/att", "/attachments/attMISSING")
    with photo.client() as client, pytest.raises(KoboError, match="HTTP 404"):
        client.download(missing, tmp_path / "x.jpg")
    assert leftovers(tmp_path) == []
