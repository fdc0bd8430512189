"""A build on a two-node Ray cluster: tasks run on both nodes, output identical to one node's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.shards import read_json
from pipeline.running.build import run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.versions.manifest import write_version
from tests.conftest import REPO
from tests.pipeline.helpers import write_config, write_jsonl_inputs


def _config(tmp_path: Path, name: str, record_dir: Path) -> Path:
    record_dir.mkdir(parents=True, exist_ok=True)
    extra = f'\n[stages."tests.pipeline.stages_for_tests:NodeRecorderStage"]\nrecord_dir = "{record_dir}"\n'
    return write_config(tmp_path / f"{name}.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / f"w-{name}",
                        out=tmp_path / f"o-{name}", extra=extra)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["local", "s3"])
def test_two_node_build_uses_both_nodes_and_matches_one_node(tmp_path, ray_executor, storage, request):
    """With `s3`, the work and output directories live on a real S3 server (moto on 127.0.0.1) that
    both nodes reach through the standard AWS_* settings; the output equals the local one-node build."""
    write_jsonl_inputs(tmp_path / "in", 6, 25)
    cluster_cfg = _config(tmp_path, "cluster", tmp_path / "nodes-cluster")
    where = []
    if storage == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        where = [f"{bucket}/work", f"{bucket}/out"]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.pipeline.running.cluster_build", str(cluster_cfg), str(tmp_path / "result.json"),
         *where],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["nodes"] == 2
    assert all(len(sessions) == 1 for sessions in result["sessions_per_temp_dir"])  # each node its own temp dir
    nodes_used = {p.read_text() for p in (tmp_path / "nodes-cluster").iterdir()}
    assert len(nodes_used) == 2, f"tasks ran on {len(nodes_used)} node(s)"

    one_cfg = _config(tmp_path, "one", tmp_path / "nodes-one")
    config = load_build_config(one_cfg)
    sources = select_sources(config, None)
    res = run_build(config, ray_executor, sources=sources, workdir=Path(config.corpus.workdir), log=lambda *_: None)
    one = write_version(config, res, sources=sources, out=Path(config.corpus.out), workdir=Path(config.corpus.workdir))

    if storage == "s3":
        assert result["manifest"].startswith("s3://")
        assert not (tmp_path / "w-cluster").exists()
        # only the committed-manifest copy, which the config sends to a local directory
        assert [p.name for p in (tmp_path / "o-cluster").iterdir()] == ["manifests"]
    cluster_manifest = read_json(result["manifest"])
    one_manifest = read_json(one.manifest_path)
    assert cluster_manifest["outputs"] == one_manifest["outputs"]
    assert cluster_manifest["ledger"] == one_manifest["ledger"]
    for a, b in zip(cluster_manifest["stages"], one_manifest["stages"], strict=True):
        assert a["sources"] == b["sources"]
