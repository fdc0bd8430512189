"""Step 1 of dedup: per shard, normalize, hash and sign its documents; per block, scatter by partition.

The costly part (normalization, text hashes, MinHash signatures) depends only on the shard's content
and the config, so it is kept in the shard cache by content (pipeline/core/shardcache.py): a build
that adds a source signs only the new shards, and the documents of an earlier version given by
`against` are signed once. The scatter (nodes, band keys, partitions) depends on the shard's place in
this run and is redone every time, one task per block (dedup/context.py) so that the exchange has
blocks x partitions files; it is cheap next to signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup import exact, lsh, minhash
from dedup.context import DedupContext, read_docs, read_signatures, sig_array
from dedup.normalize import normalize_array, shingle_spans
from pipeline.core.io import as_path, is_remote
from pipeline.core.shardcache import ShardCache, content_key
from pipeline.core.shards import (
    read_shard_bytes,
    read_table,
    table_from_bytes,
    write_scratch_table,
    write_table,
)

_BATCH_ROWS = 2048
_BATCH_TEXT_BYTES = 8 << 20
REFERENCE_RANK = -1  # documents of an earlier version always survive: they are published already


def text_batches(table: pa.Table) -> list[pa.Table]:
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


def sign_table(table: pa.Table, config: Any, reference: bool) -> tuple[pa.Table, pa.Table]:
    """(per-document attributes, signatures) of one shard's documents."""
    hashes: list[bytes] = []
    sig_parts: list[np.ndarray] = [np.zeros((0, config.num_perm), np.uint32)]
    for batch in text_batches(table):
        normalized = normalize_array(batch.column("text"))
        hashes.extend(exact.text_hashes(normalized, batch.column("text").combine_chunks()))
        if config.near:
            spans = shingle_spans(normalized, config.shingle_size)
            # a document without shingles has an all-MAX_HASH row and never enters LSH
            sig_parts.append(minhash.signatures(spans, config.num_perm, config.seed, config.hash_function))
    n = table.num_rows
    if reference:
        ranks, quality = [REFERENCE_RANK] * n, pa.nulls(n, pa.float64())
    else:
        priority = {s: i for i, s in enumerate(config.source_priority)}
        ranks = [priority.get(s, len(priority)) for s in table.column("source").to_pylist()]
        quality = pa.nulls(n, pa.float64())
        if config.quality_column in table.column_names:
            try:
                quality = pc.cast(table.column(config.quality_column), pa.float64(), safe=False)
            except pa.ArrowException as exc:
                raise ValueError(f"column {config.quality_column!r} is not numeric: {exc}") from exc
    docs = pa.table({
        "id": table.column("id"),
        "source_rank": pa.array(ranks, pa.int32()),
        "quality": quality,
        "text_hash": pa.array(hashes, pa.binary(exact.HASH_BYTES)),
    })
    sigs = pa.table({"sig": sig_array(np.concatenate(sig_parts))}) if config.near else pa.table({})
    return docs, sigs


def signature_task(item: tuple[int, ShardCache], ctx: DedupContext) -> dict[str, Any]:
    """Sign one shard (or find its signatures in the cache). Returns where its attributes and
    signatures are, and whether they were reused."""
    shard, cache = item
    cfg = ctx.config
    path = as_path(ctx.shards[shard])
    reference = ctx.is_reference(shard)
    data = None
    if reference:  # the manifest names the file's sha256: no read on a cache hit
        sha = ctx.ref_sha256[shard - ctx.num_inputs]
    else:
        data = read_shard_bytes(path)
        sha = content_key(data)
    entry = cache.entry(sha, kind="signatures", reference=reference)
    reused = cache.lookup(entry) is not None
    if not reused:
        if reference:
            table = read_table(path, ["id", "source", "text"])
        else:
            table = table_from_bytes(data, path)
        try:
            docs, sigs = sign_table(table, cfg, reference)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        target = entry if entry is not None else ctx.path("signed", shard)
        write_table(docs, target / "docs.parquet")
        write_table(sigs, target / "sigs.parquet")
        cache.commit(entry, {"docs": docs.num_rows})
    return {"sig_dir": str(entry if entry is not None else ctx.path("signed", shard)), "reused": reused,
            "sha256": sha}


