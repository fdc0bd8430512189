"""Train a byte-level BPE tokenizer on doc shards' text (the tokenizer a build trains when none is given)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from pipeline.core.io import AnyPath, as_path, write_bytes_atomic
from pipeline.core.shards import ShardError
from pipeline.outputs.textshards import open_parquet

MIN_BPE_VOCAB = 256 + 1  # a byte-level BPE holds every byte, plus the EOS token


def _texts(path: AnyPath, batch_docs: int) -> Iterator[list[str]]:
    try:
        with open_parquet(path) as pf:
            for batch in pf.iter_batches(batch_size=batch_docs, columns=["text"]):
                yield batch.column(0).to_pylist()
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: cannot read Parquet shard: {exc}") from exc


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
