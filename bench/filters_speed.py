"""Throughput of the filters, in documents per second on one core, on the same real documents.

Documents: the real pages of ../shared/data/extraction (trafilatura main text and whole-page text),
Wikipedia articles of the enwiki dump head and ~800-word chunks of Gutenberg books, repeated to
`--docs`. Measured in-process (one core): language ID (`LanguageIdStage.process`) and the whole
heuristic chain (`QualityStage.process` with every document treated as `cc`: C4 cleaning, token
minimum, Gopher quality and repetition rules; no classifier).

    .venv/bin/python bench/filters_speed.py [--docs 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.langid import LanguageIdStage  # noqa: E402
from filters.quality import QualityStage  # noqa: E402
from pipeline.core.schema import Doc, docs_to_table  # noqa: E402
from tests.filters.realdata import crawled_docs, curated_docs, labelled_pages  # noqa: E402


def real_docs(n: int) -> list[Doc]:
    base = [Doc(f"cc/page-{i}", "cc", text) for i, (_, _, text) in enumerate(labelled_pages(per_language=20))]
    base += [Doc(d.id, "cc", d.text) for d in curated_docs() + crawled_docs()]
    return [Doc(f"{d.id}#{i}", "cc", d.text) for i in range(n // len(base) + 1) for d in base][:n]


def measure(name: str, stage, table) -> None:
    stage.setup()
    start = time.process_time()
    result = stage.process(table)
    elapsed = time.process_time() - start
    mb = sum(len(t.encode()) for t in table.column("text").to_pylist()) / 1e6
    print(f"{name:10s} {table.num_rows:6d} docs {mb:7.1f} MB  {elapsed:6.2f} s CPU  "
          f"{table.num_rows / elapsed:8.0f} docs/s/core  {mb / elapsed:6.2f} MB/s/core  "
          f"kept {result.kept.num_rows}, rejected {result.rejected.num_rows}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=2000)
    args = ap.parse_args()
    table = docs_to_table(real_docs(args.docs))
    measure("langid", LanguageIdStage(), table)
    measure("quality", QualityStage(), table)


if __name__ == "__main__":
    main()