def known_signatures(ctx: DedupContext, cache: ShardCache, digests: Mapping[str, str]) -> list[dict[str, Any] | None]:
    """For the driver: per shard, what `signature_task` would return when the shard's sha256 is known
    without reading it (an input shard's from `digests`, by file name; a reference shard's from its
    manifest, with a local cache) and its signatures are in the cache; else None (a task must hash
    it). Only the entries' small records are read."""
    return [_known_signature(ctx, cache, shard, digests) for shard in range(len(ctx.shards))]


def _known_signature(ctx: DedupContext, cache: ShardCache, shard: int, digests: Mapping[str, str]) -> dict[str, Any] | None:
    reference = ctx.is_reference(shard)
    if reference:  # on object storage a lookup by the driver is a request per shard: the task's is as cheap
        local = cache.root is not None and not is_remote(cache.root)
        sha = ctx.ref_sha256[shard - ctx.num_inputs] if local else None
    else:
        sha = digests.get(as_path(ctx.shards[shard]).name)
    if not sha:
        return None
    entry = cache.entry(sha, kind="signatures", reference=reference)
    try:
        found = cache.lookup(entry) is not None
    except Exception:  # noqa: BLE001 - an unreadable record is left to the task, which reports it
        found = False
    return {"sig_dir": str(entry), "reused": True, "sha256": sha} if found else None


def scatter_task(block: int, ctx: DedupContext) -> None:
    """Text hashes and band keys of one block's documents, to `exact/<partition>/<block>` and
    `bands/<partition>/<block>` by hash partition."""
    cfg = ctx.config
    hashes: list[bytes] = []
    exact_nodes, near_nodes = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    keys = [np.zeros((0, ctx.bands), np.uint64)]
    for shard in ctx.block_shards(block):
        sig_dir = ctx.sig_dir(shard)
        docs = read_docs(sig_dir, ["text_hash"])
        nodes = (np.int64(shard) << np.int64(32)) | np.arange(docs.num_rows, dtype=np.int64)
        if cfg.exact:
            hashes += docs.column("text_hash").to_pylist()
            exact_nodes.append(nodes)
        if cfg.near:
            sig = read_signatures(sig_dir, cfg.num_perm)
            usable = ~np.all(sig == minhash.MAX_HASH, axis=1)  # a document without shingles
            keys.append(minhash.band_keys(sig[usable], ctx.bands, ctx.rows))
            near_nodes.append(nodes[usable])
    if cfg.exact:
        table = pa.table({"hash": pa.array(hashes, pa.binary(exact.HASH_BYTES)), "node": pa.array(np.concatenate(exact_nodes))})
        _write_by_partition(table, exact.hash_partition(hashes, ctx.partitions), ctx, "exact", block)
    if cfg.near:
        band_keys, nodes = np.concatenate(keys), np.concatenate(near_nodes)
        table = pa.table({"band": pa.array(np.tile(np.arange(ctx.bands, dtype=np.int16), len(nodes))),
                          "key": pa.array(band_keys.ravel()), "node": pa.array(np.repeat(nodes, ctx.bands))})
        _write_by_partition(table, lsh.band_partition(band_keys, ctx.partitions).ravel(), ctx, "bands", block)


def _write_by_partition(table: pa.Table, part: np.ndarray, ctx: DedupContext, kind: str, block: int) -> None:
    """Rows of `table` to `<kind>/<partition>/<block>.parquet`: one sort, then a slice per partition."""
    order = np.argsort(part, kind="stable")
    table = table.take(pa.array(order))
    bounds = np.searchsorted(part[order], np.arange(ctx.partitions + 1))
    for p in range(ctx.partitions):
        lo, hi = int(bounds[p]), int(bounds[p + 1])
        if hi > lo:
            write_scratch_table(table.slice(lo, hi - lo), ctx.path(kind, p, f"{block:05d}.parquet"))
