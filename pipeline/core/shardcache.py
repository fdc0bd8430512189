"""Per-shard work kept by the content of the shard it was computed from.

A step's key covers all of its inputs, so adding a source makes every later step new. What a stage
computes from one shard alone (a shard stage's output, dedup's signatures, decontamination's scan)
does not change when other shards are added, so it is kept here as well, under a directory the build
keys by the stage, its version, config and files (`root`), and inside it by the shard's content:
the same shard reached through another build, another source selection or another work directory is
found again. An entry is a directory of files plus `_done.json`, written last: the commit point, so
a killed writer leaves an entry that does not count and is written again (the same bytes).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from pipeline.core.config import stable_hash
from pipeline.core.io import (
    AnyPath,
    as_path,
    copy_file,
    read_arrow_table,
    read_json,
    read_table,
    write_arrow_table,
    write_json,
    write_table,
)

DONE_FILE = "_done.json"


def content_key(data: bytes) -> str:
    """The sha256 of a shard's bytes, as entries are keyed."""
    return hashlib.sha256(data).hexdigest()


class ShardCache:
    """Entries under `root` (None: no cache, every lookup misses and nothing is stored)."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = as_path(root) if root else None

    def entry(self, sha256: str, **extra: Any) -> AnyPath | None:
        """The directory of the entry for content `sha256` (and whatever else the work depended on)."""
        if self.root is None:
            return None
        return self.root / stable_hash({"input": sha256, **extra})

    def lookup(self, entry: AnyPath | None) -> dict[str, Any] | None:
        """The entry's record when it is complete, else None."""
        if entry is None:
            return None
        try:
            return read_json(entry / DONE_FILE)
        except FileNotFoundError:
            return None

    def restore(self, entry: AnyPath, files: dict[str, AnyPath]) -> None:
        """Copy a complete entry's files out ({name in the entry: destination}, as given to `store`);
        a hard link locally, a server-side copy on object storage."""
        for name, path in files.items():
            copy_file(entry / name, path)

    def store(self, entry: AnyPath | None, files: dict[str, AnyPath], record: dict[str, Any]) -> None:
        """Copy `files` ({name in the entry: existing file}) into the entry, then commit it with `record`."""
        if entry is None:
            return
        for name, path in files.items():
            copy_file(path, entry / name)
        write_json(record, entry / DONE_FILE)

    def commit(self, entry: AnyPath | None, record: dict[str, Any]) -> None:
        """Commit an entry whose files the caller wrote into it directly."""
        if entry is not None:
            write_json(record, entry / DONE_FILE)

    def table(self, entry: AnyPath | None, name: str, compute: Callable[[], pa.Table]) -> pa.Table:
        """The table kept as `name` in a complete entry, else `compute()`'s, stored there and committed;
        a `.arrow` name keeps it as an Arrow IPC file (cheaper to open than Parquet by ~10x)."""
        ipc = name.endswith(".arrow")
        if self.lookup(entry) is not None:
            return read_arrow_table(entry / name) if ipc else read_table(entry / name)
        table = compute()
        if entry is not None:
            (write_arrow_table if ipc else write_table)(table, entry / name)
            self.commit(entry, {"rows": table.num_rows})
        return table
