"""Steps 2-3 of dedup: candidate pairs from LSH buckets, exact-duplicate edges, and verification.

A band collision is only a candidate. With `verify = "exact"` (the default) a pair becomes an edge
only when the exact Jaccard similarity of the two documents' shingle sets reaches the threshold, as
text-dedup's verify step does; with `verify = "signature"` when the Jaccard estimated from the full
signatures does (cheaper, but a pair at J = 0.5 falls on either side about half the time).

Verification is partitioned by the shard of each pair's second document: the first document's
side (its shingle-hash set or signature) is computed by its own shard's task and sent along, the
second's is computed where the pairs land. A shard's sets are computed only for the rows that are in
a candidate pair, in bounded chunks, so memory follows the pairs of one shard, never the corpus.
Shingles are compared through their 32-bit hashes (the same hash the signatures use): two distinct
shingles of a pair share a hash with probability ~2^-32, which moves a Jaccard by far less than any
threshold's resolution.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dedup import exact, lsh, minhash
from dedup.components import write_edges
from dedup.context import (
    ROW_MASK,
    DedupContext,
    read_dir,
    read_signatures,
    sig_array,
    sig_matrix,
    write_by_shard,
)
from dedup.normalize import normalize_array, shingle_spans
from pipeline.core.shards import read_table

_PAIRS_PER_CHUNK = 16384


def bucket_task(partition: int, ctx: DedupContext) -> tuple[int, int]:
    """Candidate pairs from one band partition (by shard of their first node) and exact-dup edges.

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
            write_edges(u[keep], v[keep], ctx.path("edges"), f"exact-{partition:05d}", ctx.partitions)
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
        write_by_shard(table, u >> 32, ctx, "cand", f"{partition:05d}")
    return n_exact, n_cand


# ----------------------------------------------------------------------------- shingle-hash sets


