"""MinHash signatures per core: ours next to rensa's, datasketch's and datatrove's, on the same documents.

    .venv/bin/python -m bench.minhash_vs_peers [--repeats 3] [--sets books,web] [--scale 1]

Two document sets, each timed in this one run (the machine is shared, so only ratios measured
together mean much):

* books: consecutive 400-word windows of the six Gutenberg books of ../shared/data (issue #18's unit);
* web: every page of the benchmark WARC (bench/make_warc.py) that extraction turned into text, from the
  "equivalent" corpusforge run of bench/pipeline_vs_datatrove.py, else `corpus extract --source cc`.

The process pins itself to one CPU before timing, and rensa's process inherits that, so docs/s is per
core even for rensa (which runs a digest thread beside the Python one); CPU seconds are reported too.
Best of --repeats, documents in memory, 128 permutations, word 5-grams:

* ours: `normalize_array` -> `shingle_spans` -> `minhash.signatures`, poly64 (default) and sha1
  (datasketch's default hash, identical signatures) from text; and each step alone, the signatures
  step being "given shingles";
* datasketch 2.0: `MinHash(num_perm=128).update_batch(shingles)` per document, given our shingles, and
  from text (lowercase, `[\\W_]+` folded, word 5-grams in Python);
* rensa (its own venv beside the checkout, bench/rensa_peer.py): from text (the same Python
  normalization, then `digest_matrix_from_token_sets`), given our shingle bytes, given our 64-bit
  shingle hashes;
* datatrove (web set only, its own venv, bench/datatrove_pipeline.py signatures): MinhashDedupSignature
  with 25 bands x 5 rows and its default 64-bit xxhash, also with 32-bit sha1; the whole step and the
  compute alone, timed once (~50x slower than the others, so noise does not matter).

Results: bench/results/minhash_vs_peers.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench import PEER_VENVS, ensure_venv, save_results
from bench.pipeline_vs_datatrove import PEER_VENV, REPO, WORK, ensure_peer_venv
from bench.timing import best_seconds
from dedup import minhash
from dedup.normalize import normalize_array, shingle_spans

RESULTS = REPO / "bench" / "results" / "minhash_vs_peers.json"
_FOLD = re.compile(r"[\W_]+")
DOCS_FILE = WORK / "minhash_docs.jsonl"
RENSA_VENV = PEER_VENVS / "rensa"
RENSA_PACKAGES = ["rensa==0.5.0", "numpy"]
BOOKS = ["14263.txt", "15122.txt", "16215.txt", "16595.txt", "24675-8.txt", "44157-0.txt"]
DATA = REPO.parent / "shared" / "data"


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


def book_docs(words: int = 400) -> list[str]:
    """Consecutive `words`-word windows of each Gutenberg book (the last partial window dropped)."""
    docs = []
    for book in BOOKS:
        w = (DATA / "gutenberg" / book).read_text(encoding="utf-8", errors="replace").split()
        docs += [" ".join(w[i : i + words]) for i in range(0, len(w) - words + 1, words)]
    return docs


def ensure_rensa_venv() -> Path | str:
    """rensa's venv python, created and installed if missing (never our .venv); or why it could not be."""
    return ensure_venv(RENSA_VENV, RENSA_PACKAGES, "rensa, numpy")


