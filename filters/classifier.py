"""The Pile / GPT-3 quality classifier: a fastText model of "curated" vs raw Common Crawl text.

GPT-3 (Brown et al. 2020, appendix A) trained a classifier with curated corpora (WebText,
Wikipedia, books) as positives and unfiltered Common Crawl as negatives, and kept a CC document
when `np.random.pareto(alpha) > 1 - score` (alpha 9). The Pile (Gao et al. 2020) did the same with
a fastText classifier and alpha 3. The Pile's preprocessing, reproduced by `pile_preprocess`:
newlines to spaces, then the last 1,500 characters of the first 4,000; training examples of 100
characters or fewer are skipped.

* `train_quality_classifier(positive_shards, negative_shards, out_path, config)` trains a
  fastText model (wordNgrams=2, one thread and a fixed seed, so it is reproducible), writes it to
  `out_path` and its metadata to `metadata_path(out_path)` (`<out_path minus suffix>.json`):
  sources and counts of both classes, the seed and parameters, and the held-out accuracy.
* `QualityClassifier(path).score(texts)` gives P(positive) per text.
* `pareto_keep(seed, doc_id, score, alpha)` is the seeded keep/drop decision.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.config import to_plain
from pipeline.core.fasttext_model import label_probability, load_model, predict_top
from pipeline.core.io import as_path, cache_dir, copy_file, local_file, read_table
from pipeline.core.shards import sha256_file as file_sha256
from pipeline.core.shards import write_json

POSITIVE = "positive"
NEGATIVE = "negative"
FORMAT = "corpusforge-quality-classifier/1"


def pile_preprocess(text: str) -> str:
    """The Pile's `preprocess_for_fasttext`: one line, the last 1,500 chars of the first 4,000."""
    return text.replace("\n", " ").replace("\r", " ")[:4000][-1500:]


@dataclass
class ClassifierTrainConfig:
    seed: int = 0
    word_ngrams: int = 2
    epoch: int = 5
    lr: float = 0.1
    dim: int = 100
    min_count: int = 1
    min_chars: int = 100  # the Pile skipped examples of <= 100 characters after preprocessing
    heldout_frac: float = 0.1  # chosen per document id, so the split does not depend on shard order
    # Downsample the larger class (seeded) to the size of the smaller one.
    balance: bool = True
    # Only rows of these sources are used (empty: every row of the given shards).
    positive_sources: list[str] = field(default_factory=list)
    negative_sources: list[str] = field(default_factory=list)


def metadata_path(model_path: Path) -> Path:
    return as_path(model_path).with_suffix(".json")



