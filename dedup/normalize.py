"""Text normalization and word shingles, over a whole Arrow column, in compiled loops (dedup/kernels.py).

Near-duplicate detection works on normalized text (the OpenWebText recipe): lowercased, every run of
characters that are not letters, digits or combining marks folded into one space, trimmed. Letters,
digits and marks are Unicode's L, N and M categories as pyarrow's RE2 knows them (the table is read
from RE2 once per process, so the result equals the regex `_normalize_regex`, which a test checks).

Shingles are word k-grams of that text. Words are space-separated, except in scripts written without
spaces, where datatrove#234 found no shingles at all (one "word" per sentence):

* Chinese and Japanese (Han, Hiragana, Katakana, with their marks): every character is a word, so a
  5-gram is 5 characters (~3 Chinese words); no dictionary, as the Chinese/Japanese text-dedup recipes.
* Thai, Lao, Khmer, Myanmar: a word per character cluster (a base character with its combining marks
  and following vowels; a leading vowel, coeng or virama glued to the next character), dictionary-free
  like Thai Character Cluster segmentation; a 5-gram spans about two Thai words.
* Korean and every other script: spaces, as before.

Shingles are never materialized as Python strings: `shingle_spans` returns byte offsets into the
column's data buffer, which the hash loops read directly.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup.lazy import kernels
from pipeline.core.io import cache_dir, write_bytes_atomic

# Everything but letters, digits and combining marks (so Devanagari vowel signs stay in their word).
_FOLD_PATTERN = r"[^\p{L}\p{N}\p{M}]+"


def normalize_array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lowercase, fold punctuation and whitespace runs to one space, trim; one contiguous array.

    Arrow lowercases (utf8_lower, ~700k docs/s); one compiled pass over the bytes folds and trims.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    lowered = pc.utf8_lower(texts.cast(pa.large_string()).fill_null(""))
    offsets, data = _buffers(lowered)
    out, new_offsets = kernels.fold(data, offsets, _keep_table())
    return pa.LargeStringArray.from_buffers(len(lowered), pa.py_buffer(new_offsets), pa.py_buffer(out))


_MAX_CP = 0x110000


def _re2_members(category_class: str) -> np.ndarray:
    """member[cp]: code point cp matches the RE2 class `[category_class]`. One regex pass over every
    code point (~0.1 s), kept in the local cache by pyarrow's version (which bundles RE2's tables):
    every worker of every build needs it before its first document."""
    key = hashlib.sha1(f"{pa.__version__}\0{category_class}".encode()).hexdigest()[:16]
    path = Path(cache_dir("re2-classes")) / f"{key}.bits"
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        if len(data) == -(-_MAX_CP // 8):  # else a partial file: computed again
            return np.unpackbits(np.frombuffer(data, np.uint8), count=_MAX_CP).astype(np.bool_)
    cps = np.arange(_MAX_CP, dtype=np.uint32)
    cps = cps[(cps < 0xD800) | (cps > 0xDFFF)]  # surrogates are not characters
    text = cps.astype("<u4").tobytes().decode("utf-32-le")
    kept = pc.replace_substring_regex(pa.array([text]), pattern=f"[^{category_class}]", replacement="\x00")
    member = np.zeros(_MAX_CP, np.bool_)
    member[cps[np.frombuffer(kept[0].as_py().encode("utf-32-le"), dtype="<u4") != 0]] = True
    with contextlib.suppress(OSError):
        write_bytes_atomic(np.packbits(member).tobytes(), path)
    return member


@lru_cache(maxsize=1)
def _keep_table() -> np.ndarray:
    """Letters, digits and marks: what normalization keeps."""
    return _re2_members(r"\p{L}\p{N}\p{M}")


@lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """uint8 word-splitting flags per code point (kernels.SEG / ATTACH / GLUE), see the module docstring."""
    flags = np.zeros(_MAX_CP, np.uint8)
    seg = [(0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3005, 0x3007), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
           (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x323AF),  # Han, kana
           (0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x19E0, 0x19FF)]  # Thai, Lao, Myanmar, Khmer
    for lo, hi in seg:
        flags[lo : hi + 1] |= kernels.SEG
    marks = _re2_members(r"\p{M}")
    flags[marks] |= kernels.ATTACH
    flags[[0x0E2F, 0x0E30, 0x0E32, 0x0E33, 0x0E45, 0x0E46, 0x0EB0, 0x0EB2, 0x0EB3, 0x0EC6]] |= kernels.ATTACH
    flags[[*range(0x0E40, 0x0E45), *range(0x0EC0, 0x0EC5), 0x17D2, 0x1039]] |= kernels.GLUE
    return flags


def _normalize_regex(texts: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(texts)
    folded = pc.replace_substring_regex(lowered, pattern=_FOLD_PATTERN, replacement=" ")
    trimmed = pc.utf8_trim(folded, characters=" ")
    # compute kernels may return views with offsets; take() gives a fresh, compact buffer.
    return trimmed.take(pa.array(np.arange(len(trimmed), dtype=np.int64)))


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
    starts, ends, doc = kernels.shingles(data, offsets, char_classes(), k)
    return ShingleSpans(data=data, starts=starts, ends=ends, doc=doc, num_docs=len(offsets) - 1)
