"""Steps 5-6 of dedup: one survivor per cluster, then each input shard's kept and rejected documents.

Each document gets `dup_cluster` (its survivor's id), `dup_cluster_size` and `dup_similarity`: the
highest Jaccard similarity of its verified duplicate edges (1.0 for an exact copy; null without any).
The survivor is chosen by (source rank, higher quality, smaller id), which depends only on the
documents, never on workers or partitions. Documents of an earlier version (`against`) rank before
every input, so a new document in a cluster with one is rejected naming it as `<id>@<version>`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup.components import node_partition, read_edges, roots
from dedup.context import ROW_MASK, DedupContext, read_dir, read_docs, rows_of_shard, write_by_block
from pipeline.core import accounting
from pipeline.core.io import AnyPath, as_path, parquet_num_rows
from pipeline.core.schema import with_rejection
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import REJECTED_DIR, read_table, write_scratch_table, write_table

SURVIVOR, EXACT_DUP, NEAR_DUP = 0, 1, 2


def members_task(item: tuple[int, str], ctx: DedupContext) -> int:
    """(node, root) of every node of a converged component partition, sent to the node's block."""
    partition, gen_dir = item
    src, dst = read_edges(as_path(gen_dir), partition)
    node, root = roots(src, dst)
    write_by_block(pa.table({"node": pa.array(node), "root": pa.array(root)}), node, ctx,
                   "members", f"{partition:05d}")
    return len(node)


def attrs_task(block: int, ctx: DedupContext) -> int:
    """Attach survivor-choice attributes to this block's cluster members; send them to the root's partition."""
    members = read_dir(ctx.path("members", block))
    if members is None:
        return 0
    parts = []
    for shard in np.unique(members.column("node").to_numpy() >> 32).tolist():
        mine = rows_of_shard(members, shard)
        node, root = mine.column("node").to_numpy(), mine.column("root").to_numpy()
        docs = read_docs(ctx.sig_dir(shard)).take(pa.array(node & ROW_MASK))
        ids = docs.column("id")
        if (version := ctx.version_of(shard)) is not None:
            ids = pc.binary_join_element_wise(ids, pa.scalar(version), "@")
        parts.append(pa.table({"root": pa.array(root), "node": pa.array(node), "id": ids,
                               "source_rank": docs.column("source_rank"), "quality": docs.column("quality"),
                               "text_hash": docs.column("text_hash")}))
    table = pa.concat_tables(parts)
    part = node_partition(table.column("root").to_numpy(), ctx.blocks)
    for q in np.unique(part).tolist():
        write_scratch_table(table.filter(pa.array(part == q)), ctx.path("clusters", q, f"{block:05d}.parquet"))
    return table.num_rows


def survivor_task(partition: int, ctx: DedupContext) -> int:
    """Choose each cluster's survivor: source priority, then higher quality, then smaller id."""
    t = read_dir(ctx.path("clusters", partition))
    if t is None:
        return 0
    neg_quality = pc.fill_null(pc.negate(t.column("quality")), float("inf"))
    neg_quality = pc.if_else(pc.is_nan(neg_quality), float("inf"), neg_quality)
    t = t.append_column("neg_quality", neg_quality)
    t = t.take(pc.sort_indices(t, [("root", "ascending"), ("source_rank", "ascending"),
                                   ("neg_quality", "ascending"), ("id", "ascending")]))
    root = t.column("root").to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], root[1:] != root[:-1]]))
    sizes = np.diff(np.append(starts, len(root)))
    first = np.repeat(starts, sizes)
    ids = t.column("id").combine_chunks()
    hashes = np.frombuffer(b"".join(t.column("text_hash").to_pylist()), "S16") if len(root) else np.zeros(0, "S16")
    kind = np.where(hashes == hashes[first], EXACT_DUP, NEAR_DUP)
    kind[starts] = SURVIVOR
    node = t.column("node").to_numpy()
    table = pa.table({"node": pa.array(node), "survivor": ids.take(pa.array(first)),
                      "size": pa.array(np.repeat(sizes, sizes).astype(np.int64)),
                      "kind": pa.array(kind.astype(np.int8))})
    write_by_block(table, node, ctx, "decisions", f"{partition:05d}", inputs_only=True)
    return len(starts)


