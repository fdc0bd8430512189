"""MinHash signatures on real extracted web pages: ours next to datatrove's and datasketch's.

    .venv/bin/python -m bench.minhash_vs_peers [--repeats 3] [--scale 1]

Documents: every page of the benchmark WARC (bench/make_warc.py) that extraction turned into text,
taken from the "equivalent" corpusforge run of bench/pipeline_vs_datatrove.py (its extract-cc shards,
all languages); when that run is absent, `corpus extract --source cc` makes them (prefilter off).
They go to bench/_work/minhash_docs.jsonl, which the datatrove side reads. Everything runs on one core,
best of --repeats, the documents already in memory:

* ours: `normalize_array` -> `shingle_spans` (word 5-grams) -> `minhash.signatures` (128 permutations),
  with sha1 (signatures identical to datasketch's) and poly64;
* datasketch 2.0: `MinHash(num_perm=128).update_batch(shingles)` per document, given our shingles
  (signature only), and from the text (lowercase, `[\\W_]+` folded, word 5-grams in Python) as ours;
* datatrove (its own venv, bench/datatrove_pipeline.py signatures): MinhashDedupSignature with 25
  bands x 5 rows = 125 hashes (the LSH shape both pipelines use) and its default 64-bit xxhash, also
  with 32-bit sha1; the whole step (spaCy word tokenization, shingles, signatures, sorting and
  writing the per-band files) and the compute alone (get_shingles + get_signature), timed once (it is
  ~50x slower than the others, so noise does not matter).

Results: bench/results/minhash_vs_peers.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench import save_results
from bench.pipeline_vs_datatrove import PEER_VENV, REPO, WORK, ensure_peer_venv
from dedup import minhash
from dedup.normalize import normalize_array, shingle_spans

RESULTS = REPO / "bench" / "results" / "minhash_vs_peers.json"
_FOLD = re.compile(r"[\W_]+")
DOCS_FILE = WORK / "minhash_docs.jsonl"


def extracted_docs(scale: int) -> list[dict]:
    """(id, text) of every extracted page of the `scale`x WARC, in a fixed order."""
    shards = sorted(glob.glob(str(WORK / "runs" / f"corpusforge-equivalent-{scale}x" / "work" / "stages"
                                  / "extract-cc" / "*" / "*.parquet")))
    if not shards:
        out = WORK / "minhash_extract" / f"{scale}x"
        if not list(out.glob("*.parquet")):
            from bench.make_warc import build

            warc_dir = build([scale], WORK / "warc")[scale]
            config = out.parent / "config.toml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text("[sources.cc]\nlanguages = []\n")
            subprocess.run([str(REPO / ".venv" / "bin" / "corpus"), "extract", "--source", "cc", "--config",
                            str(config), "--out", str(out), *map(str, sorted(warc_dir.glob("*.warc.gz")))],
                           check=True, cwd=REPO)
        shards = sorted(map(str, out.glob("*.parquet")))
    rows = []
    for shard in shards:
        t = pq.read_table(shard, columns=["id", "text"])
        rows += [{"id": i, "text": x} for i, x in zip(t["id"].to_pylist(), t["text"].to_pylist(), strict=True)]
    return sorted(rows, key=lambda r: r["id"])


def best_seconds(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scale", type=int, default=1, help="which benchmark WARC's pages (1 = 1,186 pages)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    docs = extracted_docs(args.scale)
    DOCS_FILE.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    texts = pa.array([d["text"] for d in docs])
    n = len(docs)

    def ours(hash_function: str) -> np.ndarray:
        return minhash.signatures(shingle_spans(normalize_array(texts), 5), 128, 1, hash_function)

    spans = shingle_spans(normalize_array(texts), 5)
    shingles = [spans.of_doc(d) for d in range(n)]
    raw_texts = [d["text"] for d in docs]
    sig = ours("sha1")
    from datasketch import MinHash

    def ds_given_shingles() -> None:
        for d, sh in enumerate(shingles):
            m = MinHash(num_perm=128)
            m.update_batch(sh)
            assert d > 20 or not sh or np.array_equal(m.hashvalues, sig[d])  # identical signatures

    def ds_with_shingling() -> None:
        # docs in, signatures out, as ours: the same normalization in Python (re), then shingles
        for text in raw_texts:
            w = _FOLD.sub(" ", text.lower()).split()
            m = MinHash(num_perm=128)
            m.update_batch({" ".join(w[i:i + 5]).encode() for i in range(max(1, len(w) - 4))})

    seconds = {
        "ours_sha1": best_seconds(lambda: ours("sha1"), args.repeats),
        "ours_poly64": best_seconds(lambda: ours("poly64"), args.repeats),
        "datasketch_update_batch": best_seconds(ds_given_shingles, max(1, args.repeats - 1)),
        "datasketch_with_shingling": best_seconds(ds_with_shingling, max(1, args.repeats - 1)),
    }
    result: dict = {
        "docs": n, "mb_text": round(sum(len(d["text"].encode()) for d in docs) / 1e6, 2),
        "shingles": int(len(spans.starts)), "num_perm": 128,
        **{f"{k}_docs_per_s": round(n / v, 1) for k, v in seconds.items()},
    }
    peer = ensure_peer_venv()
    if isinstance(peer, Path):
        out = subprocess.run([str(peer), str(REPO / "bench" / "datatrove_pipeline.py"), "signatures", "--docs",
                              str(DOCS_FILE), "--repeats", "1"], capture_output=True, text=True,
                             cwd=REPO)
        if out.returncode == 0:
            peer_result = json.loads(out.stdout.strip().splitlines()[-1])
            result["datatrove_versions"] = peer_result.pop("versions")
            peer_result.pop("docs")
            result.update(peer_result)
        else:
            result["datatrove_error"] = out.stderr.strip()[-2000:]
    else:
        result["datatrove_error"] = f"{PEER_VENV}: {peer}"
    for ours_key in ("ours_sha1", "ours_poly64"):
        ref = result[f"{ours_key}_docs_per_s"]
        result[f"ratios_{ours_key}_over"] = {k.removesuffix("_docs_per_s"): round(ref / v, 2) for k, v in result.items()
                                             if k.endswith("_docs_per_s") and not k.startswith("ours") and v}
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if not args.no_save:
        save_results(RESULTS, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
