"""The dedup stage end to end on real text with planted exact and near duplicates."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from dedup import stage as dedup_stage
from dedup.normalize import normalize_text
from dedup.stage import DedupConfig, DedupStage, default_blocks, default_partitions
from pipeline.core.config import ConfigError, from_mapping
from pipeline.core.extractor import file_fingerprint
from pipeline.core.schema import Doc, docs_to_table
from pipeline.core.shards import read_json, read_table, write_table
from pipeline.running.executor import SerialExecutor
from pipeline.running.fingerprints import FingerprintCache
from pipeline.running.runner import run_global_stage
from tests.conftest import data_path


def _paragraphs(book: str, n: int) -> list[str]:
    text = data_path("gutenberg", book).read_text(encoding="utf-8", errors="replace")
    seen, out = set(), []
    for p in re.split(r"\n\s*\n", text):
        p = " ".join(p.split())
        if len(p.split()) >= 60 and normalize_text(p) not in seen:
            seen.add(normalize_text(p))
            out.append(p)
    return out[:n]


def _edit(text: str, every: int, rng: random.Random) -> str:
    words = text.split()
    for i in range(rng.randrange(every), len(words), every):
        words[i] = f"xq{rng.randrange(10**6)}"
    return " ".join(words)


@pytest.fixture(scope="module")
def corpus():
    """Originals from two books, plus planted copies. Returns docs and {copy id: (original id, kind)}."""
    rng = random.Random(3)
    paras = _paragraphs("16595.txt", 60) + _paragraphs("15122.txt", 60)
    docs = [Doc(f"books/{i:03d}", "books", p) for i, p in enumerate(paras)]
    planted: dict[str, tuple[str, str]] = {}
    for i in range(0, len(paras), 6):
        src = docs[i]
        exact_copy = Doc(f"cc/exact-{i:03d}", "cc", src.text.upper().replace(" ", "  ") + " !!")
        near_copy = Doc(f"cc/near-{i:03d}", "cc", _edit(src.text, 40, rng))  # Jaccard ~0.85
        far_copy = Doc(f"reddit/far-{i:03d}", "reddit", _edit(src.text, 3, rng))  # Jaccard ~0.0: distinct
        mid_copy = Doc(f"reddit/mid-{i:03d}", "reddit", _edit(src.text, 8, rng))  # Jaccard ~0.23: distinct
        docs += [exact_copy, near_copy, far_copy, mid_copy]
        planted[exact_copy.id] = (src.id, "exact-dup")
        planted[near_copy.id] = (src.id, "near-dup")
    rng.shuffle(docs)
    return docs, planted


def _write_shards(docs: list[Doc], directory: Path, n: int) -> list[Path]:
    for k in range(n):
        write_table(docs_to_table(docs[k::n]), directory / f"part-{k:03d}.parquet")
    return sorted(directory.glob("*.parquet"))


def _run(shards, tmp_path, name, config, executor=None):
    out = tmp_path / name
    report = run_global_stage(DedupStage(config), shards, out, tmp_path / f"scratch-{name}",
                              executor or SerialExecutor(progress=False))
    kept = pa.concat_tables([read_table(p) for p in sorted(out.glob("*.parquet"))])
    rejected = pa.concat_tables([read_table(p) for p in sorted((out / "rejected").glob("*.parquet"))])
    return report, kept, rejected, out


def _decisions(kept: pa.Table, rejected: pa.Table) -> dict[str, str]:
    out = {i: "kept" for i in kept.column("id").to_pylist()}
    out.update(zip(rejected.column("id").to_pylist(), rejected.column("reason").to_pylist(), strict=True))
    return out


def test_planted_duplicates_found_and_distinct_docs_kept(corpus, tmp_path):
    docs, planted = corpus
    shards = _write_shards(docs, tmp_path / "in", 4)
    report, kept, rejected, _ = _run(shards, tmp_path, "out", DedupConfig(source_priority=["books"]))
    decisions = _decisions(kept, rejected)
    assert len(decisions) == len(docs) == kept.num_rows + rejected.num_rows
    for copy_id, (orig_id, kind) in planted.items():
        assert decisions[copy_id] == f"{kind}:{orig_id}"
    for d in docs:
        if d.id not in planted:
            assert decisions[d.id] == "kept", d.id
    sizes = dict(zip(kept.column("id").to_pylist(), kept.column("dup_cluster_size").to_pylist(), strict=True))
    clusters = dict(zip(kept.column("id").to_pylist(), kept.column("dup_cluster").to_pylist(), strict=True))
    for orig_id in {o for o, _ in planted.values()}:
        assert sizes[orig_id] == 3 and clusters[orig_id] == orig_id
    assert sizes["reddit/far-000"] == 1
    # dup_similarity: the highest verified Jaccard of a document's duplicate edges
    sim = dict(zip(kept.column("id").to_pylist() + rejected.column("id").to_pylist(),
                   kept.column("dup_similarity").to_pylist() + rejected.column("dup_similarity").to_pylist(),
                   strict=True))
    for copy_id, (orig_id, kind) in planted.items():
        assert sim[copy_id] == 1.0 if kind == "exact-dup" else 0.5 <= sim[copy_id] < 1.0, copy_id
        assert sim[orig_id] == 1.0  # each original has an exact copy
    assert sim["reddit/far-000"] is None
    totals = report.to_json()["totals"]
    assert totals["rejected_docs"] == len(planted)


def test_survivor_by_priority_then_quality_then_id(tmp_path):
    text = " ".join(_paragraphs("16595.txt", 1))
    rows = [("cc/b", "cc", 0.9), ("cc/a", "cc", 0.9), ("wikipedia/z", "wikipedia", 0.1), ("books/q", "books", 0.95)]
    table = docs_to_table(Doc(i, s, text) for i, s, _ in rows).append_column(
        "quality_classifier_score", pa.array([q for *_, q in rows], pa.float64()))
    write_table(table.slice(0, 2), tmp_path / "in" / "a.parquet")
    write_table(table.slice(2), tmp_path / "in" / "b.parquet")
    shards = sorted((tmp_path / "in").glob("*.parquet"))
    _, kept, _, _ = _run(shards, tmp_path, "prio", DedupConfig(source_priority=["wikipedia", "cc"]))
    assert kept.column("id").to_pylist() == ["wikipedia/z"]
    _, kept, _, _ = _run(shards, tmp_path, "quality", DedupConfig())
    assert kept.column("id").to_pylist() == ["books/q"]
    _, kept, rej, _ = _run(shards, tmp_path, "id", DedupConfig(source_priority=["cc"]))
    assert kept.column("id").to_pylist() == ["cc/a"]
    assert set(rej.column("reason").to_pylist()) == {"exact-dup:cc/a"}


def test_output_identical_for_any_partition_or_block_count_and_shard_split(corpus, tmp_path):
    docs, _ = corpus
    shards = _write_shards(docs, tmp_path / "in", 3)
    results = []
    for parts, blocks in ((1, 1), (4, 2), (9, 3)):
        _, kept, rejected, out = _run(shards, tmp_path, f"p{parts}", DedupConfig(partitions=parts, blocks=blocks))
        results.append([p.read_bytes() for p in sorted(out.rglob("*.parquet"))])
    assert results[0] == results[1] == results[2]
    # a different shard split gives the same decisions (node numbering differs, survivors do not)
    other = _write_shards(docs, tmp_path / "in5", 5)
    _, kept5, rejected5, _ = _run(other, tmp_path, "s5", DedupConfig(partitions=2))
    assert _decisions(kept5, rejected5) == _decisions(kept, rejected)


def test_few_documents_run_the_rounds_in_one_task_with_the_same_result(corpus, tmp_path, monkeypatch):
    """Below _SMALL_DOCS the rounds after the signatures are one task (each round's tasks would last
    milliseconds, a round trip each); the result is the per-round path's, byte for byte."""
    docs, _ = corpus
    shards = _write_shards(docs, tmp_path / "in", 3)
    results = {}
    for small in (True, False):
        if not small:
            monkeypatch.setattr(dedup_stage, "_SMALL_DOCS", 0)
        executor = _Recording()
        # partitions and blocks given: the default ones depend on _SMALL_DOCS too
        _, _, _, out = _run(shards, tmp_path, f"small-{small}", DedupConfig(partitions=2, blocks=2), executor)
        stats = json.loads((out / "_dedup.json").read_text())
        results[small] = ([p.read_bytes() for p in sorted(out.rglob("*.parquet"))], stats,
                          [name for name, _ in executor.calls])
    one_task, per_round = results[True], results[False]
    assert one_task[0] == per_round[0] and one_task[1] == per_round[1]
    assert "_rounds_task" in one_task[2] and "bucket_task" not in one_task[2]
    assert "bucket_task" in per_round[2] and "_rounds_task" not in per_round[2]
    assert one_task[1]["near_edges"] > 0  # the corpus's planted near copies went through every round


