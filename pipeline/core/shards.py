"""Directories of Parquet document shards: their layout and listing, on any filesystem.

A stage directory holds kept shards (`*.parquet`), `rejected/*.parquet`, one record per finished task
in `_tasks/` and `_stage.json`, written last. A finished stage directory is listed from its
`_stage.json` (the commit point), never by globbing, so a shard left by a killed task never counts;
a directory of shards that no stage wrote (a user's own Parquet files) is listed by name.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from pipeline.core.io import AnyPath, as_path, read_json, sha256_file, table_from_parquet_bytes, write_json
from pipeline.core.io import read_table as _read_table
from pipeline.core.io import write_scratch_table as write_scratch_table
from pipeline.core.io import write_table as write_table
from pipeline.core.io import write_table_sha256 as write_table_sha256

REJECTED_DIR = "rejected"
TASKS_DIR = "_tasks"
STAGE_FILE = "_stage.json"

__all__ = ["REJECTED_DIR", "TASKS_DIR", "STAGE_FILE", "ShardError", "list_shards", "list_rejected", "published_docs", "read_json",
           "read_shard_bytes", "read_table", "read_tables", "sha256_file", "table_from_bytes", "write_json", "write_scratch_table", "write_table",
           "write_table_sha256"]


class ShardError(RuntimeError):
    """A shard that cannot be read or a directory that holds none; the message names the path."""


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    try:
        return _read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise ShardError(f"{path}: cannot read Parquet shard: {exc}") from exc


def read_tables(paths: list[AnyPath], columns: list[str] | None = None, threads: int = 8) -> list[pa.Table]:
    """`read_table` of many shards, in order, a few at a time: for a driver that reads hundreds of small
    shards (a version's ledgers), Arrow decodes without the GIL, and on object storage each read is a
    round trip."""
    if len(paths) < 2:
        return [read_table(p, columns) for p in paths]
    with ThreadPoolExecutor(max_workers=min(threads, len(paths))) as pool:
        return list(pool.map(lambda p: read_table(p, columns), paths))


def read_shard_bytes(path: str | os.PathLike) -> bytes:
    """A shard's bytes (to hash them and parse them from one read)."""
    try:
        return as_path(path).read_bytes()
    except OSError as exc:
        raise ShardError(f"{path}: cannot read Parquet shard: {exc}") from exc


def table_from_bytes(data: bytes, path: str | os.PathLike) -> pa.Table:
    """The table of a shard read by `read_shard_bytes`; `path` names it in errors."""
    try:
        return table_from_parquet_bytes(data)
    except (OSError, pa.ArrowException) as exc:
        raise ShardError(f"{path}: cannot read Parquet shard: {exc}") from exc


def published_docs(version: str | os.PathLike) -> tuple[str, list[tuple[AnyPath, str]]]:
    """The name of a published corpus version (its directory or manifest.json, local or a URI) and
    (path, sha256) of each of its document shards, as its manifest lists them: never a glob."""
    path = as_path(version)
    manifest = path if path.name == "manifest.json" else path / "manifest.json"
    try:
        data = read_json(manifest)
        docs = [(manifest.parent / e["path"], str(e["sha256"])) for e in data["outputs"]
                if str(e["path"]).startswith("docs/")]
        return str(data["version"]), docs
    except FileNotFoundError:
        raise ShardError(f"{version}: not a corpus version (no manifest.json there)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ShardError(f"{manifest}: not a readable corpus manifest: {exc}") from exc


def _committed(directory: AnyPath, sub: str) -> list[AnyPath] | None:
    stage_file = directory / STAGE_FILE
    if not stage_file.exists():
        return None
    listed = read_json(stage_file).get("outputs" if not sub else "rejected_outputs")
    if listed is None:
        return None
    base = directory / sub if sub else directory
    return [base / name for name in sorted(listed)]


def list_shards(directory: str | os.PathLike) -> list[AnyPath]:
    """Kept-document shards of a stage directory, sorted by name."""
    d = as_path(directory)
    committed = _committed(d, "")
    if committed is not None:
        return committed
    if not d.is_dir():
        raise ShardError(f"{directory}: not a directory of Parquet shards")
    return sorted(p for p in d.glob("*.parquet") if p.is_file())


def list_rejected(directory: str | os.PathLike) -> list[AnyPath]:
    d = as_path(directory)
    committed = _committed(d, REJECTED_DIR)
    if committed is not None:
        return committed
    r = d / REJECTED_DIR
    return sorted(r.glob("*.parquet")) if r.is_dir() else []
