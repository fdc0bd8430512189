"""The dedup stage: exact and MinHash-LSH near-duplicate removal across every shard and source.

Every step is a set of parallel tasks over files in `scratch`, so no process holds the whole corpus:

1. per input shard: normalize, hash the normalized text, MinHash signatures (dedup/minhash.py);
   write per-doc attributes, signatures, band keys and text hashes, the last two partitioned by hash;
2. per partition: LSH buckets -> candidate pairs; equal text hashes -> exact-duplicate edges;
3. per shard (twice): attach the signatures of both ends of each candidate pair, keep pairs whose
   estimated (or exact) Jaccard reaches the threshold -> near-duplicate edges;
4. connected components of all edges (dedup/components.py, large-star/small-star);
5. per shard, then per cluster partition: pick one survivor per cluster by (source priority, higher
   quality score, smaller id), which depends only on the documents, never on workers or partitions;
6. per input shard: write kept documents (with `dup_cluster`, `dup_cluster_size`) and rejected ones
   (`exact-dup:<survivor id>` when their normalized text equals the survivor's, else `near-dup:...`).

Nodes are int64 `shard index << 32 | row`, shards being ordered by file name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup import exact, lsh, minhash
from dedup.components import connected_components, node_partition, read_edges, roots, write_edges
from dedup.normalize import normalize_array, shingle_spans
from pipeline.core.config import at_least, require
from pipeline.core.io import AnyPath, as_path, parquet_num_rows, parquet_schema, remove_tree
from pipeline.core.schema import with_rejection
from pipeline.core.shards import REJECTED_DIR, read_table, write_table
from pipeline.core.stage import Executor, GlobalStage

VERIFY_MODES = ("signature", "exact")
_ROW_MASK = (1 << 32) - 1
_BATCH_ROWS = 2048
_BATCH_TEXT_BYTES = 8 << 20
_BAND_ROWS_PER_PARTITION = 4_000_000  # (band, key, node) rows: ~72 MB, a few times that while sorting
_MAX_PARTITIONS = 1024
SURVIVOR, EXACT_DUP, NEAR_DUP = 0, 1, 2


@dataclass
class DedupConfig:
    """Exact and near-duplicate removal. `bands`/`rows` 0 means: chosen like datasketch's MinHashLSH."""

    exact: bool = True  # remove documents whose normalized text equals another's
    near: bool = True  # remove near-duplicates found by MinHash-LSH
    threshold: float = 0.5  # Jaccard similarity of word-shingle sets above which docs are near-dups
    num_perm: int = 128  # MinHash permutations (signature length)
    shingle_size: int = 5  # words per shingle
    seed: int = 1  # permutation seed (datasketch's MinHash default is 1)
    hash_function: str = "poly64"  # or "sha1": datasketch's default hash, ~5x slower (dedup/minhash.py)
    bands: int = 0  # LSH bands; 0 (with rows 0) = datasketch's optimum for threshold and num_perm
    rows: int = 0  # rows per LSH band; bands * rows <= num_perm
    false_positive_weight: float = 0.5  # weights of the error kinds when choosing bands and rows
    false_negative_weight: float = 0.5  # ... (datasketch's MinHashLSH `weights`)
    verify: str = "signature"  # "signature": Jaccard estimated from full signatures; "exact": shingle sets
    all_pairs_max: int = 64  # larger LSH buckets are linked by star + chain instead of all pairs
    source_priority: list[str] = field(default_factory=list)  # survivor preference, best first
    quality_column: str = "quality_classifier_score"  # higher wins among equal priority, if present
    partitions: int = 0  # hash partitions for buckets and components; 0 = from the data size and workers

    def __post_init__(self) -> None:
        require(self.hash_function in minhash.HASH_FUNCTIONS, "hash_function",
                f"expected one of {', '.join(minhash.HASH_FUNCTIONS)}, got {self.hash_function!r}")
        require(self.verify in VERIFY_MODES, "verify", f"expected one of {', '.join(VERIFY_MODES)}, got {self.verify!r}")
        require(0.0 < self.threshold < 1.0, "threshold", f"expected a value in (0, 1), got {self.threshold}")
        at_least(self, 1, "num_perm", "shingle_size")
        at_least(self, 0, "bands", "rows", "partitions", "all_pairs_max", "false_positive_weight",
                 "false_negative_weight")
        require((self.bands > 0) == (self.rows > 0) and self.bands * self.rows <= self.num_perm, "bands",
                f"set bands and rows both (bands * rows <= num_perm = {self.num_perm}) or neither")

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): as configured, or datasketch's optimum for threshold and num_perm."""
        if self.bands > 0:
            return self.bands, self.rows
        return minhash.optimal_lsh_params(
            self.threshold, self.num_perm, self.false_positive_weight, self.false_negative_weight
        )


