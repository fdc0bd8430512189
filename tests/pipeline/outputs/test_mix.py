"""Pile-style mixing of real documents: epochs, global shuffle, holdout with text-hash removal, determinism."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pytest

from pipeline.core.config import ConfigError
from pipeline.core.shards import read_table
from pipeline.outputs.gather import source_counts
from pipeline.outputs.mix import MixConfig, MixError, copies_of, mix, split_of, split_shards
from pipeline.running.executor import SerialExecutor
from pipeline.versions.manifest import sha256_file
from tests.pipeline.corpus_text import book_docs, wikipedia_docs, write_doc_shards

SERIAL = SerialExecutor(progress=False)


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    docs = book_docs(paragraphs_per_doc=4, max_docs_per_book=60) + wikipedia_docs(max_pages=30, max_chars=3000)
    # a training document that repeats a holdout document's text must leave train
    config = MixConfig(seed=3, validation_fraction=0.1, test_fraction=0.1)
    holdout = next(d for d in docs if split_of(3, d["id"], config) != "train")
    docs.append({**holdout, "id": "books/copy-of-holdout"})
    assert split_of(3, "books/copy-of-holdout", config) == "train"
    return docs


def _config(**kw) -> MixConfig:
    return MixConfig(**{"seed": 3, "validation_fraction": 0.1, "test_fraction": 0.1, "shard_max_bytes": 40_000,
                        "epochs": {"books": 0.6, "wikipedia": 2.5}, **kw})


def _rows(out, split):
    return [r for p in split_shards(out, split) for r in read_table(p).to_pylist()]


def test_epochs_holdout_and_accounting(tmp_path, docs):
    shards = write_doc_shards(tmp_path / "docs", docs, 4)
    out = tmp_path / "mix"
    summary = mix(shards, out, _config(), SERIAL)
    config = _config()

    train, val, test = _rows(out, "train"), _rows(out, "validation"), _rows(out, "test")
    holdout_ids = {r["id"] for r in val + test}
    assert holdout_ids and not holdout_ids & {r["id"] for r in train}
    assert all(split_of(3, r["id"], config) == "validation" for r in val)
    holdout_texts = {r["text"] for r in val + test}
    assert not any(r["text"] in holdout_texts for r in train)
    rejected = read_table(out / "rejected" / "part-000.parquet").to_pylist() + [
        r for p in sorted((out / "rejected").glob("part-00[123].parquet")) for r in read_table(p).to_pylist()]
    reasons = Counter(r["reason"] for r in rejected)
    assert "books/copy-of-holdout" in {r["id"] for r in rejected if r["reason"] == "mix:holdout-dup"}
    assert reasons["mix:subsampled"] > 10  # books at 0.6 epochs: about 40% of them get no copy
    # the copies of each training document follow its epochs: books 0 or 1, wikipedia 2 or 3
    copies = Counter(r["id"] for r in train)
    for doc in docs:
        if doc["id"] in copies:
            assert copies[doc["id"]] == copies_of(3, doc["id"], summary["epochs"][doc["source"]])
    assert {n for i, n in copies.items() if i.startswith("wikipedia/")} == {2, 3}
    assert {n for i, n in copies.items() if i.startswith("books/")} == {1}
    assert {r["source"] for r in rejected if r["reason"] == "mix:subsampled"} == {"books"}
    assert summary["in_docs"] == len(docs)
    assert len(docs) == len(holdout_ids) + len(copies) + len(rejected)
    assert summary["rejected"] == dict(reasons)
    assert summary["splits"]["train"]["docs"] == len(train)


def test_shuffle_is_global_and_independent_of_sharding_and_workers(tmp_path, docs, ray_executor):
    a = mix(write_doc_shards(tmp_path / "docs2", docs, 2), tmp_path / "a", _config(shard_max_bytes=150_000), SERIAL)
    b = mix(write_doc_shards(tmp_path / "docs5", docs, 5), tmp_path / "b", _config(shard_max_bytes=150_000),
            ray_executor)
    # one worker: 5 shards scattered in 4 runs, one of them of two shards
    runs = mix(write_doc_shards(tmp_path / "docs5b", docs, 5), tmp_path / "runs", _config(shard_max_bytes=150_000),
               SERIAL)
    for split in ("train", "validation", "test"):
        assert ([s["sha256"] for s in a["splits"][split]["shards"]] == [s["sha256"] for s in b["splits"][split]["shards"]]
                == [s["sha256"] for s in runs["splits"][split]["shards"]])
    assert len(a["splits"]["train"]["shards"]) >= 3  # partitioned by key range
    for shard in split_shards(tmp_path / "a", "train"):
        rows = read_table(shard).to_pylist()
        sources = [r["source"] for r in rows]
        # sources interleave within a shard: a shuffle across inputs, not a concatenation
        assert len(set(sources)) == 2 and sum(x != y for x, y in zip(sources, sources[1:], strict=False)) > 5
        # and the copies of one document are spread out, not adjacent
        ids = [r["id"] for r in rows]
        assert sum(x == y for x, y in zip(ids, ids[1:], strict=False)) <= 2
    # a different seed gives another order
    c = mix(write_doc_shards(tmp_path / "docs2", docs, 2), tmp_path / "c", _config(seed=4, shard_max_bytes=150_000),
            SERIAL)
    assert c["splits"]["train"]["shards"][0]["sha256"] != a["splits"]["train"]["shards"][0]["sha256"]


def test_finished_mix_is_reused(tmp_path, docs):
    shards = write_doc_shards(tmp_path / "docs", docs[:40], 2)
    first = mix(shards, tmp_path / "m", _config(), SERIAL)
    stamp = (tmp_path / "m" / "_mix.json").stat().st_mtime_ns
    assert mix(shards, tmp_path / "m", _config(), SERIAL) == first
    assert (tmp_path / "m" / "_mix.json").stat().st_mtime_ns == stamp
    assert not (tmp_path / "m" / "_scratch").exists()
    for s in first["splits"]["train"]["shards"]:
        assert sha256_file(tmp_path / "m" / s["path"]) == s["sha256"]


def test_weights_set_epochs_from_source_sizes(tmp_path, docs):
    shards = write_doc_shards(tmp_path / "docs", docs, 2)
    summary = mix(shards, tmp_path / "w", _config(epochs={}, weights={"books": 3, "wikipedia": 1}), SERIAL)
    train_in = summary["in_sources"]["train"]
    total = sum(s["text_bytes"] for s in train_in.values())
    for source, share in (("books", 0.75), ("wikipedia", 0.25)):
        assert summary["epochs"][source] == pytest.approx(share * total / train_in[source]["text_bytes"])
    with pytest.raises(MixError, match="no weight for source.*wikipedia"):
        mix(shards, tmp_path / "w2", _config(epochs={}, weights={"books": 1}), SERIAL)
    with pytest.raises(ConfigError, match="either epochs or weights"):  # when the config is made
        _config(weights={"books": 1})
    with pytest.raises(ConfigError, match="validation_fraction \\+ test_fraction must be < 1"):
        _config(validation_fraction=0.6, test_fraction=0.5)
    assert json.loads((tmp_path / "w" / "_mix.json").read_text())["epochs"] == summary["epochs"]


def test_scatter_runs_hold_bounded_text_and_keep_every_worker_busy():
    from pipeline.outputs.mix import scatter_groups

    assert scatter_groups([], 2) == []
    assert scatter_groups([10] * 3, 2, max_bytes=20) == [range(0, 1), range(1, 2), range(2, 3)]  # fewer shards than 4 per worker
    runs = scatter_groups([10] * 68, 2, max_bytes=100)
    assert len(runs) == 8 and [i for r in runs for i in r] == list(range(68))
    small = scatter_groups([10] * 68, 2)  # all the text fits in one task: one per worker
    assert len(small) == 2 and [i for r in small for i in r] == list(range(68))
    big = scatter_groups([30] * 100, 1, max_bytes=100)  # 3,000 bytes in runs of at most ~100
    assert len(big) == 30 and max(sum(30 for _ in r) for r in big) <= 120


def test_source_counts_are_documents_and_utf8_bytes_per_source():
    texts = ["naïve café", "", "日本語のテキスト", "plain", "x" * 1000, "ü"]
    sources = ["wiki", "cc", "wiki", "books", "cc", "wiki"]
    chunked = pa.Table.from_batches([pa.record_batch({"source": sources[:2], "text": texts[:2]}),
                                     pa.record_batch({"source": sources[2:], "text": texts[2:]})])
    expected: dict[str, dict[str, int]] = {}
    for source, text in zip(sources, texts, strict=True):
        c = expected.setdefault(source, {"docs": 0, "text_bytes": 0})
        c["docs"] += 1
        c["text_bytes"] += len(text.encode("utf-8"))
    assert source_counts(chunked) == expected
    assert list(source_counts(chunked)) == ["wiki", "cc", "books"]  # first appearance, as before
    assert source_counts(chunked.slice(0, 0)) == {}


def test_source_counts_do_not_import_pandas(tmp_path):
    """numpy views of Arrow arrays import pandas (~0.4 s a shuffle task); the counts stay in Arrow."""
    import subprocess
    import sys

    import pyarrow.parquet as pq

    pq.write_table(pa.table({"source": ["a", "b", "a"], "text": ["x", "yy", "zzz"]}), tmp_path / "t.parquet")
    code = ("import sys; from pipeline.core.io import read_table; from pipeline.outputs.gather import source_counts; "
            f"c = source_counts(read_table({str(tmp_path / 't.parquet')!r})); "
            "assert c == {'a': {'docs': 2, 'text_bytes': 4}, 'b': {'docs': 1, 'text_bytes': 2}}, c; "
            "assert 'pandas' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_text_hashes_from_arrow_buffers_equal_text_hash():
    from pipeline.outputs.mix import _TextHashes, text_hash

    texts = ["", "café ﬁ 日本語", "a\x00b", "plain"]
    for column in (pa.array(texts, pa.string()), pa.array(texts, pa.large_string()),
                   pa.chunked_array([pa.array(texts[:1]), pa.array(texts[1:])]), pa.array(["x", *texts]).slice(1)):
        hashes = _TextHashes(column)
        assert [hashes[i] for i in range(len(texts))] == [text_hash(t) for t in texts]
    assert _TextHashes(pa.array(["", ""]))[1] == text_hash("")


def test_rejected_shards_are_write_table_bytes_with_or_without_rows(tmp_path, docs):
    from pipeline.core.schema import with_rejection
    from pipeline.core.shards import write_table
    from pipeline.outputs.mix import _write_rejected

    table = pa.Table.from_pylist(docs[:5])
    for name, rows, reasons in (("none", [], []), ("none-again", [], []), ("two", [1, 3], ["mix:a", "mix:b"])):
        rejected = with_rejection(table.take(pa.array(rows, pa.int64())), "mix", reasons)
        _write_rejected(rejected, tmp_path / f"{name}.parquet")
        write_table(rejected, tmp_path / f"{name}-expected.parquet")
        assert (tmp_path / f"{name}.parquet").read_bytes() == (tmp_path / f"{name}-expected.parquet").read_bytes()
