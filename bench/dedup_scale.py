"""The whole dedup stage at scale: time per sub-step and peak RSS of all processes.

    .venv/bin/python -m bench.dedup_scale [--docs 100000,1000000] [--serial] [--keep]

Corpus: documents of 4-14 real sentences (the six Gutenberg books and the newspaper articles of
../shared/data, CJK and Thai included) drawn at random, with planted copies of earlier originals:
5% exact copies (upper-cased, punctuation changed: the same normalized text) and 15% near copies
(2% of words replaced, word-5-gram Jaccard ~0.9). Document i depends only on (seed, i), so shards
are written one at a time and the generator never holds the corpus.

Originals (`--originals shuffled`, the default) shuffle the words of each sentence they use (the
characters of a sentence without spaces), so that two originals share about as many word 5-grams as
two unrelated real documents do, whatever the corpus size. The shared data holds ~24k distinct
sentences; drawn whole (`--originals sentences`), each recurs in ~375 documents at 1M and ~3,750 at
10M, and the pairs of originals sharing a sentence, hence the background LSH candidates, grow with the
square of the corpus: a stress test of many low-similarity candidates, not a picture of a real corpus.

Each size runs the stage in a fresh process (Ray with 2 CPUs unless --serial) wrapped by an executor
that times every `executor.map` call by its description (the stage's sub-steps), while a sampler sums
the RSS and PSS of that process and all its descendants (Ray's GCS, raylet and workers included).
A size is refused when the disk holding bench/_work has less than ~4 KB free per document (the corpus,
the stage's intermediates and its output; 10M documents: ~40 GB).

Results: bench/results/dedup_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import save_results

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results" / "dedup_scale.json"
WORK = REPO / "bench" / "_work" / "dedup_scale"
BYTES_PER_DOC = 4096  # free disk needed per document: corpus, intermediates, output
BOOKS = ["14263.txt", "15122.txt", "16215.txt", "16595.txt", "24675-8.txt", "44157-0.txt"]
EXACT_SHARE, NEAR_SHARE = 0.05, 0.15


def sentence_pool() -> list[str]:
    """Distinct real sentences of at least 6 words (or 12 characters for CJK/Thai), in a fixed order."""
    texts = [(DATA / "gutenberg" / b).read_text(encoding="utf-8", errors="replace") for b in BOOKS]
    texts += [p.read_text(encoding="utf-8") for p in sorted((DATA / "extraction" / "newspaper_fulltext" / "text").glob("*.txt"))]
    out = set()
    for text in texts:
        for s in re.split(r"(?<=[.!?。！？])\s*", " ".join(text.split())):
            if re.search(r"[<>{}#]", s):  # markup left in a file, not prose
                continue
            if len(s.split()) >= 6 or (len(s) >= 12 and not s.isascii()):
                out.add(s)
    return sorted(out)


def _shuffled(sentence: str, rng: random.Random) -> str:
    """The sentence's words (characters, when it has no spaces) in a random order."""
    spaced = " " in sentence
    parts = sentence.split() if spaced else list(sentence)
    rng.shuffle(parts)
    return (" " if spaced else "").join(parts)