def test_band_collision_alone_removes_nothing(corpus, tmp_path):
    """With 128 one-row bands the ~0.23-Jaccard copies collide with their originals; verification keeps them."""
    docs, planted = corpus
    shards = _write_shards(docs, tmp_path / "in", 2)
    cfg = DedupConfig(bands=128, rows=1, threshold=0.5)
    _, kept, rejected, _ = _run(shards, tmp_path, "b128", cfg)
    assert set(rejected.column("id").to_pylist()) == set(planted)


def test_signature_verification_gives_the_same_decisions_on_clear_cases(corpus, tmp_path):
    docs, _ = corpus
    shards = _write_shards(docs, tmp_path / "in", 2)
    _, k1, r1, _ = _run(shards, tmp_path, "sig", DedupConfig(verify="signature"))
    _, k2, r2, _ = _run(shards, tmp_path, "exact", DedupConfig())
    assert _decisions(k1, r1) == _decisions(k2, r2)


def test_output_identical_on_one_worker_and_on_two(corpus, tmp_path, ray_executor):
    docs, _ = corpus
    shards = _write_shards(docs, tmp_path / "in", 3)
    _, _, _, serial = _run(shards, tmp_path, "serial", DedupConfig())
    _, _, _, ray = _run(shards, tmp_path, "ray", DedupConfig(), executor=ray_executor)
    assert ray_executor.num_workers == 2
    files = sorted(p.relative_to(serial) for p in serial.rglob("*.parquet"))
    assert files == sorted(p.relative_to(ray) for p in ray.rglob("*.parquet"))
    assert all((serial / f).read_bytes() == (ray / f).read_bytes() for f in files)


