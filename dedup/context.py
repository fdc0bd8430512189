"""What every dedup task shares: the shard list, where intermediates live, and their file helpers.

Shards are numbered: the input shards first (ordered by file name), then the documents of earlier
versions given by `against` (reference shards), which take part in clustering but are never written.
Nodes are int64 `shard << 32 | row`. A shard's per-document attributes and signatures live in one
directory per shard (`sig_dirs`): its shard-cache entry when the build keeps one, else the scratch.

Exchanges between steps address blocks, runs of consecutive shards (~`DOCS_PER_BLOCK` documents),
not shards: a step that sends every task's rows to every destination writes tasks x destinations
files, and with one destination per shard that grew with the square of the corpus (10M documents in
1,000 shards: up to a million files per exchange). Blocks only group files; no result depends on them.
The clustering steps (edges, connected components, survivors) hash their nodes into as many partitions
as there are blocks: their data (cluster members) is a fraction of the band keys', and partitions sized
for band keys made each of their rounds write partitions x partitions files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core.io import AnyPath, as_path
from pipeline.core.shards import read_table, write_scratch_table

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
    sha256: list[str] = field(default_factory=list)  # per shard, after the signature step: its content key
    blocks: int = 1  # runs of consecutive shards that exchanges address; also the clustering's partitions

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

    def block_of(self, shards: np.ndarray) -> np.ndarray:
        """The block of each shard index: block b holds shards [ceil(b n / B), ceil((b + 1) n / B))."""
        return (shards.astype(np.int64) * self.blocks) // len(self.shards)

    def block_shards(self, block: int) -> range:
        n, b = len(self.shards), self.blocks
        return range(-(-block * n // b), -(-(block + 1) * n // b))


class BlockSignatures:
    """Signatures of one block's nodes for one task, each shard's read once, when first needed."""

    def __init__(self, ctx: DedupContext) -> None:
        self.ctx = ctx
        self._by_shard: dict[int, np.ndarray] = {}

    def of(self, nodes: np.ndarray) -> np.ndarray:
        """The (len(nodes), num_perm) signatures of `nodes`, in their order."""
        num_perm = self.ctx.config.num_perm
        out = np.empty((len(nodes), num_perm), np.uint32)
        shard = nodes >> 32
        for s in np.unique(shard).tolist():
            if s not in self._by_shard:
                self._by_shard[s] = read_signatures(self.ctx.sig_dir(s), num_perm)
            sel = np.flatnonzero(shard == s)
            out[sel] = self._by_shard[s][nodes[sel] & ROW_MASK]
        return out


def read_dir(directory: AnyPath, columns: list[str] | None = None) -> pa.Table | None:
    """Every Parquet file of a scratch directory as one table (None when there is none)."""
    files = sorted(directory.glob("*.parquet"))  # a missing directory globs to nothing
    tables = [read_table(f, columns) for f in files]
    return pa.concat_tables(tables) if tables else None


def write_by_block(table: pa.Table, nodes: np.ndarray, ctx: DedupContext, kind: str, name: str,
                   inputs_only: bool = False) -> None:
    """Rows of `table` to `<kind>/<block>/<name>.parquet` by the block of each row's node; with
    `inputs_only`, rows of reference shards are dropped (nothing is written for those)."""
    shard = nodes >> 32
    if inputs_only and (ref := shard >= ctx.num_inputs).any():
        table, shard = table.filter(pa.array(~ref)), shard[~ref]
    block = ctx.block_of(shard)
    for b in np.unique(block).tolist():
        write_scratch_table(table.filter(pa.array(block == b)), ctx.path(kind, int(b), name + ".parquet"))


def rows_of_shard(table: pa.Table | None, shard: int) -> pa.Table | None:
    """The rows of a block's table (with a `node` column) whose node is in `shard`."""
    if table is None:
        return None
    return table.filter(pa.array((table.column("node").to_numpy() >> 32) == shard))


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