def _unit_hash(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{doc_id}".encode()).digest()[:8], "little")


def doc_rng(seed: int, doc_id: str) -> np.random.Generator:
    """A generator seeded by (config seed, document id): same draw whatever the worker or order."""
    digest = hashlib.sha256(f"{seed}\0{doc_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def pareto_keep(seed: int, doc_id: str, score: float, alpha: float) -> bool:
    """GPT-3 / the Pile: keep when a Pareto(alpha) draw exceeds 1 - score."""
    return bool(doc_rng(seed, doc_id).pareto(alpha) > 1.0 - score)


def _read_examples(shards: list[Path], sources: list[str], min_chars: int) -> tuple[
    list[tuple[str, str]], Counter, int
]:
    """(id, preprocessed text) pairs sorted by id, per-source counts, and how many were too short."""
    wanted = set(sources)
    examples: list[tuple[str, str]] = []
    per_source: Counter = Counter()
    short = 0
    for path in shards:
        table = read_table(path, columns=["id", "source", "text"])
        for doc_id, source, text in zip(*(table.column(c).to_pylist() for c in ("id", "source", "text")),
                                        strict=True):
            if wanted and source not in wanted:
                continue
            line = pile_preprocess(text)
            if len(line) <= min_chars:
                short += 1
                continue
            examples.append((doc_id, line))
            per_source[source] += 1
    examples.sort()
    return examples, per_source, short


def train_quality_classifier(
    positive_shards: list[Path],
    negative_shards: list[Path],
    out_path: Path,
    config: ClassifierTrainConfig | None = None,
) -> dict[str, Any]:
    """Train the classifier on doc shards, save it to `out_path` with its metadata; return the metadata."""
    import fasttext

    cfg = config or ClassifierTrainConfig()
    out_path = as_path(out_path)
    pos, pos_sources, pos_short = _read_examples(positive_shards, cfg.positive_sources, cfg.min_chars)
    neg, neg_sources, neg_short = _read_examples(negative_shards, cfg.negative_sources, cfg.min_chars)
    if not pos or not neg:
        raise ValueError(
            f"cannot train a quality classifier: {len(pos)} positive and {len(neg)} negative examples"
            f" of more than {cfg.min_chars} characters"
        )
    rng = np.random.default_rng(cfg.seed)
    if cfg.balance:
        n = min(len(pos), len(neg))
        pos = [pos[i] for i in sorted(rng.choice(len(pos), n, replace=False))] if len(pos) > n else pos
        neg = [neg[i] for i in sorted(rng.choice(len(neg), n, replace=False))] if len(neg) > n else neg
    cut = int(cfg.heldout_frac * (1 << 64))
    train: list[tuple[str, str]] = []
    heldout: list[tuple[str, str]] = []
    for label, examples in ((POSITIVE, pos), (NEGATIVE, neg)):
        for doc_id, line in examples:
            (heldout if _unit_hash(cfg.seed, doc_id) < cut else train).append((label, line))
    order = rng.permutation(len(train))
    with tempfile.TemporaryDirectory(dir=cache_dir("train"), prefix="train-") as tmp:
        train_file = Path(tmp) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as f:
            for i in order:
                label, line = train[i]
                f.write(f"__label__{label} {line}\n")
        model = fasttext.train_supervised(
            input=os.fspath(train_file), wordNgrams=cfg.word_ngrams, epoch=cfg.epoch, lr=cfg.lr, dim=cfg.dim,
            minCount=cfg.min_count, seed=cfg.seed, thread=1, verbose=0,
        )
        tmp_model = Path(tmp) / "model.bin"
        model.save_model(os.fspath(tmp_model))
        copy_file(tmp_model, out_path)  # local or object storage; never half written
    accuracy = None
    if heldout:
        predicted = predict_top(model, [line for _, line in heldout], k=1)
        hits = sum(top[0][0] == label for (label, _), top in zip(heldout, predicted, strict=True) if top)
        accuracy = hits / len(heldout)
    meta = {
        "format": FORMAT,
        "labels": {"positive": f"__label__{POSITIVE}", "negative": f"__label__{NEGATIVE}"},
        "preprocess": "pile: newlines to spaces, text[:4000][-1500:], examples of <= min_chars skipped",
        "config": to_plain(cfg),
        "positive": {"shards": [Path(p).name for p in positive_shards], "sources": dict(sorted(pos_sources.items())),
                     "too_short": pos_short},
        "negative": {"shards": [Path(p).name for p in negative_shards], "sources": dict(sorted(neg_sources.items())),
                     "too_short": neg_short},
        "train_docs": dict(sorted(Counter(label for label, _ in train).items())),
        "heldout_docs": dict(sorted(Counter(label for label, _ in heldout).items())),
        "heldout_accuracy": accuracy,
        "model_sha256": file_sha256(out_path),
    }
    write_json(meta, metadata_path(out_path))
    return meta


class QualityClassifier:
    """A trained quality classifier; `score` gives P(positive) of each text after Pile preprocessing."""

    def __init__(self, path: str | Path) -> None:
        self.path = as_path(path)
        self.model = load_model(local_file(self.path))
        labels = {lab.removeprefix("__label__") for lab in self.model.get_labels()}
        if POSITIVE not in labels:
            raise ValueError(f"{self.path}: not a quality classifier (labels {sorted(labels)}, no {POSITIVE!r})")
        self.sha256 = file_sha256(self.path)

    def score(self, texts: list[str]) -> list[float]:
        return label_probability(self.model, [pile_preprocess(t) for t in texts], POSITIVE)
