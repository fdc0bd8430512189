"""Time per step: `run.json` records each step's task seconds; `corpus report` shows them in a table and
`corpus diff` compares them, for information only (two identical versions stay identical)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from pipeline.cli import main
from pipeline.core import io
from pipeline.core.shards import read_json
from pipeline.running.executor import SerialExecutor
from pipeline.versions.diff import diff_manifests, format_diff
from pipeline.versions.manifest import format_seconds
from pipeline.versions.report import render_report
from tests.pipeline.helpers import write_config, write_jsonl_inputs
from tests.pipeline.running.test_build import _build


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two real versions (min_words 8 and 30); each shard of the stage sleeps, so its seconds are real."""
    tmp = tmp_path_factory.mktemp("time")
    write_jsonl_inputs(tmp / "in", 3, 30)
    kwargs = dict(inputs=f"{tmp}/in/*.jsonl", workdir=tmp / "w", out=tmp / "o", sleep_per_shard=0.05)
    executor = SerialExecutor(progress=False)
    _, v1 = _build(write_config(tmp / "a.toml", min_words=8, **kwargs), executor)
    _, v2 = _build(write_config(tmp / "b.toml", min_words=30, **kwargs), executor)
    return v1, v2


def _copy(version_dir, dst):
    shutil.copytree(version_dir, dst)
    return dst


def _set_seconds(version_dir, seconds: dict[str, float]) -> None:
    run = read_json(version_dir / "run.json")
    run["seconds"] = seconds
    (version_dir / "run.json").write_text(json.dumps(run))


def test_run_json_records_task_seconds_per_step(versions):
    v1, _ = versions
    run = read_json(v1.dir / "run.json")
    steps = [st["name"] for st in read_json(v1.manifest_path)["stages"]]
    assert list(run["seconds"]) == steps == ["extract:jsonl", "min_words"]
    assert run["seconds"]["min_words"] >= 3 * 0.05  # three shards, each sleeping 0.05 s
    assert run["finished"] - run["started"] >= run["seconds"]["min_words"]  # from the start of the build


def test_report_shows_a_time_per_step_table(versions, tmp_path):
    v1, _ = versions
    page = render_report(v1.dir)
    section = re.search(r'<section id="time">.*?</section>', page, re.S).group(0)
    run = read_json(v1.dir / "run.json")
    for step, seconds in run["seconds"].items():
        assert re.search(rf"<td>{re.escape(step)}</td><td>3</td><td>3</td><td>0</td><td>"
                         rf"{re.escape(format_seconds(seconds))}</td>", section), step
    assert format_seconds(sum(run["seconds"].values())) in section
    assert "Build wall time" in section

    # a manifest with no run.json beside it (a committed copy) says so instead of failing
    bare = _copy(v1.dir, tmp_path / "bare")
    (bare / "run.json").unlink()
    assert "no run.json beside the manifest" in render_report(bare)


def test_diff_compares_time_per_step_without_making_versions_differ(versions, tmp_path, capsys):
    v1, v2 = versions
    d = diff_manifests(v1.dir, v2.dir)
    ra, rb = read_json(v1.dir / "run.json"), read_json(v2.dir / "run.json")
    assert [s["step"] for s in d["time"]["steps"]] == ["extract:jsonl", "min_words"]
    for s in d["time"]["steps"]:
        assert (s["a"], s["b"]) == (ra["seconds"][s["step"]], rb["seconds"][s["step"]])
    text = format_diff(d)
    assert "time: task seconds per step (informational; not part of the comparison)" in text
    assert re.search(r"\n  min_words +\d+\.\d\ds -> \d+\.\d\ds \([+-]\d+\.\d\ds", text)

    # the same version elsewhere, from a slower run: still identical (exit 0), the time section says how
    # much slower
    slow = _copy(v1.dir, tmp_path / "slow")
    _set_seconds(slow, {"extract:jsonl": ra["seconds"]["extract:jsonl"] + 1.0, "min_words": 90.0})
    d = diff_manifests(v1.dir, slow)
    assert d["identical"] and d["time"]["a"] and d["time"]["b"]
    assert main(["diff", str(v1.dir), str(slow)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{v1.version} and {v1.version} are identical\ntime: task seconds per step")
    assert f"-> {format_seconds(90.0)}" in out and "(+1.00s" in out
    assert main(["diff", str(v1.dir), str(slow), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["time"]["steps"][1]["b"] == 90.0

    # the same run compared with itself: no time section at all
    assert format_diff(diff_manifests(v1.dir, v1.manifest_path)) == f"{v1.version} and {v1.version} are identical"

    # one side without run.json: still identical, and the diff says which side has times
    bare = _copy(v1.dir, tmp_path / "bare")
    (bare / "run.json").unlink()
    d = diff_manifests(v1.dir, bare)
    assert d["identical"] and d["time"] == {"a": True, "b": False, "steps": []}
    assert format_diff(d).endswith("time: recorded for A only (no run.json with seconds beside the other)")


def test_time_is_read_beside_a_manifest_on_object_storage(versions, s3_bucket):
    v1, v2 = versions
    uri = io.join(s3_bucket, "versions", v2.dir.name)
    for f in sorted(v2.dir.rglob("*")):
        if f.is_file():
            io.copy_file(f, io.join(uri, f.relative_to(v2.dir).as_posix()))
    assert diff_manifests(v1.dir, uri)["time"] == diff_manifests(v1.dir, v2.dir)["time"]
    seconds = read_json(v2.dir / "run.json")["seconds"]["min_words"]
    assert f"<td>{format_seconds(seconds)}</td>" in render_report(uri)
