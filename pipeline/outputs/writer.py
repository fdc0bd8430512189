"""The training outputs of a corpus version, composed: mix → per split text shards, token shards, Megatron.

`corpus build` calls `write_outputs` on the last stage's doc shards. Layout of `out_dir`:

    mix/{train,validation,test}/*.parquet, mix/rejected/, mix/_mix.json
    text/<split>/*.jsonl.zst + index.json
    tokenizer.json                      (only when trained here: `train_vocab_size` > 0)
    tokens/<split>/*.tokens + index.json
    megatron/<split>_text_document.{bin,idx}   (when `megatron` is true)

`out_dir`, the input shards and the tokenizer may each be local or on object storage (`s3://...`);
every file goes through pipeline.core.io, so the bytes are the same wherever they are written.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline.core.config import ConfigError, at_least, require
from pipeline.core.io import AnyPath, as_path
from pipeline.core.stage import Executor
from pipeline.outputs.megatron import export_megatron
from pipeline.outputs.mix import MIX_VERSION, SPLITS, MixConfig, input_digests, mix, split_shards
from pipeline.outputs.textshards import write_text_shards
from pipeline.outputs.tokenize import (
    TOKENIZE_VERSION,
    TokenizeConfig,
    load_tokenizer,
    pretokenize,
    token_spec,
    tokenize_dirs,
)
from pipeline.outputs.training import MIN_BPE_VOCAB, train_tokenizer

# in the outputs step's key: what the code writes (the mixed shards, whose digests _mix.json lists, and
# the token shards) changes with these, so a work directory's outputs of older code are not reused
OUTPUTS_VERSION = f"mix{MIX_VERSION}-tokens{TOKENIZE_VERSION}"


@dataclass
class OutputsConfig:
    """Which outputs a build writes, and how."""
    path_options: ClassVar[tuple[tuple[str, str], ...]] = (("tokenize.tokenizer", "path"),)

    mix: MixConfig = field(default_factory=MixConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    # > 0: train a byte-level BPE of this vocabulary size on the training split (used when
    # tokenize.tokenizer is empty), e.g. for a demo without a tokenizer file.
    train_vocab_size: int = 0
    # At most this much training text goes into tokenizer training (0: all of it).
    train_max_bytes: int = 0
    text_shards: bool = True  # write `text/<split>/*.jsonl.zst` (lm_dataformat layout)
    megatron: bool = False  # also export each split's token shards as Megatron `.bin/.idx`

    def __post_init__(self) -> None:
        require(self.train_vocab_size == 0 or self.train_vocab_size >= MIN_BPE_VOCAB, "train_vocab_size",
                f"must be 0 (no tokenizer trained) or >= {MIN_BPE_VOCAB} (a byte-level BPE), got {self.train_vocab_size}")
        at_least(self, 0, "train_max_bytes")


def check_files(config: OutputsConfig, where: str) -> None:
    """Before any work starts: the tokenizer the outputs need is there, loads, and holds the EOS token
    (or one is trained here). `where` names the `[outputs]` table; errors name it and the key."""
    tokenizer, key = config.tokenize.tokenizer, f"{where}.tokenize.tokenizer"
    if not tokenizer:
        if config.train_vocab_size <= 0:
            raise ConfigError(f"{key}: set a tokenizers tokenizer.json, or train_vocab_size to train one here")
        return
    if not as_path(tokenizer).is_file():
        raise ConfigError(f"{key}: tokenizer file not found: {tokenizer}")
    try:
        load_tokenizer(tokenizer, config.tokenize.eos_token)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: {exc}") from None


def write_outputs(in_shards: list[AnyPath], out_dir: str | os.PathLike, config: OutputsConfig,
                  executor: Executor, token_cache: str | os.PathLike | None = None,
                  scan_cache: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write every output; returns a summary (per split: docs, shards with sha256) for the manifest.

    With a tokenizer given, every input shard is tokenized before mixing, in parallel, and kept by
    content in `token_cache` (a grown corpus tokenizes only its new shards); the mix carries the
    tokens, and keeps each shard's counts by content in `scan_cache`. A tokenizer trained here is
    trained on the mix, so its tokenizing comes after it."""
    out_dir = as_path(out_dir)
    in_shards = [as_path(p) for p in in_shards]
    digests, tokens = input_digests(in_shards), None
    if config.tokenize.tokenizer:
        tokens = pretokenize(in_shards, digests, token_cache, config.tokenize, out_dir / "_tokens", executor)
    # the mixed shards' texts are read again only for text shards, or to tokenize or train a tokenizer
    keep_text = config.text_shards or tokens is None
    # carried tokens: the mix's gather writes the token shards, from the partitions it holds
    token_shards = (out_dir / "tokens", token_spec(config.tokenize)) if tokens is not None else None
    summary: dict[str, Any] = {"mix": mix(in_shards, out_dir / "mix", config.mix, executor, tokens=tokens,
                                          digests=digests, scan_cache=scan_cache, text=keep_text,
                                          token_shards=token_shards)}
    splits = {s: split_shards(out_dir / "mix", s) for s in SPLITS}
    tokenize = config.tokenize
    if not tokenize.tokenizer:
        if config.train_vocab_size <= 0:
            raise ConfigError("outputs.tokenize.tokenizer: set a tokenizers tokenizer.json, or train_vocab_size")
        path = train_tokenizer(splits["train"], out_dir / "tokenizer.json", config.train_vocab_size,
                               eos_token=tokenize.eos_token or "<|endoftext|>",
                               max_train_bytes=config.train_max_bytes or None)
        tokenize = dataclasses.replace(tokenize, tokenizer=str(path))
        summary["tokenizer_trained"] = path.name
    summary["text"], summary["tokens"], summary["megatron"] = {}, {}, {}
    if config.text_shards:
        for split, shards in splits.items():
            summary["text"][split] = write_text_shards(shards, out_dir / "text" / split, executor)
    # every split in one map (of the shards whose token shards the gather did not write: none when it could)
    summary["tokens"] = tokenize_dirs({s: (shards, out_dir / "tokens" / s) for s, shards in splits.items()},
                                      tokenize, executor)
    for split in splits:
        if config.megatron:
            summary["megatron"][split] = export_megatron(out_dir / "tokens" / split,
                                                         out_dir / "megatron" / f"{split}_text_document")
    return summary
