"""Compiled (numba) loops of the text -> signature path: folding, word splitting, hashing, minimum.

Each loop walks the bytes or shingles once, with no Python per document, where the numpy versions
made a dozen full-size temporaries per step. Single-threaded on purpose: the executor runs one task
per core. `cache=True` keeps the compiled code next to this file (or in numba's user cache), so a
worker process loads it instead of compiling it (about 2 s the first time).

Character classes come from tables indexed by code point (`char_classes` in dedup/normalize.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# bit flags of the word-splitting table (dedup/normalize.py builds it)
SEG = 1  # a script written without spaces: every character (cluster) is a word of its own
ATTACH = 2  # never starts a word: combining marks, Thai/Lao following vowels
GLUE = 4  # the next character never starts a word: Thai/Lao leading vowels, Khmer coeng, Myanmar virama

_POLY = 0x100000001B3


@njit(cache=True, nogil=True, inline="always")
def _decode(data: np.ndarray, i: int) -> tuple[int, int]:
    """(code point, byte length) of the valid UTF-8 sequence at data[i]."""
    b0 = np.int64(data[i])
    if b0 < 0x80:
        return b0, 1
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b0 < 0xF0:
        return ((b0 & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
    return (((b0 & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12)
            | ((np.int64(data[i + 2]) & 0x3F) << 6) | (np.int64(data[i + 3]) & 0x3F)), 4


@njit(cache=True, nogil=True)
def fold(data: np.ndarray, offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each run of characters with keep[cp] False -> one space, none at either end of a document."""
    n = len(offsets) - 1
    out = np.empty(offsets[n] - offsets[0] + 1, np.uint8)  # +1: the unconditional write
    new_offsets = np.zeros(n + 1, np.int64)
    o = 0
    for d in range(n):
        i, end = offsets[d], offsets[d + 1]
        doc_start = o
        kept_before = True  # was the previous character kept? (a separator run becomes one space)
        while i < end:
            b = data[i]
            if b < 0x80:  # branch-free: the state is only whether the previous character was kept
                kept = keep[b]
                space = kept and not kept_before and o > doc_start
                out[o] = 32
                o += space
                out[o] = b
                o += kept
                kept_before = kept
                i += 1
                continue
            cp, width = _decode(data, i)
            kept = keep[cp]
            if kept:
                if not kept_before and o > doc_start:
                    out[o] = 32
                    o += 1
                for j in range(width):
                    out[o + j] = data[i + j]
                o += width
            kept_before = kept
            i += width
        new_offsets[d + 1] = o
    return out[:o], new_offsets


