"""Run a build on a two-node `ray.cluster_utils.Cluster` (used by test_cluster.py in a subprocess,
since a test session's driver is already attached to its own local Ray)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from ray.cluster_utils import Cluster

from pipeline.running.build import run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.running.executor import RayExecutor
from pipeline.versions.manifest import write_version


def main(config_path: str, result_path: str, workdir: str = "", out: str = "") -> None:
    # each node its own Ray temp dir, as two machines would have (short: Unix socket paths)
    temp_dirs = [tempfile.mkdtemp(prefix="cfn", dir="/tmp") for _ in range(2)]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "temp_dir": temp_dirs[0]})
    cluster.add_node(num_cpus=1, temp_dir=temp_dirs[1])
    cluster.wait_for_nodes()
    try:
        executor = RayExecutor(address=cluster.address, progress=False)
        config = load_build_config(Path(config_path))
        sources = select_sources(config, None)
        workdir = workdir or config.corpus.workdir
        result = run_build(config, executor, sources=sources, workdir=workdir, log=lambda *_: None)
        version = write_version(config, result, sources=sources, out=out or config.corpus.out, workdir=workdir)
        nodes = len([n for n in executor._ray.nodes() if n["Alive"]])
        sessions = [sorted(p.name for p in Path(d).glob("session_2*")) for d in temp_dirs]
        Path(result_path).write_text(json.dumps({"manifest": str(version.manifest_path), "nodes": nodes,
                                                 "sessions_per_temp_dir": sessions}))
        executor.shutdown()
    finally:
        cluster.shutdown()
        for d in temp_dirs:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
