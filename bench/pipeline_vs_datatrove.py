"""End to end, side by side: corpusforge's `corpus build` and the equivalent datatrove pipeline.

    .venv/bin/python -m bench.pipeline_vs_datatrove [--peer-scales 1,4] [--scales 1,4,16] [--skip-datatrove]

Input: the WARCs of bench/make_warc.py (1,186 real pages, and 4x / 16x copies with distinct URLs and
lightly mutated text), built if missing. Both sides do WARC -> trafilatura -> fastText language ID (en,
score >= 0.5, the same lid.176.ftz file) -> Gopher repetition + quality rules -> MinHash dedup (word
5-grams, 25 bands x 5 rows) -> tokenization with gpt-neox-20b's tokenizer.json, on 2 workers:

* corpusforge: `corpus build --config <generated TOML> --workdir <fresh> --out <fresh> --workers N` (a
  local Ray instance with N CPUs). "equivalent" turns off the cc source's raw-HTML language prefilter,
  so every page goes through trafilatura as in datatrove; "default" keeps it (pages clearly in another
  language are skipped before extraction). Quality runs only the Gopher families for cc, as datatrove.
* datatrove: bench/datatrove_pipeline.py inside its own venv (../bench-venvs/datatrove, created here
  if missing), LocalPipelineExecutor tasks=2 workers=2.

Runs: at each of --peer-scales, corpusforge "equivalent" and datatrove; at each of --scales,
corpusforge "default" (the scaling series), and at the first of them also with `--workers 1`.

Each run is one fresh process tree, timed once (the machine is shared: see bench/RESULTS.md). Memory
and CPU are sampled from /proc every 0.2 s over the whole tree (Ray's GCS, raylet and workers;
datatrove's pool and extractor sandboxes): peak of the summed RSS, peak of the summed PSS (shared
pages counted once), and CPU seconds. docs/s per core = WARC records / wall seconds / workers.
Results: bench/results/pipeline_vs_datatrove.json; a Markdown summary is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import DATATROVE_VENV, ensure_venv, save_results
from bench.make_warc import build as build_warcs
from bench.make_warc import source_pages

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "_work"
RESULTS = REPO / "bench" / "results" / "pipeline_vs_datatrove.json"
TOKENIZER = REPO.parent / "shared" / "data" / "tokenizers" / "gpt-neox-20b.tokenizer.json"
PEER_VENV = DATATROVE_VENV
# datatrove[processing] lacks what its WarcReader ([io]) and English word tokenizer (spacy) import, and
# trafilatura 1.x needs lxml_html_clean with lxml >= 5.2.
PEER_PACKAGES = ["datatrove[io,processing]", "spacy", "lxml_html_clean", "datasketch"]
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_STEP_RE = re.compile(r"^(extract:\w+|langid|quality|dedup): .*docs in ([\d,]+), kept ([\d,]+), rejected ([\d,]+)")
_TOKENS_RE = re.compile(r"^outputs: ([\d,]+) tokens")


class TreeSampler(threading.Thread):
    """Polls /proc for every descendant of `root`: peak summed RSS and PSS, CPU seconds, process count."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stop = threading.Event()
        self.cpu_ticks: dict[int, int] = {}
        self.peak_rss = self.peak_pss = self.peak_single_rss = self.peak_procs = 0

    def _tree(self) -> list[tuple[int, int, int]]:
        """(pid, cpu ticks, rss bytes) of root and its descendants."""
        parent: dict[int, int] = {}
        info: dict[int, tuple[int, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            pid = int(entry)
            parent[pid] = int(fields[1])
            info[pid] = (int(fields[11]) + int(fields[12]), int(fields[21]) * _PAGE)
        members, frontier = {self.root}, [self.root]
        children: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in members:
                    members.add(child)
                    frontier.append(child)
        return [(pid, *info[pid]) for pid in members if pid in info]

    def sample(self) -> None:
        tree = self._tree()
        pss = 0
        for pid, ticks, _ in tree:
            self.cpu_ticks[pid] = max(ticks, self.cpu_ticks.get(pid, 0))
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                        break
            except OSError:
                pass
        rss = sum(r for _, _, r in tree)
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.peak_single_rss = max([self.peak_single_rss] + [r for _, _, r in tree])
        self.peak_procs = max(self.peak_procs, len(tree))

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)

    def summary(self) -> dict:
        mb = 1 << 20
        return {"peak_tree_rss_mb": round(self.peak_rss / mb), "peak_tree_pss_mb": round(self.peak_pss / mb),
                "peak_single_process_rss_mb": round(self.peak_single_rss / mb), "peak_processes": self.peak_procs,
                "cpu_s": round(sum(self.cpu_ticks.values()) / _CLK_TCK, 1)}


def measure(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict:
    """Run `cmd` (stdout+stderr to `log`) under the tree sampler; wall seconds and the sampler's numbers."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - t
        sampler.stop.set()
        sampler.join()
    if rc != 0:
        raise RuntimeError(f"{cmd[0]} ... exited with {rc}; see {log}")
    return {"wall_s": round(wall, 2), **sampler.summary(), "started": t}


# ------------------------------------------------------------------------------------------ ours


def ours_config(warc_dir: Path, prefilter: bool) -> str:
    return f"""[corpus]
name = "bench"
seed = 0
manifests_dir = ""

[sources.cc]
inputs = ["{warc_dir}/*.warc.gz"]
languages = {'["en"]' if prefilter else "[]"}  # the raw-HTML language prefilter {'on' if prefilter else 'off'}

[stages.langid]  # cc: en, score >= 0.5

[stages.quality]
rules = {{ cc = ["gopher_quality", "gopher_repetition"] }}

[stages.dedup]  # exact + MinHash-LSH, threshold 0.5, 128 permutations (25 bands x 5 rows)

[outputs]
text_shards = false

[outputs.tokenize]
tokenizer = "{TOKENIZER}"
"""


def run_ours(warc_dir: Path, records: int, workers: int, prefilter: bool, label: str) -> dict:
    run_dir = WORK / "runs" / label
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config = run_dir / "config.toml"
    config.write_text(ours_config(warc_dir, prefilter))
    cmd = [str(REPO / ".venv" / "bin" / "corpus"), "build", "--config", str(config), "--workdir",
           str(run_dir / "work"), "--out", str(run_dir / "out"), "--workers", str(workers)]
    print(f"== {label}: {' '.join(cmd)}", flush=True)
    result = measure(cmd, run_dir / "log.txt")
    started = result.pop("started")
    counts: dict[str, int] = {"records_read": records}
    for line in (run_dir / "log.txt").read_text().splitlines():
        if m := _STEP_RE.match(line):
            step, _, kept, _ = m.groups()
            counts[{"extract:cc": "extracted", "langid": "langid_kept", "quality": "quality_kept",
                    "dedup": "dedup_kept"}[step]] = int(kept.replace(",", ""))
        elif m := _TOKENS_RE.match(line):
            counts["tokens"] = int(m.group(1).replace(",", ""))
    stages = run_dir / "work" / "stages"
    extract_stage = json.loads(next(stages.glob("extract-cc/*/_stage.json")).read_text())
    return {"tool": "corpusforge", "label": label, "scale": records // len(source_pages()), "workers": workers,
            "prefilter": prefilter, "records": records, **result, "counts": counts,
            "docs_per_s_per_core": round(records / result["wall_s"] / workers, 2),
            "extract_rejections": extract_stage["sources"]["cc"]["reasons"],
            "timeline_s": _timeline(stages, started)}


def _timeline(stages: Path, started: float) -> dict[str, float]:
    """Seconds from launch to the inputs planned (imports, Ray up, WARCs hashed) and to each step's end."""
    t0 = started + time.time() - time.perf_counter()  # perf_counter -> epoch
    planned = stages.parent / "cache" / "fingerprints.json"
    out = {"start_and_plan": round(planned.stat().st_mtime - t0, 1)} if planned.exists() else {}
    for name, pattern in [("extract", "extract-cc/*/_stage.json"), ("langid", "langid/*/_stage.json"),
                          ("quality", "quality/*/_stage.json"), ("dedup", "dedup/*/_stage.json"),
                          ("outputs", "outputs/*/_outputs.json")]:
        hits = list(stages.glob(pattern))
        if hits:
            out[f"{name}_done"] = round(hits[0].stat().st_mtime - t0, 1)
    return out


# ------------------------------------------------------------------------------------------ datatrove


def ensure_peer_venv() -> Path | str:
    """The datatrove venv's python, created and installed if missing; or why it could not be."""
    return ensure_venv(PEER_VENV, PEER_PACKAGES, "datatrove, warcio, cchardet, magic, spacy, lxml_html_clean, trafilatura")


def run_datatrove(python: Path, warc_dir: Path, records: int, workers: int, label: str) -> dict:
    from filters.langid import bundled_model_path

    run_dir = WORK / "runs" / label
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [str(python), str(REPO / "bench" / "datatrove_pipeline.py"), "pipeline", "--warc-dir", str(warc_dir),
           "--work", str(run_dir / "work"), "--tokenizer", str(TOKENIZER), "--lid-model", str(bundled_model_path()),
           "--tasks", str(workers), "--workers", str(workers)]
    print(f"== {label}: {' '.join(cmd)}", flush=True)
    env = {**os.environ, "HF_HOME": str(WORK / "hf-home")}  # datatrove's asset cache (its copy of lid.176)
    result = measure(cmd, run_dir.parent / f"{label}.log", env=env)
    result.pop("started")
    report = json.loads((run_dir.parent / f"{label}.log").read_text().strip().splitlines()[-1])
    counts = {**report["counts"], "records_read": records}
    counts["quality_kept"] = counts.pop("gopher_quality_kept")
    return {"tool": "datatrove", "label": label, "scale": records // len(source_pages()), "workers": workers,
            "records": records, **result, "counts": counts,
            "docs_per_s_per_core": round(records / result["wall_s"] / workers, 2),
            "step_seconds": report["seconds"], "stats": report["stats"], "versions": report["versions"]}


# ------------------------------------------------------------------------------------------ report


def machine() -> dict:
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    free = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "free_g": free, "load_before": load,
            "python": platform.python_version(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "corpusforge_versions": {p: version(p) for p in
                                     ("trafilatura", "fasttext", "tokenizers", "ray", "datasketch", "numpy", "pyarrow")}}


def ray_startup_seconds() -> float:
    """A bare `ray.init(num_cpus=2)` + shutdown in a fresh interpreter: the fixed cost of every build."""
    code = "import time,ray; t=time.perf_counter(); ray.init(num_cpus=2, include_dashboard=False); " \
           "ray.shutdown(); print(time.perf_counter()-t)"
    out = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return round(float(out.stdout.strip().splitlines()[-1]), 2) if out.returncode == 0 else -1.0


def markdown(runs: list[dict]) -> str:
    lines = ["| run | tool | scale | workers | records | wall s | docs/s/core | CPU s | peak tree RSS MB "
             "| peak tree PSS MB | extracted | en | quality | dedup | tokens |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['label']} | failed: {r['error'][:80]} |")
            continue
        c = r["counts"]
        lines.append(f"| {r['label']} | {r['tool']} | {r['scale']}x | {r['workers']} | {r['records']:,} | "
                     f"{r['wall_s']} | {r['docs_per_s_per_core']} | {r['cpu_s']} | {r['peak_tree_rss_mb']:,} | "
                     f"{r['peak_tree_pss_mb']:,} | {c.get('extracted', 0):,} | {c.get('langid_kept', 0):,} | "
                     f"{c.get('quality_kept', 0):,} | {c.get('dedup_kept', 0):,} | {c.get('tokens') or 0:,} |")
    return "\n".join(lines)


def attempt(runs: list[dict], fn, *args) -> None:
    """Run one measurement; a failure is recorded (and printed) and the others still run."""
    try:
        runs.append(fn(*args))
    except Exception as exc:  # noqa: BLE001 - one failed run must not lose the others' numbers
        print(f"FAILED {args[-1]}: {exc!r}", flush=True)
        runs.append({"label": args[-1], "error": repr(exc)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-scales", default="1,4", help="scales of the side-by-side runs (equivalent settings)")
    ap.add_argument("--scales", default="1,4,16", help="scales of corpusforge's scaling runs (default settings)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-datatrove", action="store_true", help="the side-by-side scales run corpusforge only")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--out", default=str(RESULTS), help="results file (another name keeps the full series)")
    args = ap.parse_args()
    peer_scales = [int(s) for s in args.peer_scales.split(",") if s]
    scales = [int(s) for s in args.scales.split(",") if s]
    n_pages = len(source_pages())
    warcs = build_warcs(sorted(set(scales) | set(peer_scales)), WORK / "warc")
    result: dict = {"machine": machine(), "pages": n_pages, "ray_startup_s": ray_startup_seconds(), "runs": []}
    peer = None if args.skip_datatrove or not peer_scales else ensure_peer_venv()
    if isinstance(peer, str):
        print(f"datatrove: {peer}")
        result["datatrove_error"] = peer
    runs = result["runs"]
    for scale in peer_scales:
        attempt(runs, run_ours, warcs[scale], n_pages * scale, args.workers, False, f"corpusforge-equivalent-{scale}x")
        if isinstance(peer, Path):
            attempt(runs, run_datatrove, peer, warcs[scale], n_pages * scale, args.workers, f"datatrove-{scale}x")
        print(markdown(runs), flush=True)
    for scale in scales:
        attempt(runs, run_ours, warcs[scale], n_pages * scale, args.workers, True, f"corpusforge-default-{scale}x")
        if scale == scales[0] and args.workers > 1:
            attempt(runs, run_ours, warcs[scale], n_pages * scale, 1, True, f"corpusforge-default-{scale}x-1worker")
        print(markdown(runs), flush=True)
    by_label = {r["label"]: r for r in runs if "error" not in r}
    result["ratios_corpusforge_over_datatrove_docs_per_s"] = {
        f"{s}x": round(by_label[f"corpusforge-equivalent-{s}x"]["docs_per_s_per_core"]
                       / by_label[f"datatrove-{s}x"]["docs_per_s_per_core"], 3)
        for s in peer_scales if f"datatrove-{s}x" in by_label}
    print("ratios (corpusforge / datatrove docs/s):", result["ratios_corpusforge_over_datatrove_docs_per_s"])
    if not args.no_save:
        save_results(Path(args.out), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
