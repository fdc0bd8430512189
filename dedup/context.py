"""What every dedup task shares: the shard list, where intermediates live, and their file helpers.

Shards are numbered: the input shards first (ordered by file name), then the documents of earlier
versions given by `against` (reference shards), which take part in clustering but are never written.
Nodes are int64 `shard << 32 | row`. A shard's per-document attributes and signatures live in one
directory per shard (`sig_dirs`): its shard-cache entry when the build keeps one, else the scratch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core.io import AnyPath, as_path
from pipeline.core.shards import read_table, write_table

ROW_MASK = (1 << 32) - 1


@dataclass
class DedupContext:
    work: str
    shards: list[str]  # input shards, then reference shards
    num_inputs: int
    partitions: int
    config: Any  # DedupConfig
    bands: int
    rows: int
    ref_versions: list[str] = field(default_factory=list)  # per reference shard: its version's name
    ref_sha256: list[str] = field(default_factory=list)  # per reference shard: its sha256 in the manifest
    sig_dirs: list[str] = field(default_factory=list)  # per shard, after the signature step

    def path(self, *parts: str | int) -> AnyPath:
        out = as_path(self.work)
        for p in parts:
            out = out / (f"{p:05d}" if isinstance(p, int) else p)
        return out

    def is_reference(self, shard: int) -> bool:
        return shard >= self.num_inputs

    def version_of(self, shard: int) -> str | None:
        return self.ref_versions[shard - self.num_inputs] if self.is_reference(shard) else None

    def sig_dir(self, shard: int) -> AnyPath:
        return as_path(self.sig_dirs[shard])


def read_dir(directory: AnyPath, columns: list[str] | None = None) -> pa.Table | None:
    """Every Parquet file of a scratch directory as one table (None when there is none)."""
    files = sorted(directory.glob("*.parquet"))  # a missing directory globs to nothing
    tables = [read_table(f, columns) for f in files]
    return pa.concat_tables(tables) if tables else None


def write_by_shard(table: pa.Table, shard_of: np.ndarray, ctx: DedupContext, kind: str, name: str,
                   inputs_only: bool = False) -> None:
    """Rows of `table` to `<kind>/<shard>/<name>.parquet` by the shard of each row's node."""
    for s in np.unique(shard_of).tolist():
        if inputs_only and ctx.is_reference(int(s)):
            continue
        write_table(table.filter(pa.array(shard_of == s)), ctx.path(kind, int(s), name + ".parquet"))


def sig_array(sig: np.ndarray) -> pa.Array:
    """(n, num_perm) uint32 signatures as one fixed-size binary value per row."""
    blob = np.ascontiguousarray(sig, dtype=np.uint32)
    width = 4 * sig.shape[1]
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), sig.shape[0], [None, pa.py_buffer(blob)])


def sig_matrix(column: pa.ChunkedArray | pa.Array, num_perm: int) -> np.ndarray:
    """The (n, num_perm) uint32 matrix of a column written by `sig_array`."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    buf = np.frombuffer(col.buffers()[1], dtype=np.uint32)
    return buf.reshape(-1, num_perm)[col.offset : col.offset + len(col)]


def read_signatures(sig_dir: AnyPath, num_perm: int) -> np.ndarray:
    """A shard's (n, num_perm) signatures, from the directory of the signature step."""
    return sig_matrix(read_table(sig_dir / "sigs.parquet").column("sig"), num_perm)


def read_docs(sig_dir: AnyPath, columns: list[str] | None = None) -> pa.Table:
    """A shard's per-document attributes (id, source_rank, quality, text_hash)."""
    return read_table(sig_dir / "docs.parquet", columns)
