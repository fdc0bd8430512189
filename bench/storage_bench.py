"""Work and output directories on object storage vs local disk, and the capacity figures of docs/cluster.md.

    .venv/bin/python -m bench.storage_bench [--scale 1] [--workers 2] [--rounds 2]

Input: bench/make_warc.py's WARCs (1,186 real pages at scale 1). The same `corpus build` (the 1x end-to-end
pipeline of bench/pipeline_vs_datatrove.py: WARC -> trafilatura -> lid.176 -> Gopher -> MinHash -> GPT-NeoX
tokens) runs with `--workdir/--out` on local disk and on an S3 API server on 127.0.0.1 (moto's standalone
server, the one the tests use), alternating, `--rounds` times each, in one run; the ratio is of median wall
times. moto keeps objects in memory in one Python process, so this measures our object-storage path (whole
object writes, listing from commit records, remote reads) plus a slow local server, not a real S3.

Capacity: from the local run's work directory, per step, CPU seconds (the sum of its tasks' own seconds,
from `_stage.json`) and bytes written (kept + rejected shards) per 1,000 input documents, and the input
WARC bytes per 1,000 records. docs/cluster.md turns these into the OpenWebText and Pile estimates.
Results: bench/results/storage_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import save_results
from bench.make_warc import build as build_warcs
from bench.pipeline_vs_datatrove import ours_config

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "_work" / "storage"
RESULTS = REPO / "bench" / "results" / "storage_bench.json"


def _build(config: Path, workdir: str, out: str, workers: int, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "pipeline", "build", "--config", str(config), "--workdir", workdir, "--out", out,
           "--workers", str(workers)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t


def capacity(workdir: Path) -> dict[str, dict[str, float]]:
    """Per step: docs in, CPU seconds and bytes written, and both per 1,000 documents in."""
    out: dict[str, dict[str, float]] = {}
    for stage_file in sorted(workdir.glob("stages/*/*/_stage.json")):
        data = json.loads(stage_file.read_text())
        docs_in = data["totals"]["in_docs"]
        written = sum(p.stat().st_size for p in stage_file.parent.rglob("*.parquet"))
        seconds = data.get("task_seconds", 0.0)
        out[data["stage"]] = {
            "docs_in": docs_in, "task_cpu_s": round(seconds, 2), "bytes_written": written,
            "cpu_s_per_1000_docs": round(1000 * seconds / docs_in, 2) if docs_in else 0.0,
            "mb_written_per_1000_docs": round(written / docs_in * 1000 / 1e6, 2) if docs_in else 0.0,
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    sys.path.insert(0, str(REPO))
    from tests.s3server import make_bucket, s3_server

    warc_dir = build_warcs([args.scale], REPO / "bench" / "_work" / "warc")[args.scale]
    warc_bytes = sum(p.stat().st_size for p in warc_dir.glob("*.warc.gz"))
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    config = WORK / "config.toml"
    config.write_text(ours_config(warc_dir, prefilter=True))
    local_s: list[float] = []
    s3_s: list[float] = []
    with s3_server() as s3env:
        env = {**os.environ, **s3env, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        for r in range(args.rounds):
            bucket = f"bench-{r}"
            make_bucket(s3env, bucket)
            local_s.append(_build(config, str(WORK / f"local-{r}" / "work"), str(WORK / f"local-{r}" / "out"),
                                  args.workers, env))
            s3_s.append(_build(config, f"s3://{bucket}/work", f"s3://{bucket}/out", args.workers, env))
            print(f"round {r}: local {local_s[-1]:.1f} s, s3 {s3_s[-1]:.1f} s", flush=True)
    from bench.pipeline_vs_datatrove import machine

    docs = json.loads(next((WORK / "local-0" / "work").glob("stages/extract-cc/*/_stage.json")).read_text())
    records = docs["totals"]["in_docs"]
    result = {
        "scale": args.scale, "workers": args.workers, "rounds": args.rounds, "records": records,
        "local_wall_s": [round(x, 2) for x in local_s], "s3_wall_s": [round(x, 2) for x in s3_s],
        "ratio_s3_over_local": round(statistics.median(s3_s) / statistics.median(local_s), 3),
        "input_mb_per_1000_records": round(warc_bytes / records * 1000 / 1e6, 2),
        "capacity": capacity(WORK / "local-0" / "work"),
        "machine": machine(),
    }
    save_results(RESULTS, result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
