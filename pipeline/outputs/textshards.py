"""Text shards in the Pile's lm_dataformat layout: `jsonl.zst`, one `{"text", "meta"}` object a line.

`meta` carries the document's own meta plus `id`, `url` (when known) and `pile_set_name` (its
source), so a Pile-style consumer (lm_dataformat's Reader, or `zstd -dc | jq`) reads it unchanged.
Non-ASCII text is written as UTF-8, not `\\u` escapes (both are valid JSON; lm_dataformat reads both).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq
import zstandard

from pipeline.core.io import AnyPath, as_path, atomic_write, makedirs
from pipeline.core.shards import ShardError, write_json
from pipeline.core.stage import Executor

TEXT_SUFFIX = ".jsonl.zst"
TEXT_INDEX_FILE = "index.json"
_BATCH = 1024


@contextlib.contextmanager
def open_parquet(path: str | os.PathLike) -> Iterator[pq.ParquetFile]:
    """A Parquet file for streaming its batches, local or on object storage (read in ranges, not downloaded)."""
    p = as_path(path)
    if isinstance(p, Path):
        yield pq.ParquetFile(p)
        return
    with p.open("rb") as f:
        yield pq.ParquetFile(f)


class HashingWriter:
    """Passes writes to `f`, counting the bytes and hashing them (so a written file need not be re-read)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.f.write(data)
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.f.flush()


def lm_record(doc_id: str, source: str, text: str, url: str | None, meta_json: str | None) -> dict[str, Any]:
    meta = json.loads(meta_json) if meta_json else {}
    if not isinstance(meta, dict):
        meta = {"meta": meta}
    meta.update({"id": doc_id, "pile_set_name": source})
    if url is not None:
        meta["url"] = url
    return {"text": text, "meta": dict(sorted(meta.items()))}


def write_text_shard(in_path: AnyPath, out_path: AnyPath, zstd_level: int = 3) -> dict[str, Any]:
    """Convert one Parquet doc shard to `out_path` (written atomically); returns its index entry."""
    in_path, out_path = as_path(in_path), as_path(out_path)
    docs = text_bytes = 0
    try:
        with open_parquet(in_path) as pf, atomic_write(out_path) as f:
            raw = HashingWriter(f)
            cctx = zstandard.ZstdCompressor(level=zstd_level, write_checksum=True, threads=0)
            with cctx.stream_writer(raw, closefd=False) as out:
                names = pf.schema_arrow.names
                cols = ["id", "source", "text", "url" if "url" in names else None, "meta" if "meta" in names else None]
                for batch in pf.iter_batches(batch_size=_BATCH, columns=[c for c in cols if c]):
                    data = {c: batch.column(c).to_pylist() for c in batch.schema.names}
                    n = batch.num_rows
                    buf = io.StringIO()
                    for i in range(n):
                        rec = lm_record(data["id"][i], data["source"][i], data["text"][i],
                                        data.get("url", [None] * n)[i], data.get("meta", [None] * n)[i])
                        buf.write(json.dumps(rec, ensure_ascii=False))
                        buf.write("\n")
                        text_bytes += len(data["text"][i].encode("utf-8"))
                    out.write(buf.getvalue().encode("utf-8"))
                    docs += n
    except (OSError, ValueError) as exc:
        raise ShardError(f"{in_path}: cannot write text shard {out_path.name}: {exc}") from exc
    return {"path": out_path.name, "docs": docs, "text_bytes": text_bytes, "bytes": raw.size,
            "sha256": raw.hash.hexdigest()}


def _text_task(args: tuple[str, str, int]) -> dict[str, Any]:
    in_path, out_dir, level = args
    p = as_path(in_path)
    return write_text_shard(p, as_path(out_dir) / f"{p.stem}{TEXT_SUFFIX}", level)


def write_text_shards(in_shards: list[AnyPath], out_dir: AnyPath, executor: Executor,
                      zstd_level: int = 3) -> dict[str, Any]:
    """One `NAME.jsonl.zst` per input `NAME.parquet`, one task each; `out_dir/index.json` lists them."""
    out_dir = as_path(out_dir)
    paths = sorted((as_path(p) for p in in_shards), key=lambda p: p.name)
    if len({p.stem for p in paths}) != len(paths):
        raise ValueError(f"text shards: input shard names are not unique: {[p.name for p in paths]}")
    items = [(str(p), str(out_dir), zstd_level) for p in paths]
    shards = executor.map(_text_task, items, desc="text shards")
    index = {"format": "lm_dataformat jsonl.zst", "shards": shards, "docs": sum(s["docs"] for s in shards),
             "text_bytes": sum(s["text_bytes"] for s in shards)}
    makedirs(out_dir)
    write_json(index, out_dir / TEXT_INDEX_FILE)
    return index


def read_text_shard(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The records of a `jsonl.zst` shard (ours or the Pile's); errors name the file and line."""
    with as_path(path).open("rb") as raw:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        for lineno, line in enumerate(reader, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from None
