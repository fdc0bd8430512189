"""The mix's gather: one partition's copies sorted by key into one mixed shard, and, when the copies
carry their tokens, that shard's token shards, written from the sorted partition in memory rather than
by a second pass that reads the mixed shard back (pipeline/outputs/tokenize.py)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from pipeline.core.io import as_path, atomic_write, parquet_bytes, write_bytes_atomic
from pipeline.outputs.columns import EPOCH_COLUMN, KEY_COLUMN, TEXT_BYTES_COLUMN, TOKENS_COLUMN
from pipeline.outputs.tokenize import TokenShardSpec, write_carried_tokens

# where the gather writes a split's token shards (`<dir>/<split>`) and how: None for no token shards
TokenTarget = tuple[str, TokenShardSpec] | None
BUCKET_SUFFIX = ".arrow"


def write_bucket(table: pa.Table, path: str | os.PathLike) -> None:
    """A scatter bucket, read back once by the gather: an Arrow IPC file, written and read as the
    buffers it holds (uncompressed Parquet took twice the CPU to write and far more to read back)."""
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    with atomic_write(path) as f:
        f.write(sink.getvalue())


def read_bucket(path: str | os.PathLike) -> pa.Table:
    p = as_path(path)
    source = pa.memory_map(str(p)) if isinstance(p, Path) else pa.BufferReader(p.read_bytes())
    with ipc.open_file(source) as reader:
        return reader.read_all()


def gather_task(args: tuple[str, str, int, str, TokenTarget]) -> dict[str, Any] | None:
    """Sort one partition's copies by key and write it as one output shard (and its token shards)."""
    scratch, split, part, out_dir, tokens = args
    d = as_path(scratch) / split / f"{part:05d}"
    files = sorted(d.glob(f"*{BUCKET_SUFFIX}"))  # none when the partition got no document (and no directory)
    if not files:
        return None
    t = pa.concat_tables([read_bucket(f) for f in files], promote_options="default")
    order = pc.sort_indices(t, sort_keys=[(KEY_COLUMN, "ascending"), ("id", "ascending"), (EPOCH_COLUMN, "ascending")])
    t = t.take(order).drop_columns([KEY_COLUMN, EPOCH_COLUMN])
    sources = source_counts(t)
    if TEXT_BYTES_COLUMN in t.schema.names:
        t = t.drop_columns([TEXT_BYTES_COLUMN])
    out = as_path(out_dir) / split / f"{split}-{part:05d}.parquet"
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the token shards on a thread while the mixed shard is encoded: both compress without the GIL,
        # and the partition of the train split, much the largest, was the last task of a build
        job = None
        if tokens is not None and TOKENS_COLUMN in t.schema.names:
            job = pool.submit(write_carried_tokens, t, out.name, as_path(tokens[0]) / split, tokens[1])
        data = parquet_bytes(t, uncompressed=[TOKENS_COLUMN])  # hashed here, not read back
        write_bytes_atomic(data, out)
        if job is not None:
            job.result()
    return {"path": f"{split}/{out.name}", "docs": t.num_rows, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "sources": sources}


def source_counts(t: pa.Table) -> dict[str, dict[str, int]]:
    """Documents and UTF-8 text bytes per source, in order of first appearance, without turning a
    partition's texts into Python strings (nor importing pandas, as numpy views of Arrow arrays would:
    ~0.4 s). A pass per source: a partition holds a handful."""
    sources = t["source"].combine_chunks().dictionary_encode()
    lengths = (pc.binary_length(t["text"]) if "text" in t.schema.names else t[TEXT_BYTES_COLUMN]).combine_chunks()
    out: dict[str, dict[str, int]] = {}
    for i, name in enumerate(sources.dictionary.to_pylist()):
        mine = pc.equal(sources.indices, pa.scalar(i, sources.indices.type))
        out[name] = {"docs": pc.sum(mine.cast(pa.int64())).as_py() or 0,
                     "text_bytes": pc.sum(pc.filter(lengths, mine)).as_py() or 0}
    return out
