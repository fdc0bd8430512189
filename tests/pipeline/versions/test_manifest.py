"""Manifests, `corpus diff` and `corpus verify` on real builds."""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import main
from pipeline.core.shards import read_json
from pipeline.versions.diff import diff_manifests, format_diff
from pipeline.versions.verify import verify
from tests.pipeline.helpers import write_config, write_jsonl_inputs
from tests.pipeline.running.test_build import _build


def _two_versions(tmp_path: Path, ray_executor):
    write_jsonl_inputs(tmp_path / "in", 3, 30)
    kwargs = dict(inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    _, v1 = _build(write_config(tmp_path / "a.toml", min_words=8, **kwargs), ray_executor)
    _, v2 = _build(write_config(tmp_path / "b.toml", min_words=30, **kwargs), ray_executor)
    return v1, v2


def test_diff_explains_removals_by_reason_and_config_change(tmp_path, ray_executor):
    v1, v2 = _two_versions(tmp_path, ray_executor)
    d = diff_manifests(v1.dir, v2.dir)
    assert not d["identical"]
    stage_key = 'stages.tests.pipeline.stages_for_tests:MinWordsStage.min_words'
    assert d["config"] == [{"key": stage_key, "a": 8, "b": 30}]
    removed = sum(d["documents"]["removed"].values())
    n1, n2 = read_json(v1.manifest_path)["totals"]["docs"], read_json(v2.manifest_path)["totals"]["docs"]
    assert removed == n1 - n2 > 0 and not d["documents"]["added"]
    [by] = d["documents"]["removed_by"]
    assert (by["stage"], by["reason"], by["docs"]) == ("min_words", "min_words:below-30", removed)
    text = format_diff(d)
    assert f"{removed:,} docs removed by min_words:below-30 (stage min_words); config {stage_key} 8 -> 30" in text
    assert main(["diff", str(v1.dir), str(v2.dir)]) == 1
    assert main(["diff", str(v1.manifest_path), str(v1.dir)]) == 0


def test_verify_names_missing_and_altered_files(tmp_path, ray_executor, capsys):
    v1, _ = _two_versions(tmp_path, ray_executor)
    assert verify(v1.manifest_path) == []
    shards = sorted((v1.dir / "docs").glob("*.parquet"))
    shards[0].write_bytes(shards[0].read_bytes()[:-10] + b"0123456789")
    shards[1].unlink()
    problems = verify(v1.dir)
    assert any(p.startswith("altered: ") and shards[0].name in p for p in problems)
    assert any(p.startswith("missing: ") and shards[1].name in p for p in problems)
    assert main(["verify", str(v1.dir)]) == 1
    assert shards[1].name in capsys.readouterr().err
