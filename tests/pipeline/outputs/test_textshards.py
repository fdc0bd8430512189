"""Text shards in the Pile's lm_dataformat layout, from real documents."""

from __future__ import annotations

import json

import pytest
import zstandard

from pipeline.core.shards import ShardError
from pipeline.outputs.textshards import read_text_shard, write_text_shards
from pipeline.running.executor import SerialExecutor
from pipeline.versions.manifest import sha256_file
from tests.pipeline.corpus_text import book_docs, shard_order, wikipedia_docs, write_doc_shards


def test_jsonl_zst_in_lm_dataformat_layout(tmp_path, ray_executor):
    docs = book_docs(max_docs_per_book=5) + wikipedia_docs(max_pages=12)
    shards = write_doc_shards(tmp_path / "docs", docs, 3)
    index = write_text_shards(shards, tmp_path / "text", ray_executor)
    assert [s["path"] for s in index["shards"]] == ["part-000.jsonl.zst", "part-001.jsonl.zst", "part-002.jsonl.zst"]
    assert index["docs"] == len(docs)

    records = [r for s in index["shards"] for r in read_text_shard(tmp_path / "text" / s["path"])]
    for rec, doc in zip(records, shard_order(docs, 3), strict=True):
        assert list(rec) == ["text", "meta"] and rec["text"] == doc["text"]
        assert rec["meta"]["pile_set_name"] == doc["source"] and rec["meta"]["id"] == doc["id"]
        assert rec["meta"]["title"] == json.loads(doc["meta"])["title"]
        assert rec["meta"].get("url") == doc["url"]
    # plain zstd + one JSON object a line: what `zstd -dc | jq` and lm_dataformat's Reader expect
    with open(tmp_path / "text" / "part-000.jsonl.zst", "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f).read()
    lines = raw.decode("utf-8").splitlines()
    assert len(lines) == index["shards"][0]["docs"] and json.loads(lines[0])["text"] == records[0]["text"]
    assert any("Việt" in r["text"] or "ố" in r["text"] for r in records)  # UTF-8 kept

    again = write_text_shards(shards, tmp_path / "text2", SerialExecutor(progress=False))
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in index["shards"]]
    assert index["shards"][1]["sha256"] == sha256_file(tmp_path / "text" / "part-001.jsonl.zst")


def test_unreadable_shard_is_named(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(ShardError, match="bad.parquet"):
        write_text_shards([bad], tmp_path / "text", SerialExecutor(progress=False))
    assert not list((tmp_path / "text").glob(".*.tmp"))
