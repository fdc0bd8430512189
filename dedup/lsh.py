"""LSH banding: candidate pairs per partition, and the Jaccard their full signatures estimate.

Band keys of every document are written to disk partitioned by a hash of (band, key), so one bucket
(all documents sharing a key in a band) always lands whole in one partition and each partition is
processed by one task with memory proportional to its share. A bucket of k documents gives all
k(k-1)/2 pairs up to `all_pairs_max` members; a larger bucket (typically a big cluster of copies)
gives a star from its smallest node plus a chain through its sorted members, which connects the
bucket in 2k edges when its members really are similar, instead of k^2 comparisons.
A band collision is only a candidate: dedup/candidates.py verifies it (`signature_similarity` here,
the shingle sets' Jaccard near the threshold).
"""

from __future__ import annotations

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """A 64-bit avalanche (splitmix64 finalizer) for partitioning ints uniformly."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _MIX
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def band_partition(keys: np.ndarray, partitions: int) -> np.ndarray:
    """Partition of each (band, key) cell of an (n, bands) key matrix."""
    band = np.arange(keys.shape[1], dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        return (mix64(keys ^ (band * _MIX)) % np.uint64(partitions)).astype(np.int64)


def bucket_pairs(
    bands: np.ndarray, keys: np.ndarray, nodes: np.ndarray, all_pairs_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (u < v), deduplicated, from rows (band, key, node) of one partition."""
    if len(nodes) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((nodes, keys, bands))
    b, k, n = bands[order], keys[order], nodes[order]
    new = np.concatenate([[True], (b[1:] != b[:-1]) | (k[1:] != k[:-1])])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(n)))
    us: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    two = starts[sizes == 2]
    us.append(n[two])
    vs.append(n[two + 1])
    for start, size in zip(starts[sizes > 2].tolist(), sizes[sizes > 2].tolist(), strict=True):
        members = n[start : start + size]
        if size <= all_pairs_max:
            i, j = np.triu_indices(size, 1)
            us.append(members[i])
            vs.append(members[j])
        else:
            us.append(np.concatenate([np.full(size - 1, members[0]), members[1:-1]]))
            vs.append(np.concatenate([members[1:], members[2:]]))
    u = np.concatenate(us)
    v = np.concatenate(vs)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    keep = lo != hi  # the same document twice in a bucket (duplicate input rows) is no pair
    return unique_pairs(lo[keep], hi[keep])


def unique_pairs(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct (u, v) pairs."""
    if len(u) == 0:
        return u.astype(np.int64), v.astype(np.int64)
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    keep = np.concatenate([[True], (u[1:] != u[:-1]) | (v[1:] != v[:-1])])
    return u[keep], v[keep]


def signature_similarity(sig_u: np.ndarray, sig_v: np.ndarray) -> np.ndarray:
    """Jaccard estimated from full signatures: the share of equal MinHash values, row by row."""
    if len(sig_u) == 0:
        return np.zeros(0, np.float64)
    return np.count_nonzero(sig_u == sig_v, axis=1) / sig_u.shape[1]


def exact_jaccard(a: set[bytes], b: set[bytes]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