@njit(cache=True, nogil=True)
def _words(data: np.ndarray, lo: int, hi: int, flags: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> int:
    """Words of normalized text data[lo:hi] into starts/ends (if not empty); returns their count.

    Words are separated by spaces, and in scripts written without them (flags SEG) each character,
    with its combining marks (ATTACH) and glued neighbours (GLUE), is a word.
    """
    count = 0
    i = lo
    in_word = False
    seg_word = False
    glue = False
    store = len(starts) > 0
    while i < hi:
        b = data[i]
        if b == 32:
            if in_word and store:
                ends[count - 1] = i
            in_word = False
            i += 1
            continue
        if b < 0x80:
            f, width = 0, 1
        else:
            cp, width = _decode(data, i)
            f = flags[cp]
        new = not in_word or (not (f & ATTACH) and not glue and ((f & SEG) != 0 or seg_word))
        if new:
            if in_word and store:
                ends[count - 1] = i
            if store:
                starts[count] = i
            count += 1
            in_word = True
            seg_word = (f & SEG) != 0
        glue = (f & GLUE) != 0
        i += width
    if in_word and store:
        ends[count - 1] = hi
    return count


@njit(cache=True, nogil=True)
def _spaced_words(data: np.ndarray, lo: int, hi: int, starts: np.ndarray, ends: np.ndarray) -> int:
    """_words for normalized text of space-separated scripts (single spaces, none at either end).

    Branch-free: every byte writes the candidate end of this word and start of the next, and only a
    space advances the count (starts/ends need one spare slot).
    """
    if hi == lo:
        return 0
    starts[0] = lo
    count = 1
    for i in range(lo, hi):
        ends[count - 1] = i
        starts[count] = i + 1
        count += data[i] == 32
    ends[count - 1] = hi
    return count


@njit(cache=True, nogil=True)
def shingles(data: np.ndarray, offsets: np.ndarray, flags: np.ndarray, k: int):
    """(starts, ends, doc) of the word k-grams of each document; 1..k-1 words make one shingle."""
    n = len(offsets) - 1
    none = np.empty(0, np.int64)
    per_doc = np.zeros(n, np.int64)
    spaced = np.zeros(n, np.bool_)
    most = 0
    for d in range(n):
        lo, hi = offsets[d], offsets[d + 1]
        spaces = 0
        top = 0
        for i in range(lo, hi):  # vectorizes: count spaces, find the largest byte
            spaces += np.int64(data[i] == 32)
            top = max(top, np.int64(data[i]))
        # No lead byte of a 3- or 4-byte character means nothing at or above U+0800, so no script
        # written without spaces (all from U+0E00 on): words are exactly the space-separated runs.
        if top < 0xE0:
            spaced[d] = True
            words = spaces + 1 if hi > lo else 0
        else:
            words = _words(data, lo, hi, flags, none, none)
        most = max(most, words)
        per_doc[d] = words - k + 1 if words >= k else min(words, 1)
    total = per_doc.sum()
    starts = np.empty(total, np.int64)
    ends = np.empty(total, np.int64)
    doc = np.empty(total, np.int64)
    ws = np.empty(most + 1, np.int64)
    we = np.empty(most + 1, np.int64)
    o = 0
    for d in range(n):
        if per_doc[d] == 0:
            continue
        if spaced[d]:
            words = _spaced_words(data, offsets[d], offsets[d + 1], ws, we)
        else:
            words = _words(data, offsets[d], offsets[d + 1], flags, ws, we)
        for j in range(per_doc[d]):
            starts[o] = ws[j]
            ends[o] = we[min(j + k, words) - 1]
            doc[o] = d
            o += 1
    return starts, ends, doc


_POLY_INV = pow(_POLY, -1, 1 << 64)
_GROUP_BYTES = 1 << 16  # prefix sums over at most this many bytes at a time (a scratch that stays in cache)


def powers(base: int, count: int) -> np.ndarray:
    """base^0 .. base^(count - 1) mod 2^64 (P, or its inverse: P is odd, so invertible)."""
    with np.errstate(over="ignore"):
        return np.concatenate([[np.uint64(1)], np.cumprod(np.full(count - 1, base, np.uint64))])


POWERS = powers(_POLY, _GROUP_BYTES)  # 512 KiB
INVERSE_POWERS = powers(_POLY_INV, 256)  # P^-d for the distance d between consecutive shingle starts


@njit(cache=True, nogil=True)
def _inv_pow(e: int, table: np.ndarray) -> np.uint64:
    if e < len(table):
        return table[e]
    r, base = np.uint64(1), np.uint64(_POLY_INV)
    while e:
        if e & 1:
            r *= base
        base *= base
        e >>= 1
    return r


@njit(cache=True, nogil=True)
def poly64(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, powers: np.ndarray,
           inv_table: np.ndarray) -> np.ndarray:
    """The 64-bit poly64 hash of every data[start:end]: sum((byte_i + 1) * P^i) mod 2^64, finalized.

    Each byte is read once, not once per shingle containing it: over a run of shingles whose starts
    do not decrease, prefix[t] = sum over data[lo:lo+t] of (byte + 1) * P^(q - lo), and a shingle's
    sum is (prefix[e] - prefix[s]) * P^-(s - lo), that factor updated from the previous start.
    """
    n = len(starts)
    out = np.empty(n, np.uint64)
    prefix = np.empty(_GROUP_BYTES + 1, np.uint64)
    i = 0
    while i < n:
        lo, hi = starts[i], ends[i]
        j = i + 1
        while j < n and starts[j] >= starts[j - 1] and ends[j] - lo <= _GROUP_BYTES:
            hi = max(hi, ends[j])
            j += 1
        if hi - lo + 1 > len(prefix):
            prefix = np.empty(hi - lo + 1, np.uint64)
        acc, power = np.uint64(0), np.uint64(1)
        prefix[0] = 0
        if hi - lo <= len(powers):  # weights from the table: no multiply chain from byte to byte
            for q in range(hi - lo):
                acc += (np.uint64(data[lo + q]) + np.uint64(1)) * powers[q]
                prefix[q + 1] = acc
        else:  # one shingle longer than the table
            for q in range(hi - lo):
                acc += (np.uint64(data[lo + q]) + np.uint64(1)) * power
                power *= np.uint64(_POLY)
                prefix[q + 1] = acc
        inv, at = np.uint64(1), lo
        for t in range(i, j):
            s, e = starts[t], ends[t]
            inv *= _inv_pow(s - at, inv_table)
            at = s
            h = (prefix[e - lo] - prefix[s - lo]) * inv
            h ^= np.uint64(e - s) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(33)
            h *= np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(33)
            h *= np.uint64(0xC4CEB9FE1A85EC53)
            h ^= h >> np.uint64(33)
            out[t] = h
        i = j
    return out


@njit(cache=True, nogil=True, inline="always")
def _fmix32(h: np.uint32) -> np.uint32:
    h = np.uint32(h ^ (h >> np.uint32(16)))
    h = np.uint32(h * np.uint32(0x85EBCA6B))
    h = np.uint32(h ^ (h >> np.uint32(13)))
    h = np.uint32(h * np.uint32(0xC2B2AE35))
    return np.uint32(h ^ (h >> np.uint32(16)))


@njit(cache=True, nogil=True)
def minhash(hashes: np.ndarray, shift: int, doc: np.ndarray, a: np.ndarray, b: np.ndarray, sig: np.ndarray) -> None:
    """sig[doc] = min over the document's shingles of a * fmix32(hash >> shift) + b (mod 2^32), in place.

    uint32 hashes with shift 0, or uint64 ones with shift 32. The permutation loop compiles to AVX2
    (8 lanes); its 32-bit multiplies are the bound, ~1/3 of the text -> signature time.
    """
    for i in range(len(hashes)):
        row = sig[doc[i]]
        hv = _fmix32(np.uint32(np.uint64(hashes[i]) >> np.uint64(shift)))
        for p in range(len(a)):
            # numba widens uint32 products: wrap to mod 2^32 explicitly; min() keeps it branch-free (SIMD)
            row[p] = min(row[p], np.uint32(a[p] * hv + b[p]))


@njit(cache=True, nogil=True)
def sorted_unique_per_doc(hashes: np.ndarray, doc: np.ndarray, num_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Each document's hashes sorted and deduplicated: (flat values, offsets of num_docs + 1); `doc` ascending."""
    out = np.empty(len(hashes), np.uint64)
    offsets = np.zeros(num_docs + 1, np.int64)
    i = o = 0
    for d in range(num_docs):
        j = i
        while j < len(doc) and doc[j] == d:
            j += 1
        part = np.sort(hashes[i:j])
        for m in range(len(part)):
            if m == 0 or part[m] != part[m - 1]:
                out[o] = part[m]
                o += 1
        offsets[d + 1] = o
        i = j
    return out[:o].copy(), offsets


@njit(cache=True, nogil=True)
def pair_jaccard(va: np.ndarray, oa: np.ndarray, rows_a: np.ndarray,
                 vb: np.ndarray, ob: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """|A & B| / |A | B| of sorted unique sets A = va[oa[r]:oa[r+1]] (r in rows_a) and B likewise."""
    out = np.empty(len(rows_a), np.float64)
    for p in range(len(rows_a)):
        i, i_end = oa[rows_a[p]], oa[rows_a[p] + 1]
        j, j_end = ob[rows_b[p]], ob[rows_b[p] + 1]
        na, nb = i_end - i, j_end - j
        common = 0
        while i < i_end and j < j_end:
            if va[i] == vb[j]:
                common += 1
                i += 1
                j += 1
            elif va[i] < vb[j]:
                i += 1
            else:
                j += 1
        union = na + nb - common
        out[p] = common / union if union else 1.0  # two empty sets: equal, as lsh.exact_jaccard
    return out
