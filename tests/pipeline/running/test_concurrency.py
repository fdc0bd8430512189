"""Two builds started together on one work directory (issue 14, item 1): both publish the whole
corpus, the same version, and neither disturbs the other's files."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline.core import io
from tests.conftest import REPO
from tests.pipeline.helpers import write_config, write_jsonl_inputs


def test_two_builds_on_one_workdir_publish_the_same_whole_version(tmp_path):
    write_jsonl_inputs(tmp_path / "in", 6, 30)
    work = tmp_path / "work"
    procs = []
    for name in ("a", "b"):
        cfg = write_config(tmp_path / f"{name}.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=work,
                           out=tmp_path / f"out-{name}", sleep_per_shard=0.2, extra="\n[stages.dedup]\n")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pipeline", "build", "--config", str(cfg), "--workers", "1"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    for _out, err, code in results:
        assert code == 0, err[-3000:]
    versions = [next(ln for ln in out.splitlines() if ln.startswith("corpus testcorpus version")).split()[3].rstrip(":")
                for out, _, _ in results]
    assert versions[0] == versions[1]
    manifests = [io.read_json(tmp_path / f"out-{n}" / "testcorpus" / versions[0] / "manifest.json") for n in "ab"]
    assert manifests[0]["outputs"] == manifests[1]["outputs"]
    assert manifests[0]["totals"]["docs"] > 100
    for n in "ab":
        verify = subprocess.run([sys.executable, "-m", "pipeline", "verify", str(tmp_path / f"out-{n}" / "testcorpus" / versions[0])],
                                cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        assert verify.returncode == 0, verify.stderr
