"""Dedup benchmark: signature speed next to datasketch, detection quality, and the whole stage at scale.

    .venv/bin/python -m bench.dedup_bench [--docs 100000,1000000] [--skip-stage] [--ray]

1. Signatures: docs/s on one core for real Gutenberg text (5-paragraph documents), ours (text ->
   normalized -> shingles -> signatures, all in numpy) vs datasketch: `MinHash(num_perm=128)` +
   `update_batch(shingle bytes)` per document, timed both without and with building the shingles.
2. Quality against exact Jaccard: pairs of Gutenberg paragraphs and copies with controlled word edits
   (known exact Jaccard); a pair is detected when it collides in a band and its Jaccard reaches the
   threshold (exactly the stage's rule), for both verification modes with their default banding:
   `exact` (the default: the shingle sets' Jaccard, bands for recall) and `signature` (estimated from
   the signatures, datasketch's banding). Precision/recall vs exact Jaccard >= 0.5.
3. Quality on the human-judged CopyCat pairs (near_duplicates/SOURCES.md): recall vs label >= 2 and
   vs S3 >= 0.82 (CopyCat's own near-duplicate cut), and agreement with exact Jaccard.
4. The whole stage on N documents (one run per size in --docs, to show how cost grows) made of real
   sentences with planted exact and near copies, in a fresh process: wall time and peak RSS (serial
   by default: one process runs every task, so its peak is the largest task's; with --ray also the
   largest RSS of one process and the peak of driver + all Ray processes together, RSS and PSS).

Results: bench/results/dedup_bench.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench import save_results
from dedup import minhash
from dedup.candidates import margin
from dedup.lsh import signature_similarity
from dedup.normalize import normalize_array, shingle_spans
from dedup.stage import DedupConfig, DedupStage
from pipeline.core.schema import Doc, docs_to_table
from pipeline.core.shards import write_table
from pipeline.running.runner import run_global_stage

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "dedup_bench.json"
BOOKS = ["14263.txt", "15122.txt", "16215.txt", "16595.txt", "24675-8.txt", "44157-0.txt"]


def _paragraphs() -> list[str]:
    out = []
    for book in BOOKS:
        text = (DATA / "gutenberg" / book).read_text(encoding="utf-8", errors="replace")
        out += [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if len(p.split()) >= 30]
    return out


def _best_rate(n: int, fn, repeats: int = 3) -> float:
    """Docs/s of the fastest of `repeats` runs (the machine is shared; the best run is the least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def bench_signatures(paras: list[str]) -> dict:
    docs = [" ".join(paras[i : i + 5]) for i in range(0, len(paras) - 5, 5)][:1500]
    arr = pa.array(docs)

    def ours(hash_function: str) -> np.ndarray:
        return minhash.signatures(shingle_spans(normalize_array(arr), 5), 128, 1, hash_function)

    sig = ours("sha1")
    spans = shingle_spans(normalize_array(arr), 5)
    shingles = [spans.of_doc(d) for d in range(len(docs))]
    from datasketch import MinHash

    def ds_batch() -> None:
        for d, sh in enumerate(shingles):
            m = MinHash(num_perm=128)
            m.update_batch(sh)
            assert d > 20 or np.array_equal(m.hashvalues, sig[d])

    def py_shingles(text: str) -> set[bytes]:
        w = re.sub(r"[\W_]+", " ", text.lower()).split()
        return {" ".join(w[i : i + 5]).encode() for i in range(max(1, len(w) - 4))}

    def ds_full() -> None:
        for text in docs:
            m = MinHash(num_perm=128)
            m.update_batch(py_shingles(text))

    rates = {
        "ours_sha1_docs_per_s": _best_rate(len(docs), lambda: ours("sha1")),
        "ours_poly64_docs_per_s": _best_rate(len(docs), lambda: ours("poly64")),
        "datasketch_update_batch_docs_per_s": _best_rate(len(docs), ds_batch, 2),
        "datasketch_with_shingling_docs_per_s": _best_rate(len(docs), ds_full, 2),
    }
    out: dict = {"docs": len(docs), "words_per_doc": round(float(np.mean([len(d.split()) for d in docs])), 1),
                 "shingles": len(spans.starts), **{k: round(v) for k, v in rates.items()}}
    for ours_key in ("ours_sha1_docs_per_s", "ours_poly64_docs_per_s"):
        for ds_key in ("datasketch_update_batch_docs_per_s", "datasketch_with_shingling_docs_per_s"):
            out[f"speedup {ours_key[5:-11]} vs {ds_key[:-11]}"] = round(rates[ours_key] / rates[ds_key], 2)
    return out


def _detect(texts_a: list[str], texts_b: list[str], threshold: float = 0.5, num_perm: int = 128):
    """Per pair: exact Jaccard, and per verification mode whether the stage's rule removes it: a band
    collision (with the mode's default banding) and the mode's Jaccard (exact, or estimated from the
    signatures) reaching the threshold."""
    sa = shingle_spans(normalize_array(pa.array(texts_a, pa.large_string())), 5)
    sb = shingle_spans(normalize_array(pa.array(texts_b, pa.large_string())), 5)
    ga, gb = minhash.signatures(sa, num_perm), minhash.signatures(sb, num_perm)
    n = len(texts_a)
    idx = np.arange(n)
    exact = minhash.shingle_hash_sets(sa).jaccard(idx, minhash.shingle_hash_sets(sb), idx)
    est = signature_similarity(ga, gb)
    out = {}
    for mode in ("exact", "signature"):
        cfg = DedupConfig(verify=mode, threshold=threshold, num_perm=num_perm)
        bands, rows = cfg.lsh_params()
        collide = (minhash.band_keys(ga, bands, rows) == minhash.band_keys(gb, bands, rows)).any(axis=1)
        if mode == "exact":  # the stage's rule: the estimate decides far from the threshold, the sets near it
            m = margin(cfg)
            decided = (est >= threshold + m) | (est < threshold - m)
            sim = np.where(decided, est, exact)
        else:
            sim = est
        out[mode] = {"bands": bands, "rows": rows, "detected": collide & (sim >= threshold)}
    return est, out, exact


def _modes(detections: dict, truth: np.ndarray, mask: np.ndarray | None = None) -> dict:
    sel = slice(None) if mask is None else mask
    return {f"{mode} ({d['bands']}x{d['rows']})": _pr(d["detected"][sel], truth[sel]) for mode, d in detections.items()}


def _pr(detected: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((detected & truth).sum())
    fp = int((detected & ~truth).sum())
    fn = int((~detected & truth).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(tp / max(1, tp + fp), 4),
            "recall": round(tp / max(1, tp + fn), 4)}


def bench_controlled(paras: list[str]) -> dict:
    rng = random.Random(0)
    base = [p for p in paras if len(p.split()) >= 80][:3000]
    a, b = [], []
    for p in base:
        words = p.split()
        frac = rng.uniform(0.0, 0.25)  # share of words replaced: exact Jaccard spans ~0.2..1
        for i in rng.sample(range(len(words)), int(frac * len(words))):
            words[i] = f"w{rng.randrange(10**7)}"
        a.append(p)
        b.append(" ".join(words))
    est, detections, exact = _detect(a, b)
    truth = exact >= 0.5
    near = (exact >= 0.4) & (exact <= 0.6)
    return {"pairs": len(a), "true_pairs": int(truth.sum()), "vs_exact_jaccard_0.5": _modes(detections, truth),
            "pairs_with_jaccard_0.4_0.6": int(near.sum()), "within_0.4_0.6": _modes(detections, truth, near),
            "mean_abs_error_of_estimate": round(float(np.abs(est - exact).mean()), 4)}


def bench_human_pairs() -> dict:
    path = DATA / "near_duplicates" / "copycat_canonical_link_judgments.shared_half.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f]
    a = [p["src_text"] for p in pairs]
    b = [p["target_text"] for p in pairs]
    _, detections, exact = _detect(a, b)
    labels = [p["label_raw"].strip() for p in pairs]
    graded = np.array([lab in ("0.5", "1", "2", "3") for lab in labels])
    grade = np.array([float(lab) if g else -1 for lab, g in zip(labels, graded, strict=True)])
    s3 = np.array([p["s3"] for p in pairs])
    return {
        "pairs": len(pairs),
        "vs_exact_jaccard_0.5": _modes(detections, exact >= 0.5),
        "vs_label_ge_2 (graded pairs only)": _modes(detections, grade >= 2, graded),
        "vs_s3_ge_0.82": _modes(detections, s3 >= 0.82),
        "detected_rate_by_label": {mode: {lab: round(float(d["detected"][grade == float(lab)].mean()), 3)
                                          for lab in ("0.5", "1", "2", "3")} for mode, d in detections.items()},
    }


def _make_corpus(paras: list[str], n_docs: int, out: Path, shards: int) -> dict:
    """Distinct documents of 4-14 real sentences drawn at random (two of them rarely share a 5-gram),
    5% exact copies (upper-cased) and 15% near copies (2% of words replaced, Jaccard ~0.9)."""
    rng = random.Random(1)
    sentences = sorted({s for p in paras for s in re.split(r"(?<=[.!?])\s+", p) if len(s.split()) >= 6})
    docs: list[Doc] = []
    planted = {"exact": 0, "near": 0}
    for i in range(n_docs):
        r = rng.random()
        if docs and r < 0.05:
            src = docs[rng.randrange(len(docs))]
            docs.append(Doc(f"web/{i}", "web", src.text.upper()))
            planted["exact"] += 1
        elif docs and r < 0.20:
            w = docs[rng.randrange(len(docs))].text.split()
            for j in rng.sample(range(len(w)), max(1, len(w) // 50)):
                w[j] = f"edit{rng.randrange(10**6)}"
            docs.append(Doc(f"news/{i}", "news", " ".join(w)))
            planted["near"] += 1
        else:
            docs.append(Doc(f"books/{i}", "books", " ".join(rng.sample(sentences, rng.randrange(4, 15)))))
    for k in range(shards):
        write_table(docs_to_table(docs[k::shards]), out / f"part-{k:04d}.parquet")
    return {**planted, "sentence_pool": len(sentences), "text_mb": round(sum(len(d.text) for d in docs) / 1e6, 1)}


def _peak_rss_mb() -> int:
    """This process's own peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return -1


def _stage_child(in_dir: str, out_dir: str, use_ray: bool) -> None:
    """Runs in a fresh process: the stage only, so its peak RSS is not the corpus generator's."""
    shards = sorted(Path(in_dir).glob("*.parquet"))
    if use_ray:
        from bench.pipeline_vs_datatrove import TreeSampler
        from pipeline.running.executor import RayExecutor

        # Ray's GCS, raylet and workers are this process's descendants: the sampler sums them all
        sampler = TreeSampler(os.getpid())
        sampler.start()
        executor = RayExecutor(num_cpus=2, progress=False)
    else:
        from pipeline.running.executor import SerialExecutor

        executor = SerialExecutor(progress=False)
    t = time.perf_counter()
    report = run_global_stage(DedupStage(DedupConfig()), shards, Path(out_dir), Path(out_dir + "-scratch"), executor)
    wall = time.perf_counter() - t
    result = {"executor": "ray(2 cpus)" if use_ray else "serial (one process runs every task)",
              "wall_s": round(wall, 1), "driver_peak_rss_mb": _peak_rss_mb()}
    if use_ray:
        sampler.stop.set()
        sampler.join()
        tree = sampler.summary()
        result["largest_process_rss_mb"] = tree["peak_single_process_rss_mb"]
        result["peak_total_rss_mb"] = tree["peak_tree_rss_mb"]
        result["peak_total_pss_mb"] = tree["peak_tree_pss_mb"]
    totals = report.to_json()["totals"]
    result.update(rejected=totals["rejected_docs"], kept=totals["kept_docs"], reasons=_reasons(report.to_json()))
    print("RESULT " + json.dumps(result), flush=True)


def bench_stage(paras: list[str], n_docs: int, use_ray: bool) -> dict:
    import subprocess
    import sys

    tmp = Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    try:
        info = _make_corpus(paras, n_docs, tmp / "in", shards=max(2, n_docs // 10000))
        code = f"from bench.dedup_bench import _stage_child; _stage_child({str(tmp / 'in')!r}, {str(tmp / 'out')!r}, {use_ray})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1])
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        result = json.loads(line[len("RESULT "):])
        return {"docs": n_docs, **info, **result, "docs_per_s": round(n_docs / result["wall_s"])}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _reasons(stage: dict) -> dict:
    out: dict[str, int] = {}
    for counts in stage["sources"].values():
        for r, n in counts["reasons"].items():
            out[r] = out.get(r, 0) + n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="100000", help="comma-separated corpus sizes for the stage runs")
    ap.add_argument("--skip-stage", action="store_true", help="no stage runs; the saved ones are kept")
    ap.add_argument("--ray", action="store_true", help="run the stage on a local Ray (2 CPUs)")
    args = ap.parse_args()
    paras = _paragraphs()
    results = {"signatures": bench_signatures(paras)}
    print(json.dumps(results, indent=2), flush=True)
    results["controlled_edits"] = bench_controlled(paras)
    results["human_judged_pairs"] = bench_human_pairs()
    print(json.dumps({k: results[k] for k in ("controlled_edits", "human_judged_pairs")}, indent=2), flush=True)
    if args.skip_stage:  # keep the stage runs of the last full run
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        if "stage" in previous:
            results["stage"] = previous["stage"]
    else:
        results["stage"] = []
        for n_docs in (int(x) for x in args.docs.split(",")):
            results["stage"].append(bench_stage(paras, n_docs, args.ray))
            print(json.dumps(results["stage"][-1], indent=2), flush=True)
    save_results(RESULTS, results)


if __name__ == "__main__":
    main()
