"""Verification: pairs near the threshold decided by their true Jaccard, whatever their band collisions
(the hash sets and pair Jaccard themselves are checked in test_shingles.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dedup.lsh import exact_jaccard
from dedup.normalize import normalize_array, shingle_spans
from dedup.stage import STATS_FILE, DedupConfig, DedupStage, recall_lsh_params
from pipeline.core.schema import Doc, docs_to_table
from pipeline.core.shards import read_json, read_table, write_table
from pipeline.running.executor import SerialExecutor
from pipeline.running.runner import run_global_stage
from tests.pipeline.helpers import long_paragraphs


def _reference_sets(texts: list[str], k: int = 5) -> list[set[bytes]]:
    spans = shingle_spans(normalize_array(pa.array(texts, pa.large_string())), k)
    return [set(spans.of_doc(d)) for d in range(len(texts))]


def _pair_at(jaccard: float) -> tuple[str, str, float]:
    """Two real texts whose word-5-gram sets have exactly about `jaccard` similarity: a shared run of
    words, then each its own continuation."""
    words = " ".join(long_paragraphs(60)).split()
    n = 400
    for shared in range(n, 0, -1):
        a = words[:n]
        b = words[:shared] + words[n : n + (n - shared)]
        j = exact_jaccard(*_reference_sets([" ".join(a), " ".join(b)]))
        if j <= jaccard:
            return " ".join(a), " ".join(b), j
    raise AssertionError("no such pair")


@pytest.mark.parametrize("target, merged, exactly", [(0.45, False, 1), (0.55, True, 1), (0.9, True, 0)])
@pytest.mark.parametrize("sigmas", [6.0, float("inf")])
def test_a_colliding_pair_is_merged_only_when_its_true_jaccard_reaches_the_threshold(tmp_path, target, merged,
                                                                                     exactly, sigmas):
    a, b, j = _pair_at(target)
    assert target - 0.03 < j <= target
    write_table(docs_to_table([Doc("web/a", "web", a), Doc("web/b", "web", b)]), tmp_path / "in" / "p.parquet")
    # 128 one-row bands: at J ~ 0.5 the pair shares dozens of bands, so it is always a candidate
    cfg = DedupConfig(bands=128, rows=1, threshold=0.5, verify_sigmas=sigmas)
    run_global_stage(DedupStage(cfg), [tmp_path / "in" / "p.parquet"], tmp_path / "out", tmp_path / "s",
                     SerialExecutor(False))
    kept = read_table(tmp_path / "out" / "p.parquet")
    assert kept.column("id").to_pylist() == (["web/a"] if merged else ["web/a", "web/b"])
    # near the threshold the shingle sets decide; far from it the signature estimate does (unless sigmas = inf)
    stats = read_json(tmp_path / "out" / STATS_FILE)
    assert stats["verified_exactly"] == (1 if sigmas == float("inf") else exactly)
    if merged:
        sim = kept.column("dup_similarity")[0].as_py()
        assert sim == pytest.approx(j, abs=1e-6) if stats["verified_exactly"] else abs(sim - j) < 0.15


def test_recall_banding_catches_pairs_at_the_threshold():
    bands, rows = recall_lsh_params(0.5, 128, 0.98)
    assert (bands, rows) == (42, 3)
    assert 1 - (1 - 0.5**rows) ** bands >= 0.98
    assert 1 - (1 - 0.5 ** (rows + 1)) ** (128 // (rows + 1)) < 0.98  # the next, more selective one misses more
    assert DedupConfig().lsh_params() == (42, 3)
    assert DedupConfig(verify="signature").lsh_params() != (42, 3)  # datasketch's optimum there