def test_fast_hash_option_finds_the_same_duplicates(corpus, tmp_path):
    docs, planted = corpus
    shards = _write_shards(docs, tmp_path / "in", 2)
    _, kept, rejected, _ = _run(shards, tmp_path, "poly", DedupConfig(hash_function="poly64"))
    assert set(rejected.column("id").to_pylist()) == set(planted)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="verify"):
        from_mapping(DedupConfig, {"verify": "bands"}, "stages.dedup")
    with pytest.raises(ConfigError, match="bands"):
        DedupConfig(bands=30, rows=5)


def test_end_to_end_with_ray_accounting(corpus, tmp_path, ray_executor):
    docs, planted = corpus
    shards = _write_shards(docs, tmp_path / "in", 4)
    report, kept, rejected, out = _run(shards, tmp_path, "ray", DedupConfig(), executor=ray_executor)
    stage = read_json(out / "_stage.json")
    n_exact = sum(1 for _, k in planted.values() if k == "exact-dup")
    for source, counts in stage["sources"].items():
        assert counts["in_docs"] == counts["kept_docs"] + counts["rejected_docs"], source
    totals = stage["totals"]
    assert totals["in_docs"] == len(docs)
    assert totals["rejected_docs"] == len(planted) == rejected.num_rows
    reasons = {}
    for counts in stage["sources"].values():
        for r, n in counts["reasons"].items():
            reasons[r] = reasons.get(r, 0) + n
    assert reasons == {"exact-dup": n_exact, "near-dup": len(planted) - n_exact}
    assert sorted(p.name for p in out.glob("*.parquet")) == [p.name for p in shards]
    # a rerun reuses every shard
    again = run_global_stage(DedupStage(DedupConfig()), shards, out, tmp_path / "scratch-again", ray_executor)
    assert again.shards_reused == len(shards)


def test_default_partitions_and_blocks_follow_the_data_not_the_shard_count(tmp_path, monkeypatch):
    # Every exchange writes (tasks x destinations) files: destinations that grew with the shard count
    # made a 1M-document run spend most of its time on 10,000-file exchanges.
    assert default_partitions(100_000, rows_per_doc=25, workers=2) == 4  # 2 per worker
    assert default_blocks(100_000, workers=2) == 8  # 4 per worker
    # few documents: tasks of milliseconds, one per worker (each task is a round trip)
    assert default_partitions(400, rows_per_doc=25, workers=2) == 2
    assert default_blocks(400, workers=2) == 2
    monkeypatch.setattr(dedup_stage, "_BAND_ROWS_PER_PARTITION", 1000)
    assert default_partitions(400, rows_per_doc=25, workers=2) == 10  # 400 docs x 25 rows / 1000
    assert default_blocks(10_000_000, workers=2) == 50  # 200,000 documents each


