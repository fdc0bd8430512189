"""The stage contract and accounting, run on a real local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard

from pipeline.core.extractor import PlanContext
from pipeline.core.shards import read_json, read_table
from pipeline.running.runner import StageFailed, run_extract, run_shard_stage, stage_inputs
from sources.jsonl import JsonlConfig, JsonlExtractor
from tests.pipeline.helpers import write_jsonl_inputs
from tests.pipeline.stages_for_tests import LossyStage, MinWordsConfig, MinWordsStage


def _extract(tmp_path: Path, ray_executor, files: int = 3, docs: int = 40) -> Path:
    write_jsonl_inputs(tmp_path / "in", files, docs)
    ex = JsonlExtractor(JsonlConfig(id_field="id", source_from_meta="pile_set_name"))
    units = ex.plan([str(tmp_path / "in" / "*.jsonl")], PlanContext(ray_executor, tmp_path / "scratch"))
    out = tmp_path / "extract"
    run_extract(ex, units, out, ray_executor)
    return out


def test_extract_counts_every_record(tmp_path, ray_executor):
    out = _extract(tmp_path, ray_executor)
    stage = read_json(out / "_stage.json")
    web, books = stage["sources"]["web"], stage["sources"]["books"]
    # 3 files x 40 docs: a third labelled web; each file has one malformed line, counted under `jsonl`.
    assert web["kept_docs"] == 3 * 14 and books["kept_docs"] == 3 * 26
    assert stage["sources"]["jsonl"]["reasons"] == {"jsonl:malformed": 3}
    rejected = read_table(next((out / "rejected").glob("*.parquet")))
    assert rejected.column("stage").to_pylist()[0] == "extract:jsonl"
    assert json.loads(rejected.column("meta")[0].as_py())["line"] == 41


def test_shard_stage_splits_and_balances(tmp_path, ray_executor):
    extract = _extract(tmp_path, ray_executor)
    out = tmp_path / "stage"
    report = run_shard_stage(MinWordsStage(MinWordsConfig(min_words=12)), stage_inputs([extract]), out, ray_executor)
    assert report.shards_total == 3 and report.shards_computed == 3
    kept = [read_table(p) for p in sorted(out.glob("*.parquet"))]
    rejected = [read_table(p) for p in sorted((out / "rejected").glob("*.parquet"))]
    assert all(min(t.column("words").to_pylist(), default=99) >= 12 for t in kept)
    assert all(set(t.column("reason").to_pylist()) <= {"min_words:below-12"} for t in rejected)
    n_in = sum(read_table(p).num_rows for p in stage_inputs([extract]))
    n_kept, n_rej = sum(t.num_rows for t in kept), sum(t.num_rows for t in rejected)
    assert n_rej > 0 and n_kept > 0 and n_in == n_kept + n_rej
    for counts in report.counts.values():
        assert counts["in_docs"] == counts["kept_docs"] + counts["rejected_docs"]


def test_finished_shards_are_reused_and_missing_ones_recomputed(tmp_path, ray_executor):
    extract = _extract(tmp_path, ray_executor)
    out = tmp_path / "stage"
    stage = MinWordsStage(MinWordsConfig(min_words=12))
    run_shard_stage(stage, stage_inputs([extract]), out, ray_executor)
    before = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    victim = sorted(out.glob("*.parquet"))[1]
    victim.unlink()
    (out / "_tasks" / f"{victim.stem}.json").unlink()
    report = run_shard_stage(stage, stage_inputs([extract]), out, ray_executor)
    assert (report.shards_reused, report.shards_computed) == (2, 1)
    assert {p.name: p.read_bytes() for p in out.glob("*.parquet")} == before


def test_a_stage_that_loses_documents_fails_the_run(tmp_path, ray_executor):
    extract = _extract(tmp_path, ray_executor, files=1)
    with pytest.raises(StageFailed, match=r"documents in \(\d+\) != kept"):
        run_shard_stage(LossyStage(), stage_inputs([extract]), tmp_path / "lossy", ray_executor)
    assert not (tmp_path / "lossy" / "_stage.json").exists()


def test_truncated_compressed_input_is_a_counted_rejection(tmp_path, ray_executor):
    lines = b"".join(json.dumps({"text": f"document number {i} " * 30}).encode() + b"\n" for i in range(2000))
    blob = zstandard.ZstdCompressor().compress(lines)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.jsonl.zst").write_bytes(blob[: len(blob) // 2])
    ex = JsonlExtractor(JsonlConfig())
    units = ex.plan([str(tmp_path / "in" / "cut.jsonl.zst")], PlanContext(ray_executor, tmp_path / "s"))
    report = run_extract(ex, units, tmp_path / "out", ray_executor)
    counts = report.counts["jsonl"]
    assert counts["reasons"].get("jsonl:truncated-file") == 1
    assert 0 < counts["kept_docs"] < 2000


def test_a_shard_known_by_its_digest_is_copied_by_the_driver_without_a_task(tmp_path, ray_executor):
    """The tasks of a first run record each input shard's sha256 (by path and inode); a run into another
    step directory finds the outputs in the shard cache by it and copies them without starting a task."""
    from pipeline.running.executor import SerialExecutor
    from pipeline.running.fingerprints import FingerprintCache

    class NoTasks(SerialExecutor):
        def map(self, fn, items, **kw):
            assert not items, f"{len(items)} task(s) submitted"
            return []

    extract = _extract(tmp_path, ray_executor)
    stage, cache = MinWordsStage(MinWordsConfig(min_words=12)), tmp_path / "shard-cache"
    digests = FingerprintCache(tmp_path / "fingerprints.json")
    first = run_shard_stage(stage, stage_inputs([extract]), tmp_path / "a", ray_executor, cache, digests)
    digests.save()
    again = FingerprintCache(tmp_path / "fingerprints.json")  # as the next build loads it
    second = run_shard_stage(stage, stage_inputs([extract]), tmp_path / "b", NoTasks(progress=False), cache, again)
    assert (first.shards_computed, second.shards_reused, second.shards_computed) == (3, 3, 0)
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").glob("*.parquet")} == {
        p.name: p.read_bytes() for p in (tmp_path / "a").glob("*.parquet")}
    # a changed input is not taken for the one whose digest was recorded: its task runs
    victim = stage_inputs([extract])[0]
    victim.write_bytes(victim.read_bytes())  # same bytes, new mtime: unknown until read again
    with pytest.raises(AssertionError, match="1 task"):
        run_shard_stage(stage, stage_inputs([extract]), tmp_path / "c", NoTasks(progress=False), cache, again)


def test_tasks_report_the_sha256_of_the_shards_they_write_and_copies_report_the_same(tmp_path, ray_executor):
    """Extraction and shard tasks report the digest of each shard they write; a shard copied from the
    cache reports the one its task recorded. The runner remembers them by path, for the next step."""
    from pipeline.core.io import sha256_file
    from pipeline.running.executor import SerialExecutor
    from pipeline.running.fingerprints import FingerprintCache

    class NoTasks(SerialExecutor):
        def map(self, fn, items, **kw):
            assert not items, f"{len(items)} task(s) submitted"
            return []

    def written(out: Path) -> list[Path]:
        return sorted(out.glob("*.parquet")) + sorted((out / "rejected").glob("*.parquet"))

    write_jsonl_inputs(tmp_path / "in", 3, 40)
    ex = JsonlExtractor(JsonlConfig(id_field="id", source_from_meta="pile_set_name"))
    units = ex.plan([str(tmp_path / "in" / "*.jsonl")], PlanContext(ray_executor, tmp_path / "scratch"))
    digests = FingerprintCache(tmp_path / "fingerprints.json")
    run_extract(ex, units, tmp_path / "extract", ray_executor, digests=digests)
    stage, cache = MinWordsStage(MinWordsConfig(min_words=12)), tmp_path / "shard-cache"
    inputs = stage_inputs([tmp_path / "extract"])
    run_shard_stage(stage, inputs, tmp_path / "a", ray_executor, cache, digests)
    # another step directory, knowing only the inputs' digests: every shard is a copy from the cache
    copies = FingerprintCache(tmp_path / "copies.json")
    for p in inputs:
        copies.remember(p, "sha256:" + sha256_file(p))
    run_shard_stage(stage, inputs, tmp_path / "b", NoTasks(progress=False), cache, copies)
    for out, known in ((tmp_path / "extract", digests), (tmp_path / "a", digests), (tmp_path / "b", copies)):
        files = written(out)
        assert len(files) >= 2 * len(inputs), out
        for f in files:
            rel = f.relative_to(out).as_posix()
            task = read_json(out / "_tasks" / f"{f.stem}.json") if out.name != "extract" else None
            assert known.cached(f) == "sha256:" + sha256_file(f), rel
            assert task is None or task["output_sha256"][rel] == sha256_file(f), rel
