"""Tokenizing real doc shards: lossless round trip, shard splitting, determinism across task layouts."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.core.schema import DOC_SCHEMA
from pipeline.core.shards import ShardError, write_table
from pipeline.outputs.reader import TokenDataset, TokenShard
from pipeline.outputs.tokenize import TokenizeConfig, load_tokenizer, tokenize_shards
from pipeline.outputs.training import train_tokenizer
from pipeline.running.executor import SerialExecutor
from pipeline.versions.manifest import sha256_file
from tests.conftest import data_path
from tests.pipeline.corpus_text import book_docs, shard_order, wikipedia_docs, write_doc_shards

SERIAL = SerialExecutor(progress=False)


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return book_docs(max_docs_per_book=12) + wikipedia_docs(max_pages=14)


@pytest.fixture(scope="module")
def neox() -> str:
    return str(data_path("tokenizers", "gpt-neox-20b.tokenizer.json"))


def _files(d: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(d.iterdir()) if p.is_file()}


def test_round_trip_gpt_neox_on_real_text(tmp_path, docs, neox):
    shards = write_doc_shards(tmp_path / "docs", docs, 3)
    config = TokenizeConfig(tokenizer=neox, shard_max_tokens=40_000, frame_tokens=4096)
    summary = tokenize_shards(shards, tmp_path / "tok", config, SERIAL)

    assert summary["docs"] == len(docs) and summary["dtype"] == "uint16" and summary["eos_id"] == 0
    assert summary["sources"]["books"]["docs"] == 36 and summary["sources"]["wikipedia"]["docs"] == 14
    assert len(summary["shards"]) > 3  # 40k-token shards force several outputs per input
    for s in summary["shards"]:
        path = tmp_path / "tok" / s["path"]
        assert s["sha256"] == sha256_file(path) and s["bytes"] == path.stat().st_size
        shard = TokenShard(path, verify=True)
        assert shard.num_docs == s["docs"] and shard.num_tokens == s["tokens"]
        assert shard.num_tokens <= 40_000 or shard.num_docs == 1  # cut at document boundaries
    assert json.loads((tmp_path / "tok" / "index.json").read_text())["tokens"] == summary["tokens"]

    tok = load_tokenizer(neox, "<|endoftext|>").tokenizer
    ds = TokenDataset(tmp_path / "tok")
    expected = shard_order(docs, 3)
    assert len(ds) == len(expected)
    for i, doc in enumerate(expected):
        assert ds.doc_id(i) == doc["id"]
        with_eos = ds.document(i, with_eos=True)
        assert with_eos[-1] == 0 and 0 not in with_eos[:-1].tolist()
        # GPT-NeoX's tokenizer NFC-normalizes; otherwise decoding gives the text back exactly
        assert tok.decode(ds.document(i).tolist()) == unicodedata.normalize("NFC", doc["text"])
    assert ds.num_tokens == summary["tokens"]


def test_ray_output_is_byte_identical_across_runs_and_task_layouts(tmp_path, docs, neox, ray_executor):
    shards = write_doc_shards(tmp_path / "docs", docs, 5)
    base = TokenizeConfig(tokenizer=neox, shard_max_tokens=30_000, frame_tokens=2048)
    runs = {
        "ray-1": (ray_executor, base, shards),
        "ray-1-again": (ray_executor, base, shards),
        "ray-3-reversed": (ray_executor, TokenizeConfig(**{**base.__dict__, "shards_per_task": 3, "batch_docs": 7}),
                           list(reversed(shards))),
        "serial-5": (SERIAL, TokenizeConfig(**{**base.__dict__, "shards_per_task": 5}), shards),
    }
    outputs = {}
    for name, (executor, config, inputs) in runs.items():
        tokenize_shards(inputs, tmp_path / name, config, executor)
        outputs[name] = _files(tmp_path / name)
    reference = outputs["ray-1"]
    assert len([n for n in reference if n.endswith(".tokens")]) >= 5
    for name, files in outputs.items():
        assert files == reference, name


def test_rerun_reuses_finished_shards_and_recomputes_on_config_change(tmp_path, docs, neox):
    shards = write_doc_shards(tmp_path / "docs", docs[:20], 2)
    config = TokenizeConfig(tokenizer=neox)
    out = tmp_path / "tok"
    tokenize_shards(shards, out, config, SERIAL)
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tokens")}
    tokenize_shards(shards, out, TokenizeConfig(tokenizer=neox, batch_docs=3), SERIAL)  # same output: reused
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tokens")} == first
    summary = tokenize_shards(shards, out, TokenizeConfig(tokenizer=neox, frame_tokens=1000), SERIAL)
    assert all(TokenShard(out / s["path"]).meta["frame_tokens"] == 1000 for s in summary["shards"])


def test_trained_tokenizer_is_deterministic_and_lossless(tmp_path, docs):
    shards = write_doc_shards(tmp_path / "docs", docs, 2)
    a = train_tokenizer(shards, tmp_path / "a.json", vocab_size=800)
    b = train_tokenizer(list(reversed(shards)), tmp_path / "b.json", vocab_size=800)
    assert a.read_bytes() == b.read_bytes()
    # no normalizer: even decomposed accents and odd whitespace come back byte for byte
    tricky = {"id": "t/1", "source": "t", "text": "Cafe\u0301 ﬁ\t\x00 \r\n日本語  ", "url": None, "meta": "{}"}
    write_table(pa.Table.from_pylist([tricky], schema=DOC_SCHEMA), tmp_path / "docs" / "zz.parquet")
    summary = tokenize_shards([*shards, tmp_path / "docs" / "zz.parquet"], tmp_path / "tok",
                              TokenizeConfig(tokenizer=str(a)), SERIAL)
    assert summary["vocab_size"] == 800 and summary["eos_id"] == 0
    tok = load_tokenizer(a, "<|endoftext|>").tokenizer
    ds = TokenDataset(tmp_path / "tok")
    texts = [d["text"] for d in shard_order(docs, 2)] + [tricky["text"]]
    assert [tok.decode(ds.document(i).tolist()) for i in range(len(ds))] == texts


def test_vocab_over_65536_uses_uint32(tmp_path, docs):
    from tokenizers import Tokenizer

    shards = write_doc_shards(tmp_path / "docs", docs[:6], 1)
    small = train_tokenizer(shards, tmp_path / "small.json", vocab_size=400)
    tok = Tokenizer.from_file(str(small))
    tok.add_tokens([f"<extra_{i}>" for i in range(70_000)])
    tok.save(str(tmp_path / "big.json"))
    text = "A word <extra_69999> and <extra_3>."
    write_table(pa.Table.from_pylist([{"id": "x/1", "source": "x", "text": text, "url": None, "meta": "{}"}],
                                     schema=DOC_SCHEMA), tmp_path / "big" / "a.parquet")
    summary = tokenize_shards([tmp_path / "big" / "a.parquet"], tmp_path / "tok",
                              TokenizeConfig(tokenizer=str(tmp_path / "big.json")), SERIAL)
    assert summary["dtype"] == "uint32"
    ids = TokenDataset(tmp_path / "tok").document(0)
    assert ids.dtype.itemsize == 4 and tok.token_to_id("<extra_69999>") in ids.tolist()
    assert tok.decode(ids.tolist(), skip_special_tokens=False).replace(" ", "") == text.replace(" ", "")


def test_bad_inputs_name_the_file(tmp_path, docs, neox):
    shards = write_doc_shards(tmp_path / "docs", docs[:4], 1)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        tokenize_shards(shards, tmp_path / "t1", TokenizeConfig(tokenizer=str(tmp_path / "nope.json")), SERIAL)
    with pytest.raises(ValueError, match="EOS token '<eos>' is not in the vocabulary"):
        tokenize_shards(shards, tmp_path / "t2", TokenizeConfig(tokenizer=neox, eos_token="<eos>"), SERIAL)
    broken = tmp_path / "docs" / "broken.parquet"
    broken.write_bytes(shards[0].read_bytes()[:300])
    with pytest.raises(ShardError, match="broken.parquet"):
        tokenize_shards([broken], tmp_path / "t3", TokenizeConfig(tokenizer=neox), SERIAL)
    assert not list((tmp_path / "t3").glob("*.tokens")) and not list((tmp_path / "t3").glob(".*.tmp"))
