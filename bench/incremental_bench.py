"""Growing a corpus: adding one more WARC to a 16x build, against the full build (issue 17).

    .venv/bin/python -m bench.incremental_bench [--scale 16] [--workers 2] [--no-fresh] [--cluster]

Input: bench/make_warc.py's WARCs. The end-to-end pipeline of bench/pipeline_vs_datatrove.py (WARC ->
trafilatura -> lid.176 -> Gopher -> MinHash -> GPT-NeoX tokens) runs three times, each a whole
`corpus build` command timed from launch to exit:

1. full: `--scale` copies of the page set (16x: 18,976 pages in 64 WARCs), in a fresh work directory;
2. grown: the same inputs plus one more copy (1/16 more data: 1,186 pages in 4 more WARCs), in the same
   work directory, so every unit, shard, signature and scan of the first build is found by content;
   `--grown-runs` times (3), each from a copy of the work and output directories the full build left, since
   on a shared machine one grown build of ~15 s moves by seconds from run to run: the median is reported,
   and every run;
3. fresh (unless --no-fresh): the grown inputs from scratch in another work directory, to check that the
   grown build published the same version, byte for byte.

Reported: wall seconds of each, median grown / full (the issue asks <= 0.15), and per step the tasks
reused and computed and the task seconds of the (median) grown build. Results: bench/results/incremental_bench.json.

Each command starts (and stops) its own local Ray instance, ~4 s of a build. With `--cluster`, the builds
instead join a `ray start --head` (on 127.0.0.1, `--workers` CPUs) that the bench starts first and stops
after, by pid, as a corpus grown on a running cluster is built: results in incremental_bench_cluster.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import save_results
from bench.make_warc import build as build_warcs
from bench.make_warc import source_pages, write_copy_files
from bench.pipeline_vs_datatrove import ours_config

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "_work" / "incremental"
WARCS = REPO / "bench" / "_work" / "warc"
RESULTS = REPO / "bench" / "results" / "incremental_bench.json"
CLUSTER_RESULTS = REPO / "bench" / "results" / "incremental_bench_cluster.json"


@dataclass
class _Cluster:
    address: str
    env: dict[str, str]


@contextlib.contextmanager
def _running_cluster(workers: int):
    """A `ray start --head` for the builds to join, stopped by pid afterwards (tests/pipeline/running/rayhead.py)."""
    from tests.pipeline.running.rayhead import clean_env, ray_head

    short = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))  # Ray's socket paths live under it
    try:
        env = clean_env(WORK / "ray-home")
        with ray_head(short / "ray", env, num_cpus=workers) as head:
            yield _Cluster(head.gcs_address, env)
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _build(inputs: Path, workdir: Path, out: Path, workers: int, label: str, cluster: Any = None) -> dict:
    config = WORK / f"{label}.toml"
    config.write_text(ours_config(inputs, prefilter=True))
    cmd = [sys.executable, "-m", "pipeline", "build", "--config", str(config), "--workdir", str(workdir),
           "--out", str(out)]
    cmd += ["--ray-address", cluster.address] if cluster else ["--workers", str(workers)]
    print(f"== {label}: {' '.join(cmd)}", flush=True)
    t, started = time.perf_counter(), time.time()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=cluster.env if cluster else None)
    wall = time.perf_counter() - t
    (WORK / f"{label}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{proc.stderr[-3000:]}")
    manifest = next(line.split("manifest: ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("manifest: "))
    run = json.loads((Path(manifest).parent / "run.json").read_text())
    outputs = json.loads(Path(manifest).read_text())["outputs"]
    return {"label": label, "wall_s": round(wall, 2), "version": json.loads(Path(manifest).read_text())["version"],
            "reused": run["reused"], "computed": run["computed"], "task_seconds": run["seconds"],
            "outputs_sha256": {o["path"]: o["sha256"] for o in outputs},
            "log_lines": [ln for ln in proc.stdout.splitlines() if ": signatures of" in ln or ": scans of" in ln],
            "timeline_s": _timeline(workdir, started, time.time())}


def _timeline(workdir: Path, started: float, finished: float) -> dict[str, float]:
    """Seconds from launch at which each step this build used was finished (its `_stage.json` or
    `_outputs.json` written), from the build's record of the directories it used; and the exit."""
    record = json.loads(max((workdir / "builds").glob("*.json"), key=lambda p: p.stat().st_mtime).read_text())
    out: dict[str, float] = {}
    for rel in record["uses"]:
        for name in ("_stage.json", "_outputs.json"):
            done = workdir / rel / name
            if done.exists() and done.stat().st_mtime >= started:
                out[rel.split("/")[1]] = round(done.stat().st_mtime - started, 2)
    return {**dict(sorted(out.items(), key=lambda kv: kv[1])), "exit": round(finished - started, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-fresh", action="store_true", help="skip the from-scratch build of the grown inputs")
    ap.add_argument("--cluster", action="store_true", help="builds join a running `ray start --head` (started here)")
    ap.add_argument("--grown-runs", type=int, default=3, help="grown builds, each from a copy of the full build's state")
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    base = build_warcs([args.scale], WARCS)[args.scale]
    grown_dir = WORK / "inputs-grown"
    grown_dir.mkdir()
    extra = write_copy_files(source_pages(), args.scale, WARCS / "copies")  # the next copy: 1/scale more
    for src in [*sorted(base.glob("*.warc.gz")), *extra]:
        (grown_dir / src.name).hardlink_to(src)
    full_dir = WORK / "inputs-full"
    full_dir.mkdir()
    for src in sorted(base.glob("*.warc.gz")):
        (full_dir / src.name).hardlink_to(src)

    with _running_cluster(args.workers) if args.cluster else contextlib.nullcontext() as cluster:
        full = _build(full_dir, WORK / "work", WORK / "out", args.workers, "full", cluster)
        for d in ("work", "out"):  # the state every grown build starts from, copied as it is (`cp -a`: hard links too)
            (WORK / d).rename(WORK / f"{d}-after-full")
        grown_runs = []
        for _ in range(max(1, args.grown_runs)):
            for d in ("work", "out"):
                shutil.rmtree(WORK / d, ignore_errors=True)
                subprocess.run(["cp", "-a", str(WORK / f"{d}-after-full"), str(WORK / d)], check=True)
            os.sync()  # the copy's writeback is the bench's, not the build's: it must not run during the build
            time.sleep(1)
            # the same work directory, the inputs grown by one copy (the config's input directory differs too)
            grown_runs.append(_build(grown_dir, WORK / "work", WORK / "out", args.workers, "grown", cluster))
        if not args.no_fresh:
            fresh = _build(grown_dir, WORK / "fresh-work", WORK / "fresh-out", args.workers, "fresh", cluster)
    by_wall = sorted(grown_runs, key=lambda r: r["wall_s"])
    grown = by_wall[len(by_wall) // 2]  # the median run (of an even count, the upper one)
    runs = [full, *grown_runs] + ([] if args.no_fresh else [fresh])
    result = {
        "scale": args.scale, "workers": args.workers, "pages_full": len(source_pages()) * args.scale,
        "ray": "a running cluster (ray start --head)" if args.cluster else "a local instance per command",
        "pages_added": len(source_pages()),
        "full_wall_s": full["wall_s"], "grown_wall_s": grown["wall_s"],
        "grown_over_full": round(grown["wall_s"] / full["wall_s"], 3),
        "grown_runs_wall_s": [r["wall_s"] for r in grown_runs],
        "grown_runs_over_full": [round(r["wall_s"] / full["wall_s"], 3) for r in grown_runs],
        "grown_runs_same_version": len({r["version"] for r in grown_runs}) == 1,
        "grown_steps": {step: {"reused": grown["reused"].get(step, 0), "computed": grown["computed"].get(step, 0),
                               "task_s": grown["task_seconds"].get(step, 0.0),
                               "full_task_s": full["task_seconds"].get(step, 0.0)}
                        for step in grown["task_seconds"]},
        "grown_log": grown["log_lines"],
        "grown_timeline_s": grown["timeline_s"],
        "runs": [{k: v for k, v in r.items() if k != "outputs_sha256"} for r in runs],
    }
    if not args.no_fresh:
        result["fresh_wall_s"] = fresh["wall_s"]
        result["grown_equals_fresh"] = all(r["version"] == fresh["version"] and r["outputs_sha256"] == fresh["outputs_sha256"]
                                           for r in grown_runs)  # every grown run
    save_results(CLUSTER_RESULTS if args.cluster else RESULTS, result)
    print(f"full {full['wall_s']:.1f} s, grown (+1/{args.scale}) {grown['wall_s']:.1f} s (median of "
          f"{', '.join(f'{w:.1f}' for w in result['grown_runs_wall_s'])}): {result['grown_over_full']:.3f} of the full build")
    for step, s in result["grown_steps"].items():
        print(f"  {step:20s} reused {s['reused']:4d} computed {s['computed']:4d}  task s {s['task_s']:8.2f} "
              f"(full {s['full_task_s']:8.2f})")
    print("  grown build, seconds from launch to each step's end: " + ", ".join(
        f"{k} {v}" for k, v in grown["timeline_s"].items()))
    for line in grown["log_lines"]:
        print(f"  {line}")
    if "grown_equals_fresh" in result:
        print(f"grown == from scratch: {result['grown_equals_fresh']} (fresh {result['fresh_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
