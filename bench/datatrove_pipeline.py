"""The datatrove side of bench/pipeline_vs_datatrove.py and bench/minhash_vs_peers.py.

Runs INSIDE the datatrove virtual environment (../bench-venvs/datatrove, see bench/__init__.py), never the project's; it
imports nothing from corpusforge. Two commands, each printing one JSON object as its last line:

    python bench/datatrove_pipeline.py pipeline --warc-dir D --work W --tokenizer T --lid-model M \
        [--tasks 2] [--workers 2] [--bands 25] [--rows 5]
    python bench/datatrove_pipeline.py signatures --docs docs.jsonl [--bands 25] [--rows 5] [--repeats 3]

`pipeline` is FineWeb's recipe cut to the steps corpusforge's benchmark config runs, with the same
settings: WarcReader -> Trafilatura (favour_precision, no comments, 10 s per page as ours) ->
LanguageFilter (en, score >= 0.5, the same lid.176 model file as ours) -> GopherRepetitionFilter ->
GopherQualityFilter (paper thresholds, as ours) -> JsonlWriter, then MinHash stages 1-4 (word 5-grams,
bands x rows = ours for threshold 0.5 and 128 permutations) and DocumentTokenizer with the same
tokenizer file and EOS token. Each step is a LocalPipelineExecutor with `--tasks` tasks on `--workers`
processes (buckets: one task per band; clustering: one task), run one after the other as datatrove's
own examples do. It reports wall time per step and the documents each step kept (from datatrove's
stats.json).

`signatures` times MinhashDedupSignature on the documents of a JSON Lines file (one {"id", "text"} per
line) on one core: the whole step (shingling, signatures, sorting and writing the per-band files) and
the compute alone (get_shingles + get_signature per document); best of --repeats.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _stats(logging_dir: Path) -> list[dict]:
    """Per pipeline step: name and its counters (merged over tasks) from datatrove's stats.json."""
    data = json.loads((logging_dir / "stats.json").read_text())
    out = []
    for step in data:
        counters = {}
        for k, v in step.get("stats", {}).items():  # a counter, or a metric with its total
            if isinstance(v, int | float):
                counters[k] = v
            elif isinstance(v, dict) and isinstance(v.get("total"), int | float):
                counters[k] = v["total"]
        seconds = step.get("time_stats", {}).get("total")
        out.append({"name": step.get("name"), **counters,
                    **({"time_total_s": round(seconds, 2)} if seconds is not None else {})})
    return out