def shingle_hash_sets(texts: pa.Array, shingle_size: int, hash_function: str) -> tuple[np.ndarray, np.ndarray]:
    """Each document's distinct shingle hashes, sorted: (values uint32, offsets int64 of len n + 1)."""
    spans = shingle_spans(normalize_array(texts), shingle_size)
    h = minhash.HASH_FUNCTIONS[hash_function](spans.data, spans.starts, spans.ends)
    keys = np.unique((spans.doc.astype(np.uint64) << np.uint64(32)) | h.astype(np.uint64))
    values = (keys & np.uint64(ROW_MASK)).astype(np.uint32)
    counts = np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=spans.num_docs)
    return values, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def gather_sets(values: np.ndarray, offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sets of documents `idx` (with repeats), as (values, offsets)."""
    lengths = offsets[idx + 1] - offsets[idx]
    out_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    within = np.arange(out_offsets[-1], dtype=np.int64) - np.repeat(out_offsets[:-1], lengths)
    return values[np.repeat(offsets[idx], lengths) + within], out_offsets


def set_jaccard(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Jaccard similarity of set a[i] and set b[i] for every i, vectorized (both sides sorted-unique)."""
    (va, oa), (vb, ob) = a, b
    n = len(oa) - 1
    if n == 0:
        return np.zeros(0, np.float64)
    sa, sb = np.diff(oa), np.diff(ob)
    tagged = np.concatenate([
        (np.repeat(np.arange(n, dtype=np.uint64), sa) << np.uint64(32)) | va.astype(np.uint64),
        (np.repeat(np.arange(n, dtype=np.uint64), sb) << np.uint64(32)) | vb.astype(np.uint64),
    ])
    tagged.sort()
    both = tagged[1:][tagged[1:] == tagged[:-1]]
    inter = np.bincount((both >> np.uint64(32)).astype(np.int64), minlength=n)
    union = sa + sb - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _rows_sets(ctx: DedupContext, shard: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shingle-hash sets of the given rows of a shard (rows sorted unique)."""
    cfg = ctx.config
    text = read_table(ctx.shards[shard], ["text"]).column("text").take(pa.array(rows, pa.int64()))
    return shingle_hash_sets(text, cfg.shingle_size, cfg.hash_function)


def _list_array(values: np.ndarray, offsets: np.ndarray) -> pa.Array:
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(values, pa.uint32()))


def _from_list(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False).astype(np.uint32)
    return values[offsets[0]:], offsets - offsets[0]


# ------------------------------------------------------------------------------------- the tasks


def attach_task(shard: int, ctx: DedupContext) -> int:
    """For candidate pairs whose first node is in this shard: attach its side, send to v's shard."""
    cand = read_dir(ctx.path("cand", shard))
    if cand is None:
        return 0
    u, v = lsh.unique_pairs(cand.column("u").to_numpy(), cand.column("v").to_numpy())
    rows = u & ROW_MASK
    cols: dict[str, pa.Array] = {"u": pa.array(u), "v": pa.array(v)}
    if ctx.config.verify == "exact":
        uniq, where = np.unique(rows, return_inverse=True)
        cols["set_u"] = _list_array(*gather_sets(*_rows_sets(ctx, shard, uniq), where))
    else:
        cols["sig_u"] = sig_array(read_signatures(ctx.sig_dir(shard), ctx.config.num_perm)[rows])
    write_by_shard(pa.table(cols), v >> 32, ctx, "cand2", f"{shard:05d}")
    return len(u)


def verify_task(shard: int, ctx: DedupContext) -> int:
    """Keep the candidate pairs ending in this shard whose Jaccard reaches the threshold."""
    cfg = ctx.config
    files = sorted(ctx.path("cand2", shard).glob("*.parquet"))
    if not files:
        return 0
    v_rows = np.unique(np.concatenate([read_table(f, ["v"]).column("v").to_numpy() & ROW_MASK for f in files]))
    if cfg.verify == "exact":
        v_sets = _rows_sets(ctx, shard, v_rows)
    else:
        v_sigs = read_signatures(ctx.sig_dir(shard), cfg.num_perm)
    kept_u: list[np.ndarray] = [np.zeros(0, np.int64)]
    kept_v: list[np.ndarray] = [np.zeros(0, np.int64)]
    kept_sim: list[np.ndarray] = [np.zeros(0, np.float64)]
    for f in files:  # one file per shard of first nodes: memory follows one shard pair's candidates
        cand = read_table(f)
        for lo in range(0, cand.num_rows, _PAIRS_PER_CHUNK):
            chunk = cand.slice(lo, _PAIRS_PER_CHUNK)
            u, v = chunk.column("u").to_numpy(), chunk.column("v").to_numpy()
            if cfg.verify == "exact":
                at = np.searchsorted(v_rows, v & ROW_MASK)
                sim = set_jaccard(_from_list(chunk.column("set_u")), gather_sets(*v_sets, at))
            else:
                sim = lsh.signature_similarity(sig_matrix(chunk.column("sig_u"), cfg.num_perm),
                                               v_sigs[v & ROW_MASK])
            keep = sim >= cfg.threshold
            kept_u.append(u[keep])
            kept_v.append(v[keep])
            kept_sim.append(sim[keep])
    u, v, sim = np.concatenate(kept_u), np.concatenate(kept_v), np.concatenate(kept_sim)
    if len(u):
        write_edges(u, v, ctx.path("edges"), f"near-{shard:05d}", ctx.partitions)
        write_similarities(u, v, sim, ctx, f"near-{shard:05d}")
    return len(u)


def write_similarities(u: np.ndarray, v: np.ndarray, sim: np.ndarray, ctx: DedupContext, name: str) -> None:
    """(node, similarity) of both ends of each edge, to the node's shard: its `dup_similarity` is the
    highest (dedup/clusters.py)."""
    node = np.concatenate([u, v])
    table = pa.table({"node": pa.array(node), "sim": pa.array(np.concatenate([sim, sim]), pa.float64())})
    write_by_shard(table, node >> 32, ctx, "sims", name, inputs_only=True)
