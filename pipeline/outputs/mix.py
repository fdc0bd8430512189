"""Mix sources as the Pile did: per-source epochs (or weights), a seeded global shuffle, a holdout split.

Every decision is a hash of (seed, document id), so the result does not depend on shard layout,
task order or worker count:

- split: validation / test / train from hash(seed, "split", id);
- train documents whose text equals a holdout document's text are removed (reason `mix:holdout-dup`);
- a source with `e` epochs contributes floor(e) copies of each document, plus one more for a
  hash-chosen fraction frac(e) of them (reason `mix:subsampled` for documents left with none);
- every copy gets a key hash(seed, id, epoch); copies are scattered by key range into partitions
  (one task per run of consecutive input shards), then each partition is sorted by key (one task per
  partition).

Memory is bounded by one run of input shards (`SCATTER_GROUP_BYTES` of text) and one output partition
(`shard_max_bytes` of text), plus the set of holdout text hashes (16 bytes per holdout document)
shared with every task.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.config import at_least, fractions, require, stable_hash, to_plain
from pipeline.core.io import AnyPath, as_path, parquet_bytes, remove_tree, sha256_file, write_bytes_atomic
from pipeline.core.schema import with_rejection
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import (
    REJECTED_DIR,
    read_json,
    read_table,
    write_json,
    write_table,
)
from pipeline.core.stage import Executor
from pipeline.outputs.columns import EPOCH_COLUMN, KEY_COLUMN, TEXT_BYTES_COLUMN, TOKENS_COLUMN
from pipeline.outputs.gather import BUCKET_SUFFIX, gather_task, write_bucket
from pipeline.outputs.tokenize import TokenShardSpec, one_chunk

MIX_VERSION = "2"  # 2: token ids stored uncompressed in the mixed shards
SPLITS = ("train", "validation", "test")
MIX_FILE = "_mix.json"
SCATTER_GROUP_BYTES = 64 << 20  # text per scatter task, at most (about)


@dataclass
class MixConfig:
    """How sources are weighted, shuffled and split."""

    seed: int = 0  # seeds the splits, the sampling of fractional epochs and the shuffle
    # Passes over each source's training documents (the Pile: Wikipedia 3, Books3 1.5, ...). Fractions
    # subsample. Unlisted sources get `default_epochs`. Use either this or `weights`.
    epochs: dict[str, float] = field(default_factory=dict)
    default_epochs: float = 1.0  # epochs of a source not listed in `epochs`
    # Target share of training text bytes per source (normalized); epochs are derived from the sizes,
    # keeping the total about the same. Every source present must be listed.
    weights: dict[str, float] = field(default_factory=dict)
    validation_fraction: float = 0.01  # share of documents held out for validation (chosen per document id)
    test_fraction: float = 0.01  # share of documents held out for test (chosen per document id)
    # Text bytes per output shard (the partition size of the shuffle).
    shard_max_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        fractions(self, "validation_fraction", "test_fraction")
        v, t = self.validation_fraction, self.test_fraction
        require(v + t < 1, "test_fraction", f"validation_fraction + test_fraction must be < 1, got {v} + {t}")
        at_least(self, 0, "default_epochs")
        at_least(self, 1, "shard_max_bytes")
        require(not (self.epochs and self.weights), "weights", "set either epochs or weights, not both")
        for table in ("epochs", "weights"):
            for source, value in getattr(self, table).items():
                require(value >= 0, f"{table}.{source}", f"must be >= 0, got {value!r}")


class MixError(ValueError):
    pass


# Per document: its split, its number of copies and each copy's key, from 64-bit hashes of
# "<seed>\0<what>\0<doc id>[\0<epoch>]". Built with f-strings: the scatter calls these for every document
# of every shard, and joining the parts generically was most of its loop's time.


def _hash64_of(joined: str) -> int:
    return int.from_bytes(hashlib.blake2b(joined.encode("utf-8"), digest_size=8).digest(), "little")


def split_of(seed: int | str, doc_id: str, config: MixConfig) -> str:
    u = _hash64_of(f"{seed}\x00split\x00{doc_id}") / 2.0**64
    if u < config.validation_fraction:
        return "validation"
    if u < config.validation_fraction + config.test_fraction:
        return "test"
    return "train"


def copies_of(seed: int | str, doc_id: str, epochs: float) -> int:
    whole = math.floor(epochs)
    if epochs == whole:
        return whole
    return whole + (1 if _hash64_of(f"{seed}\x00epoch\x00{doc_id}") / 2.0**64 < epochs - whole else 0)


def copy_key(seed: int | str, doc_id: str, epoch: int) -> int:
    """The copy's place in the shuffle: its partition and its order there."""
    return _hash64_of(f"{seed}\x00key\x00{doc_id}\x00{epoch}")


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class _TextHashes:
    """`text_hash` of a text column's rows, from views of its Arrow buffers: no Python string per text
    (decoding and re-encoding every text of a shard cost more than hashing it)."""

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        arr = one_chunk(column)
        width = 8 if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type) else 4
        _, offsets, data = arr.buffers()
        self.offsets = np.frombuffer(offsets, f"<i{width}", count=len(arr) + 1, offset=arr.offset * width).tolist()
        self.data = memoryview(data if data is not None else b"")

    def __getitem__(self, i: int) -> bytes:
        return hashlib.sha256(self.data[self.offsets[i]:self.offsets[i + 1]]).digest()[:16]