class DedupStage(GlobalStage):
    name: ClassVar[str] = "dedup"
    version: ClassVar[str] = "1"
    config_class: ClassVar[type] = DedupConfig

    def run(self, in_shards: list[AnyPath], out_dir: AnyPath, scratch: AnyPath, executor: Executor) -> None:
        cfg: DedupConfig = self.config
        shards = sorted(in_shards, key=lambda p: p.name)
        work = scratch / "dedup"
        remove_tree(work)
        bands, rows = cfg.lsh_params()
        parts = cfg.partitions or default_partitions(shards, bands if cfg.near else 1, executor.num_workers)
        ctx = executor.put(_Context(str(work), [str(p) for p in shards], parts, cfg, bands, rows))
        n = len(shards)
        executor.map(signature_task, list(range(n)), desc="dedup: signatures", shared=ctx)
        executor.map(bucket_task, list(range(parts)), desc="dedup: buckets", shared=ctx)
        if cfg.near:
            executor.map(attach_task, list(range(n)), desc="dedup: candidates", shared=ctx)
            executor.map(verify_task, list(range(n)), desc="dedup: verify", shared=ctx)
        final = connected_components(work / "edges", work / "cc", parts, executor)
        executor.map(members_task, [(q, str(final)) for q in range(parts)], desc="dedup: members", shared=ctx)
        executor.map(attrs_task, list(range(n)), desc="dedup: cluster attributes", shared=ctx)
        executor.map(survivor_task, list(range(parts)), desc="dedup: survivors", shared=ctx)
        executor.map(write_task, [(i, str(out_dir)) for i in range(n)], desc="dedup: write", shared=ctx)


