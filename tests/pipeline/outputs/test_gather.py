"""The mix's gather writes the token shards of carried tokens: byte for byte what tokenizing the mixed
shards writes, with no tokenize pass (no map) after the mix; splits tokenized otherwise share one map."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.core.config import from_mapping
from pipeline.core.shards import read_table
from pipeline.outputs.columns import TOKENS_COLUMN
from pipeline.outputs.mix import SPLITS, split_shards
from pipeline.outputs.reader import TokenDataset
from pipeline.outputs.tokenize import (
    TokenizeConfig,
    carried_tokens,
    token_spec,
    tokenize_one,
    tokenize_shards,
    write_carried_tokens,
)
from pipeline.outputs.writer import OutputsConfig, write_outputs
from pipeline.running.executor import SerialExecutor
from tests.conftest import data_path
from tests.pipeline.corpus_text import book_docs, wikipedia_docs, write_doc_shards


class CountingExecutor(SerialExecutor):
    """A serial executor that records each map: (desc, number of items)."""

    def __init__(self) -> None:
        super().__init__(progress=False)
        self.maps: list[tuple[str, int]] = []

    def map(self, fn, items, *, desc: str = "", **kw):
        self.maps.append((desc or fn.__name__, len(items)))
        return super().map(fn, items, desc=desc, **kw)


@pytest.fixture(scope="module")
def neox() -> str:
    return str(data_path("tokenizers", "gpt-neox-20b.tokenizer.json"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    docs = book_docs(paragraphs_per_doc=4, max_docs_per_book=12) + wikipedia_docs(max_pages=12, max_chars=3000)
    return write_doc_shards(tmp_path_factory.mktemp("docs"), docs, 4)


def _tokenize_config(neox: str) -> dict:
    # small shards and frames: several token shards per mixed shard, frames cut inside documents
    return {"tokenizer": neox, "shard_max_tokens": 6000, "frame_tokens": 1000, "batch_docs": 7}


def _files(d) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_gather_writes_the_token_shards_of_tokenizing_the_mixed_shards(tmp_path, shards, neox):
    config = from_mapping(OutputsConfig, {
        "mix": {"seed": 3, "validation_fraction": 0.1, "test_fraction": 0.1, "shard_max_bytes": 60_000,
                "epochs": {"wikipedia": 1.5}},
        "tokenize": _tokenize_config(neox), "text_shards": False}, "test")
    executor = CountingExecutor()
    summary = write_outputs(shards, tmp_path / "out", config, executor, token_cache=tmp_path / "cache")
    out = tmp_path / "out"
    # after the mix, nothing tokenizes: the gather wrote every split's token shards and records
    assert [d for d, _ in executor.maps if d == "tokenize"] == []
    assert [d for d, _ in executor.maps][-1] == "mix: shuffle"
    tok = TokenizeConfig(**_tokenize_config(neox))
    for split in SPLITS:
        mixed = split_shards(out / "mix", split)
        assert mixed and all(TOKENS_COLUMN in read_table(p).schema.names for p in mixed)
        # the old path, explicitly: tokenize_one copies each mixed shard's carried tokens
        for p in mixed:
            record = tokenize_one(p, tmp_path / "explicit" / split, tok)
            kept = json.loads((out / "tokens" / split / "_tasks" / f"{p.stem}.json").read_text())
            assert {k: v for k, v in kept.items() if k != "config_key"} == json.loads(json.dumps(record))
        assert len(list((out / "tokens" / split).glob("*.tokens"))) >= (2 if split == "train" else 1)
        written = {n: b for n, b in _files(out / "tokens" / split).items() if n.endswith(".tokens")}
        assert written == _files(tmp_path / "explicit" / split)
        # and the whole directory (index.json, task records) is what tokenize_shards writes
        direct = tokenize_shards(mixed, tmp_path / "direct" / split, tok, SerialExecutor(progress=False))
        assert _files(tmp_path / "direct" / split) == _files(out / "tokens" / split)
        assert summary["tokens"][split] == direct
        assert TokenDataset(out / "tokens" / split, verify=True).num_tokens == direct["tokens"] > 0


def test_finished_records_are_reused_and_missing_ones_tokenized_in_one_map(tmp_path, shards, neox):
    """A rerun maps nothing while every record is there; splits missing theirs are tokenized in one map
    (it was one per split), from the mixed shards, to the same bytes."""
    config = from_mapping(OutputsConfig, {"mix": {"seed": 1, "validation_fraction": 0.2, "test_fraction": 0.2},
                                          "tokenize": _tokenize_config(neox), "text_shards": False}, "test")
    out = tmp_path / "out"
    write_outputs(shards, out, config, SerialExecutor(progress=False))
    before = _files(out / "tokens")
    stamps = {p: p.stat().st_mtime_ns for p in (out / "tokens").rglob("*.tokens")}
    executor = CountingExecutor()
    tok = TokenizeConfig(**_tokenize_config(neox))
    tokenize_shards(split_shards(out / "mix", "train"), out / "tokens" / "train", tok, executor)
    assert executor.maps == []
    assert {p: p.stat().st_mtime_ns for p in (out / "tokens").rglob("*.tokens")} == stamps
    for split in ("validation", "test"):  # as if their gathers had not written them
        for p in (out / "tokens" / split / "_tasks").glob("*.json"):
            p.unlink()
    executor = CountingExecutor()
    write_outputs(shards, out, config, executor)  # the mix is reused (finished): no gather
    missing = len(split_shards(out / "mix", "validation")) + len(split_shards(out / "mix", "test"))
    assert [m for m in executor.maps if m[0] == "tokenize"] == [("tokenize", missing)]
    assert "mix: shuffle" not in [d for d, _ in executor.maps]
    assert _files(out / "tokens") == before


def test_trained_tokenizer_tokenizes_all_splits_in_one_map(tmp_path, shards):
    config = from_mapping(OutputsConfig, {"mix": {"seed": 1, "validation_fraction": 0.2, "test_fraction": 0.2},
                                          "train_vocab_size": 400, "text_shards": False}, "test")
    executor = CountingExecutor()
    summary = write_outputs(shards, tmp_path / "out", config, executor)
    n = sum(len(split_shards(tmp_path / "out" / "mix", s)) for s in SPLITS)
    assert [m for m in executor.maps if m[0] == "tokenize"] == [("tokenize", n)]
    for split in SPLITS:
        assert TokenDataset(tmp_path / "out" / "tokens" / split, verify=True).num_tokens == \
            summary["tokens"][split]["tokens"] > 0


def test_carried_tokens_reads_the_arrow_buffers_of_any_layout():
    blobs = [pa.array(list(range(i, i + n)), pa.uint32()).buffers()[1].to_pybytes()[:4 * n]
             for i, n in enumerate([3, 1, 5, 2, 4, 6])]
    column = pa.chunked_array([pa.array(blobs[:2], pa.binary()), pa.array(blobs[2:], pa.binary())]).slice(1, 4)
    flat, lengths = carried_tokens(column)
    assert flat.tobytes() == b"".join(blobs[1:5]) and lengths.tolist() == [1, 5, 2, 4]
    flat, lengths = carried_tokens(pa.array(blobs, pa.large_binary()).slice(4))
    assert flat.tobytes() == b"".join(blobs[4:]) and lengths.tolist() == [4, 6]
    assert carried_tokens(pa.array([], pa.large_binary()))[0].size == 0
    with pytest.raises(ValueError, match="multiple of 4"):
        carried_tokens(pa.array([b"abc"], pa.large_binary()))


def test_write_carried_tokens_of_an_empty_table_writes_no_shard(tmp_path, neox):
    spec = token_spec(TokenizeConfig(tokenizer=neox))
    table = pa.table({"id": pa.array([], pa.string()), "source": pa.array([], pa.string()),
                      TOKENS_COLUMN: pa.array([], pa.large_binary())})
    record = write_carried_tokens(table, "train-00000.parquet", tmp_path, spec)
    assert record["outputs"] == [] and record["input"] == "train-00000.parquet"
    assert not list(tmp_path.glob("*.tokens"))