# ------------------------------------------------------------------------------------------ tasks


def _scan_task(args: tuple[str, MixConfig, str, ShardCache]) -> dict[str, Any]:
    """Per-split, per-source doc and byte counts of one shard, and the text hashes of its holdout docs;
    kept in `cache` by the shard's content (`sha256`) and what decides the splits, so a grown corpus
    reads the texts of its new shards only."""
    path, config, sha256, cache = args
    entry = cache.entry(sha256, kind="mix-scan", version=MIX_VERSION, seed=config.seed,
                        validation=config.validation_fraction, test=config.test_fraction)
    if (done := cache.lookup(entry)) is not None:
        return {**done, "holdout_hashes": [bytes.fromhex(h) for h in done["holdout_hashes"]]}
    t = read_table(as_path(path), columns=["id", "source", "text"])
    counts: dict[str, dict[str, list[int]]] = {s: {} for s in SPLITS}
    hashes: list[bytes] = []
    for doc_id, source, text in zip(t["id"].to_pylist(), t["source"].to_pylist(), t["text"].to_pylist(), strict=True):
        split = split_of(config.seed, doc_id, config)
        c = counts[split].setdefault(source, [0, 0])
        c[0] += 1
        c[1] += len(text.encode("utf-8"))
        if split != "train":
            hashes.append(text_hash(text))
    cache.commit(entry, {"counts": counts, "holdout_hashes": [h.hex() for h in hashes], "rows": t.num_rows})
    return {"counts": counts, "holdout_hashes": hashes, "rows": t.num_rows}


def _scatter_task(args: tuple[int, list[tuple[str, str]], str, MixConfig, dict[str, float], dict[str, int], bool],
                  holdout: frozenset) -> dict:
    """Assign every copy of every document of a run of shards to a (split, partition) bucket, one file
    per bucket and run; with a shard's tokens file (its documents' tokens, row by row:
    pipeline/outputs/tokenize.py) the tokens travel along, and the texts only if `keep_text`."""
    group, shards, out_dir, config, epochs, partitions, keep_text = args
    scratch = as_path(out_dir) / "_scratch" / "buckets"
    buckets: dict[tuple[str, int], list[pa.Table]] = {}
    counts: dict[str, int] = {}
    for path, tokens in shards:
        for bucket, table in _scatter_shard(as_path(path), as_path(tokens) if tokens else None, out_dir, config,
                                            epochs, partitions, holdout, counts, keep_text).items():
            buckets.setdefault(bucket, []).append(table)
    for (split, part), tables in buckets.items():  # read back once, by the gather
        write_bucket(pa.concat_tables(tables, promote_options="default"),
                     scratch / split / f"{part:05d}" / f"{group:05d}{BUCKET_SUFFIX}")
    return {"rejected": counts}


