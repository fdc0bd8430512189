"""Write token shards (format: docs/shard-format.md) and the directory index that lists them.

A shard is one file: a small header, the token stream cut into zstd frames of a fixed number of
tokens, an index (document and frame offsets), the documents' ids and sources, a JSON block of
metadata and a fixed-size footer with a sha256 of everything before it. Frames are cut by token
count, never by how documents happened to arrive, and nothing depends on time or the host, so the
same documents always give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, BinaryIO

import numpy as np
import zstandard

from pipeline.core.io import AnyPath, as_path, atomic_write
from pipeline.outputs.reader import DTYPES, FOOTER, FORMAT_VERSION, HEADER, INDEX_FILE, MAGIC


def token_itemsize(vocab_size: int) -> int:
    """2 bytes per token when every id fits in uint16, else 4."""
    return 2 if vocab_size <= 1 << 16 else 4


class TokenShardWriter:
    """Streams documents into one shard, written atomically (`io.atomic_write`) and committed on `close`."""

    def __init__(self, path: str | os.PathLike, *, itemsize: int, frame_tokens: int, zstd_level: int, meta: dict[str, Any]):
        if itemsize not in DTYPES:
            raise ValueError(f"token size must be 2 or 4 bytes, got {itemsize}")
        if frame_tokens < 1:
            raise ValueError(f"frame_tokens must be >= 1, got {frame_tokens}")
        self.path: AnyPath = as_path(path)
        self.dtype = DTYPES[itemsize]
        self.frame_tokens = frame_tokens
        self.meta = {**meta, "dtype": self.dtype.name, "frame_tokens": frame_tokens, "zstd_level": zstd_level}
        self._cctx = zstandard.ZstdCompressor(level=zstd_level, write_checksum=True, write_content_size=True,
                                              threads=0)
        self._writing = atomic_write(self.path)
        self._f: BinaryIO = self._writing.__enter__()
        self._open = True
        self._hash = hashlib.sha256()
        self._pos = 0
        self._pending: list[np.ndarray] = []
        self._pending_tokens = 0
        self._doc_offsets: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self._num_tokens = 0
        self._frame_tokens = [0]
        self._frame_bytes: list[int] = []
        self.ids: list[str] = []
        self.sources: list[str] = []
        self._write(HEADER.pack(MAGIC, FORMAT_VERSION, itemsize))

    @property
    def num_tokens(self) -> int:
        return self._num_tokens

    @property
    def num_docs(self) -> int:
        return len(self.ids)

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._hash.update(data)
        self._pos += len(data)

    def add_documents(self, ids: list[str], sources: list[str], tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents: `tokens` is their concatenated tokens (each with its EOS), `lengths` theirs."""
        if len(ids) != len(lengths) or len(sources) != len(ids):
            raise ValueError(f"{len(ids)} ids, {len(sources)} sources, {len(lengths)} lengths")
        if int(lengths.sum()) != tokens.size:
            raise ValueError(f"lengths add up to {int(lengths.sum())}, got {tokens.size} tokens")
        if tokens.size and int(tokens.max()) > np.iinfo(self.dtype).max:
            raise ValueError(f"token id {int(tokens.max())} does not fit in {self.dtype.name}")
        self.ids.extend(ids)
        self.sources.extend(sources)
        self._doc_offsets.append(self._num_tokens + np.cumsum(lengths, dtype=np.int64))
        self._num_tokens += tokens.size
        self._pending.append(tokens.astype(self.dtype, copy=False))
        self._pending_tokens += tokens.size
        if self._pending_tokens >= self.frame_tokens:
            self._flush_frames(final=False)

    def _flush_frames(self, final: bool) -> None:
        buf = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        n_full = buf.size // self.frame_tokens
        for j in range(n_full):
            self._write_frame(buf[j * self.frame_tokens:(j + 1) * self.frame_tokens])
        rest = buf[n_full * self.frame_tokens:]
        if final and rest.size:
            self._write_frame(rest)
            rest = rest[:0]
        self._pending = [rest] if rest.size else []
        self._pending_tokens = rest.size

    def _write_frame(self, tokens: np.ndarray) -> None:
        self._frame_bytes.append(self._pos)
        self._write(self._cctx.compress(np.ascontiguousarray(tokens, dtype=self.dtype).tobytes()))
        self._frame_tokens.append(self._frame_tokens[-1] + tokens.size)

    def close(self) -> dict[str, Any]:
        """Finish the shard; returns its entry for the directory index (name, counts, bytes, sha256)."""
        try:
            if self._pending:
                self._flush_frames(final=True)
            offsets_start = self._pos
            doc_offsets = np.concatenate(self._doc_offsets)
            frame_bytes = np.array([*self._frame_bytes, offsets_start], dtype="<u8")
            index = np.concatenate([doc_offsets.astype("<u8"), np.array(self._frame_tokens, dtype="<u8"), frame_bytes])
            self._write(index.tobytes())
            docs_start = self._pos
            docs = json.dumps({"ids": self.ids, "sources": self.sources}, ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")
            self._write(self._cctx.compress(docs))
            meta_start = self._pos
            meta = json.dumps(self.meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
            self._write(meta)
            footer = FOOTER.pack(self.num_docs, self._num_tokens, len(self._frame_bytes), offsets_start, docs_start,
                                 meta_start - docs_start, meta_start, len(meta), self._hash.digest(), MAGIC)
            self._write(footer)
            self._open = False
            self._writing.__exit__(None, None, None)
        except BaseException:
            self.abort()
            raise
        return {"path": self.path.name, "docs": self.num_docs, "tokens": self._num_tokens,
                "bytes": self._pos, "sha256": self._hash.hexdigest()}

    def abort(self) -> None:
        """Discard the shard: nothing is left at its path (nor under a temporary name)."""
        if self._open:
            self._open = False
            exc = RuntimeError(f"{self.path}: token shard aborted")
            self._writing.__exit__(type(exc), exc, None)


def write_index(out_dir: str | os.PathLike, shards: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """`index.json` of a token directory: the shards in reading order with sizes and sha256, and totals."""
    from pipeline.core.shards import write_json

    index = {
        "format": "corpusforge-tokens",
        "format_version": FORMAT_VERSION,
        **meta,
        "shards": shards,
        "docs": sum(s["docs"] for s in shards),
        "tokens": sum(s["tokens"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
    }
    write_json(index, as_path(out_dir) / INDEX_FILE)
    return index
