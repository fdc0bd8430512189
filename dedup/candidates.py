"""Steps 2-3 of dedup: candidate pairs from LSH buckets, exact-duplicate edges, and verification.

A band collision is only a candidate. With `verify = "exact"` (the default) a pair becomes an edge
only when the Jaccard similarity of the two documents' shingle sets reaches the threshold, as
text-dedup's verify step does; with `verify = "signature"` when the Jaccard estimated from the full
signatures does (cheaper, but a pair at J = 0.5 falls on either side about half the time).

Exact verification in two rounds, partitioned by the block (dedup/context.py) of each pair's second
document, then of its first: first every candidate's signature estimate (512 bytes a pair); a pair
whose estimate is more than `verify_sigmas` standard deviations from the threshold is decided by it
(at the default 6, wrong with probability ~1e-9 per pair: a pair at J = 0.45 or 0.55 never is), the
others by their shingle sets: the first document's set (sorted 64-bit shingle hashes) is computed by
its block's task and sent along, the second's where the pairs land, only for rows in such a pair and
in bounded chunks, so memory follows one block's pairs, never the corpus. Verdicts by shingle sets
are kept in the shard cache by the shards' content (dedup/verdicts.py): a grown corpus compares only
the pairs with a document of a new shard.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from dedup import exact, lsh, minhash, verdicts
from dedup.components import write_edges
from dedup.context import (
    ROW_MASK,
    BlockSignatures,
    DedupContext,
    read_dir,
    sig_array,
    sig_matrix,
    write_by_block,
)
from dedup.normalize import normalize_array, shingle_spans
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import read_table

_PAIRS_PER_CHUNK = 16384


def bucket_task(partition: int, ctx: DedupContext) -> tuple[int, int]:
    """Candidate pairs from one band partition (by block of their first node) and exact-dup edges.

    Pairs within the documents of earlier versions are dropped: those are published and not ours to
    change (references are numbered after the inputs, so a pair whose first node is one is such a pair)."""
    cfg = ctx.config
    first_ref = np.int64(ctx.num_inputs) << np.int64(32)
    n_exact = n_cand = 0
    ex = read_dir(ctx.path("exact", partition)) if cfg.exact else None
    if ex is not None:
        u, v = exact.exact_edges(ex.column("hash").to_pylist(), ex.column("node").to_numpy())
        keep = u < first_ref
        n_exact = int(keep.sum())
        if n_exact:
            write_edges(u[keep], v[keep], ctx.path("edges"), f"exact-{partition:05d}", ctx.blocks)
            write_similarities(u[keep], v[keep], np.ones(n_exact), ctx, f"exact-{partition:05d}")
    bands = read_dir(ctx.path("bands", partition)) if cfg.near else None
    if bands is not None:
        u, v = lsh.bucket_pairs(
            bands.column("band").to_numpy(), bands.column("key").to_numpy(), bands.column("node").to_numpy(),
            cfg.all_pairs_max,
        )
        keep = u < first_ref
        u, v = u[keep], v[keep]
        n_cand = len(u)
        table = pa.table({"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())})
        write_by_block(table, u, ctx, "cand", f"{partition:05d}")
    return n_exact, n_cand


# ------------------------------------------------------------------------------- verification


def _node_sets(ctx: DedupContext, nodes: np.ndarray) -> minhash.ShingleHashSets:
    """Shingle-hash sets of the given (sorted, distinct) nodes, in their order: one read per shard."""
    texts = []
    shard = nodes >> 32
    for s in np.unique(shard).tolist():
        rows = nodes[shard == s] & ROW_MASK
        texts.append(read_table(ctx.shards[s], ["text"]).column("text").take(pa.array(rows, pa.int64())))
    text = pa.chunked_array([c for t in texts for c in t.chunks], texts[0].type if texts else pa.string())
    return minhash.shingle_hash_sets(shingle_spans(normalize_array(text), ctx.config.shingle_size))


def _set_column(sets: minhash.ShingleHashSets, rows: np.ndarray) -> pa.Array:
    """The sets of `rows` (with repeats) as one list<uint64> value each."""
    lengths = sets.offsets[rows + 1] - sets.offsets[rows]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    values = sets.values[np.repeat(sets.offsets[rows], lengths) + within]
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(values, pa.uint64()))


def _sets_of_column(column: pa.ChunkedArray) -> minhash.ShingleHashSets:
    arr = column.combine_chunks()
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False).astype(np.uint64)
    return minhash.ShingleHashSets(values, offsets)


def margin(config) -> float:
    """How far from the threshold a signature estimate must be to decide a pair by itself: `verify_sigmas`
    standard deviations of the estimate at the threshold, sqrt(t (1 - t) / num_perm)."""
    t = config.threshold
    return config.verify_sigmas * math.sqrt(t * (1 - t) / config.num_perm)


def attach_task(block: int, ctx: DedupContext) -> int:
    """For candidate pairs whose first node is in this block: attach its signature, send to v's block
    (in chunks, so memory follows a chunk of pairs)."""
    cand = read_dir(ctx.path("cand", block))
    if cand is None:
        return 0
    u, v = lsh.unique_pairs(cand.column("u").to_numpy(), cand.column("v").to_numpy())
    sigs = BlockSignatures(ctx)
    for lo in range(0, len(u), _PAIRS_PER_CHUNK * 16):
        cu, cv = u[lo:lo + _PAIRS_PER_CHUNK * 16], v[lo:lo + _PAIRS_PER_CHUNK * 16]
        write_by_block(pa.table({"u": pa.array(cu), "v": pa.array(cv), "sig_u": sig_array(sigs.of(cu))}), cv, ctx,
                       "cand2", f"{block:05d}-{lo:010d}")
    return len(u)


def verify_task(block: int, ctx: DedupContext) -> tuple[int, int]:
    """Decide the candidate pairs ending in this block by their signature estimate: an edge when it
    reaches the threshold (verify = "signature") or exceeds it by the margin (verify = "exact"); with
    "exact", pairs within the margin go back to their first shard for exact verification.
    Returns (edges, pairs left for exact verification)."""
    cfg = ctx.config
    files = sorted(ctx.path("cand2", block).glob("*.parquet"))
    if not files:
        return 0, 0
    v_sigs = BlockSignatures(ctx)
    m = margin(cfg) if cfg.verify == "exact" else 0.0
    edges = _Edges()
    ambiguous = 0
    for f in files:  # one file per chunk of a block of first nodes: memory follows one file's candidates
        cand = read_table(f)
        for lo in range(0, cand.num_rows, _PAIRS_PER_CHUNK):
            chunk = cand.slice(lo, _PAIRS_PER_CHUNK)
            u, v = chunk.column("u").to_numpy(), chunk.column("v").to_numpy()
            est = lsh.signature_similarity(sig_matrix(chunk.column("sig_u"), cfg.num_perm), v_sigs.of(v))
            keep = est >= cfg.threshold + m
            edges.add(u[keep], v[keep], est[keep])
            if cfg.verify == "exact":
                unsure = ~keep & (est >= cfg.threshold - m)
                ambiguous += int(unsure.sum())
                table = pa.table({"u": pa.array(u[unsure]), "v": pa.array(v[unsure])})
                write_by_block(table, u[unsure], ctx, "unsure", f"{block:05d}-{f.stem}-{lo:09d}")
    return edges.write(ctx, f"near-{block:05d}"), ambiguous


def attach_sets_task(item: tuple[int, ShardCache], ctx: DedupContext) -> tuple[int, int]:
    """For the pairs left for exact verification whose first node is here: those an earlier build
    verified (dedup/verdicts.py) become edges by their kept Jaccard; the rest get the first node's
    shingle set attached and go on to `verify_sets_task`. Returns (edges, verdicts reused)."""
    block, cache = item
    pairs = read_dir(ctx.path("unsure", block))
    if pairs is None:
        return 0, 0
    u, v = pairs.column("u").to_numpy(), pairs.column("v").to_numpy()
    known, sim = verdicts.lookup(ctx, cache, u, v)
    edges = _Edges()
    near = known & (sim >= ctx.config.threshold)
    edges.add(u[near], v[near], sim[near])
    found = edges.write(ctx, f"known-{block:05d}")
    u, v = u[~known], v[~known]
    if len(u):
        nodes, where = np.unique(u, return_inverse=True)
        table = pa.table({"u": pa.array(u), "v": pa.array(v), "set_u": _set_column(_node_sets(ctx, nodes), where)})
        write_by_block(table, v, ctx, "unsure2", f"{block:05d}")
    return found, int(known.sum())


def verify_sets_task(item: tuple[int, ShardCache], ctx: DedupContext) -> int:
    """Exact Jaccard of the shingle sets of the pairs left for exact verification ending in this block,
    kept in the cache for the next build (every pair of two shards ends in the later one's block)."""
    block, cache = item
    files = sorted(ctx.path("unsure2", block).glob("*.parquet"))
    if not files:
        return 0
    v_nodes = np.unique(np.concatenate([read_table(f, ["v"]).column("v").to_numpy() for f in files]))
    v_sets = _node_sets(ctx, v_nodes)
    edges, computed = _Edges(), _Edges()
    for f in files:
        pairs = read_table(f)
        for lo in range(0, pairs.num_rows, _PAIRS_PER_CHUNK):
            chunk = pairs.slice(lo, _PAIRS_PER_CHUNK)
            u, v = chunk.column("u").to_numpy(), chunk.column("v").to_numpy()
            u_sets = _sets_of_column(chunk.column("set_u"))
            sim = u_sets.jaccard(np.arange(len(u)), v_sets, np.searchsorted(v_nodes, v))
            keep = sim >= ctx.config.threshold
            edges.add(u[keep], v[keep], sim[keep])
            computed.add(u, v, sim)
    verdicts.store(ctx, cache, *computed.arrays())
    return edges.write(ctx, f"exactly-{block:05d}")


class _Edges:
    """Verified near-duplicate edges of one task, with their similarity."""

    def __init__(self) -> None:
        self.u: list[np.ndarray] = [np.zeros(0, np.int64)]
        self.v: list[np.ndarray] = [np.zeros(0, np.int64)]
        self.sim: list[np.ndarray] = [np.zeros(0, np.float64)]

    def add(self, u: np.ndarray, v: np.ndarray, sim: np.ndarray) -> None:
        self.u.append(u)
        self.v.append(v)
        self.sim.append(sim)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.concatenate(self.u), np.concatenate(self.v), np.concatenate(self.sim)

    def write(self, ctx: DedupContext, name: str) -> int:
        u, v, sim = self.arrays()
        if len(u):
            write_edges(u, v, ctx.path("edges"), name, ctx.blocks)
            write_similarities(u, v, sim, ctx, name)
        return len(u)


def write_similarities(u: np.ndarray, v: np.ndarray, sim: np.ndarray, ctx: DedupContext, name: str) -> None:
    """(node, similarity) of both ends of each edge, to the node's block: its `dup_similarity` is the
    highest (dedup/clusters.py)."""
    node = np.concatenate([u, v])
    table = pa.table({"node": pa.array(node), "sim": pa.array(np.concatenate([sim, sim]), pa.float64())})
    write_by_block(table, node, ctx, "sims", name, inputs_only=True)
