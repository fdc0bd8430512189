"""Exact-verification verdicts kept by content (dedup/verdicts.py): a grown corpus compares by shingle
sets only the pairs with a document of a new shard, and its outputs are those of a build from scratch."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pytest

from dedup.stage import STATS_FILE, DedupConfig, DedupStage
from pipeline.core.schema import Doc, docs_to_table
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import read_json, read_table, write_table
from pipeline.running.executor import SerialExecutor
from tests.pipeline.helpers import long_paragraphs

# every candidate verified by its shingle sets (no estimate decides alone); one-row bands make the
# edited copies (Jaccard ~0.2-0.8) candidates of their originals
CONFIG = {"bands": 128, "rows": 1, "verify_sigmas": float("inf")}


def _edit(text: str, every: int, rng: random.Random) -> str:
    words = text.split()
    for i in range(rng.randrange(every), len(words), every):
        words[i] = f"xq{rng.randrange(10**6)}"
    return " ".join(words)


def _docs(paras: list[str], tag: str, rng: random.Random) -> list[Doc]:
    """Each paragraph and two edited copies: one a near-duplicate, one below the threshold."""
    out = []
    for i, p in enumerate(paras):
        out += [Doc(f"web/{tag}-{i:03d}", "web", p), Doc(f"web/{tag}-{i:03d}-near", "web", _edit(p, 25, rng)),
                Doc(f"web/{tag}-{i:03d}-mid", "web", _edit(p, 7, rng))]
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[list[Path], Path]:
    """Five shards of an earlier build, and a new one sorting between them (later shards' positions
    change) whose documents duplicate old ones and each other."""
    rng = random.Random(5)
    paras = long_paragraphs(50, min_words=60)
    old_docs = _docs(paras[:40], "old", rng)
    rng.shuffle(old_docs)
    d = tmp_path_factory.mktemp("in")
    for k in range(5):
        write_table(docs_to_table(old_docs[k::5]), d / f"part-{k}.parquet")
    new_docs = _docs(paras[40:], "new", rng) + [Doc(f"web/copy-{i:03d}", "web", _edit(paras[i], 6, rng))
                                                for i in range(0, 40, 4)]
    write_table(docs_to_table(new_docs), d / "part-2a.parquet")
    return sorted(d.glob("part-?.parquet")), d / "part-2a.parquet"


def _run(shards: list[Path], tmp_path: Path, name: str, cache: Path | None, **config) -> dict:
    """The stage itself (its scratch kept): stats, with the pairs compared by shingle sets as nodes."""
    stage = DedupStage(DedupConfig(**{**CONFIG, **config}))
    scratch = tmp_path / f"scratch-{name}"
    stage.run(shards, tmp_path / name, scratch, SerialExecutor(progress=False), ShardCache(cache))
    compared = [read_table(f) for f in sorted((scratch / "dedup" / "unsure2").rglob("*.parquet"))]
    pairs = pa.concat_tables(compared) if compared else None
    stats = read_json(tmp_path / name / STATS_FILE)
    stats["compared"] = [] if pairs is None else list(zip(pairs.column("u").to_pylist(),
                                                          pairs.column("v").to_pylist(), strict=True))
    return stats


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def test_a_grown_corpus_compares_only_pairs_with_a_new_document(shards, tmp_path):
    old, new = shards
    cache = tmp_path / "cache"
    first = _run(old, tmp_path, "first", cache)
    assert first["verified_exactly"] == len(first["compared"]) > 0 and first["verdicts_reused"] == 0
    grown_shards = sorted([*old, new], key=lambda p: p.name)
    new_shard = grown_shards.index(new)
    fresh = _run(grown_shards, tmp_path, "fresh", None)
    grown = _run(grown_shards, tmp_path, "grown", cache)
    # every old pair's verdict came from the cache; each pair compared has a document of the new shard
    assert grown["verdicts_reused"] == first["verified_exactly"]
    assert len(grown["compared"]) == grown["verified_exactly"] - first["verified_exactly"] > 0
    assert all(new_shard in (u >> 32, v >> 32) for u, v in grown["compared"])
    # the same outputs and counts as a build from scratch
    assert _outputs(tmp_path / "grown") == _outputs(tmp_path / "fresh")
    reuse = ("verdicts_reused", "signatures_reused", "signatures_computed", "shards_rewritten", "compared")
    assert {k: x for k, x in grown.items() if k not in reuse} == {k: x for k, x in fresh.items() if k not in reuse}
    assert fresh["near_edges"] > first["near_edges"]  # the new shard's copies are edges too
    # again: nothing left to compare, the same bytes
    again = _run(grown_shards, tmp_path, "again", cache)
    assert (again["compared"], again["verdicts_reused"]) == ([], grown["verified_exactly"])
    assert _outputs(tmp_path / "again") == _outputs(tmp_path / "fresh")


def test_verdicts_of_another_config_are_not_used(shards, tmp_path):
    old, _ = shards
    cache = tmp_path / "cache"
    _run(old, tmp_path, "first", cache)
    for name, config in (("threshold", {"threshold": 0.6}), ("shingles", {"shingle_size": 4})):
        other = _run(old, tmp_path, name, cache, **config)
        assert other["verdicts_reused"] == 0 and len(other["compared"]) == other["verified_exactly"] > 0, name
        _run(old, tmp_path, f"{name}-fresh", None, **config)
        assert _outputs(tmp_path / name) == _outputs(tmp_path / f"{name}-fresh"), name
    # the first config's verdicts are still there and still used
    assert _run(old, tmp_path, "same", cache)["compared"] == []
