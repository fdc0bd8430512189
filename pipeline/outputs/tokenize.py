"""Tokenize doc shards into token shards (one task per input shard), and train a byte-level BPE.

Any HF `tokenizer.json` works (e.g. the GPT-NeoX-20B tokenizer); an EOS token follows every document.
Each input shard `X.parquet` becomes `X-00000.tokens`, `X-00001.tokens`, ... cut at document
boundaries when a shard reaches `shard_max_tokens`, so the output depends only on the input shards,
never on how they were grouped into tasks or how many workers ran them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core.config import at_least, require, stable_hash, to_plain
from pipeline.core.io import AnyPath, as_path, local_file, makedirs, write_bytes_atomic
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
from pipeline.outputs.mix import TOKENS_COLUMN
from pipeline.outputs.reader import SHARD_SUFFIX
from pipeline.outputs.textshards import open_parquet
from pipeline.outputs.token_shards import TokenShardWriter, token_itemsize, write_index

TOKENIZE_VERSION = "1"
MAX_ZSTD_LEVEL = 22  # zstd's highest compression level
MIN_BPE_VOCAB = 256 + 1  # a byte-level BPE holds every byte, plus the EOS token


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


def _batches(path: AnyPath, batch_docs: int, loaded: LoadedTokenizer
             ) -> Iterator[tuple[list[str], list[str], list[np.ndarray]]]:
    """(ids, sources, tokens with EOS) per batch of a doc shard: its TOKENS_COLUMN when it was tokenized
    before mixing, else encoded here."""
    try:
        with open_parquet(path) as pf:
            carried = TOKENS_COLUMN in pf.schema_arrow.names
            columns = ["id", "source", TOKENS_COLUMN if carried else "text"]
            for batch in pf.iter_batches(batch_size=batch_docs, columns=columns):
                ids, sources = batch.column(0).to_pylist(), batch.column(1).to_pylist()
                if carried:
                    tokens = [np.frombuffer(b, np.uint32) for b in batch.column(2).to_pylist()]
                else:
                    tokens = encode_documents(loaded, batch.column(2).to_pylist())
                yield ids, sources, tokens
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: cannot read Parquet shard: {exc}") from exc


def _texts(path: AnyPath, batch_docs: int) -> Iterator[list[str]]:
    try:
        with open_parquet(path) as pf:
            for batch in pf.iter_batches(batch_size=batch_docs, columns=["text"]):
                yield batch.column(0).to_pylist()
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
    in_path, out_dir = as_path(in_path), as_path(out_dir)
    loaded = load_tokenizer(config.tokenizer, config.eos_token)
    itemsize = token_itemsize(loaded.vocab_size)
    meta = _shard_meta(config, loaded)
    stem = in_path.stem
    outputs: list[dict[str, Any]] = []
    per_source: dict[str, dict[str, int]] = {}
    writer: TokenShardWriter | None = None

    def new_writer() -> TokenShardWriter:
        return TokenShardWriter(out_dir / f"{stem}-{len(outputs):05d}{SHARD_SUFFIX}", itemsize=itemsize,
                                frame_tokens=config.frame_tokens, zstd_level=config.zstd_level, meta=meta)

    try:
        for ids, sources, encoded in _batches(in_path, config.batch_docs, loaded):
            lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
            for s, n in zip(sources, lengths.tolist(), strict=True):
                c = per_source.setdefault(s, {"docs": 0, "tokens": 0})
                c["docs"] += 1
                c["tokens"] += n
            start = 0
            while start < len(encoded):
                if writer is None:
                    writer = new_writer()
                # take documents up to the shard's token budget (always at least one)
                room = config.shard_max_tokens - writer.num_tokens
                cum = np.cumsum(lengths[start:])
                take = max(1 if writer.num_docs == 0 else 0, int(np.searchsorted(cum, room, side="right")))
                if take == 0:
                    outputs.append(writer.close())
                    writer = None
                    continue
                stop = start + take
                flat = np.concatenate(encoded[start:stop]).astype(writer.dtype, copy=False)
                writer.add_documents(ids[start:stop], sources[start:stop], flat, lengths[start:stop])
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
    return {"input": in_path.name, "outputs": outputs, "sources": per_source}


def _tokenize_task(args: tuple[list[str], str, TokenizeConfig, str]) -> list[dict[str, Any]]:
    in_paths, out_dir_s, config, config_key = args
    out_dir = as_path(out_dir_s)
    records = []
    for p in map(as_path, in_paths):
        record_path = out_dir / TASKS_DIR / f"{p.stem}.json"
        if record_path.exists():
            rec = read_json(record_path)
            if rec.get("config_key") == config_key and all((out_dir / o["path"]).exists() for o in rec["outputs"]):
                records.append(rec)
                continue
        rec = {**tokenize_one(p, out_dir, config), "config_key": config_key}
        write_json(rec, record_path)
        records.append(rec)
    return records


def tokenize_shards(in_shards: list[AnyPath], out_dir: str | os.PathLike, config: TokenizeConfig,
                    executor: Executor) -> dict[str, Any]:
    """Tokenize doc shards into `out_dir`, one task per `shards_per_task` input shards.

    Returns the summary also written as `out_dir/index.json`: tokenizer, dtype, totals, per-source
    docs/tokens, and every shard with its docs, tokens, bytes and sha256, in reading order. Finished
    input shards (a task record with the same config) are not recomputed on a rerun.
    """
    loaded = load_tokenizer(config.tokenizer, config.eos_token)  # fail fast, before any task starts
    if config.shard_max_tokens < 1 or config.shards_per_task < 1 or config.batch_docs < 1:
        raise ValueError("tokenize: shard_max_tokens, shards_per_task and batch_docs must be >= 1")
    out_dir = as_path(out_dir)
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
    # batch_docs and shards_per_task do not change the output, so they do not invalidate finished tasks;
    # of the tokenizer's path only its name is written (its content is keyed by sha256), so the key, and
    # the task records, are the same wherever the tokenizer and the output directory are
    output_config = {k: v for k, v in to_plain(config).items() if k not in ("batch_docs", "shards_per_task")}
    output_config["tokenizer"] = as_path(config.tokenizer).name
    config_key = stable_hash({"version": TOKENIZE_VERSION, "config": output_config, "tokenizer": loaded.sha256})
    n = config.shards_per_task
    items = [([str(p) for p in paths[i:i + n]], str(out_dir), config, config_key) for i in range(0, len(paths), n)]
    records = [r for group in executor.map(_tokenize_task, items, desc="tokenize") for r in group]
    shards = sorted((o for r in records for o in r["outputs"]), key=lambda o: o["path"])
    sources: dict[str, dict[str, int]] = {}
    for r in records:
        for s, c in r["sources"].items():
            t = sources.setdefault(s, {"docs": 0, "tokens": 0})
            t["docs"] += c["docs"]
            t["tokens"] += c["tokens"]
    meta = {**_shard_meta(config, loaded), "dtype": "uint16" if token_itemsize(loaded.vocab_size) == 2 else "uint32",
            "frame_tokens": config.frame_tokens, "zstd_level": config.zstd_level,
            "inputs": [p.name for p in paths], "sources": dict(sorted(sources.items()))}
    return write_index(out_dir, shards, meta)


# -------------------------------------------------------------------------------------- training


def iter_texts(in_shards: list[AnyPath], max_bytes: int | None = None, batch_docs: int = 1024) -> Iterator[str]:
    """Document texts of the shards in name order, stopping after about `max_bytes` of UTF-8."""
    seen = 0
    for p in sorted((as_path(s) for s in in_shards), key=lambda s: s.name):
        for texts in _texts(p, batch_docs):
            for t in texts:
                yield t
                seen += len(t.encode("utf-8"))
                if max_bytes is not None and seen >= max_bytes:
                    return


def train_tokenizer(
    in_shards: list[AnyPath],
    out_path: str | os.PathLike,
    vocab_size: int,
    *,
    eos_token: str = "<|endoftext|>",
    min_frequency: int = 2,
    max_train_bytes: int | None = None,
) -> AnyPath:
    """Train a byte-level BPE (GPT-2 style, no normalizer, so decoding is lossless) on the shards' text.

    Texts are read in shard-name order (at most `max_train_bytes`), so the same corpus gives the
    same tokenizer.json. The EOS token is a special token with id 0. `out_path` may be a URI; the
    file is written atomically either way.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_BPE_VOCAB:
        raise ValueError(f"vocab_size {vocab_size} is too small for a byte-level BPE (>= {MIN_BPE_VOCAB})")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[eos_token] if eos_token else [],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter_texts(in_shards, max_train_bytes), trainer=trainer)
    out_path = as_path(out_path)
    # the same bytes as tok.save(path, pretty=True), written through io (local or object storage)
    write_bytes_atomic(tok.to_str(pretty=True).encode("utf-8"), out_path)
    return out_path