def run_pipeline(args: argparse.Namespace) -> dict:
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter, LanguageFilter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    lang = LanguageFilter(languages=["en"], language_threshold=0.5)
    lang.model.MODEL_URL = "file://" + str(Path(args.lid_model).resolve())  # ours; no download
    minhash = MinhashConfig(n_grams=5, num_buckets=args.bands, hashes_per_bucket=args.rows, seed=1,
                            hash_config=HashConfig(precision=64))
    steps = {
        "extract+langid+quality": LocalPipelineExecutor(
            pipeline=[
                WarcReader(args.warc_dir, glob_pattern="*.warc.gz", default_metadata={"source": "cc"}),
                Trafilatura(favour_precision=True, timeout=10.0),
                lang,
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                JsonlWriter(str(work / "filtered")),
            ],
            tasks=args.tasks, workers=args.workers, logging_dir=str(work / "logs" / "filter")),
        "minhash1_signatures": LocalPipelineExecutor(
            pipeline=[JsonlReader(str(work / "filtered")),
                      MinhashDedupSignature(output_folder=str(work / "sigs"), config=minhash)],
            tasks=args.tasks, workers=args.workers, logging_dir=str(work / "logs" / "mh1")),
        "minhash2_buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"),
                                          config=minhash)],
            tasks=args.bands, workers=args.workers, logging_dir=str(work / "logs" / "mh2")),
        "minhash3_cluster": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"),
                                          config=minhash)],
            tasks=1, logging_dir=str(work / "logs" / "mh3")),
        "minhash4_filter+tokenize": LocalPipelineExecutor(
            pipeline=[JsonlReader(str(work / "filtered")),
                      MinhashDedupFilter(input_folder=str(work / "remove_ids")),
                      JsonlWriter(str(work / "deduped")),
                      DocumentTokenizer(output_folder=str(work / "tokens"), local_working_dir=str(work / "tok_tmp"),
                                        tokenizer_name_or_path=args.tokenizer, eos_token="<|endoftext|>")],
            tasks=args.tasks, workers=args.workers, logging_dir=str(work / "logs" / "mh4")),
    }
    seconds: dict[str, float] = {}
    stats: dict[str, list[dict]] = {}
    t_all = time.perf_counter()
    for name, executor in steps.items():
        t = time.perf_counter()
        executor.run()
        seconds[name] = round(time.perf_counter() - t, 2)
        stats[name] = _stats(Path(executor.logging_dir.path))
        print(f"datatrove step {name}: {seconds[name]} s", file=sys.stderr, flush=True)
    filt = {s["name"]: s for s in stats["extract+langid+quality"]}
    final = {s["name"]: s for s in stats["minhash4_filter+tokenize"]}

    def kept(step: dict | None) -> int | None:
        return None if step is None else step.get("forwarded", step.get("total", 0) - step.get("dropped", 0))

    def named(table: dict, prefix: str) -> dict | None:
        return next((v for k, v in table.items() if prefix.lower() in (k or "").lower()), None)

    reader = named(filt, "warc")
    counts = {
        "records_read": reader.get("documents") if reader else None,
        "extracted": kept(named(filt, "trafilatura")),
        "langid_kept": kept(named(filt, "language")),
        "gopher_repetition_kept": kept(named(filt, "repetition")),
        "gopher_quality_kept": kept(named(filt, "quality")),
        "dedup_kept": kept(named(final, "stage 4")),
        "tokens": (named(final, "tokeniz") or {}).get("tokens"),
    }
    return {"seconds": seconds, "total_seconds": round(time.perf_counter() - t_all, 2), "counts": counts,
            "stats": stats, "versions": versions()}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": sys.version.split()[0]}
    for pkg in ("datatrove", "trafilatura", "fasttext-numpy2-wheel", "tokenizers", "xxhash", "numpy", "datasketch"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - a missing optional package is reported as such
            out[pkg] = "not installed"
    return out


def run_signatures(args: argparse.Namespace) -> dict:
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    with open(args.docs, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    out: dict = {"docs": len(rows), "versions": versions()}
    for label, hash_config in [("xxhash64", HashConfig(precision=64, hash_fc="xxhash")),
                               ("sha1_32", HashConfig(precision=32, hash_fc="sha1"))]:
        config = MinhashConfig(n_grams=5, num_buckets=args.bands, hashes_per_bucket=args.rows, seed=1,
                               hash_config=hash_config)
        best_step = best_compute = float("inf")
        for _ in range(args.repeats):
            tmp = Path(tempfile.mkdtemp(prefix="dt-sigs-"))
            try:
                step = MinhashDedupSignature(output_folder=str(tmp), config=config)
                docs = [Document(text=r["text"], id=str(r["id"])) for r in rows]
                t = time.perf_counter()
                ran = step.run(iter(docs), rank=0, world_size=1)  # a terminal step: may return None
                for _ in ran or ():
                    pass
                best_step = min(best_step, time.perf_counter() - t)
                t = time.perf_counter()
                for r in rows:
                    shingles = step.get_shingles(r["text"])
                    if shingles.size:
                        step.get_signature(shingles)
                best_compute = min(best_compute, time.perf_counter() - t)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        out[f"datatrove_{label}_step_docs_per_s"] = round(len(rows) / best_step, 1)
        out[f"datatrove_{label}_compute_docs_per_s"] = round(len(rows) / best_compute, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pipeline")
    p.add_argument("--warc-dir", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--lid-model", required=True)
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bands", type=int, default=25)
    p.add_argument("--rows", type=int, default=5)
    s = sub.add_parser("signatures")
    s.add_argument("--docs", required=True)
    s.add_argument("--bands", type=int, default=25)
    s.add_argument("--rows", type=int, default=5)
    s.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    result = run_pipeline(args) if args.command == "pipeline" else run_signatures(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