def write_task(item: tuple[int, str, ShardCache], ctx: DedupContext) -> dict[str, Any]:
    """Write the kept and rejected documents of one block's input shards with their cluster columns
    (per block, so that its decisions and similarities are read once, not once per shard).

    What a shard's output holds depends only on its content and on the decisions for its rows, so it
    is kept in the shard cache by both: in a grown corpus most shards' decisions did not change, and
    they are copied (hard links locally) instead of read and written again. Returns each shard's counts
    (by file name) and how many shards were written anew."""
    block, out_dir, cache = item
    decisions = read_dir(ctx.path("decisions", block))
    sims = read_dir(ctx.path("sims", block))
    counts: dict[str, dict[str, Any]] = {}
    rewritten = 0
    for shard in ctx.block_shards(block):
        if ctx.is_reference(shard):
            continue
        path = as_path(ctx.shards[shard])
        decided = Decisions.of(parquet_num_rows(path), rows_of_shard(decisions, shard), rows_of_shard(sims, shard))
        entry = cache.entry(ctx.sha256[shard], kind="written", decisions=decided.digest())
        files = {"kept.parquet": as_path(out_dir) / path.name,
                 "rejected.parquet": as_path(out_dir) / REJECTED_DIR / path.name}
        if (record := cache.lookup(entry)) is not None:
            cache.restore(entry, files)
        else:
            record = {"counts": _write_shard(path, decided, files)}
            cache.store(entry, files, record)
            rewritten += 1
        counts[path.name] = record["counts"]
    return {"counts": counts, "rewritten": rewritten}


@dataclass
class Decisions:
    """What dedup decided for each row of one input shard: all its written shards depend on besides
    the shard's content."""

    rows: np.ndarray  # rows in a cluster of two or more documents, ascending
    survivors: list[str]  # the id of each of those rows' survivor
    size: np.ndarray  # per row: its cluster's size
    kind: np.ndarray  # per row: SURVIVOR, EXACT_DUP or NEAR_DUP
    similarity: np.ndarray  # per row: the highest similarity of its verified edges (NaN: none)

    @classmethod
    def of(cls, n: int, dec: pa.Table | None, sims: pa.Table | None) -> Decisions:
        size, kind = np.ones(n, np.int64), np.full(n, SURVIVOR, np.int8)
        rows, survivors = np.zeros(0, np.int64), []
        if dec is not None:
            node_rows = dec.column("node").to_numpy() & ROW_MASK
            order = np.argsort(node_rows, kind="stable")
            rows = node_rows[order]
            size[rows] = dec.column("size").to_numpy()[order]
            kind[rows] = dec.column("kind").to_numpy()[order]
            survivors = dec.column("survivor").take(pa.array(order)).to_pylist()
        similarity = np.full(n, np.nan)
        if sims is not None:
            np.fmax.at(similarity, sims.column("node").to_numpy() & ROW_MASK, sims.column("sim").to_numpy())
        return cls(rows, survivors, size, kind, np.round(similarity, 6))

    def digest(self) -> str:
        h = hashlib.sha256()
        for a in (self.rows, self.size, self.kind, self.similarity):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update("\0".join(self.survivors).encode())
        return h.hexdigest()


def _write_shard(path: AnyPath, decided: Decisions, files: dict[str, AnyPath]) -> dict[str, Any]:
    table = read_table(path)
    cluster = table.column("id").to_pylist()
    for r, s in zip(decided.rows.tolist(), decided.survivors, strict=True):
        cluster[r] = s
    for name in ("dup_cluster", "dup_cluster_size", "dup_similarity"):
        if name in table.column_names:
            table = table.drop_columns([name])
    table = table.append_column("dup_cluster", pa.array(cluster, pa.string()))
    table = table.append_column("dup_cluster_size", pa.array(decided.size))
    similarity = decided.similarity
    table = table.append_column("dup_similarity", pa.array(similarity, pa.float64(), mask=np.isnan(similarity)))
    keep = decided.kind == SURVIVOR
    rej_rows = np.flatnonzero(~keep)
    reasons = [("exact-dup:" if decided.kind[r] == EXACT_DUP else "near-dup:") + cluster[r] for r in rej_rows.tolist()]
    kept = table.filter(pa.array(keep))
    rejected = with_rejection(table.take(pa.array(rej_rows, pa.int64())), "dedup", reasons)
    write_table(kept, files["kept.parquet"])
    write_table(rejected, files["rejected.parquet"])
    return accounting.count_shard(table, kept, rejected)
