"""Read corpusforge token shards: documents by index, and packed training sequences, resumably.

Needs only numpy and zstandard (plus the standard library), so a training job can copy this one file.
The format is specified in docs/shard-format.md; usage, including a PyTorch IterableDataset wrapper,
in docs/reader.md.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

MAGIC = b"CFTOKENS"
FORMAT_VERSION = 1
SHARD_SUFFIX = ".tokens"
INDEX_FILE = "index.json"
# magic, format version, bytes per token, 3 reserved zero bytes
HEADER = struct.Struct("<8sIB3x")
# n_docs, n_tokens, n_frames, offsets_start, docs_start, docs_length, meta_start, meta_length, body sha256, magic
FOOTER = struct.Struct("<8Q32s8s")
DTYPES = {2: np.dtype("<u2"), 4: np.dtype("<u4")}


class TokenShardError(ValueError):
    """A token shard that is not in the format or fails its checksum; the message names the file."""


class TokenShard:
    """One token shard: its index is read on open, token frames are decompressed on demand."""

    def __init__(self, path: str | Path, *, verify: bool = False, cache_frames: int = 4) -> None:
        self.path = Path(path)
        self._cache_size = max(1, cache_frames)
        self._file: Any = None
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._docs_info: dict[str, list[str]] | None = None
        self._load_index()
        if verify:
            self.verify()

    # ------------------------------------------------------------------------------- index
    def _load_index(self) -> None:
        size = self.path.stat().st_size
        if size < HEADER.size + FOOTER.size:
            raise TokenShardError(f"{self.path}: {size} bytes, too short for a token shard")
        f = self._open()
        magic, version, itemsize = HEADER.unpack(f.read(HEADER.size))
        if magic != MAGIC:
            raise TokenShardError(f"{self.path}: not a token shard (magic {magic!r})")
        if version != FORMAT_VERSION:
            raise TokenShardError(f"{self.path}: format version {version}, this reader reads {FORMAT_VERSION}")
        if itemsize not in DTYPES:
            raise TokenShardError(f"{self.path}: unsupported token size {itemsize} bytes")
        self.dtype = DTYPES[itemsize]
        f.seek(size - FOOTER.size)
        (self.num_docs, self.num_tokens, self.num_frames, offsets_start, self._docs_start, self._docs_length,
         meta_start, meta_length, self.body_sha256, tail) = FOOTER.unpack(f.read(FOOTER.size))
        if tail != MAGIC:
            raise TokenShardError(f"{self.path}: truncated or damaged (no footer magic at the end)")
        f.seek(offsets_start)
        n = (self.num_docs + 1) + 2 * (self.num_frames + 1)
        raw = f.read(8 * n)
        if len(raw) != 8 * n:
            raise TokenShardError(f"{self.path}: index block cut short")
        offsets = np.frombuffer(raw, dtype="<u8").astype(np.int64)
        self.doc_offsets = offsets[: self.num_docs + 1]
        self.frame_token_offsets = offsets[self.num_docs + 1: self.num_docs + 1 + self.num_frames + 1]
        self.frame_byte_offsets = offsets[self.num_docs + 1 + self.num_frames + 1:]
        f.seek(meta_start)
        self.meta: dict[str, Any] = json.loads(f.read(meta_length).decode("utf-8"))
        if int(self.doc_offsets[-1]) != self.num_tokens or int(self.frame_token_offsets[-1]) != self.num_tokens:
            raise TokenShardError(f"{self.path}: index does not add up to {self.num_tokens} tokens")

    def _open(self) -> Any:
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open for random access
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._frames.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"], state["_frames"] = None, OrderedDict()
        return state

    def verify(self) -> None:
        """Check the sha256 of everything before the footer against the one the footer records."""
        h = hashlib.sha256()
        remaining = self.path.stat().st_size - FOOTER.size
        with open(self.path, "rb") as f:
            while remaining > 0:
                block = f.read(min(remaining, 1 << 22))
                h.update(block)
                remaining -= len(block)
        if h.digest() != self.body_sha256:
            raise TokenShardError(f"{self.path}: checksum mismatch, the shard is damaged")

    @property
    def eos_id(self) -> int | None:
        return self.meta.get("eos_id")

    # ------------------------------------------------------------------------------ tokens
    def frame(self, j: int) -> np.ndarray:
        """The tokens of frame j (a small LRU cache keeps recently used frames)."""
        if j in self._frames:
            self._frames.move_to_end(j)
            return self._frames[j]
        start, stop = int(self.frame_byte_offsets[j]), int(self.frame_byte_offsets[j + 1])
        f = self._open()
        f.seek(start)
        data = zstandard.ZstdDecompressor().decompress(f.read(stop - start))
        tokens = np.frombuffer(data, dtype=self.dtype)
        expected = int(self.frame_token_offsets[j + 1] - self.frame_token_offsets[j])
        if tokens.size != expected:
            raise TokenShardError(f"{self.path}: frame {j} holds {tokens.size} tokens, index says {expected}")
        self._frames[j] = tokens
        if len(self._frames) > self._cache_size:
            self._frames.popitem(last=False)
        return tokens

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the shard's token stream (documents with their EOS, in order)."""
        start, stop = max(0, start), min(stop, self.num_tokens)
        if stop <= start:
            return np.empty(0, dtype=self.dtype)
        first = int(np.searchsorted(self.frame_token_offsets, start, side="right")) - 1
        last = int(np.searchsorted(self.frame_token_offsets, stop, side="left")) - 1
        parts = []
        for j in range(first, last + 1):
            base = int(self.frame_token_offsets[j])
            fr = self.frame(j)
            parts.append(fr[max(start - base, 0): min(stop - base, fr.size)])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def iter_frames(self, start_frame: int = 0) -> Iterator[np.ndarray]:
        """Every frame in order, each decompressed once (not cached): the fast sequential path."""
        f = open(self.path, "rb")  # noqa: SIM115 - closed below
        try:
            dctx = zstandard.ZstdDecompressor()
            for j in range(start_frame, self.num_frames):
                start, stop = int(self.frame_byte_offsets[j]), int(self.frame_byte_offsets[j + 1])
                f.seek(start)
                yield np.frombuffer(dctx.decompress(f.read(stop - start)), dtype=self.dtype)
        finally:
            f.close()

    def document(self, i: int, *, with_eos: bool = False) -> np.ndarray:
        """Tokens of document i; its trailing EOS only if `with_eos`."""
        if not -self.num_docs <= i < self.num_docs:
            raise IndexError(f"{self.path}: document {i} of {self.num_docs}")
        i %= self.num_docs
        start, stop = int(self.doc_offsets[i]), int(self.doc_offsets[i + 1])
        if not with_eos and self.eos_id is not None and stop > start:
            stop -= 1
        return self.tokens(start, stop)

    def _docs(self) -> dict[str, list[str]]:
        if self._docs_info is None:
            f = self._open()
            f.seek(self._docs_start)
            self._docs_info = json.loads(zstandard.ZstdDecompressor().decompress(f.read(self._docs_length)))
        return self._docs_info

    def doc_id(self, i: int) -> str:
        return self._docs()["ids"][i]

    def doc_ids(self) -> list[str]:
        """Every document id of the shard, in order."""
        return self._docs()["ids"]

    def doc_source(self, i: int) -> str:
        return self._docs()["sources"][i]

    def __len__(self) -> int:
        return self.num_docs


