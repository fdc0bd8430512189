"""Tokenize doc shards into token shards (one task per input shard; BPE training: training.py).

Any HF `tokenizer.json` works (e.g. the GPT-NeoX-20B tokenizer); an EOS token follows every document.
Each input shard `X.parquet` becomes `X-00000.tokens`, `X-00001.tokens`, ... cut at document
boundaries when a shard reaches `shard_max_tokens`, so the output depends only on the input shards,
never on how they were grouped into tasks or how many workers ran them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core.config import at_least, require, stable_hash, to_plain
from pipeline.core.io import AnyPath, as_path, local_file, makedirs
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import (
    TASKS_DIR,
    ShardError,
    read_json,
    read_table,
    write_json,
    write_table,
)
from pipeline.core.shards import sha256_file as file_sha256
from pipeline.core.stage import Executor
from pipeline.outputs.columns import TOKENS_COLUMN
from pipeline.outputs.reader import SHARD_SUFFIX
from pipeline.outputs.textshards import open_parquet
from pipeline.outputs.token_shards import TokenShardWriter, token_itemsize, write_index

TOKENIZE_VERSION = "1"
MAX_ZSTD_LEVEL = 22  # zstd's highest compression level


@dataclass
class TokenizeConfig:
    """How documents become token shards."""

    # Path or URI of a HF tokenizers `tokenizer.json` (e.g. gpt-neox-20b.tokenizer.json, or one from
    # train_tokenizer).
    tokenizer: str = ""
    # Appended after every document; must be a token of the tokenizer. "" for no separator.
    eos_token: str = "<|endoftext|>"
    # A new output shard starts (at a document boundary) once this many tokens are written.
    shard_max_tokens: int = 1 << 27
    # Tokens per zstd frame: the unit a reader decompresses to reach one document.
    frame_tokens: int = 1 << 16
    zstd_level: int = 3  # zstd compression level of the token shards
    # Documents per encode_batch call; bounds memory, does not change the output.
    batch_docs: int = 512
    # Input shards per task: more amortizes task start-up on many small shards; output is the same.
    shards_per_task: int = 1

    def __post_init__(self) -> None:
        at_least(self, 1, "shard_max_tokens", "frame_tokens", "batch_docs", "shards_per_task")
        require(self.zstd_level <= MAX_ZSTD_LEVEL, "zstd_level", f"must be <= {MAX_ZSTD_LEVEL}, got {self.zstd_level}")


@dataclass
class LoadedTokenizer:
    tokenizer: Any
    sha256: str
    vocab_size: int
    eos_id: int | None


_TOKENIZERS: dict[tuple[str, str], LoadedTokenizer] = {}


def load_tokenizer(path: str | os.PathLike, eos_token: str) -> LoadedTokenizer:
    """Load (once per process) a tokenizer.json, local or a URI, and resolve the EOS token; errors name
    the file."""
    from tokenizers import Tokenizer

    if not str(path):
        raise FileNotFoundError("tokenizer file not found: '' (set outputs.tokenize.tokenizer)")
    path = as_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path!s} (set outputs.tokenize.tokenizer)")
    local = local_file(path)  # the file itself, or a cached copy keyed by the object's size and mtime
    key = (str(local.resolve()), eos_token)
    if key not in _TOKENIZERS:
        try:
            tok = Tokenizer.from_file(str(local))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exception on bad JSON
            raise ValueError(f"{path}: not a tokenizers tokenizer.json: {exc}") from None
        eos_id = None
        if eos_token:
            eos_id = tok.token_to_id(eos_token)
            if eos_id is None:
                raise ValueError(f"{path}: EOS token {eos_token!r} is not in the vocabulary")
        _TOKENIZERS[key] = LoadedTokenizer(tok, file_sha256(local), tok.get_vocab_size(with_added_tokens=True),
                                           eos_id)
    return _TOKENIZERS[key]


def _encode(tok: Any, texts: list[str]) -> list[list[int]]:
    encode = getattr(tok, "encode_batch_fast", None) or tok.encode_batch  # fast: no offsets (tokenizers>=0.21)
    return [e.ids for e in encode(texts, add_special_tokens=False)]


def _shard_meta(config: TokenizeConfig, loaded: LoadedTokenizer) -> dict[str, Any]:
    return {
        "tokenizer": as_path(config.tokenizer).name,
        "tokenizer_sha256": loaded.sha256,
        "vocab_size": loaded.vocab_size,
        "eos_token": config.eos_token or None,
        "eos_id": loaded.eos_id,
    }


@dataclass
class TokenShardSpec:
    """A token directory's settings, resolved once in the driver: what a task writing token shards of
    carried tokens needs instead of the tokenizer (loading it costs ~0.3 CPU s per process)."""

    config: TokenizeConfig
    meta: dict[str, Any]  # every shard's metadata (_shard_meta)
    itemsize: int  # bytes per token
    config_key: str  # in every task record: a rerun reuses the records with the same key


def token_spec(config: TokenizeConfig) -> TokenShardSpec:
    """The spec of token shards written with `config` (loads the tokenizer, in this process only)."""
    loaded = load_tokenizer(config.tokenizer, config.eos_token)
    # batch_docs and shards_per_task do not change the output, so they do not invalidate finished tasks;
    # of the tokenizer's path only its name is written (its content is keyed by sha256), so the key, and
    # the task records, are the same wherever the tokenizer and the output directory are
    output_config = {k: v for k, v in to_plain(config).items() if k not in ("batch_docs", "shards_per_task")}
    output_config["tokenizer"] = as_path(config.tokenizer).name
    config_key = stable_hash({"version": TOKENIZE_VERSION, "config": output_config, "tokenizer": loaded.sha256})
    return TokenShardSpec(config, _shard_meta(config, loaded), token_itemsize(loaded.vocab_size), config_key)


Batch = tuple[list[str], list[str], np.ndarray, np.ndarray]  # ids, sources, their tokens concatenated, lengths


def one_chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array, without a copy when it is one chunk already (`combine_chunks` copies)."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def carried_tokens(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(concatenated tokens, tokens per document) of a TOKENS_COLUMN, read from its Arrow buffers
    (no Python object per document)."""
    arr = one_chunk(column)
    if arr.type != pa.large_binary():
        arr = arr.cast(pa.large_binary())
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint32), np.zeros(0, np.int64)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, count=n + 1, offset=arr.offset * 8)
    lengths = np.diff(offsets)
    if (lengths % 4).any():
        raise ValueError(f"{TOKENS_COLUMN}: token bytes not a multiple of 4 (uint32)")
    lo, hi = int(offsets[0]), int(offsets[-1])
    flat = np.frombuffer(data_buf, np.uint32, count=(hi - lo) // 4, offset=lo) if hi > lo else np.zeros(0, np.uint32)
    return flat, lengths // 4


def _batches(path: AnyPath, batch_docs: int, loaded: LoadedTokenizer) -> Iterator[Batch]:
    """The batches of a doc shard: tokens from its TOKENS_COLUMN when it was tokenized before mixing,
    else encoded here (EOS appended)."""
    try:
        with open_parquet(path) as pf:
            carried = TOKENS_COLUMN in pf.schema_arrow.names
            columns = ["id", "source", TOKENS_COLUMN if carried else "text"]
            for batch in pf.iter_batches(batch_size=batch_docs, columns=columns):
                ids, sources = batch.column(0).to_pylist(), batch.column(1).to_pylist()
                if carried:
                    flat, lengths = carried_tokens(batch.column(2))
                else:
                    encoded = encode_documents(loaded, batch.column(2).to_pylist())
                    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
                    flat = np.concatenate(encoded) if encoded else np.zeros(0, np.uint32)
                yield ids, sources, flat, lengths
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: cannot read Parquet shard: {exc}") from exc


def encode_documents(loaded: LoadedTokenizer, texts: list[str]) -> list[np.ndarray]:
    """Each text's token ids (uint32), EOS appended when the tokenizer has one."""
    eos = [] if loaded.eos_id is None else [loaded.eos_id]
    return [np.array(ids + eos, np.uint32) for ids in _encode(loaded.tokenizer, texts)]


def pretokenize_task(args: tuple[str, str, TokenizeConfig, ShardCache, str]) -> str:
    """Tokens of every document of one doc shard (content `sha256`), row by row, kept by the shard's
    content and the tokenizer's: a grown corpus tokenizes only its new shards, and a known shard is not
    even read; then the mix carries the tokens."""
    in_path, sha256, config, cache, fallback = args
    loaded = load_tokenizer(config.tokenizer, config.eos_token)
    key = _tokens_key(loaded, config)
    entry = cache.entry(sha256, **key) or as_path(fallback) / stable_hash({"input": sha256, **key})
    if cache.lookup(entry) is None:
        table = read_table(in_path, ["id", "text"])
        blobs: list[bytes] = []
        for lo in range(0, table.num_rows, config.batch_docs):
            texts = table.column("text").slice(lo, config.batch_docs).to_pylist()
            blobs += [t.tobytes() for t in encode_documents(loaded, texts)]
        write_table(pa.table({"id": table.column("id"), TOKENS_COLUMN: pa.array(blobs, pa.large_binary())}),
                    entry / "tokens.parquet")
        cache.commit(entry, {"docs": table.num_rows})
    return str(entry / "tokens.parquet")


def pretokenize(in_shards: list[AnyPath], digests: dict[str, str], cache_dir: str | os.PathLike | None,
                config: TokenizeConfig, scratch: AnyPath, executor: Executor) -> dict[str, AnyPath]:
    """{shard name: its tokens file} for `mix(..., tokens=...)`; one task per shard, in parallel.
    `digests`: {shard name: sha256 of its bytes}."""
    loaded = load_tokenizer(config.tokenizer, config.eos_token)  # fail fast, before any task starts
    cache = ShardCache(cache_dir)
    found: dict[str, AnyPath] = {}  # shards tokenized before: no task
    for p in map(as_path, in_shards):
        entry = cache.entry(digests[p.name], **_tokens_key(loaded, config))
        if cache.lookup(entry) is not None:
            found[p.name] = entry / "tokens.parquet"
    todo = [as_path(p) for p in in_shards if as_path(p).name not in found]
    items = [(str(p), digests[p.name], config, cache, str(scratch)) for p in todo]
    files = executor.map(pretokenize_task, items, desc="tokenize (per input shard)")
    found.update({p.name: as_path(f) for p, f in zip(todo, files, strict=True)})
    return {as_path(p).name: found[as_path(p).name] for p in in_shards}


def _tokens_key(loaded: LoadedTokenizer, config: TokenizeConfig) -> dict[str, Any]:
    """What a shard's tokens depend on besides its content."""
    return {"tokenizer": loaded.sha256, "eos": config.eos_token, "version": TOKENIZE_VERSION}


def tokenize_one(in_path: str | os.PathLike, out_dir: str | os.PathLike, config: TokenizeConfig) -> dict[str, Any]:
    """Tokenize one doc shard into one or more token shards; returns the task record."""
    in_path = as_path(in_path)
    loaded = load_tokenizer(config.tokenizer, config.eos_token)
    outputs, per_source = _write_token_shards(_batches(in_path, config.batch_docs, loaded), as_path(out_dir),
                                              in_path.stem, config, _shard_meta(config, loaded),
                                              token_itemsize(loaded.vocab_size))
    return {"input": in_path.name, "outputs": outputs, "sources": per_source}


def write_carried_tokens(table: pa.Table, name: str, out_dir: str | os.PathLike, spec: TokenShardSpec
                         ) -> dict[str, Any]:
    """The token shards and task record of doc shard `name` (its documents, with TOKENS_COLUMN, in
    `table`), written by whoever holds the table (the mix's gather): the bytes `tokenize_shards` would
    write reading the shard back, without that pass."""
    out_dir = as_path(out_dir)
    flat, lengths = carried_tokens(table.column(TOKENS_COLUMN))
    batch = (table.column("id").to_pylist(), table.column("source").to_pylist(), flat, lengths)
    stem = name.removesuffix(".parquet")
    outputs, per_source = _write_token_shards([batch], out_dir, stem, spec.config, spec.meta, spec.itemsize)
    record = {"input": name, "outputs": outputs, "sources": per_source, "config_key": spec.config_key}
    write_json(record, out_dir / TASKS_DIR / f"{stem}.json")
    return record


def _write_token_shards(batches: Iterable[Batch], out_dir: AnyPath, stem: str, config: TokenizeConfig,
                        meta: dict[str, Any], itemsize: int
                        ) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Documents into `stem-00000.tokens`, ... cut at document boundaries at `shard_max_tokens` (the
    same shards however the documents are batched); returns the shards' index entries and per-source
    docs/tokens."""
    outputs: list[dict[str, Any]] = []
    per_source: dict[str, dict[str, int]] = {}
    writer: TokenShardWriter | None = None

    def new_writer() -> TokenShardWriter:
        return TokenShardWriter(out_dir / f"{stem}-{len(outputs):05d}{SHARD_SUFFIX}", itemsize=itemsize,
                                frame_tokens=config.frame_tokens, zstd_level=config.zstd_level, meta=meta)

    try:
        for ids, sources, flat, lengths in batches:
            for s, n in zip(sources, lengths.tolist(), strict=True):
                c = per_source.setdefault(s, {"docs": 0, "tokens": 0})
                c["docs"] += 1
                c["tokens"] += n
            ends = np.cumsum(lengths)  # each document's end in `flat`
            start = 0
            while start < len(lengths):
                if writer is None:
                    writer = new_writer()
                # take documents up to the shard's token budget (always at least one)
                room = config.shard_max_tokens - writer.num_tokens
                begin = int(ends[start - 1]) if start else 0
                take = max(1 if writer.num_docs == 0 else 0,
                           int(np.searchsorted(ends, begin + room, side="right")) - start)
                if take == 0:
                    outputs.append(writer.close())
                    writer = None
                    continue
                stop = start + take
                tokens = flat[begin:int(ends[stop - 1])].astype(writer.dtype, copy=False)
                writer.add_documents(ids[start:stop], sources[start:stop], tokens, lengths[start:stop])
                start = stop
                if writer.num_tokens >= config.shard_max_tokens:
                    outputs.append(writer.close())
                    writer = None
        if writer is not None:
            outputs.append(writer.close())
            writer = None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return outputs, per_source


def _finished(out_dir: AnyPath, in_path: AnyPath, config_key: str) -> dict[str, Any] | None:
    """The task record of a doc shard tokenized before with the same config, if its outputs are there."""
    record_path = out_dir / TASKS_DIR / f"{in_path.stem}.json"
    if record_path.exists():
        rec = read_json(record_path)
        if rec.get("config_key") == config_key and all((out_dir / o["path"]).exists() for o in rec["outputs"]):
            return rec
    return None


def _tokenize_task(args: tuple[list[str], str, TokenizeConfig, str]) -> list[dict[str, Any]]:
    in_paths, out_dir_s, config, config_key = args
    out_dir = as_path(out_dir_s)
    records = []
    for p in map(as_path, in_paths):
        if (rec := _finished(out_dir, p, config_key)) is None:
            rec = {**tokenize_one(p, out_dir, config), "config_key": config_key}
            write_json(rec, out_dir / TASKS_DIR / f"{p.stem}.json")
        records.append(rec)
    return records


def tokenize_shards(in_shards: list[AnyPath], out_dir: str | os.PathLike, config: TokenizeConfig,
                    executor: Executor) -> dict[str, Any]:
    """Tokenize doc shards into `out_dir`, one task per `shards_per_task` input shards.

    Returns the summary also written as `out_dir/index.json`: tokenizer, dtype, totals, per-source
    docs/tokens, and every shard with its docs, tokens, bytes and sha256, in reading order. Finished
    input shards (a task record with the same config) are not recomputed on a rerun.
    """
    return tokenize_dirs({"": (in_shards, out_dir)}, config, executor)[""]


def tokenize_dirs(jobs: dict[str, tuple[list[AnyPath], str | os.PathLike]], config: TokenizeConfig,
                  executor: Executor) -> dict[str, dict[str, Any]]:
    """`tokenize_shards` of several (input shards, output directory) at once, e.g. a mix's splits: one
    map over the shards of them all that have no finished task record (a map per directory cost a
    round trip each), none when every record is there (the mix's gather wrote them)."""
    spec = token_spec(config)  # fails fast, before any task starts
    if config.shard_max_tokens < 1 or config.shards_per_task < 1 or config.batch_docs < 1:
        raise ValueError("tokenize: shard_max_tokens, shards_per_task and batch_docs must be >= 1")
    dirs: dict[str, tuple[list[AnyPath], AnyPath]] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    items: list[tuple[list[str], str, TokenizeConfig, str]] = []
    owners: list[str] = []  # the job of each item
    for name, (in_shards, out) in jobs.items():
        out_dir = as_path(out)
        paths = sorted((as_path(p) for p in in_shards), key=lambda p: p.name)
        seen: dict[str, AnyPath] = {}
        for p in paths:
            if p.stem in seen:
                raise ValueError(f"two input shards share the name {p.name}: {seen[p.stem]} and {p}")
            seen[p.stem] = p
        makedirs(out_dir)
        if isinstance(out_dir, Path):  # writes killed mid-way (object storage never holds partial objects)
            for tmp in out_dir.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        dirs[name] = (paths, out_dir)
        records[name] = []
        todo = []
        for p in paths:
            if (rec := _finished(out_dir, p, spec.config_key)) is None:
                todo.append(p)
            else:
                records[name].append(rec)
        n = config.shards_per_task
        for i in range(0, len(todo), n):
            items.append(([str(p) for p in todo[i:i + n]], str(out_dir), config, spec.config_key))
            owners.append(name)
    if items:
        for name, group in zip(owners, executor.map(_tokenize_task, items, desc="tokenize"), strict=True):
            records[name] += group
    return {name: _index(out_dir, paths, records[name], spec) for name, (paths, out_dir) in dirs.items()}


def _index(out_dir: AnyPath, paths: list[AnyPath], records: list[dict[str, Any]], spec: TokenShardSpec
           ) -> dict[str, Any]:
    """Write and return `out_dir/index.json` of the token shards the task records list."""
    shards = sorted((o for r in records for o in r["outputs"]), key=lambda o: o["path"])
    sources: dict[str, dict[str, int]] = {}
    for r in records:
        for s, c in r["sources"].items():
            t = sources.setdefault(s, {"docs": 0, "tokens": 0})
            t["docs"] += c["docs"]
            t["tokens"] += c["tokens"]
    meta = {**spec.meta, "dtype": "uint16" if spec.itemsize == 2 else "uint32",
            "frame_tokens": spec.config.frame_tokens, "zstd_level": spec.config.zstd_level,
            "inputs": [p.name for p in paths], "sources": dict(sorted(sources.items()))}
    return write_index(out_dir, shards, meta)
