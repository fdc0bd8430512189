"""`corpus gc`: what the last build of each config uses stays (a rebuild reuses every step), the rest
of the work directory's steps, caches and stage scratch goes; extractors' scratch is never touched."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import main
from pipeline.running.build import run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.running.gc import collect
from tests.pipeline.helpers import write_config, write_jsonl_inputs


def _build(config_path: Path, executor):
    config = load_build_config(config_path)
    return run_build(config, executor, sources=select_sources(config, None), workdir=config.corpus.workdir,
                     log=lambda *_: None)


def _dirs(workdir: Path, top: str) -> set[str]:
    return {f"{top}/{p.parent.name}/{p.name}" for p in (workdir / top).glob("*/*") if p.is_dir()}


def test_gc_keeps_what_the_last_build_uses_and_deletes_the_rest(tmp_path, ray_executor, capsys):
    write_jsonl_inputs(tmp_path / "in", 2, 10)
    work = tmp_path / "work"
    config = write_config(tmp_path / "c.toml", inputs=str(tmp_path / "in" / "*.jsonl"), workdir=work,
                          out=tmp_path / "out", min_words=8)
    _build(config, ray_executor)
    stages_before = _dirs(work, "stages")
    write_config(config, inputs=str(tmp_path / "in" / "*.jsonl"), workdir=work, out=tmp_path / "out", min_words=9)
    second = _build(config, ray_executor)
    used = {str(s.out_dir.relative_to(work)) for s in second.steps}
    old_stage_dirs = stages_before - used
    assert len(old_stage_dirs) == 1  # the first config's filter step (extraction is the same) is garbage now
    (work / "scratch" / "dedup" / "k" / "run-x").mkdir(parents=True)  # left by a killed run
    (work / "scratch" / "extract-reddit" / "archive" / "p0").mkdir(parents=True)
    (work / "scratch" / "extract-reddit" / "archive" / "p0" / "a.warc.gz").write_bytes(b"x")
    (work / "scratch" / "dedup" / "k" / "run-x" / "f").write_bytes(b"x")

    dry = collect(work, dry_run=True)
    assert set(dry.removed) >= old_stage_dirs | {"scratch/dedup/k"} and dry.records == 1
    assert all((work / d).exists() for d in dry.removed)
    assert main(["gc", "--workdir", str(work)]) == 0
    assert "deleted" in capsys.readouterr().out
    assert not any((work / d).exists() for d in dry.removed)
    assert all((work / d).exists() for d in used) and not used & set(dry.removed)
    assert (work / "scratch" / "extract-reddit" / "archive" / "p0" / "a.warc.gz").exists()
    again = _build(config, ray_executor)  # the kept config rebuilds without computing anything
    assert all(s.report.shards_computed == 0 for s in again.steps)
    assert collect(work, dry_run=True).removed == {}


def test_gc_on_object_storage(s3_bucket):
    """The same rules on an s3:// work directory: one listing per top directory, deletes by prefix."""
    from pipeline.core.io import as_path, write_json
    from pipeline.running.gc import record_build

    work = as_path(f"{s3_bucket}/work")
    for rel in ("stages/langid/aaa/x.parquet", "stages/langid/bbb/x.parquet", "shard-cache/langid/ccc/e/kept.parquet",
                "shard-cache/langid/ddd/e/kept.parquet", "scratch/dedup/k/run-1/f", "scratch/extract-reddit/archive/a"):
        (work / rel).write_bytes(b"0123456789")
    record_build(work, "c", "/x/c.toml", [work / "stages" / "langid" / "aaa", work / "shard-cache" / "langid" / "ccc"])
    write_json({"corpus": "other", "config": "", "finished": 0, "uses": []}, work / "builds" / "other.json")
    result = collect(str(work))
    assert result.records == 2
    assert result.removed == {"stages/langid/bbb": 10, "shard-cache/langid/ddd": 10, "scratch/dedup/k": 10}
    assert sorted(result.kept) == ["shard-cache/langid/ccc", "stages/langid/aaa"]
    left = sorted(work.tree())
    assert left == ["builds/c-" + left[0].split("-", 1)[1], "builds/other.json", "scratch/extract-reddit/archive/a",
                    "shard-cache/langid/ccc/e/kept.parquet", "stages/langid/aaa/x.parquet"]
