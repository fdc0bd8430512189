"""The rejected ledger and samples from per-shard parts: the samples are the lowest-ranked rejected
documents across all shards, and a shard seen before is answered from the cache without being read."""

from __future__ import annotations

import json

import pyarrow as pa

from pipeline.core.io import sha256_file
from pipeline.core.schema import with_rejection
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import write_table
from pipeline.versions.lineage import SAMPLES_PER_REASON, id_rank
from pipeline.versions.rejected import build_rejected_ledger, build_samples, rejected_parts


def _rejected_shards(tmp_path, shards: int, per_shard: int) -> list:
    paths = []
    for s in range(shards):
        ids = [f"cc/{s}-{i}" for i in range(per_shard)]
        table = pa.table({"id": ids, "source": ["cc"] * per_shard, "text": [f"text of {i} " * 50 for i in ids],
                          "url": [f"https://example.com/{i}" for i in ids],
                          "meta": [json.dumps({"file": f"/data/in/{s}.warc.gz", "offset": i}) for i in range(per_shard)],
                          "quality_words": list(range(per_shard))})
        reasons = ["quality:gopher_words" if i % 3 else "quality:gopher_stop_words" for i in range(per_shard)]
        path = tmp_path / f"part-{s:03d}.parquet"
        write_table(with_rejection(table, "quality", reasons), path)
        paths.append(path)
    return paths


def test_samples_are_the_lowest_ranked_across_shards_and_the_ledger_has_every_row(tmp_path):
    shards = _rejected_shards(tmp_path, 3, 40)
    parts = rejected_parts(shards, [sha256_file(p) for p in shards], ShardCache(None))
    ledger = build_rejected_ledger(parts)
    assert ledger.num_rows == 120 and ledger.column_names == ["id", "source", "stage", "reason", "url", "meta"]
    assert json.loads(ledger.column("meta")[0].as_py())["file"] == "0.warc.gz"  # the input's directory cut
    samples = build_samples(parts)
    for reason in ("quality:gopher_words", "quality:gopher_stop_words"):
        everyone = [i for i, r in zip(ledger.column("id").to_pylist(), ledger.column("reason").to_pylist(),
                                      strict=True) if r == reason]
        expected = sorted(everyone, key=id_rank)[:SAMPLES_PER_REASON]
        got = [i for i, r in zip(samples.column("id").to_pylist(), samples.column("reason").to_pylist(),
                                 strict=True) if r == reason]
        assert sorted(got, key=id_rank) == expected
    row = samples.to_pylist()[0]
    assert row["text_chars"] == len(f"text of {row['id']} " * 50) and json.loads(row["scores"])["quality_words"] >= 0


def test_a_known_shard_is_answered_from_the_cache(tmp_path):
    shards = _rejected_shards(tmp_path, 2, 10)
    shas = [sha256_file(p) for p in shards]
    cache = ShardCache(tmp_path / "cache")
    first = rejected_parts(shards, shas, cache)
    for p in shards:
        p.write_bytes(b"gone")  # only the cache can answer now
    again = rejected_parts(shards, shas, cache)
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))
    assert build_samples(again).equals(build_samples(first))