def _scatter_shard(p: AnyPath, tokens: AnyPath | None, out_dir: str, config: MixConfig, epochs: dict[str, float],
                   partitions: dict[str, int], holdout: frozenset, counts: dict[str, int],
                   keep_text: bool) -> dict[tuple[str, int], pa.Table]:
    """One shard's copies by bucket; its rejected documents written, their reasons counted into `counts`.
    Without `keep_text`, a copy carries its text's UTF-8 length instead of the text."""
    table = read_table(p)
    carried = table
    if tokens:
        t = read_table(tokens)
        if not t.column("id").equals(table.column("id")):
            raise MixError(f"mix: {tokens} does not hold the tokens of {p}'s documents")
        carried = table.append_column(TOKENS_COLUMN, t.column(TOKENS_COLUMN))
    if not keep_text:
        carried = carried.drop_columns(["text"]).append_column(
            TEXT_BYTES_COLUMN, pc.binary_length(table.column("text")).cast(pa.int64()))
    rows: dict[tuple[str, int], tuple[list[int], list[int], list[int]]] = {}
    rejected_rows: list[int] = []
    reasons: list[str] = []
    texts = _TextHashes(table["text"]) if holdout else None
    seed = str(config.seed)
    for i, (doc_id, source) in enumerate(zip(table["id"].to_pylist(), table["source"].to_pylist(), strict=True)):
        split = split_of(seed, doc_id, config)
        if split == "train":
            if texts is not None and texts[i] in holdout:
                rejected_rows.append(i)
                reasons.append("mix:holdout-dup")
                continue
            n = copies_of(seed, doc_id, epochs[source])
            if n == 0:
                rejected_rows.append(i)
                reasons.append("mix:subsampled")
                continue
        else:
            n = 1
        for epoch in range(n):
            key = copy_key(seed, doc_id, epoch)
            bucket = rows.setdefault((split, (key * partitions[split]) >> 64), ([], [], []))
            bucket[0].append(i)
            bucket[1].append(key)
            bucket[2].append(epoch)
    # one take of the copies grouped by bucket (none when that is the shard as it is), a slice per bucket:
    # a take per bucket cost its per-column overhead on every one of a shard's ~45 columns
    order: list[int] = [i for idx, _, _ in rows.values() for i in idx]
    copies = carried if order == list(range(table.num_rows)) else carried.take(pa.array(order, pa.int64()))
    copies = copies.append_column(KEY_COLUMN, pa.array([k for _, ks, _ in rows.values() for k in ks], pa.uint64()))
    copies = copies.append_column(EPOCH_COLUMN, pa.array([e for _, _, es in rows.values() for e in es], pa.int32()))
    out: dict[tuple[str, int], pa.Table] = {}
    start = 0
    for bucket, (idx, _, _) in rows.items():
        out[bucket] = copies.slice(start, len(idx))
        start += len(idx)
    dropped = table.take(pa.array(rejected_rows, pa.int64())) if rejected_rows else table.slice(0, 0)
    rejected = with_rejection(dropped, "mix", reasons)
    _write_rejected(rejected, as_path(out_dir) / REJECTED_DIR / p.name)
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return out


_NO_REJECTIONS: dict[bytes, bytes] = {}  # per schema (serialized), the bytes of a shard with no rows


def _write_rejected(rejected: pa.Table, path: AnyPath) -> None:
    """`write_table`; the bytes of an empty table, what most shards reject, made once per schema and
    process (a Parquet file of ~45 columns cost ~1.5 ms to encode, for each of a corpus' shards)."""
    if rejected.num_rows:
        write_table(rejected, path)
        return
    schema = rejected.schema.serialize().to_pybytes()
    if schema not in _NO_REJECTIONS:
        _NO_REJECTIONS[schema] = parquet_bytes(rejected)
    write_bytes_atomic(_NO_REJECTIONS[schema], path)


