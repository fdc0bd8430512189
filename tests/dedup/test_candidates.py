"""Verification by exact Jaccard: the vectorized set arithmetic against a plain reference, and pairs
near the threshold decided by their true similarity, whatever their band collisions."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from dedup.candidates import gather_sets, set_jaccard, shingle_hash_sets
from dedup.lsh import exact_jaccard
from dedup.normalize import normalize_array, shingle_spans
from dedup.stage import DedupConfig, DedupStage, recall_lsh_params
from pipeline.core.schema import Doc, docs_to_table
from pipeline.core.shards import read_table, write_table
from pipeline.running.executor import SerialExecutor
from pipeline.running.runner import run_global_stage
from tests.pipeline.helpers import long_paragraphs


def _reference_sets(texts: list[str], k: int = 5) -> list[set[bytes]]:
    spans = shingle_spans(normalize_array(pa.array(texts, pa.large_string())), k)
    return [set(spans.of_doc(d)) for d in range(len(texts))]


def test_set_jaccard_equals_the_python_reference_on_real_text():
    rng = random.Random(5)
    paras = long_paragraphs(30)
    texts = paras + [" ".join(w for w in p.split() if rng.random() > 0.1) for p in paras]
    values, offsets = shingle_hash_sets(pa.array(texts, pa.large_string()), 5, "poly64")
    assert np.all(np.diff(offsets) == [len(s) for s in _reference_sets(texts)])  # distinct shingles, no merges
    a = np.array([rng.randrange(len(texts)) for _ in range(200)] + list(range(30)))
    b = np.array([rng.randrange(len(texts)) for _ in range(200)] + list(range(30, 60)))
    got = set_jaccard(gather_sets(values, offsets, a), gather_sets(values, offsets, b))
    ref = _reference_sets(texts)
    want = np.array([exact_jaccard(ref[i], ref[j]) for i, j in zip(a.tolist(), b.tolist(), strict=True)])
    assert np.allclose(got, want)
    assert 0.3 < want[-30:].mean() < 0.9  # the edited copies span the interesting range


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


@pytest.mark.parametrize("target, merged", [(0.45, False), (0.55, True)])
def test_a_colliding_pair_is_merged_only_when_its_true_jaccard_reaches_the_threshold(tmp_path, target, merged):
    a, b, j = _pair_at(target)
    assert target - 0.03 < j <= target
    write_table(docs_to_table([Doc("web/a", "web", a), Doc("web/b", "web", b)]), tmp_path / "in" / "p.parquet")
    # 128 one-row bands: at J ~ 0.5 the pair shares dozens of bands, so it is always a candidate
    cfg = DedupConfig(bands=128, rows=1, threshold=0.5)
    run_global_stage(DedupStage(cfg), [tmp_path / "in" / "p.parquet"], tmp_path / "out", tmp_path / "s",
                     SerialExecutor(False))
    kept = read_table(tmp_path / "out" / "p.parquet").column("id").to_pylist()
    assert kept == (["web/a"] if merged else ["web/a", "web/b"])


def test_recall_banding_catches_pairs_at_the_threshold():
    bands, rows = recall_lsh_params(0.5, 128, 0.98)
    assert (bands, rows) == (42, 3)
    assert 1 - (1 - 0.5**rows) ** bands >= 0.98
    assert 1 - (1 - 0.5 ** (rows + 1)) ** (128 // (rows + 1)) < 0.98  # the next, more selective one misses more
    assert DedupConfig().lsh_params() == (42, 3)
    assert DedupConfig(verify="signature").lsh_params() != (42, 3)  # datasketch's optimum there
