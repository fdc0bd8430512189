"""The Pile/GPT-3 quality classifier trained and used end to end on real text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from filters.classifier import (
    ClassifierTrainConfig,
    QualityClassifier,
    file_sha256,
    metadata_path,
    pareto_keep,
    pile_preprocess,
    train_quality_classifier,
)
from pipeline.core.schema import docs_to_table
from pipeline.core.shards import write_table
from tests.filters.realdata import crawled_docs, curated_docs


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    pos, neg = curated_docs(), crawled_docs()
    write_table(docs_to_table(pos[: len(pos) // 2]), d / "pos-a.parquet")
    write_table(docs_to_table(pos[len(pos) // 2 :]), d / "pos-b.parquet")
    write_table(docs_to_table(neg), d / "neg.parquet")
    return [d / "pos-a.parquet", d / "pos-b.parquet"], [d / "neg.parquet"], d


@pytest.fixture(scope="module")
def trained(shards):
    pos, neg, d = shards
    out = d / "model" / "quality.bin"
    meta = train_quality_classifier(pos, neg, out, ClassifierTrainConfig(seed=3, heldout_frac=0.25, epoch=25, lr=1.0))
    return out, meta


def test_pile_preprocessing():
    text = "a\nb\r\n" + "x" * 5000
    p = pile_preprocess(text)
    assert "\n" not in p and "\r" not in p and len(p) == 1500
    assert p == text.replace("\n", " ").replace("\r", " ")[:4000][-1500:]


def test_training_writes_model_and_metadata(trained):
    out, meta = trained
    assert out.is_file()
    on_disk = json.loads(metadata_path(out).read_text())
    assert on_disk == meta
    assert meta["config"]["seed"] == 3 and meta["config"]["word_ngrams"] == 2
    assert set(meta["positive"]["sources"]) == {"wikipedia", "books"}
    assert set(meta["negative"]["sources"]) == {"cc"}
    assert meta["positive"]["shards"] == ["pos-a.parquet", "pos-b.parquet"]
    n_train = sum(meta["train_docs"].values())
    n_held = sum(meta["heldout_docs"].values())
    assert n_train > 50 and n_held > 10
    # balanced classes: as many positives as negatives in total
    assert (meta["train_docs"]["positive"] + meta["heldout_docs"]["positive"]
            == meta["train_docs"]["negative"] + meta["heldout_docs"]["negative"])
    assert meta["heldout_accuracy"] >= 0.8
    assert meta["model_sha256"] == file_sha256(out)


def test_training_is_reproducible(shards, trained, tmp_path):
    pos, neg, _ = shards
    out, meta = trained
    again = train_quality_classifier(list(reversed(pos)), neg, tmp_path / "again.bin",
                                     ClassifierTrainConfig(seed=3, heldout_frac=0.25, epoch=25, lr=1.0))
    assert again["model_sha256"] == meta["model_sha256"]
    assert again["heldout_accuracy"] == meta["heldout_accuracy"]


def test_scores_separate_curated_from_crawled_text(trained):
    out, _ = trained
    clf = QualityClassifier(out)
    curated = clf.score([d.text for d in curated_docs()])
    crawled = clf.score([d.text for d in crawled_docs()])
    assert all(0.0 <= s <= 1.0 for s in curated + crawled)
    assert np.mean(curated) > 0.7 and np.mean(crawled) < 0.3


def test_not_a_quality_model_is_refused():
    from filters.langid import bundled_model_path

    with pytest.raises(ValueError, match="not a quality classifier"):
        QualityClassifier(bundled_model_path())


def test_no_examples_is_a_clear_error(shards, tmp_path):
    pos, neg, _ = shards
    with pytest.raises(ValueError, match="0 negative"):
        train_quality_classifier(pos, neg, tmp_path / "m.bin", ClassifierTrainConfig(negative_sources=["reddit"]))


def test_pareto_decision_is_seeded_and_follows_the_distribution():
    ids = [f"cc/<urn:uuid:{i}>" for i in range(4000)]
    first = [pareto_keep(7, i, 0.0, 3.0) for i in ids]
    assert first == [pareto_keep(7, i, 0.0, 3.0) for i in ids]
    assert first != [pareto_keep(8, i, 0.0, 3.0) for i in ids]
    # P(Pareto(alpha) > 1) = 2**-alpha: 0.125 for the Pile's alpha 3, 0.002 for GPT-3's 9
    assert 0.10 < np.mean(first) < 0.15
    assert np.mean([pareto_keep(7, i, 0.0, 9.0) for i in ids]) < 0.01
    assert all(pareto_keep(7, i, 1.0, 3.0) for i in ids[:500])
    assert np.mean([pareto_keep(7, i, 0.5, 3.0) for i in ids]) == pytest.approx(1.5**-3, abs=0.03)