def scatter_groups(text_bytes: list[int], workers: int, max_bytes: int = SCATTER_GROUP_BYTES) -> list[range]:
    """Runs of consecutive shards for the scatter, a task each: at most ~`max_bytes` of text (what a
    task holds), and at least four runs per worker when there are that many shards (a task per small
    shard spends its time opening files: 68 shards of 200 KB took 0.9 s, 8 runs of them 0.5 s), one
    per worker when all the text would fit in one task (each task is a round trip and a file per
    partition for the gather to read)."""
    n = len(text_bytes)
    if n == 0:
        return []
    total = sum(text_bytes)
    per_worker = 1 if total <= max_bytes else 4
    runs = min(n, max(per_worker * workers, -(-total // max_bytes)))
    bounds = [round(i * n / runs) for i in range(runs + 1)]
    return [range(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


# ------------------------------------------------------------------------------------------- mix


def _resolve_epochs(config: MixConfig, train: dict[str, list[int]]) -> dict[str, float]:
    if config.epochs and config.weights:
        raise MixError("mix: set either epochs or weights, not both")
    for name, value in {**config.epochs, **config.weights}.items():
        if value < 0:
            raise MixError(f"mix: source {name!r} has a negative epochs/weight {value}")
    if not config.weights:
        return {s: float(config.epochs.get(s, config.default_epochs)) for s in sorted(train)}
    missing = sorted(set(train) - set(config.weights))
    if missing:
        raise MixError(f"mix.weights: no weight for source(s) {', '.join(missing)} (listed: {sorted(config.weights)})")
    total_weight = sum(config.weights[s] for s in train)
    if total_weight <= 0:
        raise MixError("mix.weights: the weights of the sources present add up to 0")
    total_bytes = sum(b for _, b in train.values())
    return {s: (config.weights[s] / total_weight) * total_bytes / max(train[s][1], 1) for s in sorted(train)}


def mix(in_shards: list[AnyPath], out_dir: str | os.PathLike, config: MixConfig, executor: Executor,
        tokens: dict[str, AnyPath] | None = None, digests: dict[str, str] | None = None,
        scan_cache: str | os.PathLike | None = None, text: bool = True,
        token_shards: tuple[str | os.PathLike, TokenShardSpec] | None = None) -> dict[str, Any]:
    """Mix, shuffle and split doc shards into `out_dir/{train,validation,test}/*.parquet`.

    `tokens` ({input shard name: its tokens file}) puts each document's tokens into the mixed shards
    (column TOKENS_COLUMN), so tokenizing them is a copy; then `text=False` leaves the texts out of
    the mixed shards (half their bytes, for a build that reads nothing else from them). `digests`: the
    inputs' sha256 by name, when the caller has them (`input_digests`), else computed here. `scan_cache`: where each shard's counts
    are kept by its content (a grown corpus scans only its new shards).

    Rejected documents go to `out_dir/rejected/` with their reason. Returns the summary also written
    as `out_dir/_mix.json`: resolved epochs, per split its shards (docs, bytes, sha256) and per-source
    counts, and the rejections; input documents = holdout + train documents kept (any copies) + rejected.
    A finished mix (same inputs and config) is returned as is. `token_shards` (a directory, a spec):
    with tokens carried, each mixed shard's token shards and task record are also written into
    `<directory>/<split>` by the gather, as `tokenize_shards` would, which then finds them finished.
    """
    v, t = config.validation_fraction, config.test_fraction
    if not (v >= 0 and t >= 0 and v + t < 1):
        raise MixError("mix: validation_fraction and test_fraction must be >= 0 and add up to less than 1")
    if config.shard_max_bytes < 1:
        raise MixError("mix: shard_max_bytes must be >= 1")
    out_dir = as_path(out_dir)
    paths = sorted((as_path(p) for p in in_shards), key=lambda p: p.name)
    if len({p.name for p in paths}) != len(paths):
        raise MixError(f"mix: input shard names are not unique: {[str(p) for p in paths]}")
    tokens = tokens or {}
    if not text and any(p.name not in tokens for p in paths):
        raise MixError("mix: the texts can be left out only when every shard's tokens are carried")
    digests = digests or input_digests(paths)
    key = stable_hash({"version": MIX_VERSION, "config": to_plain(config), "inputs": [digests[p.name] for p in paths],
                       "text": text,
                       # a tokens file is named by the content it was computed from (shard, tokenizer)
                       "tokens": [as_path(tokens[p.name]).parent.name if p.name in tokens else "" for p in paths]})
    if (out_dir / MIX_FILE).exists():
        done = read_json(out_dir / MIX_FILE)
        if done.get("key") == key:
            return done
    for d in (*SPLITS, REJECTED_DIR, "_scratch"):
        remove_tree(out_dir / d)
    scratch = out_dir / "_scratch" / "buckets"

    cache = ShardCache(scan_cache)
    scans = executor.map(_scan_task, [(str(p), config, digests[p.name], cache) for p in paths], desc="mix: scan")
    counts: dict[str, dict[str, list[int]]] = {s: {} for s in SPLITS}
    for scan in scans:
        for split, per_source in scan["counts"].items():
            for source, (n, b) in per_source.items():
                c = counts[split].setdefault(source, [0, 0])
                c[0] += n
                c[1] += b
    epochs = _resolve_epochs(config, counts["train"])
    expected = {
        "train": sum(b * epochs[s] for s, (_, b) in counts["train"].items()),
        **{s: sum(b for _, b in counts[s].values()) for s in SPLITS[1:]},
    }
    partitions = {s: max(1, math.ceil(expected[s] / config.shard_max_bytes)) for s in SPLITS}
    holdout = executor.put(frozenset(h for scan in scans for h in scan["holdout_hashes"]))
    sizes = [sum(b for per in scan["counts"].values() for _, b in per.values()) for scan in scans]
    del scans

    items = [(g, [(str(paths[i]), str(tokens.get(paths[i].name, ""))) for i in run], str(out_dir), config, epochs,
              partitions, text) for g, run in enumerate(scatter_groups(sizes, executor.num_workers))]
    scattered = executor.map(_scatter_task, items, desc="mix: scatter", shared=holdout)
    rejected: dict[str, int] = {}
    for r in scattered:
        for reason, n in r["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + n

    target = (str(token_shards[0]), token_shards[1]) if token_shards and tokens else None
    parts = [(str(scratch), s, p, str(out_dir), target) for s in SPLITS for p in range(partitions[s])]
    gathered = executor.map(gather_task, parts, desc="mix: shuffle")
    splits: dict[str, Any] = {}
    for s in SPLITS:
        shards = [g for (_, split, *_), g in zip(parts, gathered, strict=True) if split == s and g is not None]
        sources: dict[str, dict[str, int]] = {}
        for g in shards:
            for src, c in g.pop("sources").items():
                t = sources.setdefault(src, {"docs": 0, "text_bytes": 0})
                t["docs"] += c["docs"]
                t["text_bytes"] += c["text_bytes"]
        splits[s] = {"shards": shards, "docs": sum(g["docs"] for g in shards), "sources": dict(sorted(sources.items()))}
    remove_tree(out_dir / "_scratch")

    in_docs = sum(n for per in counts.values() for n, _ in per.values())
    unique_train = sum(n for n, _ in counts["train"].values()) - sum(rejected.values())
    summary = {
        "key": key,
        "seed": config.seed,
        "epochs": epochs,
        "inputs": [p.name for p in paths],
        "in_docs": in_docs,
        "in_sources": {s: {src: {"docs": n, "text_bytes": b} for src, (n, b) in sorted(per.items())}
                       for s, per in counts.items()},
        "train_unique_docs": unique_train,
        "rejected": dict(sorted(rejected.items())),
        "splits": splits,
    }
    holdout_docs = splits["validation"]["docs"] + splits["test"]["docs"]
    if in_docs != holdout_docs + unique_train + sum(rejected.values()):
        raise MixError(f"mix: {in_docs} documents in, but {holdout_docs} holdout + {unique_train} train"
                       f" + {sum(rejected.values())} rejected")
    write_json(summary, out_dir / MIX_FILE)
    return summary


def input_digests(paths: list[AnyPath]) -> dict[str, str]:
    """{shard name: sha256 of its bytes}: what keys a mix (and the tokens kept per input shard)."""
    return {as_path(p).name: sha256_file(p) for p in paths}


def split_shards(out_dir: str | os.PathLike, split: str) -> list[AnyPath]:
    """The output doc shards of one split of a finished mix, in order."""
    out_dir = as_path(out_dir)
    return [out_dir / s["path"] for s in read_json(out_dir / MIX_FILE)["splits"][split]["shards"]]
