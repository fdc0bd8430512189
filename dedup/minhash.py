"""MinHash signatures equal to datasketch's (given the same hash), shingle hash sets, LSH parameters.

datasketch (>= 2.0, scheme "affine32", the default) computes a document's signature as
    h = hashfunc(shingle); h = fmix32(h); value_k = a_k * h + b_k mod 2^32
    signature_k = min over shingles of value_k
with a, b drawn from np.random.RandomState(seed) and hashfunc its sha1_hash32 unless given another.
We compute exactly that for all shingles of a batch at once, in one compiled loop (dedup/kernels.py)
that hashes each shingle's bytes and folds its 128 permuted values into the document's row. Two hashes:

* "poly64" (default): sum((byte_i + 1) * P^i) mod 2^64 (P = 0x100000001B3), the length mixed in,
  MurmurHash3's 64-bit finalizer; its top 32 bits are the shingle hash. `poly64_hashfunc` is the
  same per shingle in plain Python: given as datasketch's `hashfunc`, datasketch yields our
  signatures bit for bit (a test checks it), so datasketch stays the reference.
* "sha1": datasketch's default hash, SHA-1 written in numpy (one pass of array operations per
  64-byte block over every shingle): identical to a plain `MinHash()`, several times slower.
  Like datatrove (xxhash) and rensa, the default does not pay for a cryptographic hash.

Signatures are a pure function of (normalized text, shingle size, num_perm, seed, hash): no
randomness beyond RandomState(seed), no dependence on batch boundaries or thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dedup.lazy import kernels
from dedup.normalize import ShingleSpans

MAX_HASH = np.uint32(0xFFFFFFFF)
_SHA1_CHUNK = 16384  # shingles per numpy SHA-1 pass (bounds its temporaries)
_SHA1_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
_SHA1_K = (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a odd), from RandomState(seed)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _rotl(x: np.ndarray, n: int, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    np.left_shift(x, np.uint32(n), out=tmp)
    np.right_shift(x, np.uint32(32 - n), out=out)
    np.bitwise_or(out, tmp, out=out)
    return out


def _message_blocks(padded: np.ndarray, starts: np.ndarray, lengths: np.ndarray, block: int) -> np.ndarray:
    """Block number `block` of each message, SHA-1 padded, as (16, n) uint32 words.

    `padded` is the data followed by at least 64 zero bytes, so a 64-byte window never runs off.
    """
    windows = np.lib.stride_tricks.sliding_window_view(padded, 64)
    out = windows[starts + 64 * block]  # (n, 64) copy
    rel = lengths - 64 * block  # bytes of the message left in this block (may be <= 0 or > 64)
    out *= np.arange(64, dtype=np.int64)[None, :] < rel[:, None]
    pad_here = (rel >= 0) & (rel < 64)
    rows = np.flatnonzero(pad_here)
    out[rows, rel[rows]] = 0x80
    last = np.flatnonzero((lengths + 8) // 64 == block)
    if len(last):
        bits = (lengths[last].astype(np.uint64) * np.uint64(8)).astype(">u8")
        out[last, 56:] = bits.view(np.uint8).reshape(-1, 8)
    return np.ascontiguousarray(out.view(">u4").astype(np.uint32).T)


def _sha1_compress(state: list[np.ndarray], w: np.ndarray) -> None:
    """One SHA-1 compression of the (16, n) block words into the five (n,) state arrays, in place.

    Allocation-free rounds: the register that falls off each round (e, and b once rotated) is
    reused as the next round's output buffer; the message schedule is expanded in place in `w`.
    """
    n = w.shape[1]
    a, b, c, d, e = (s.copy() for s in state)
    f = np.empty(n, np.uint32)
    g = np.empty(n, np.uint32)
    tmp = np.empty(n, np.uint32)
    free = np.empty(n, np.uint32)
    one, thirty_one = np.uint32(1), np.uint32(31)
    for t in range(80):
        wt = w[t % 16]
        if t >= 16:
            np.bitwise_xor(wt, w[(t - 3) % 16], out=wt)
            np.bitwise_xor(wt, w[(t - 8) % 16], out=wt)
            np.bitwise_xor(wt, w[(t - 14) % 16], out=wt)
            np.left_shift(wt, one, out=tmp)
            np.right_shift(wt, thirty_one, out=wt)
            np.bitwise_or(wt, tmp, out=wt)
        if t < 20:
            np.bitwise_xor(c, d, out=f)
            np.bitwise_and(f, b, out=f)
            np.bitwise_xor(f, d, out=f)
        elif t < 40 or t >= 60:
            np.bitwise_xor(b, c, out=f)
            np.bitwise_xor(f, d, out=f)
        else:
            np.bitwise_or(b, c, out=f)
            np.bitwise_and(f, d, out=f)
            np.bitwise_and(b, c, out=g)
            np.bitwise_or(f, g, out=f)
        t1 = _rotl(a, 5, free, tmp)
        t1 += f
        t1 += e
        t1 += np.uint32(_SHA1_K[t // 20])
        t1 += wt
        new_c = _rotl(b, 30, e, tmp)  # e's buffer is no longer needed
        free = b  # b's old value lives on only as new_c
        a, b, c, d, e = t1, a, new_c, c, d
    for s, v in zip(state, (a, b, c, d, e), strict=True):
        s += v


def sha1_hash32(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """datasketch's sha1_hash32 (first 4 digest bytes, little-endian) of every data[start:end]."""
    lengths = (ends - starts).astype(np.int64)
    n = len(lengths)
    if n == 0:
        return np.zeros(0, np.uint32)
    lo = int(starts.min())
    padded = np.concatenate([data[lo : int(ends.max())], np.zeros(64 * int((lengths.max() + 8) // 64 + 1), np.uint8)])
    starts = starts - lo
    state = [np.full(n, v, np.uint32) for v in _SHA1_INIT]
    nblocks = (lengths + 8) // 64 + 1
    for block in range(int(nblocks.max())):
        sel = np.flatnonzero(nblocks > block)
        if len(sel) == n:
            _sha1_compress(state, _message_blocks(padded, starts, lengths, block))
        else:
            sub = [s[sel] for s in state]
            _sha1_compress(sub, _message_blocks(padded, starts[sel], lengths[sel], block))
            for s, v in zip(state, sub, strict=True):
                s[sel] = v
    h0 = state[0]
    # digest bytes are h0 big-endian; datasketch reads the first four little-endian: a byte swap.
    return h0.byteswap()


def poly_hash64(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The full 64-bit poly64 hash of every data[start:end] (shingle hash sets use all 64 bits)."""
    return kernels.poly64(data, starts, ends, kernels.POWERS, kernels.INVERSE_POWERS)


def poly_hash32(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The 32-bit shingle hash of option `hash_function = "poly64"`: poly_hash64's top 32 bits."""
    return (poly_hash64(data, starts, ends) >> np.uint64(32)).astype(np.uint32)


_M64 = (1 << 64) - 1


def poly64_hashfunc64(shingle: bytes) -> int:
    """`poly_hash64` of one shingle in plain Python (the reference for `shingle_hash_sets`).

    sum((byte_i + 1) * P^i) mod 2^64, the length mixed in, then MurmurHash3's 64-bit finalizer.
    """
    h, power = 0, 1
    for byte in shingle:
        h = (h + (byte + 1) * power) & _M64
        power = (power * 0x100000001B3) & _M64
    h ^= (len(shingle) * 0x9E3779B97F4A7C15) & _M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    h ^= h >> 33
    return h


def poly64_hashfunc(shingle: bytes) -> int:
    """`poly_hash32` of one shingle: datasketch's `hashfunc` for our signatures.

    `MinHash(num_perm, seed, hashfunc=poly64_hashfunc)` equals `signatures(...)` (top 32 bits of poly64).
    """
    return poly64_hashfunc64(shingle) >> 32


HASH_FUNCTIONS = {"sha1": sha1_hash32, "poly64": poly_hash32}


def signatures(
    spans: ShingleSpans, num_perm: int = 128, seed: int = 1, hash_function: str = "poly64"
) -> np.ndarray:
    """(num_docs, num_perm) uint32 MinHash signatures; a document without shingles is all MAX_HASH.

    Equal to datasketch's `MinHash(num_perm, seed, hashfunc=...)` hashvalues: with
    `hashfunc=poly64_hashfunc` for "poly64", with its default hashfunc for "sha1".
    """
    if hash_function not in HASH_FUNCTIONS:
        raise ValueError(f"hash_function must be one of {', '.join(HASH_FUNCTIONS)}, got {hash_function!r}")
    a, b = permutations(num_perm, seed)
    sig = np.full((spans.num_docs, num_perm), MAX_HASH, dtype=np.uint32)
    if hash_function == "poly64":
        kernels.minhash(poly_hash64(spans.data, spans.starts, spans.ends), 32, spans.doc, a, b, sig)
        return sig
    for lo in range(0, len(spans.starts), _SHA1_CHUNK):
        hi = lo + _SHA1_CHUNK
        hv = sha1_hash32(spans.data, spans.starts[lo:hi], spans.ends[lo:hi])
        kernels.minhash(hv, 0, spans.doc[lo:hi], a, b, sig)
    return sig


@dataclass
class ShingleHashSets:
    """Each document's set of shingles as sorted unique 64-bit poly64 hashes (flat, CSR-style).

    Document d's set is values[offsets[d]:offsets[d + 1]]. With 64 bits, two documents of 1,000
    shingles each share a hash that is not a shared shingle with probability ~1e-13, so Jaccard on
    these sets is the exact shingle Jaccard, at 8 bytes per shingle and no Python object per shingle.
    """

    values: np.ndarray  # uint64
    offsets: np.ndarray  # int64, num_docs + 1

    def of_doc(self, d: int) -> np.ndarray:
        return self.values[self.offsets[d] : self.offsets[d + 1]]

    def jaccard(self, rows: np.ndarray, other: ShingleHashSets, other_rows: np.ndarray) -> np.ndarray:
        """Exact Jaccard of set rows[i] here with set other_rows[i] of `other` (1.0 for two empty sets)."""
        return kernels.pair_jaccard(self.values, self.offsets, np.asarray(rows, np.int64),
                                    other.values, other.offsets, np.asarray(other_rows, np.int64))


def shingle_hash_sets(spans: ShingleSpans) -> ShingleHashSets:
    """Per document, the sorted unique 64-bit hashes of its shingles: what exact-Jaccard verification compares.

    Cheap (one hash pass and a per-document sort, ~the cost of `signatures`); the set of document d
    equals {poly64_hashfunc64(s) for s in its shingles} (tests/dedup/test_shingles.py checks it).
    Use `normalize_array` -> `shingle_spans` with the stage's shingle size first.
    """
    hashes = poly_hash64(spans.data, spans.starts, spans.ends)
    values, offsets = kernels.sorted_unique_per_doc(hashes, spans.doc, spans.num_docs)
    return ShingleHashSets(values, offsets)


def has_shingles(spans: ShingleSpans) -> np.ndarray:
    return np.bincount(spans.doc, minlength=spans.num_docs) > 0


# ------------------------------------------------------------------------------------ LSH params


@lru_cache(maxsize=8)
def _legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(nodes)


def _integral(fn, lo: float, hi: float, nodes: int) -> float:
    x, w = _legendre(nodes)
    s = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    return float(0.5 * (hi - lo) * np.dot(w, fn(s)))


@lru_cache(maxsize=64)
def optimal_lsh_params(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) as datasketch.lsh._optimal_param chooses them.

    The same grid search over every (b, r) with b * r <= num_perm, minimizing the weighted areas
    of false positives (below the threshold) and false negatives (above it). The integrands are
    polynomials of degree b * r, so Gauss-Legendre with num_perm/2 + 1 nodes integrates them
    exactly, where datasketch calls scipy's quad (we avoid the scipy dependency).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"LSH threshold must be in (0, 1), got {threshold}")
    nodes = max(32, num_perm // 2 + 2)
    min_error = float("inf")
    opt = (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            def collide(s, b=b, r=r):
                return 1.0 - (1.0 - s ** float(r)) ** float(b)

            fp = _integral(collide, 0.0, threshold, nodes)
            fn = _integral(lambda s, c=collide: 1.0 - c(s), threshold, 1.0, nodes)
            error = fp * false_positive_weight + fn * false_negative_weight
            if error < min_error:
                min_error = error
                opt = (b, r)
    return opt


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: a 64-bit hash of each band's `rows` signature values.

    Two documents share a key iff (up to 64-bit collisions, which verification removes) their
    signatures agree on the whole band, like datasketch's byte-string band keys.
    """
    n = sig.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(n, 0xCBF29CE484222325 ^ band, dtype=np.uint64)
            for j in range(band * rows, (band + 1) * rows):
                h ^= sig[:, j].astype(np.uint64)
                h *= prime
            h ^= h >> np.uint64(33)
            h *= np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(33)
            keys[:, band] = h
    return keys