def test_exchanges_address_blocks_of_shards(corpus, tmp_path):
    """40 shards in 4 blocks: no exchange directory has a subdirectory per shard."""
    docs, planted = corpus
    shards = _write_shards(docs, tmp_path / "in", 40)
    out, scratch = tmp_path / "out", tmp_path / "scratch"  # the stage itself: the runner would remove the scratch
    DedupStage(DedupConfig(partitions=3, blocks=4)).run(shards, out, scratch, SerialExecutor(progress=False))
    rejected = pa.concat_tables([read_table(p) for p in sorted((out / "rejected").glob("*.parquet"))])
    work = scratch / "dedup"
    for kind in ("cand", "cand2", "sims", "members", "decisions"):
        assert work.joinpath(kind).is_dir(), kind
        assert {p.name for p in work.joinpath(kind).iterdir()} <= {f"{b:05d}" for b in range(4)}, kind
    for kind in ("bands", "exact", "clusters"):
        assert {p.name for p in work.joinpath(kind).glob("*/*.parquet")} <= {f"{b:05d}.parquet" for b in range(4)}
    assert len(rejected) == len(planted)


class _Recording(SerialExecutor):
    """Runs tasks in process and records (task function, items) of every map; a listed function fails."""

    def __init__(self, forbidden: tuple[str, ...] = ()) -> None:
        super().__init__(progress=False)
        self.calls: list[tuple[str, int]] = []
        self.forbidden = forbidden

    def map(self, fn, items, **kw):
        assert fn.__name__ not in self.forbidden, f"{len(items)} {fn.__name__} task(s) submitted"
        self.calls.append((fn.__name__, len(items)))
        return super().map(fn, items, **kw)

    def tasks(self, name: str) -> int:
        return sum(n for f, n in self.calls if f == name)


def _known(shards: list[Path], path: Path) -> FingerprintCache:
    """The digests a build's earlier tasks would have remembered for `shards`."""
    digests = FingerprintCache(path)
    for p in shards:
        digests.remember(p, file_fingerprint(p))
    return digests


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def test_shards_with_known_digests_are_not_read_again_to_find_their_signatures(corpus, tmp_path):
    """A grown corpus: the signatures of the shards whose sha256 the runner knows are found in the
    shard cache by the driver; only the new shard gets a signature task. Outputs and stats are those
    of a run that hashes every shard in a task."""
    docs, _ = corpus
    shards = _write_shards(docs, tmp_path / "in", 6)
    old, cache = shards[:5], tmp_path / "cache"
    run_global_stage(DedupStage(DedupConfig()), old, tmp_path / "first", tmp_path / "s1", _Recording(), cache)
    shutil.copytree(cache, tmp_path / "cache2")  # the same cache state for both runs below

    def grown(name: str, cache_dir: Path, digests: FingerprintCache | None, executor: _Recording):
        report = run_global_stage(DedupStage(DedupConfig()), shards, tmp_path / name, tmp_path / f"s-{name}",
                                  executor, cache_dir, digests=digests)
        accounting = {k: v for k, v in report.to_json().items() if k != "task_seconds"}
        return accounting, read_json(tmp_path / name / dedup_stage.STATS_FILE), _outputs(tmp_path / name)

    hashing, by_digest = _Recording(), _Recording()
    expected = grown("hashing", cache, None, hashing)
    assert grown("by-digest", tmp_path / "cache2", _known(old, tmp_path / "fp.json"), by_digest) == expected
    assert (hashing.tasks("signature_task"), by_digest.tasks("signature_task")) == (6, 1)
    assert (expected[1]["signatures_reused"], expected[1]["signatures_computed"]) == (5, 1)
    # every digest known: no signature task at all, the same bytes
    again = grown("all-known", cache, _known(shards, tmp_path / "fp2.json"), _Recording(("signature_task",)))
    assert again[2] == expected[2] and again[1]["signatures_reused"] == 6
