"""`corpus verify`, `corpus diff` and `corpus report` on versions stored on object storage: real builds,
copied file by file to a real S3 server on 127.0.0.1 (moto)."""

from __future__ import annotations

from pipeline.cli import main
from pipeline.core import io
from pipeline.running.executor import SerialExecutor
from pipeline.versions.diff import diff_manifests
from pipeline.versions.report import render_report, write_report
from pipeline.versions.verify import verify
from tests.pipeline.helpers import write_config, write_jsonl_inputs
from tests.pipeline.running.test_build import _build


def _to_s3(version_dir, base: str) -> str:
    """Copy every file of a version directory under `base/<version>`; returns that URI."""
    dst = io.join(base, version_dir.name)
    for f in sorted(version_dir.rglob("*")):
        if f.is_file():
            io.copy_file(f, io.join(dst, f.relative_to(version_dir).as_posix()))
    return dst


def _versions(tmp_path, s3_bucket):
    write_jsonl_inputs(tmp_path / "in", 3, 30)
    kwargs = dict(inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    executor = SerialExecutor(progress=False)
    _, v1 = _build(write_config(tmp_path / "a.toml", min_words=8, **kwargs), executor)
    _, v2 = _build(write_config(tmp_path / "b.toml", min_words=30, **kwargs), executor)
    return v1, v2, _to_s3(v1.dir, s3_bucket + "/versions"), _to_s3(v2.dir, s3_bucket + "/versions")


def test_diff_and_report_read_versions_on_s3(tmp_path, s3_bucket, capsys):
    v1, v2, s1, s2 = _versions(tmp_path, s3_bucket)
    local, remote = diff_manifests(v1.dir, v2.dir), diff_manifests(s1, s2)
    assert remote["a"] == f"{s1}/manifest.json" and remote["b"] == f"{s2}/manifest.json"
    assert {k: v for k, v in remote.items() if k not in ("a", "b")} == {k: v for k, v in local.items() if k not in ("a", "b")}
    assert not remote["identical"] and sum(remote["documents"]["removed"].values()) > 0
    assert main(["diff", s1, s2]) == 1
    assert main(["diff", f"{s1}/manifest.json", str(v1.dir)]) == 0  # S3 manifest file vs local version dir
    assert "are identical" in capsys.readouterr().out

    assert render_report(s1) == render_report(v1.dir)
    assert main(["report", s1, "--out", f"{s3_bucket}/reports/r.html"]) == 0
    assert main(["report", f"{s1}/manifest.json", "--out", str(tmp_path / "r.html")]) == 0
    assert io.as_path(f"{s3_bucket}/reports/r.html").read_bytes() == (tmp_path / "r.html").read_bytes()
    assert write_report(v1.dir, tmp_path / "local.html").read_bytes() == (tmp_path / "r.html").read_bytes()


def test_verify_a_version_on_s3_and_name_altered_and_missing_files(tmp_path, s3_bucket, capsys):
    v1, _, s1, _ = _versions(tmp_path, s3_bucket)
    assert verify(s1) == [] and verify(f"{s1}/manifest.json") == []
    assert main(["verify", s1]) == 0
    assert "OK" in capsys.readouterr().out

    shards = sorted((io.as_path(s1) / "docs").glob("*.parquet"))
    assert len(shards) >= 2
    data = shards[0].read_bytes()
    shards[0].write_bytes(data[:-10] + b"0123456789")  # same size, other bytes
    shards[1].unlink()
    problems = verify(s1)
    assert f"altered: {shards[0]} (sha256 differs from the manifest)" in problems
    assert f"missing: {shards[1]}" in problems
    assert main(["verify", s1]) == 1
    err = capsys.readouterr().err
    assert str(shards[0]) in err and str(shards[1]) in err
    assert verify(v1.dir) == []  # the local original is untouched
