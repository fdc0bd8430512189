"""Exact-verification verdicts kept across builds, by the content of the two documents' shards.

The Jaccard of two documents' shingle sets depends only on their texts and the shingle settings, so
a grown corpus (the same shards plus new ones) need not compare again what an earlier build compared:
only pairs with a document of a new shard are new. Verdicts live in the stage's shard cache
(pipeline/core/shardcache.py), one entry per pair of shard digests, each pair named by its rows in
the two shards: a document is its shard's content and row, never its place in this build, which
changes when shards are added.

An entry is one Arrow file (pair, Jaccard) written atomically: it is its own commit point, so a killed
writer leaves the previous whole file or none, and a reader only ever sees verdicts that were computed.
An entry may lack pairs (which pairs are candidates depends on other documents' band collisions);
those are computed and the entry rewritten with them, all in the task of the pairs' second block, so
one task writes each entry (two shards with equal content share entries: any writer's file is right).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from dedup.context import ROW_MASK, DedupContext
from pipeline.core.io import AnyPath, read_arrow_table, write_arrow_table
from pipeline.core.shardcache import ShardCache

_FILE = "verdicts.arrow"
_FORMAT = 1  # of the entry's file


def verdict_key(config: Any) -> dict[str, Any]:
    """What a stored verdict depends on besides the texts (the normalization is the stage version's,
    which keys the cache's root). The threshold only turns a Jaccard into a verdict; kept in the key
    so that an entry never outlives the config it was computed for."""
    return {"kind": "verdicts", "format": _FORMAT, "shingle_size": config.shingle_size,
            "threshold": config.threshold, "verify": config.verify}


def _entry(cache: ShardCache, config: Any, first: str, second: str) -> AnyPath | None:
    return cache.entry(first, other=second, **verdict_key(config))


def _by_entry(ctx: DedupContext, u: np.ndarray, v: np.ndarray) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """The pairs (u, v) by entry: {(first digest, second digest): (their indices, `row << 32 | row`)},
    the shards ordered by digest (by row between equal digests), so a pair has one name in every build."""
    out: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    su, sv = u >> 32, v >> 32
    ru, rv = u & ROW_MASK, v & ROW_MASK
    groups, where = np.unique(np.stack([su, sv], axis=1), axis=0, return_inverse=True)
    order = np.argsort(where.ravel(), kind="stable")
    bounds = np.searchsorted(where.ravel()[order], np.arange(len(groups) + 1))
    for g, (a, b) in enumerate(groups.tolist()):
        idx = order[bounds[g]:bounds[g + 1]]
        da, db = ctx.sha256[a], ctx.sha256[b]
        r1, r2 = ru[idx], rv[idx]
        if da > db:
            da, db, r1, r2 = db, da, r2, r1
        elif da == db:
            r1, r2 = np.minimum(r1, r2), np.maximum(r1, r2)
        out.setdefault((da, db), []).append((idx, (r1 << 32) | r2))
    return {k: (np.concatenate([i for i, _ in parts]), np.concatenate([p for _, p in parts]))
            for k, parts in out.items()}


def _read(entry: AnyPath | None) -> tuple[np.ndarray, np.ndarray] | None:
    """An entry's sorted pairs and their Jaccard, or None when there is none."""
    if entry is None:
        return None
    try:
        table = read_arrow_table(entry / _FILE)
    except FileNotFoundError:
        return None
    return table.column("pair").to_numpy(), table.column("sim").to_numpy()


def lookup(ctx: DedupContext, cache: ShardCache, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found, Jaccard) per pair: the verdicts an earlier build (or task) computed; one read per pair of shards."""
    found, sim = np.zeros(len(u), bool), np.zeros(len(u), np.float64)
    if cache.root is None or not len(u):
        return found, sim
    for (first, second), (idx, pairs) in _by_entry(ctx, u, v).items():
        known = _read(_entry(cache, ctx.config, first, second))
        if known is None or not len(known[0]):
            continue
        pos = np.minimum(np.searchsorted(known[0], pairs), len(known[0]) - 1)
        hit = known[0][pos] == pairs
        found[idx[hit]] = True
        sim[idx[hit]] = known[1][pos[hit]]
    return found, sim


def store(ctx: DedupContext, cache: ShardCache, u: np.ndarray, v: np.ndarray, sim: np.ndarray) -> None:
    """Add computed verdicts to their entries (each rewritten whole, atomically, with what it held)."""
    if cache.root is None or not len(u):
        return
    for (first, second), (idx, pairs) in _by_entry(ctx, u, v).items():
        entry = _entry(cache, ctx.config, first, second)
        assert entry is not None
        known = _read(entry)
        all_pairs, all_sims = pairs, sim[idx]
        if known is not None:
            all_pairs, all_sims = np.concatenate([known[0], pairs]), np.concatenate([known[1], all_sims])
        all_pairs, first_at = np.unique(all_pairs, return_index=True)
        table = pa.table({"pair": pa.array(all_pairs, pa.int64()), "sim": pa.array(all_sims[first_at], pa.float64())})
        write_arrow_table(table, entry / _FILE)
