"""Export token shards to the Megatron-LM / GPT-NeoX indexed dataset format (`.bin` + `.idx`, MMIDIDX).

GPT-NeoX and Megatron read `PREFIX.bin` (every document's tokens, back to back) and `PREFIX.idx`:

    9 bytes   b"MMIDIDX\\x00\\x00"
    u64 LE    version, 1
    u8        dtype code (8 = uint16, 4 = int32, as in Megatron's DType enum)
    u64 LE    sequence count (here one sequence per document)
    u64 LE    document count + 1 (the length of the document index below)
    int32[]   tokens per sequence
    int64[]   byte offset of each sequence in .bin
    int64[]   document index: 0, 1, ..., n (sequence index where each document starts, plus the end)

Each document keeps its trailing EOS, as GPT-NeoX's preprocess_data.py --append-eod writes it.
uint32 shards export as int32 (Megatron has no uint32 code); every id must be below 2**31.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.io import AnyPath, RemotePath, as_path, atomic_write, is_remote, local_file
from pipeline.outputs.reader import INDEX_FILE, SHARD_SUFFIX, TokenDataset, TokenShardError
from pipeline.outputs.textshards import HashingWriter

MMIDIDX_HEADER = b"MMIDIDX\x00\x00"
MMIDIDX_VERSION = 1
DTYPE_CODES = {"uint16": 8, "int32": 4}


class _HashingFile:
    """A file written atomically (`io.atomic_write`: local or object storage) that hashes what it writes;
    it appears at its path on `commit`, and nothing is left of it on `abort`."""

    def __init__(self, path: AnyPath) -> None:
        self.path = path
        self._writing = atomic_write(path)
        self.out = HashingWriter(self._writing.__enter__())
        self._open = True

    def write(self, data: bytes) -> None:
        self.out.write(data)

    def commit(self) -> dict[str, Any]:
        self._open = False
        self._writing.__exit__(None, None, None)
        return {"path": self.path.name, "bytes": self.out.size, "sha256": self.out.hash.hexdigest()}

    def abort(self) -> None:
        if self._open:
            self._open = False
            exc = RuntimeError(f"{self.path}: export aborted")
            self._writing.__exit__(type(exc), exc, None)


def _local_shards(tokens: str | os.PathLike | AnyPath | Sequence[str | os.PathLike | AnyPath]) -> str | Path | list[Path]:
    """What `TokenDataset` (a reader of local files) opens: local paths as given; shards on object
    storage as cached local copies (`io.local_file`), in the directory's index.json order."""
    if not isinstance(tokens, str | os.PathLike | RemotePath):
        return [local_file(p) for p in tokens]  # the local ones as they are
    if not is_remote(tokens):
        return tokens if isinstance(tokens, str) else Path(tokens)
    d = as_path(tokens)
    if d.is_file():
        return [local_file(d)]
    index = d / INDEX_FILE
    if index.exists():
        shards = [d / s["path"] for s in json.loads(index.read_bytes())["shards"]]
    else:
        shards = sorted(d.glob(f"*{SHARD_SUFFIX}"))
        if not shards:
            raise TokenShardError(f"{d}: no {SHARD_SUFFIX} shards and no {INDEX_FILE}")
    return [local_file(p) for p in shards]


def export_megatron(tokens: str | os.PathLike | AnyPath | Sequence[str | os.PathLike | AnyPath],
                    out_prefix: str | os.PathLike | AnyPath) -> dict[str, Any]:
    """Write `out_prefix.bin` and `out_prefix.idx` from a token directory (or a list of shards).

    Streams shard by shard, frame by frame; memory is 12 bytes per document for the index. Both may
    be on object storage (shards are read from cached local copies, the files uploaded whole).
    Returns docs, tokens, dtype and both files' bytes and sha256.
    """
    ds = TokenDataset(_local_shards(tokens))
    out_prefix = as_path(out_prefix)
    out_dtype = np.dtype("<u2") if ds.dtype.itemsize == 2 else np.dtype("<i4")
    code = DTYPE_CODES["uint16" if out_dtype.itemsize == 2 else "int32"]
    sizes = np.concatenate([np.diff(s.doc_offsets) for s in ds.shards] or [np.zeros(0, np.int64)])
    if sizes.size and int(sizes.max()) >= 2**31:
        raise ValueError(f"{tokens}: a document of {int(sizes.max())} tokens does not fit Megatron's int32 sizes")
    bin_file = _HashingFile(out_prefix.with_name(out_prefix.name + ".bin"))
    try:
        idx_file = _HashingFile(out_prefix.with_name(out_prefix.name + ".idx"))
    except BaseException:
        bin_file.abort()
        ds.close()
        raise
    try:
        for shard in ds.shards:
            for frame in shard.iter_frames():
                if out_dtype.kind == "i" and frame.size and int(frame.max()) >= 2**31:
                    raise ValueError(f"{shard.path}: token id {int(frame.max())} does not fit in int32")
                bin_file.write(frame.astype(out_dtype, copy=False).tobytes())
        pointers = np.zeros(sizes.size, dtype=np.int64)
        if sizes.size:
            np.cumsum(sizes[:-1] * out_dtype.itemsize, out=pointers[1:])
        doc_idx = np.arange(sizes.size + 1, dtype=np.int64)
        idx_file.write(MMIDIDX_HEADER)
        idx_file.write(struct.pack("<Q", MMIDIDX_VERSION))
        idx_file.write(struct.pack("<B", code))
        idx_file.write(struct.pack("<Q", sizes.size))
        idx_file.write(struct.pack("<Q", doc_idx.size))
        idx_file.write(sizes.astype("<i4").tobytes())
        idx_file.write(pointers.astype("<i8").tobytes())
        idx_file.write(doc_idx.astype("<i8").tobytes())
        bin_info, idx_info = bin_file.commit(), idx_file.commit()
    except BaseException:
        bin_file.abort()
        idx_file.abort()
        raise
    finally:
        ds.close()
    return {"docs": int(sizes.size), "tokens": int(sizes.sum()), "dtype": "uint16" if code == 8 else "int32",
            "bin": bin_info, "idx": idx_info}
