"""Decontamination scan throughput (docs/s per core) with PIQA, GSM8K and HumanEval loaded.

The documents are real text from ../shared/data: the six Project Gutenberg books cut into documents
of about 3,000 characters, the GSM8K *train* split (same style as the eval set, so many near misses),
and Vietnamese Wikipedia; one document in 50 gets a real eval item planted. The scan runs in this
process, on one core, exactly as one task does it (tokenize, look up, cut); `--ray N` also runs the
whole stage through Ray with N workers and reports wall-clock throughput.

    .venv/bin/python bench/decontam_bench.py [--docs 20000] [--ray 2]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from filters.decontam import DecontamConfig, DecontamStage, ScanParams, build_index, decontaminate_texts  # noqa: E402
from filters.evalsets import load_eval_sets  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def eval_specs() -> dict[str, str]:
    e = DATA / "eval_sets"
    return {
        "gsm8k": f"{e / 'gsm8k' / 'test.jsonl'}:question,answer",
        "piqa": f"{e / 'piqa' / 'valid.jsonl'}:goal,sol1,sol2",
        "humaneval": f"{e / 'humaneval' / 'HumanEval.jsonl.gz'}:prompt,canonical_solution",
    }


def real_documents(target_chars: int = 3000) -> list[tuple[str, str]]:
    docs: list[tuple[str, str]] = []
    for book in sorted((DATA / "gutenberg").glob("*.txt")):
        text = book.read_bytes().decode("utf-8" if book.stem.endswith("-0") else "latin-1")
        chunk = ""
        for para in text.split("\r\n\r\n"):
            chunk = f"{chunk}\r\n\r\n{para}" if chunk else para
            if len(chunk) >= target_chars:
                docs.append(("books", chunk))
                chunk = ""
    for line in (DATA / "eval_sets" / "gsm8k" / "train.jsonl").read_text("utf-8").splitlines():
        r = json.loads(line)
        docs.append(("math", r["question"] + "\n" + r["answer"]))
    wiki = (DATA / "wikipedia" / "wikiextractor_viwiki_test.expected_output_wiki_00.txt").read_text("utf-8")
    docs += [("wikipedia", d.strip()) for d in re.findall(r"<doc [^>]*>(.*?)</doc>", wiki, re.S) if d.strip()]
    return docs


def corpus(n_docs: int, items: list[str]) -> list[tuple[str, str]]:
    base = real_documents()
    out = []
    for i in range(n_docs):
        source, text = base[i % len(base)]
        if i % 50 == 25:
            text = text + "\n\n" + items[(i // 50) % len(items)]
        out.append((source, text))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--ray", type=int, default=0, metavar="N", help="also run the stage through Ray, N workers")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"real data not found at {DATA}", file=sys.stderr)
        return 2

    config = DecontamConfig(evals=eval_specs())
    t0 = time.perf_counter()
    sets = load_eval_sets(config.evals)
    index, used = build_index(sets, config)
    t_index = time.perf_counter() - t0
    entries = sum(len(t) for t in index.ngrams.tables)
    index_bytes = sum(t.hashes.nbytes + t.grams.nbytes + t.owners.nbytes for t in index.ngrams.tables)
    print(f"index: {sum(len(s.items) for s in sets):,} items ({used.count(0)} too short), {entries:,} n-grams,"
          f" {len(index.ngrams.vocab):,} words, arrays {index_bytes / 1e6:.1f} MB, built in {t_index:.2f} s")

    items = [item.text for s in sets for item in s.items[::97]]
    docs = corpus(args.docs, items)
    texts = [t for _, t in docs]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    params = ScanParams.of(config)
    decontaminate_texts(texts[:200], index, params)  # warm up
    t0 = time.perf_counter()
    outcomes = decontaminate_texts(texts, index, params)
    dt = time.perf_counter() - t0
    dropped = sum(1 for o in outcomes.values() if o.text is None)
    print(f"scan, 1 core: {len(texts):,} docs ({mb:.1f} MB) in {dt:.2f} s = {len(texts) / dt:,.0f} docs/s,"
          f" {mb / dt:.1f} MB/s; {len(outcomes):,} docs matched ({dropped} dropped)")

    if args.ray:
        from pipeline.core.schema import Doc, docs_to_table
        from pipeline.core.shards import write_table
        from pipeline.running.executor import RayExecutor
        from pipeline.running.runner import run_global_stage

        executor = RayExecutor(num_cpus=args.ray, progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            shards = []
            per = -(-len(docs) // (args.ray * 4))
            for k in range(0, len(docs), per):
                part = [Doc(f"{s}/{k + j}", s, t) for j, (s, t) in enumerate(docs[k:k + per])]
                path = Path(tmp) / "in" / f"part-{k // per:04d}.parquet"
                write_table(docs_to_table(part), path)
                shards.append(path)
            t0 = time.perf_counter()
            run_global_stage(DecontamStage(config), shards, Path(tmp) / "out", Path(tmp) / "scratch", executor)
            dt = time.perf_counter() - t0
        executor.shutdown()
        print(f"stage via Ray, {args.ray} workers, {len(shards)} shards: {len(docs) / dt:,.0f} docs/s wall"
              f" ({len(docs) / dt / args.ray:,.0f} per worker), including index build and shard I/O")
    return 0


if __name__ == "__main__":
    sys.exit(main())
