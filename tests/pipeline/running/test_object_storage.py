"""The whole demo build with its work and output directories on object storage: a real S3 API server
on 127.0.0.1 (moto), reached by `corpus build` through the standard AWS_* settings alone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pipeline.core import io
from tests.conftest import REPO
from tests.s3server import free_port

CORPUS = [sys.executable, "-m", "pipeline"]


def _demo_config(directory: Path) -> Path:
    """The demo config as shipped, on its own port and with no manifest copy into the repository."""
    text = (REPO / "configs" / "demo.toml").read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("demo_port"):
            line = f"demo_port = {free_port()}"
        elif line.startswith("manifests_dir"):
            line = 'manifests_dir = ""'
        lines.append(line)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def short_tmp():
    """The build's TMPDIR: short, since Ray puts Unix sockets under it (107-byte limit)."""
    d = Path(tempfile.mkdtemp(prefix="cf", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _env(tmp: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp), "CORPUSFORGE_CACHE": str(tmp / "cache"),
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    env.update(extra or {})
    return env


def _build(config: Path, workdir: str, out: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([*CORPUS, "build", "--config", str(config), "--workdir", workdir, "--out", out,
                           "--workers", "2"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _version_line(stdout: str) -> str:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("corpus demo version "))
    return line.split()[3].rstrip(":")


def _files(root) -> dict[str, bytes]:
    root = io.as_path(root)
    out = {}
    for f in sorted(root.rglob("*"), key=str):
        if f.is_file():
            rel = f.relative_to(root)
            out[rel if isinstance(rel, str) else rel.as_posix()] = f.read_bytes()
    return out


def _copy_tree(src: Path, dst: str) -> None:
    for f in sorted(src.rglob("*")):
        if f.is_file():
            io.copy_file(f, io.as_path(dst) / f.relative_to(src).as_posix())


ARCHIVE = "scratch/extract-reddit/reddit/archive"


@pytest.mark.slow
def test_demo_build_on_s3_is_the_local_build_and_resumes_after_kill(tmp_path, s3_bucket, short_tmp):
    config = _demo_config(tmp_path / "cfg")
    env = _env(short_tmp)

    local = _build(config, str(tmp_path / "local-work"), str(tmp_path / "local-out"), tmp_path / "cwd-local", env)
    assert local.returncode == 0, local.stderr[-3000:]
    version = _version_line(local.stdout)

    # The Reddit-linked pages carry their fetch time: reuse the fetch archive, as a user reproducing a
    # version elsewhere would (README), so that the S3 build sees the same pages.
    work, out = f"{s3_bucket}/work", f"{s3_bucket}/out"
    _copy_tree(tmp_path / "local-work" / ARCHIVE, f"{work}/{ARCHIVE}")

    # Killed with SIGKILL once the dedup stage has committed a task, then run again.
    cwd = tmp_path / "cwd-s3"
    cwd.mkdir()
    log = tmp_path / "killed-build.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([*CORPUS, "build", "--config", str(config), "--workdir", work, "--out", out,
                                 "--workers", "2"], cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 300
    stages = io.as_path(work) / "stages" / "dedup"
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if stages.exists() and any(p.name.endswith(".json") and "/_tasks/" in str(p) for p in stages.rglob("*")):
                break
            time.sleep(0.2)
        killed = proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed, "the build ended before it could be killed:\n" + log.read_text()[-3000:]
    assert not (io.as_path(out) / "demo").exists() or not any(
        p.name == "manifest.json" for p in (io.as_path(out) / "demo").rglob("*"))

    again = _build(config, work, out, cwd, env)
    assert again.returncode == 0, again.stderr[-3000:]
    s3_version = _version_line(again.stdout)
    if s3_version != version:  # say which step or file differs
        lm = io.read_json(tmp_path / "local-out" / "demo" / version / "manifest.json")
        sm = io.read_json(f"{out}/demo/{s3_version}/manifest.json")
        steps = [(a["name"], a["key"], b["key"]) for a, b in zip(lm["stages"], sm["stages"], strict=True)]
        files = [(a["path"], b["path"]) for a, b in zip(lm["outputs"], sm["outputs"], strict=False) if a != b]
        pytest.fail(f"versions differ: {version} local, {s3_version} on S3; steps {steps}; files {files[:5]}")
    assert "reused" in again.stdout and "(0 reused" not in again.stdout.split("langid:")[1].splitlines()[0]

    # Byte for byte: every file of the version but the two that record where and when it ran.
    local_files = _files(tmp_path / "local-out" / "demo" / version)
    s3_files = _files(f"{out}/demo/{version}")
    assert sorted(local_files) == sorted(s3_files)
    for name, data in local_files.items():
        if name not in ("manifest.json", "run.json"):
            assert s3_files[name] == data, name
    lm, sm = io.read_json(tmp_path / "local-out" / "demo" / version / "manifest.json"), io.read_json(
        f"{out}/demo/{version}/manifest.json")
    for key in ("outputs", "ledger", "rejected_ledger", "tokens", "totals", "stages", "config"):
        assert lm[key] == sm[key], key

    # Nothing written to local disk outside the temp/cache directory: the working directory and the
    # config's directory hold what they held before.
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in config.parent.iterdir()) == ["demo.toml"]


def test_missing_bucket_is_one_line_naming_the_path(tmp_path, s3_env, short_tmp):
    config = _demo_config(tmp_path / "cfg")
    env = _env(short_tmp, s3_env)
    res = _build(config, "s3://no-such-bucket/work", "s3://no-such-bucket/out", tmp_path / "cwd", env)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "s3://no-such-bucket/work" in err[0] and "AWS_" in err[0]


def test_unreachable_endpoint_is_one_line(tmp_path, s3_env, short_tmp):
    config = _demo_config(tmp_path / "cfg")
    env = _env(short_tmp, {**s3_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "CORPUSFORGE_S3_RETRIES": "2"})
    res = _build(config, "s3://bucket/work", "s3://bucket/out", tmp_path / "cwd", env)
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "s3://bucket/work" in err[0] and "AWS_ENDPOINT_URL" in err[0]
