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


def test_diff_lists_steps_in_pipeline_order_and_prints_no_empty_header(tmp_path, ray_executor):
    write_jsonl_inputs(tmp_path / "in", 3, 30)
    kwargs = dict(inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o", extra="[stages.dedup]\n")
    _, v1 = _build(write_config(tmp_path / "a.toml", min_words=8, **kwargs), ray_executor)
    _, v2 = _build(write_config(tmp_path / "b.toml", min_words=30, **kwargs), ray_executor)
    d = diff_manifests(v1.dir, v2.dir)
    # the manifests' order (extract, min_words, dedup), not the alphabet's (dedup first)
    assert list(dict.fromkeys(x["stage"] for x in d["accounting"])) == ["min_words", "dedup"]
    text = format_diff(d)
    assert text.index("\n  min_words ") < text.index("\n  dedup ")
    first = [x["count"] for x in d["accounting"] if x["stage"] == "min_words"]
    assert first[:3] == ["kept_docs", "rejected_docs", "reason:min_words:below-30"]

    # a config change that changes no document: no `documents:` header with nothing under it
    _, v3 = _build(write_config(tmp_path / "c.toml", min_words=8, sleep_per_shard=0.001, **kwargs), ray_executor)
    d = diff_manifests(v1.dir, v3.dir)
    assert not d["identical"] and d["config"] and not d["accounting"]
    lines = format_diff(d).splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if line.endswith(":"):
            assert after.startswith("  "), f"empty section {line!r} in:\n" + "\n".join(lines)
    assert "documents:" not in lines


def test_the_same_config_built_in_two_work_directories_diffs_identical(tmp_path, ray_executor):
    """`${workdir}` in the config (here: in the inputs) and the work directory itself are keyed away."""
    from pipeline.running.build import run_build, select_sources
    from pipeline.running.buildconfig import load_build_config
    from pipeline.versions.manifest import write_version

    cfg = write_config(tmp_path / "c.toml", inputs="${workdir}/in/*.jsonl", workdir=tmp_path / "unused",
                       out=tmp_path / "o", extra="[stages.dedup]\n")
    versions = []
    for work in ("w1", "w2"):
        write_jsonl_inputs(tmp_path / work / "in", 2, 20)
        config = load_build_config(cfg, workdir=str(tmp_path / work))
        sources = select_sources(config, None)
        result = run_build(config, ray_executor, sources=sources, workdir=config.corpus.workdir, log=lambda *_: None)
        versions.append(write_version(config, result, sources=sources, out=tmp_path / f"out-{work}",
                                      workdir=config.corpus.workdir))
    v1, v2 = versions
    assert v1.dir != v2.dir and v1.version == v2.version
    assert diff_manifests(v1.dir, v2.dir)["identical"]
    assert main(["diff", str(v1.dir), str(v2.dir)]) == 0


def test_leftover_temporary_files_never_enter_a_version(tmp_path, ray_executor, capsys):
    """A kill during a write leaves `.<name>.<random>.tmp` beside the file (pipeline.core.io.atomic_write):
    in the outputs step's directories and in a final stage directory, it must not be published."""
    write_jsonl_inputs(tmp_path / "in", 3, 30)
    kwargs = dict(inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", extra="[outputs]\ntrain_vocab_size = 300\n")
    result, v1 = _build(write_config(tmp_path / "a.toml", out=tmp_path / "o1", **kwargs), ray_executor)
    final = result.final_dirs[0]
    leftovers = [final / ".part000.parquet.k3x9.tmp", final / "rejected" / ".part001.parquet.a1b2.tmp"]
    for split_dir in (result.outputs_dir / "text" / "train", result.outputs_dir / "tokens" / "train",
                      result.outputs_dir / "megatron", result.outputs_dir):
        leftovers.append(split_dir / ".00000.jsonl.zst.q7w8.tmp")
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    _, v2 = _build(write_config(tmp_path / "b.toml", out=tmp_path / "o2", **kwargs), ray_executor)
    assert v2.dir != v1.dir and v2.version == v1.version  # the same content: no extra file in it
    manifest = read_json(v2.manifest_path)
    names = [part for f in manifest["outputs"] for part in f["path"].split("/")]
    assert names and not [n for n in names if n.startswith(".")]
    assert not [p for p in v2.dir.rglob("*") if p.name.startswith(".")]
    assert verify(v2.manifest_path) == []
    assert main(["verify", str(v2.dir)]) == 0


def test_ledger_rows_are_kept_by_shard_content(tmp_path):
    """A grown corpus hashes the texts of its new shards only: the ledger rows of a known shard come
    from the shard cache, found by the shard's sha256, without reading the shard."""
    import pyarrow as pa

    from pipeline.core.io import sha256_file
    from pipeline.core.shardcache import ShardCache
    from pipeline.core.shards import write_table
    from pipeline.versions.manifest import build_ledger

    shard = tmp_path / "docs-00000.parquet"
    write_table(pa.table({"id": ["a", "b"], "source": ["cc", "cc"], "text": ["one text", "another, longer"]}), shard)
    sha, cache = sha256_file(shard), ShardCache(tmp_path / "cache")
    first = build_ledger([shard], [sha], cache)
    assert first.equals(build_ledger([shard]))  # the same rows as computed without a cache
    assert first.column("shard").to_pylist() == [shard.name] * 2 and first.column("text_bytes").to_pylist() == [8, 15]
    shard.write_bytes(b"not parquet")  # unreadable now: only the cache can answer
    assert build_ledger([shard], [sha], cache).equals(first)