def default_partitions(shards: list[AnyPath], rows_per_doc: int, workers: int) -> int:
    """Hash partitions sized by the data, not by the shard count.

    Every exchange writes one file per (shard, partition), so partitions that grew with the shards
    would make the file count, and the time, grow with the square of the corpus. Sizing them by band
    rows (about _BAND_ROWS_PER_PARTITION each) keeps one task's memory bounded and the file count
    linear in the shards for a given corpus density; at least two per worker so all are busy.
    """
    docs = sum(parquet_num_rows(p) for p in shards)
    by_size = -(-docs * rows_per_doc // _BAND_ROWS_PER_PARTITION)
    return int(min(_MAX_PARTITIONS, max(2, 2 * workers, by_size)))


@dataclass
class _Context:
    """What every task needs; passed once as the executor's shared object."""

    work: str
    shards: list[str]
    partitions: int
    config: DedupConfig
    bands: int
    rows: int

    def path(self, *parts: str | int) -> AnyPath:
        out = as_path(self.work)
        for p in parts:
            out = out / (f"{p:05d}" if isinstance(p, int) else p)
        return out

    def stem(self, shard: int) -> str:
        return as_path(self.shards[shard]).stem


def _read_dir(directory: AnyPath, columns: list[str] | None = None) -> pa.Table | None:
    files = sorted(directory.glob("*.parquet"))  # a missing directory globs to nothing
    tables = [read_table(f, columns) for f in files]
    return pa.concat_tables(tables) if tables else None


def _write_by_shard(table: pa.Table, shard_of: np.ndarray, ctx: _Context, kind: str, name: str) -> None:
    for s in np.unique(shard_of).tolist():
        write_table(table.filter(pa.array(shard_of == s)), ctx.path(kind, int(s), name + ".parquet"))


def _batches(table: pa.Table) -> list[pa.Table]:
    """Row slices of at most _BATCH_ROWS rows and about _BATCH_TEXT_BYTES of text each."""
    sizes = pc.binary_length(table.column("text").cast(pa.binary())).to_numpy(zero_copy_only=False)
    out, start, acc = [], 0, 0
    for i, size in enumerate(np.nan_to_num(sizes.astype(np.float64)).tolist()):
        if i > start and (i - start >= _BATCH_ROWS or acc + size > _BATCH_TEXT_BYTES):
            out.append(table.slice(start, i - start))
            start, acc = i, 0
        acc += size
    out.append(table.slice(start, table.num_rows - start))
    return out


# --------------------------------------------------------------------------------------- tasks


def signature_task(shard: int, ctx: _Context) -> int:
    """Normalize, hash and sign one input shard; write its attributes, signatures, bands, hashes."""
    cfg = ctx.config
    path = as_path(ctx.shards[shard])
    schema = parquet_schema(path)
    cols = ["id", "source", "text"] + ([cfg.quality_column] if cfg.quality_column in schema.names else [])
    table = read_table(path, cols)
    bands, rows = ctx.bands, ctx.rows
    priority = {s: i for i, s in enumerate(cfg.source_priority)}
    stem = ctx.stem(shard)
    hashes: list[bytes] = []
    sig_parts: list[np.ndarray] = []
    nonempty_parts: list[np.ndarray] = []
    for batch in _batches(table):
        normalized = normalize_array(batch.column("text"))
        hashes.extend(exact.text_hashes(normalized, batch.column("text").combine_chunks()))
        if cfg.near:
            spans = shingle_spans(normalized, cfg.shingle_size)
            sig_parts.append(minhash.signatures(spans, cfg.num_perm, cfg.seed, cfg.hash_function))
            nonempty_parts.append(minhash.has_shingles(spans))
    n = table.num_rows
    nodes = (np.int64(shard) << np.int64(32)) | np.arange(n, dtype=np.int64)
    if cfg.quality_column in table.column_names:
        try:
            quality = pc.cast(table.column(cfg.quality_column), pa.float64(), safe=False)
        except pa.ArrowException as exc:
            raise ValueError(f"{path}: column {cfg.quality_column!r} is not numeric: {exc}") from exc
    else:
        quality = pa.nulls(n, pa.float64())
    ranks = [priority.get(s, len(priority)) for s in table.column("source").to_pylist()]
    write_table(
        pa.table({
            "id": table.column("id"),
            "source_rank": pa.array(ranks, pa.int32()),
            "quality": quality,
            "text_hash": pa.array(hashes, pa.binary(exact.HASH_BYTES)),
        }),
        ctx.path("docs", stem + ".parquet"),
    )
    if cfg.exact:
        part = exact.hash_partition(hashes, ctx.partitions)
        for p in np.unique(part).tolist():
            sel = np.flatnonzero(part == p)
            write_table(
                pa.table({"hash": pa.array([hashes[i] for i in sel], pa.binary(exact.HASH_BYTES)),
                          "node": pa.array(nodes[sel])}),
                ctx.path("exact", p, stem + ".parquet"),
            )
    if cfg.near:
        sig = np.concatenate(sig_parts) if sig_parts else np.zeros((0, cfg.num_perm), np.uint32)
        usable = np.concatenate(nonempty_parts) if nonempty_parts else np.zeros(0, bool)
        write_table(pa.table({"sig": _sig_array(sig)}), ctx.path("sigs", stem + ".parquet"))
        keys = minhash.band_keys(sig[usable], bands, rows)
        part = lsh.band_partition(keys, ctx.partitions)
        band_ids = np.broadcast_to(np.arange(bands, dtype=np.int16)[None, :], keys.shape)
        node_m = np.broadcast_to(nodes[usable][:, None], keys.shape)
        for p in np.unique(part).tolist():
            sel = part == p
            write_table(
                pa.table({"band": pa.array(band_ids[sel]), "key": pa.array(keys[sel]),
                          "node": pa.array(node_m[sel])}),
                ctx.path("bands", p, stem + ".parquet"),
            )
    return n


def bucket_task(partition: int, ctx: _Context) -> tuple[int, int]:
    """Candidate pairs from one band partition (by shard of their first node) and exact-dup edges."""
    cfg = ctx.config
    n_exact = n_cand = 0
    ex = _read_dir(ctx.path("exact", partition)) if cfg.exact else None
    if ex is not None:
        u, v = exact.exact_edges(ex.column("hash").to_pylist(), ex.column("node").to_numpy())
        n_exact = len(u)
        if n_exact:
            write_edges(u, v, ctx.path("edges"), f"exact-{partition:05d}", ctx.partitions)
    bands = _read_dir(ctx.path("bands", partition)) if cfg.near else None
    if bands is not None:
        u, v = lsh.bucket_pairs(
            bands.column("band").to_numpy(), bands.column("key").to_numpy(), bands.column("node").to_numpy(),
            cfg.all_pairs_max,
        )
        n_cand = len(u)
        table = pa.table({"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())})
        _write_by_shard(table, u >> 32, ctx, "cand", f"{partition:05d}")
    return n_exact, n_cand


def _sig_array(sig: np.ndarray) -> pa.Array:
    """(n, num_perm) uint32 signatures as one fixed-size binary value per row."""
    blob = np.ascontiguousarray(sig, dtype=np.uint32)
    width = 4 * sig.shape[1]
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), sig.shape[0], [None, pa.py_buffer(blob)])


def _sig_matrix(ctx: _Context, shard: int) -> np.ndarray:
    col = read_table(ctx.path("sigs", ctx.stem(shard) + ".parquet")).column("sig").combine_chunks()
    buf = np.frombuffer(col.buffers()[1], dtype=np.uint32)
    return buf.reshape(-1, ctx.config.num_perm)[col.offset : col.offset + len(col)]


def _shingle_sets(ctx: _Context, shard: int, rows: np.ndarray) -> list[set[bytes]]:
    text = read_table(ctx.shards[shard], ["text"]).column("text").take(pa.array(rows, pa.int64()))
    spans = shingle_spans(normalize_array(text), ctx.config.shingle_size)
    sets: list[set[bytes]] = [set() for _ in range(len(rows))]
    for i in range(len(spans.starts)):
        sets[int(spans.doc[i])].add(spans.shingle_bytes(i))
    return sets


def attach_task(shard: int, ctx: _Context) -> int:
    """For candidate pairs whose first node is in this shard: attach its signature, send to v's shard."""
    cand = _read_dir(ctx.path("cand", shard))
    if cand is None:
        return 0
    u, v = lsh.unique_pairs(cand.column("u").to_numpy(), cand.column("v").to_numpy())
    sig = _sig_matrix(ctx, shard)[u & _ROW_MASK]
    cols = {"u": pa.array(u), "v": pa.array(v), "sig_u": _sig_array(sig)}
    _write_by_shard(pa.table(cols), v >> 32, ctx, "cand2", f"{shard:05d}")
    return len(u)


def verify_task(shard: int, ctx: _Context) -> int:
    """Keep the candidate pairs ending in this shard whose Jaccard reaches the threshold."""
    cfg = ctx.config
    cand = _read_dir(ctx.path("cand2", shard))
    if cand is None:
        return 0
    u, v = cand.column("u").to_numpy(), cand.column("v").to_numpy()
    sig_col = cand.column("sig_u").combine_chunks()
    sig_u = np.frombuffer(sig_col.buffers()[1], np.uint32).reshape(-1, cfg.num_perm)[
        sig_col.offset : sig_col.offset + len(sig_col)]
    sig_v = _sig_matrix(ctx, shard)[v & _ROW_MASK]
    if cfg.verify == "signature":
        keep = lsh.signature_similarity(sig_u, sig_v) >= cfg.threshold
    else:
        keep = np.zeros(len(u), bool)
        for ushard in np.unique(u >> 32).tolist():
            idx = np.flatnonzero((u >> 32) == ushard)
            sets_u = _shingle_sets(ctx, ushard, u[idx] & _ROW_MASK)
            sets_v = _shingle_sets(ctx, shard, v[idx] & _ROW_MASK)
            keep[idx] = [lsh.exact_jaccard(a, b) >= cfg.threshold for a, b in zip(sets_u, sets_v, strict=True)]
    if keep.any():
        write_edges(u[keep], v[keep], ctx.path("edges"), f"near-{shard:05d}", ctx.partitions)
    return int(keep.sum())


def members_task(item: tuple[int, str], ctx: _Context) -> int:
    """(node, root) of every node of a converged component partition, sent to the node's shard."""
    partition, gen_dir = item
    src, dst = read_edges(as_path(gen_dir), partition)
    node, root = roots(src, dst)
    _write_by_shard(pa.table({"node": pa.array(node), "root": pa.array(root)}), node >> 32, ctx,
                    "members", f"{partition:05d}")
    return len(node)


def attrs_task(shard: int, ctx: _Context) -> int:
    """Attach survivor-choice attributes to this shard's cluster members; send them to the root's partition."""
    members = _read_dir(ctx.path("members", shard))
    if members is None:
        return 0
    node, root = members.column("node").to_numpy(), members.column("root").to_numpy()
    docs = read_table(ctx.path("docs", ctx.stem(shard) + ".parquet")).take(pa.array(node & _ROW_MASK))
    table = pa.table({"root": pa.array(root), "node": pa.array(node), "id": docs.column("id"),
                      "source_rank": docs.column("source_rank"), "quality": docs.column("quality"),
                      "text_hash": docs.column("text_hash")})
    part = node_partition(root, ctx.partitions)
    for q in np.unique(part).tolist():
        write_table(table.filter(pa.array(part == q)), ctx.path("clusters", q, f"{shard:05d}.parquet"))
    return len(node)


def survivor_task(partition: int, ctx: _Context) -> int:
    """Choose each cluster's survivor: source priority, then higher quality, then smaller id."""
    t = _read_dir(ctx.path("clusters", partition))
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
    _write_by_shard(table, node >> 32, ctx, "decisions", f"{partition:05d}")
    return len(starts)


def write_task(item: tuple[int, str], ctx: _Context) -> dict[str, Any]:
    """Write one input shard's kept and rejected documents with their cluster columns."""
    shard, out_dir = item
    path = as_path(ctx.shards[shard])
    table = read_table(path)
    n = table.num_rows
    cluster = table.column("id").to_pylist()
    size = np.ones(n, np.int64)
    kind = np.full(n, SURVIVOR, np.int8)
    dec = _read_dir(ctx.path("decisions", shard))
    if dec is not None:
        rows = dec.column("node").to_numpy() & _ROW_MASK
        size[rows] = dec.column("size").to_numpy()
        kind[rows] = dec.column("kind").to_numpy()
        for r, s in zip(rows.tolist(), dec.column("survivor").to_pylist(), strict=True):
            cluster[r] = s
    for name in ("dup_cluster", "dup_cluster_size"):
        if name in table.column_names:
            table = table.drop_columns([name])
    table = table.append_column("dup_cluster", pa.array(cluster, pa.string()))
    table = table.append_column("dup_cluster_size", pa.array(size))
    keep = kind == SURVIVOR
    rej_rows = np.flatnonzero(~keep)
    reasons = [("exact-dup:" if kind[r] == EXACT_DUP else "near-dup:") + cluster[r] for r in rej_rows.tolist()]
    kept = table.filter(pa.array(keep))
    rejected = with_rejection(table.take(pa.array(rej_rows, pa.int64())), DedupStage.name, reasons)
    write_table(kept, as_path(out_dir) / path.name)
    write_table(rejected, as_path(out_dir) / REJECTED_DIR / path.name)
    return {"kept": kept.num_rows, "rejected": rejected.num_rows}
