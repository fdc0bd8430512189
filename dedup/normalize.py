"""Text normalization and word shingles, vectorized over a whole Arrow column.

Near-duplicate detection works on normalized text (the OpenWebText recipe): lowercased, every run of
characters that are not letters, digits or combining marks folded into one space, trimmed. Shingles
are word k-grams of that text. They are never materialized as Python strings: `shingle_spans`
returns byte offsets into the column's data buffer, which the numpy SHA-1 in dedup/minhash.py reads
directly, so the cost per shingle is numpy work, not Python work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Everything but letters, digits and combining marks (so Devanagari vowel signs stay in their word).
_FOLD_PATTERN = r"[^\p{L}\p{N}\p{M}]+"
_SPACE = 32


def normalize_array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lowercase, fold punctuation and whitespace runs to one space, trim; one contiguous array.

    Pure-ASCII texts (most web text) take a numpy byte-table path; the others go through Arrow's
    RE2 regex. Both give the same result on ASCII text, which a test checks.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    texts = texts.cast(pa.large_string()).fill_null("")
    ascii_mask = pc.string_is_ascii(texts).to_numpy(zero_copy_only=False)
    if ascii_mask.all():
        return _normalize_ascii(texts)
    if not ascii_mask.any():
        return _normalize_regex(texts)
    idx_a, idx_u = np.flatnonzero(ascii_mask), np.flatnonzero(~ascii_mask)
    parts = pa.concat_arrays([_normalize_ascii(texts.take(pa.array(idx_a))), _normalize_regex(texts.take(pa.array(idx_u)))])
    order = np.empty(len(texts), np.int64)
    order[np.concatenate([idx_a, idx_u])] = np.arange(len(texts))
    return parts.take(pa.array(order))


def _normalize_regex(texts: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(texts)
    folded = pc.replace_substring_regex(lowered, pattern=_FOLD_PATTERN, replacement=" ")
    trimmed = pc.utf8_trim(folded, characters=" ")
    # compute kernels may return views with offsets; take() gives a fresh, compact buffer.
    return trimmed.take(pa.array(np.arange(len(trimmed), dtype=np.int64)))


_ASCII_KEEP = np.zeros(256, bool)
_ASCII_KEEP[list(b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")] = True
_ASCII_LOWER = np.arange(256, dtype=np.uint8)
_ASCII_LOWER[65:91] += 32


def _normalize_ascii(texts: pa.Array) -> pa.Array:
    """The same normalization for ASCII-only texts with byte tables: no regex, no per-doc Python."""
    offsets, data = _buffers(texts)
    n = len(offsets) - 1
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = data[lo:hi]
    offsets = offsets - lo
    keep_char = _ASCII_KEEP[data]
    # a separator run survives as one space unless it touches the start or end of its document
    sep = ~keep_char
    boundary = np.zeros(len(data) + 1, bool)
    boundary[offsets] = True
    prev_sep = np.concatenate([[False], sep[:-1]]) & ~boundary[:-1]
    next_sep = np.concatenate([sep[1:], [False]]) & ~boundary[1:]
    run_first = np.flatnonzero(sep & ~prev_sep)
    run_last = np.flatnonzero(sep & ~next_sep)
    inner = ~boundary[run_first] & ~boundary[run_last + 1]
    emit = keep_char.copy()
    emit[run_first[inner]] = True
    out = np.where(keep_char, _ASCII_LOWER[data], np.uint8(_SPACE))[emit]
    emitted_before = np.concatenate([[0], np.cumsum(emit, dtype=np.int64)])
    new_offsets = emitted_before[offsets]
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(new_offsets), pa.py_buffer(out.tobytes()))


def normalize_text(text: str) -> str:
    """The same normalization for one string (tests, tools)."""
    return normalize_array(pa.array([text], pa.large_string()))[0].as_py()


@dataclass
class ShingleSpans:
    """Byte spans of every shingle of every document of a normalized column.

    `data` is the column's UTF-8 bytes; shingle i is data[starts[i]:ends[i]]; `doc` is its document
    (row) index. Shingles of one document are contiguous and documents appear in row order.
    """

    data: np.ndarray  # uint8
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    doc: np.ndarray  # int64
    num_docs: int

    def shingle_bytes(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.ends[i]].tobytes()

    def of_doc(self, d: int) -> list[bytes]:
        idx = np.flatnonzero(self.doc == d)
        return [self.shingle_bytes(int(i)) for i in idx]


def _buffers(normalized: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    arr = normalized.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return offsets, data


def shingle_spans(normalized: pa.Array, k: int) -> ShingleSpans:
    """Word k-gram spans of each normalized document.

    A document with at least k words has (words - k + 1) shingles; one with 1..k-1 words has a single
    shingle (all its words), so short texts still get a signature; an empty one has none.
    """
    if k < 1:
        raise ValueError(f"shingle size must be >= 1, got {k}")
    offsets, data = _buffers(normalized)
    n = len(offsets) - 1
    lo, hi = int(offsets[0]), int(offsets[-1])
    doc_start, doc_end = offsets[:-1], offsets[1:]
    nonempty = doc_end > doc_start
    # Normalized text has single spaces and none at either end, so a word starts after every space and
    # at every non-empty document's start, and ends at every space and every non-empty document's end.
    # Marking those byte positions gives both lists already sorted (no sort of a million offsets).
    is_space = data[lo:hi] == _SPACE
    starts_mark = np.zeros(hi - lo + 1, bool)
    starts_mark[1:] = is_space
    starts_mark[doc_start[nonempty] - lo] = True
    ends_mark = np.zeros(hi - lo + 1, bool)
    ends_mark[:-1] = is_space
    ends_mark[doc_end[nonempty] - lo] = True
    word_starts = np.flatnonzero(starts_mark[:-1]).astype(np.int64) + lo
    word_ends = np.flatnonzero(ends_mark).astype(np.int64) + lo
    word_doc = np.searchsorted(doc_end, word_starts, side="right").astype(np.int64)
    words_per_doc = np.bincount(word_doc, minlength=n).astype(np.int64)
    first_word = np.concatenate([[0], np.cumsum(words_per_doc)[:-1]]).astype(np.int64)
    local = np.arange(len(word_starts), dtype=np.int64) - first_word[word_doc]
    count = words_per_doc[word_doc]
    is_start = np.where(count >= k, local <= count - k, local == 0)
    sel = np.flatnonzero(is_start)
    last_word = first_word[word_doc[sel]] + count[sel] - 1
    end_word = np.minimum(sel + k - 1, last_word)
    return ShingleSpans(
        data=data, starts=word_starts[sel], ends=word_ends[end_word], doc=word_doc[sel], num_docs=n
    )
