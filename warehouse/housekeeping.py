"""Housekeeping: compact the many small files event-driven ingest produces, and delete file
versions no recent manifest needs — never touching what the latest version reads."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sammachip.warehouse.store import MANIFEST_DIR, Warehouse


@dataclass
class CompactResult:
    table: str
    files_before: int
    files_after: int


@dataclass
class VacuumResult:
    files_deleted: int
    bytes_freed: int
    manifests_deleted: int


def _partition_of(path: str, table: str) -> str | None:
    """`tables/raw_submissions/source=kobo/form=x/...` → `source=kobo/form=x/...`."""
    parent = str(Path(path).parent)
    prefix = f"tables/{table}"
    if not parent.startswith(prefix):
        return None
    return parent[len(prefix) + 1 :] or None


def compact(wh: Warehouse, *, min_files: int = 8) -> list[CompactResult]:
    """Merge, per table partition, files when there are at least `min_files` of them.

    The rows are the same before and after (same content hash); readers of the previous
    version keep working because old files are only deleted later by `vacuum`.
    """
    results = []
    with wh.transaction("compact") as tx:
        for table, state in sorted(wh.snapshot().tables.items()):
            groups: dict[str | None, list[str]] = defaultdict(list)
            for f in state.files:
                groups[_partition_of(f, table)].append(f)
            before = len(state.files)
            for partition, files in groups.items():
                if len(files) < min_files:
                    continue
                tx.merge(table, files, partition)
            after = len(tx.files(table))
            if after != before:
                results.append(CompactResult(table, before, after))
    return results


def vacuum(
    wh: Warehouse, *, keep_versions: int = 10, min_age_seconds: float = 3600.0
) -> VacuumResult:
    """Delete data files and manifests that none of the last `keep_versions` versions
    reference, if older than `min_age_seconds` (so a reader that just opened an old
    version keeps its files a while). Holds the writer lock: a running writer's
    not-yet-committed files must never be mistaken for garbage."""
    deleted = freed = manifests_deleted = 0
    storage = wh.storage
    with wh.locked():
        manifests = wh.manifests()
        keep, drop = manifests[-keep_versions:], manifests[:-keep_versions]
        referenced: set[str] = set()
        for m in keep:
            doc = json.loads(storage.read_text(m))
            for state in doc["tables"].values():
                referenced.update(state["files"])
        for rel in storage.list("tables"):
            if rel not in referenced and storage.age_seconds(rel) > min_age_seconds:
                freed += storage.size(rel)
                storage.delete(rel)
                deleted += 1
        for m in drop:
            storage.delete(m)
            manifests_deleted += 1
        for rel in storage.list(MANIFEST_DIR):  # temporary files of killed commits
            if rel.endswith(".tmp") and storage.age_seconds(rel) > min_age_seconds:
                storage.delete(rel)
    return VacuumResult(deleted, freed, manifests_deleted)