def shard_paths(location: str | Path | Sequence[str | Path]) -> list[Path]:
    """Shards in reading order: a directory's index.json order (else sorted names), or the list given."""
    if isinstance(location, str | Path):
        d = Path(location)
        if d.is_file():
            return [d]
        index = d / INDEX_FILE
        if index.exists():
            return [d / s["path"] for s in json.loads(index.read_text(encoding="utf-8"))["shards"]]
        paths = sorted(d.glob(f"*{SHARD_SUFFIX}"))
        if not paths:
            raise TokenShardError(f"{d}: no {SHARD_SUFFIX} shards and no {INDEX_FILE}")
        return paths
    return [Path(p) for p in location]


class TokenDataset:
    """Many shards read as one stream of documents and one packed token stream.

    Picklable (open files are not carried along), so it can be handed to DataLoader workers.
    """

    def __init__(self, location: str | Path | Sequence[str | Path], *, verify: bool = False) -> None:
        self.shards = [TokenShard(p, verify=verify) for p in shard_paths(location)]
        self.doc_starts = np.cumsum([0] + [s.num_docs for s in self.shards], dtype=np.int64)
        self.token_starts = np.cumsum([0] + [s.num_tokens for s in self.shards], dtype=np.int64)
        dtypes = {s.dtype for s in self.shards}
        if len(dtypes) > 1:
            raise TokenShardError(f"shards mix token sizes {sorted(str(d) for d in dtypes)}")
        self.dtype = dtypes.pop() if dtypes else np.dtype("<u2")

    @property
    def num_docs(self) -> int:
        return int(self.doc_starts[-1])

    @property
    def num_tokens(self) -> int:
        return int(self.token_starts[-1])

    def __len__(self) -> int:
        return self.num_docs

    def _locate(self, i: int) -> tuple[TokenShard, int]:
        if not -self.num_docs <= i < self.num_docs:
            raise IndexError(f"document {i} of {self.num_docs}")
        i %= self.num_docs
        k = int(np.searchsorted(self.doc_starts, i, side="right")) - 1
        return self.shards[k], i - int(self.doc_starts[k])

    def document(self, i: int, *, with_eos: bool = False) -> np.ndarray:
        shard, j = self._locate(i)
        return shard.document(j, with_eos=with_eos)

    __getitem__ = document

    def doc_id(self, i: int) -> str:
        shard, j = self._locate(i)
        return shard.doc_id(j)

    def iter_documents(self, start: int = 0, *, with_eos: bool = False) -> Iterator[np.ndarray]:
        """Documents from index `start` on (resume by passing the number already consumed)."""
        for i in range(start, self.num_docs):
            yield self.document(i, with_eos=with_eos)

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the whole packed stream (all shards' streams, concatenated)."""
        start, stop = max(0, start), min(stop, self.num_tokens)
        parts = []
        k = int(np.searchsorted(self.token_starts, start, side="right")) - 1
        while start < stop and k < len(self.shards):
            base = int(self.token_starts[k])
            parts.append(self.shards[k].tokens(start - base, min(stop, int(self.token_starts[k + 1])) - base))
            start = int(self.token_starts[k + 1])
            k += 1
        if not parts:
            return np.empty(0, dtype=self.dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def num_sequences(self, seq_len: int) -> int:
        """How many full training sequences of seq_len + 1 tokens the stream holds."""
        return max(0, (self.num_tokens - 1) // seq_len)

    def sequence(self, k: int, seq_len: int) -> np.ndarray:
        """Training sequence k: tokens [k*seq_len, (k+1)*seq_len + 1) (inputs and shifted labels)."""
        return self.tokens(k * seq_len, (k + 1) * seq_len + 1)

    def sequences(
        self, seq_len: int, *, start: int = 0, rank: int = 0, world_size: int = 1
    ) -> Iterator[np.ndarray]:
        """Full sequences of seq_len + 1 tokens packed across document boundaries (EOS separates them).

        Consecutive sequences overlap by one token, so every token is a label exactly once. `start` is
        the index of the first sequence (resume with the count already consumed); sequence k goes to
        rank k % world_size, so data-parallel ranks or DataLoader workers split the stream.
        """
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        first = start + (rank - start) % world_size
        for k in range(first, self.num_sequences(seq_len), world_size):
            yield self.sequence(k, seq_len)

    def close(self) -> None:
        for s in self.shards:
            s.close()
