"""The whole `corpus extract --source cc --workers 1` command next to `trafilatura.extract` in one process.

    .venv/bin/python -m bench.extract_command [--rounds 2] [--extractors hybrid,trafilatura,resiliparse]

Input: the 1x WARCs of bench/make_warc.py (1,186 real pages of ../shared/data/extraction). The language
prefilter is off (`languages = []`), so every page is extracted, as a user extracting everything runs it.

* command: `corpus extract --source cc <warcs> --out <fresh dir> --workers 1 --config <extractor>`, timed
  as a user sees it: wall seconds from launch to exit (interpreter start, imports, planning, WARC
  reading, decoding, extraction, Parquet writing; no Ray with one worker).
* trafilatura: a fresh interpreter reads the same response payloads with the project's WARC reader, then
  times only the loop `trafilatura.extract(payload)` with trafilatura's defaults (it decodes the bytes
  itself): the most favourable measure for the peer.

Rounds interleave the runs, so that load from other work on the machine hits them alike; ratios are per
round: pages per wall second (the command's whole run over trafilatura's loop), and pages per CPU second
(the command's process over trafilatura's loop), which load from other work disturbs less. Results: bench/results/extract_command.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import save_results
from bench.make_warc import build as build_warcs
from bench.make_warc import source_pages

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "_work" / "extract_command"
RESULTS = REPO / "bench" / "results" / "extract_command.json"
PYTHON = REPO / ".venv" / "bin" / "python"

_PEER = r"""
import json, sys, time
from pathlib import Path
from sources.warc import WarcRecord, iter_records
payloads = []
for path in sorted(Path(sys.argv[1]).glob("*.warc.gz")):
    for rec in iter_records(path, path.name):
        if isinstance(rec, WarcRecord) and rec.rec_type == "response":
            payloads.append((rec.payload, rec.uri))
import trafilatura
t = time.perf_counter(); c = time.process_time()
texts = [trafilatura.extract(p, url=u) for p, u in payloads]
print(json.dumps({"pages": len(payloads), "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                  "extracted": sum(1 for x in texts if x)}))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(warc_dir: Path, extractor: str, label: str) -> dict:
    run_dir = WORK / label
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config = run_dir / "config.toml"
    config.write_text(f'[sources.cc]\nlanguages = []\n\n[sources.cc.html]\nextractor = "{extractor}"\n')
    cmd = [str(REPO / ".venv" / "bin" / "corpus"), "extract", "--source", "cc", *map(str, sorted(warc_dir.glob("*.warc.gz"))),
           "--out", str(run_dir / "out"), "--workers", "1", "--config", str(config)]
    t, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    stage = json.loads((run_dir / "out" / "_stage.json").read_text())
    counts = stage["sources"]["cc"]
    return {"label": label, "extractor": extractor, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "kept": counts.get("kept_docs"),
            "rejected": counts.get("reasons"), "summary": proc.stdout.strip().splitlines()[-1:]}


def run_peer(warc_dir: Path) -> dict:
    proc = subprocess.run([str(PYTHON), "-c", _PEER, str(warc_dir)], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"trafilatura in-process: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else round((values[mid - 1] + values[mid]) / 2, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--extractors", default="hybrid,trafilatura,resiliparse")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    warc_dir = build_warcs([1], REPO / "bench" / "_work" / "warc")[1]
    pages = len(source_pages())
    extractors = [e for e in args.extractors.split(",") if e]
    rounds = []
    for i in range(args.rounds):
        peer = run_peer(warc_dir)
        peer_rate = peer["pages"] / peer["wall_s"]
        row: dict = {"trafilatura_in_process": {**peer, "pages_per_s": round(peer_rate, 2)}, "command": {}}
        print(f"round {i}: trafilatura.extract defaults in-process {peer_rate:.1f} pages/s", flush=True)
        for extractor in extractors:
            r = run_command(warc_dir, extractor, f"{extractor}-{i}")
            r["pages_per_s"] = round(pages / r["wall_s"], 2)
            r["ratio_to_trafilatura"] = round(r["pages_per_s"] / peer_rate, 3)
            r["cpu_ratio_to_trafilatura"] = round(peer["cpu_s"] / r["cpu_s"], 3)
            row["command"][extractor] = r
            print(f"round {i}: corpus extract ({extractor}) {r['wall_s']} s, {r['pages_per_s']} pages/s, "
                  f"{r['ratio_to_trafilatura']}x trafilatura ({r['cpu_ratio_to_trafilatura']}x per CPU second)",
                  flush=True)
        rounds.append(row)
    result = {"pages": pages, "python": sys.version.split()[0], "rounds": rounds,
              "load_after": Path("/proc/loadavg").read_text().split()[:3],
              "median_ratio": {e: _median([r["command"][e]["ratio_to_trafilatura"] for r in rounds]) for e in extractors},
              "median_cpu_ratio": {e: _median([r["command"][e]["cpu_ratio_to_trafilatura"] for r in rounds])
                                   for e in extractors}}
    print("ratios (command pages/s / trafilatura in-process pages/s):", result["median_ratio"])
    if not args.no_save:
        save_results(RESULTS, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
