"""The landing spool: durable, duplicate-absorbing, never outside its root."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from sammachip.connectors.landing import SET_ASIDE, Landing


@pytest.fixture
def landing(tmp_path: Path) -> Landing:
    return Landing(tmp_path / "landing")


def test_a_delivery_is_kept_byte_for_byte_under_source_asset_key(landing: Landing) -> None:
    body = b'{"_id": 7, "name": "\xe0\xb8\x99\xe0\xb8\xb2\xe0\xb8\x87"}'
    assert landing.put("kobo", "aAsset1", "7_u1", body) is True
    assert (landing.root / "kobo" / "aAsset1" / "7_u1.json").read_bytes() == body


def test_a_second_delivery_of_the_same_key_is_absorbed(landing: Landing) -> None:
    assert landing.put("kobo", "aAsset1", "7_u1", b"{}") is True
    assert landing.put("kobo", "aAsset1", "7_u1", b"{}") is False
    assert [f.key for f in landing.pending("kobo")] == ["7_u1"]


def test_concurrent_deliveries_of_one_key_land_exactly_once(landing: Landing) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        results.append(landing.put("kobo", "aAsset1", "9_u9", b'{"_id": 9}'))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(landing.pending("kobo")) == 1
    assert not list((landing.root / "kobo" / "aAsset1").glob(".*"))  # no temp files left


@pytest.mark.parametrize(
    ("source", "asset", "key"),
    [
        ("kobo", "../etc", "k"),
        ("kobo", "a/b", "k"),
        ("kobo", "..", "k"),
        ("kobo", "", "k"),
        ("kobo", "aAsset1", "../../x"),
        ("kobo", "aAsset1", ".hidden"),
        ("../kobo", "aAsset1", "k"),
        ("kobo", "a" * 200, "k"),
    ],
)
def test_names_that_could_escape_the_root_are_refused(
    landing: Landing, source: str, asset: str, key: str
) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        landing.put(source, asset, key, b"{}")
    assert not [p for p in landing.root.parent.rglob("*") if p.is_file()]


def test_pending_lists_every_asset_oldest_first_and_ignores_temp_files(landing: Landing) -> None:
    arrivals = [("aB", "2_b"), ("aA", "1_a"), ("aB", "3_c")]
    for n, (asset, key) in enumerate(arrivals):
        landing.put("kobo", asset, key, b"{}")
        # Set the arrival times: back-to-back writes can share one mtime tick.
        path = landing.folder("kobo", asset) / f"{key}.json"
        os.utime(path, ns=(n * 10**9, n * 10**9))
    (landing.root / "kobo" / "aA" / ".1_a.dead.tmp").write_bytes(b"half")
    assert [(f.asset, f.key) for f in landing.pending("kobo")] == arrivals
    assert landing.pending("odk") == []


def test_remove_drops_only_the_files_given(landing: Landing) -> None:
    landing.put("kobo", "aA", "1_a", b"{}")
    landing.put("kobo", "aA", "2_b", b"{}")
    first, second = landing.pending("kobo")
    assert landing.remove([first]) == 1
    assert landing.remove([first]) == 0  # already gone: not an error
    assert landing.pending("kobo") == [second]


def test_a_removed_key_can_land_again(landing: Landing) -> None:
    # Kobo may retry after the ingest took the first copy: the warehouse drops the replay.
    landing.put("kobo", "aA", "1_a", b"{}")
    landing.remove(landing.pending("kobo"))
    assert landing.put("kobo", "aA", "1_a", b"{}") is True


def test_set_aside_moves_a_file_out_of_pending_with_its_reason(landing: Landing) -> None:
    landing.put("kobo", "aA", "1_a", b"not json")
    (f,) = landing.pending("kobo")
    moved = landing.set_aside(f, "unreadable")
    assert moved == landing.root / SET_ASIDE / "kobo" / "aA" / "1_a.json"
    assert moved.read_bytes() == b"not json"
    assert "unreadable" in (moved.parent / "1_a.reason.txt").read_text()
    assert landing.pending("kobo") == []


def test_clean_temp_deletes_only_stale_temp_files(landing: Landing) -> None:
    landing.put("kobo", "aA", "1_a", b"{}")
    folder = landing.root / "kobo" / "aA"
    stale, fresh = folder / ".x.1.tmp", folder / ".y.2.tmp"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(stale, (0, 0))
    assert landing.clean_temp("kobo", older_than=3600) == 1
    assert not stale.exists() and fresh.exists()


def test_a_write_that_fails_raises_and_leaves_nothing_behind(
    landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing.put("kobo", "aA", "1_a", b"{}")

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        landing.put("kobo", "aA", "2_b", b"{}")
    monkeypatch.undo()
    assert [f.key for f in landing.pending("kobo")] == ["1_a"]
    assert not list((landing.root / "kobo" / "aA").glob(".*"))


def test_an_unwritable_root_raises_oserror(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the landing folder should be")
    with pytest.raises(OSError):
        Landing(blocker / "landing").put("kobo", "aA", "1_a", b"{}")


def test_without_hard_links_it_falls_back_to_rename(
    landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    assert landing.put("kobo", "aA", "1_a", b"{}") is True
    assert landing.put("kobo", "aA", "1_a", b"{}") is False
    assert [f.key for f in landing.pending("kobo")] == ["1_a"]