def run_rensa(name: str, texts: list[str], spans, repeats: int) -> dict:
    """rensa's timings on the same texts and shingles, in its venv, on the core this process is pinned to."""
    python = ensure_rensa_venv()
    if not isinstance(python, Path):
        return {"rensa_error": python}
    lengths = spans.ends - spans.starts
    npz, texts_file = WORK / f"rensa_{name}.npz", WORK / f"rensa_{name}.jsonl"
    npz.parent.mkdir(parents=True, exist_ok=True)
    flat = np.concatenate([spans.data[s:e] for s, e in zip(spans.starts.tolist(), spans.ends.tolist(), strict=True)]
                          or [np.zeros(0, np.uint8)])
    np.savez(npz, shingle_bytes=flat, shingle_offsets=np.concatenate([[0], np.cumsum(lengths)]),
             doc_offsets=np.concatenate([[0], np.cumsum(np.bincount(spans.doc, minlength=spans.num_docs))]),
             token_hashes=minhash.poly_hash64(spans.data, spans.starts, spans.ends))
    texts_file.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    out = subprocess.run([str(python), str(REPO / "bench" / "rensa_peer.py"), str(npz), str(texts_file),
                          "--repeats", str(repeats)], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        return {"rensa_error": out.stderr.strip()[-2000:]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rensa_version": r["version"],
            **{f"rensa_{k}": (r[f"{k}_seconds"], r[f"{k}_cpu_seconds"])
               for k in ("from_text", "given_shingles", "given_token_hashes")}}


def measure_set(name: str, texts: list[str], repeats: int) -> dict:
    """docs/s on one core of ours, datasketch and rensa on `texts`, and the ratios between them."""
    from datasketch import MinHash

    arr = pa.array(texts)
    n = len(texts)
    normalized = normalize_array(arr)
    spans = shingle_spans(normalized, 5)
    shingles = [spans.of_doc(d) for d in range(n)]
    sig = minhash.signatures(spans, 128, 1, "sha1")

    def ours(hash_function: str) -> np.ndarray:
        return minhash.signatures(shingle_spans(normalize_array(arr), 5), 128, 1, hash_function)

    def ds_given_shingles() -> None:
        for d, sh in enumerate(shingles):
            m = MinHash(num_perm=128)
            m.update_batch(sh)
            assert d > 20 or not sh or np.array_equal(m.hashvalues, sig[d])  # identical signatures

    def ds_from_text() -> None:
        # docs in, signatures out, as ours: the same normalization in Python (re), then shingles
        for text in texts:
            w = _FOLD.sub(" ", text.lower()).split()
            m = MinHash(num_perm=128)
            m.update_batch({" ".join(w[i:i + 5]).encode() for i in range(max(1, len(w) - 4))})

    timed = {
        "ours_poly64_from_text": best_seconds(lambda: ours("poly64"), repeats),
        "ours_sha1_from_text": best_seconds(lambda: ours("sha1"), repeats),
        "ours_normalize": best_seconds(lambda: normalize_array(arr), repeats),
        "ours_shingle": best_seconds(lambda: shingle_spans(normalized, 5), repeats),
        "ours_poly64_given_shingles": best_seconds(lambda: minhash.signatures(spans, 128, 1), repeats),
        "datasketch_given_shingles": best_seconds(ds_given_shingles, max(1, repeats - 1)),
        "datasketch_from_text": best_seconds(ds_from_text, max(1, repeats - 1)),
    }
    rensa = run_rensa(name, texts, spans, repeats)
    timed.update({k: v for k, v in rensa.items() if isinstance(v, tuple)})
    result: dict = {
        "docs": n, "words_per_doc": round(float(np.mean([len(t.split()) for t in texts])), 1),
        "mb_text": round(sum(len(t.encode()) for t in texts) / 1e6, 2), "shingles": int(len(spans.starts)),
        "num_perm": 128, **{k: v for k, v in rensa.items() if not isinstance(v, tuple)},
        "docs_per_s": {k: round(n / wall, 1) for k, (wall, _) in timed.items()},
        "docs_per_cpu_s": {k: round(n / cpu, 1) for k, (_, cpu) in timed.items() if cpu > 0},
    }
    rate = result["docs_per_s"]
    ref = rate["ours_poly64_from_text"]
    result["ours_poly64_from_text_over"] = {k: round(ref / v, 2) for k, v in rate.items() if k != "ours_poly64_from_text"}
    if "rensa_given_shingles" in rate:
        result["ours_given_shingles_over_rensa_given_shingles"] = round(
            rate["ours_poly64_given_shingles"] / rate["rensa_given_shingles"], 2)
    return result


def datatrove_signatures(docs: list[dict]) -> dict:
    """datatrove's signature step on the web pages (its own venv), or why it could not run."""
    DOCS_FILE.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    peer = ensure_peer_venv()
    if not isinstance(peer, Path):
        return {"datatrove_error": f"{PEER_VENV}: {peer}"}
    out = subprocess.run([str(peer), str(REPO / "bench" / "datatrove_pipeline.py"), "signatures", "--docs",
                          str(DOCS_FILE), "--repeats", "1"], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        return {"datatrove_error": out.stderr.strip()[-2000:]}
    peer_result = json.loads(out.stdout.strip().splitlines()[-1])
    peer_result.pop("docs")
    return {"datatrove_versions": peer_result.pop("versions"), "datatrove_docs_per_s": peer_result}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sets", default="books,web", help="comma-separated: books, web")
    ap.add_argument("--scale", type=int, default=1, help="which benchmark WARC's pages (1 = 1,186 pages)")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--skip-datatrove", action="store_true", help="web set without datatrove (its venv is large)")
    args = ap.parse_args()
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # one core for us and, inherited, for rensa's threads
    normalize_array(pa.array(["warm up"]))  # compiled code and Unicode tables loaded before timing
    result: dict = {"pinned_cpu": cpu}
    for name in args.sets.split(","):
        if name == "books":
            result["books"] = measure_set("books", book_docs(), args.repeats)
        elif name == "web":
            docs = extracted_docs(args.scale)
            result["web"] = measure_set("web", [d["text"] for d in docs], args.repeats)
            if not args.skip_datatrove:
                result["web"].update(datatrove_signatures(docs))
        else:
            raise SystemExit(f"unknown document set {name!r}")
        print(json.dumps({name: result[name]}, indent=2), flush=True)
    if not args.no_save:
        save_results(RESULTS, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