class Corpus:
    """Document i of the corpus as a pure function of (seed, i): kind, source and text."""

    def __init__(self, pool: list[str], seed: int = 1, originals: str = "shuffled") -> None:
        self.pool, self.seed, self.shuffled = pool, seed, originals == "shuffled"

    def _rng(self, i: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + i)

    def kind(self, i: int) -> str:
        r = self._rng(i).random()
        return "original" if i == 0 or r >= EXACT_SHARE + NEAR_SHARE else "exact" if r < EXACT_SHARE else "near"

    def original(self, i: int) -> str:
        rng = self._rng(i)
        rng.random()  # the kind draw
        sentences = rng.sample(self.pool, rng.randrange(4, 15))
        if self.shuffled:
            sentences = [_shuffled(s, rng) for s in sentences]
        return " ".join(sentences)

    def doc(self, i: int) -> tuple[str, str]:
        """(source, text) of document i; copies point back to a random earlier original."""
        kind = self.kind(i)
        if kind == "original":
            return "books", self.original(i)
        rng = self._rng(i)
        rng.random()
        j = rng.randrange(i)
        while self.kind(j) != "original":
            j = rng.randrange(i)
        text = self.original(j)
        if kind == "exact":
            return "web", text.upper().replace(",", " ;")
        words = text.split()
        for w in rng.sample(range(len(words)), max(1, len(words) // 50)):
            words[w] = f"edit{rng.randrange(10**6)}"
        return "news", " ".join(words)


def _write_shard(job: tuple[int, int, int, Path, str]) -> tuple[int, int, int]:
    """Writes shard k (documents lo..hi-1); returns (exact, near, text bytes)."""
    from pipeline.core.schema import Doc, docs_to_table
    from pipeline.core.shards import write_table

    k, lo, hi, out, originals = job
    corpus = Corpus(_POOL, originals=originals)
    exact = near = text_bytes = 0
    docs = []
    for i in range(lo, hi):
        source, text = corpus.doc(i)
        exact += source == "web"
        near += source == "news"
        text_bytes += len(text.encode())
        docs.append(Doc(f"{source}/{i}", source, text))
    write_table(docs_to_table(docs), out / f"part-{k:05d}.parquet")
    return exact, near, text_bytes


_POOL: list[str] = []


def write_corpus(n_docs: int, out: Path, shard_docs: int, originals: str) -> dict:
    """Shards written by one process per CPU (document i depends only on i, so the corpus is the same)."""
    from multiprocessing import get_context

    _POOL[:] = sentence_pool()
    jobs = [(k, lo, min(n_docs, lo + shard_docs), out, originals) for k, lo in enumerate(range(0, n_docs, shard_docs))]
    out.mkdir(parents=True, exist_ok=True)
    with get_context("fork").Pool(os.cpu_count() or 1) as pool:
        done = pool.map(_write_shard, jobs, chunksize=1)
    return {"exact": sum(d[0] for d in done), "near": sum(d[1] for d in done), "originals": originals,
            "sentence_pool": len(_POOL), "text_mb": round(sum(d[2] for d in done) / 1e6, 1), "shards": len(jobs)}


class TimedExecutor:
    """Delegates to an executor and adds up the wall time of each `map` call by its description."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.steps: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def map(self, fn, items, **kwargs):
        t = time.perf_counter()
        try:
            return self.inner.map(fn, items, **kwargs)
        finally:
            step = kwargs.get("desc") or getattr(fn, "__name__", "tasks")
            step = re.sub(r"\d+", "#", step)  # "components round 3" -> one row per kind of step
            self.steps[step] = self.steps.get(step, 0.0) + time.perf_counter() - t


def _stage_child(in_dir: str, out_dir: str, use_ray: bool) -> None:
    """Runs in a fresh process: only the stage, so the peaks are the stage's own."""
    from bench.pipeline_vs_datatrove import TreeSampler
    from dedup.stage import STATS_FILE, DedupConfig, DedupStage
    from pipeline.running.runner import run_global_stage

    sampler = TreeSampler(os.getpid())
    sampler.start()
    if use_ray:
        from pipeline.running.executor import RayExecutor

        inner = RayExecutor(num_cpus=2, progress=False)
    else:
        from pipeline.running.executor import SerialExecutor

        inner = SerialExecutor(progress=False)
    executor = TimedExecutor(inner)
    shards = sorted(Path(in_dir).glob("*.parquet"))
    t = time.perf_counter()
    report = run_global_stage(DedupStage(DedupConfig()), shards, Path(out_dir), Path(out_dir + "-scratch"), executor)
    wall = time.perf_counter() - t
    sampler.stop.set()
    sampler.join()
    tree = sampler.summary()
    reasons: dict[str, int] = {}
    for counts in report.to_json()["sources"].values():
        for r, n in counts["reasons"].items():
            reasons[r] = reasons.get(r, 0) + n
    result = {"executor": "ray(2 cpus)" if use_ray else "serial", "wall_s": round(wall, 1),
              "steps_s": {k: round(v, 1) for k, v in executor.steps.items()},
              "peak_total_rss_mb": tree["peak_tree_rss_mb"], "peak_total_pss_mb": tree["peak_tree_pss_mb"],
              "largest_process_rss_mb": tree["peak_single_process_rss_mb"], "cpu_s": tree["cpu_s"],
              "rejected": reasons, "stats": json.loads((Path(out_dir) / STATS_FILE).read_text())}
    print("RESULT " + json.dumps(result), flush=True)


def _check_disk(n_docs: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(WORK).free
    if free < n_docs * BYTES_PER_DOC:
        raise SystemExit(f"{n_docs:,} documents need ~{n_docs * BYTES_PER_DOC / 1e9:.0f} GB free at {WORK}; "
                         f"{free / 1e9:.0f} GB are")


def run_size(n_docs: int, use_ray: bool, shard_docs: int, keep: bool, originals: str) -> dict:
    _check_disk(n_docs)
    tmp = WORK / f"{n_docs}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        t = time.perf_counter()
        info = write_corpus(n_docs, tmp / "in", shard_docs, originals)
        gen_s = time.perf_counter() - t
        code = (f"from bench.dedup_scale import _stage_child; "
                f"_stage_child({str(tmp / 'in')!r}, {str(tmp / 'out')!r}, {use_ray})")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"stage run failed:\n{proc.stderr[-3000:]}")
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        result = json.loads(line[len("RESULT "):])
        return {"docs": n_docs, **info, "generate_s": round(gen_s, 1), **result,
                "us_per_doc": round(1e6 * result["wall_s"] / n_docs, 1)}
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="100000,1000000", help="comma-separated corpus sizes")
    ap.add_argument("--serial", action="store_true", help="one process runs every task (default: Ray, 2 CPUs)")
    ap.add_argument("--shard-docs", type=int, default=10_000)
    ap.add_argument("--originals", choices=["shuffled", "sentences"], default="shuffled",
                    help="words of each sentence shuffled (default) or whole sentences from the pool")
    ap.add_argument("--keep", action="store_true", help="keep the corpus and outputs in bench/_work/dedup_scale")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.docs.split(",")]
    _check_disk(max(sizes))
    runs = []
    for n in sizes:
        runs.append(run_size(n, not args.serial, args.shard_docs, args.keep, args.originals))
        print(json.dumps(runs[-1], indent=2), flush=True)
    if not args.no_save:
        save_results(RESULTS, {"runs": runs})


if __name__ == "__main__":
    main()
