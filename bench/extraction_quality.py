"""HTML main-text extraction: quality and speed of each extractor and trafilatura setting on real annotated pages.

    python -m bench.extraction_quality [--max-pages N] [--workers N] [--variants a,b,...]

Sets (../shared/data/extraction, see its SOURCES.md):
* trafilatura_eval: 987 pages with snippets that must appear in the main text and snippets that must
  not (boilerplate). Scores: share of must-contain snippets found (recall), share of must-not-contain
  snippets absent, and snippet precision/recall/F1 as trafilatura's own evaluation computes them.
* newspaper_fulltext: 130 news pages with an expected full text: token-level (bag of lowercased word
  tokens) precision/recall/F1 per page, averaged over pages.

Speed is pages per second per core: pages divided by the CPU time spent in extraction (decoding
included), summed over worker processes. Every variant gets the same decoded page through the same
code path as the pipeline (sources.html), so only the extractor and its settings differ. Results go to
bench/results/extraction_quality.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sources.html import HtmlConfig, decode_html, extract_text

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "extraction"
RESULTS = REPO / "bench" / "results" / "extraction_quality.json"

# trafilatura's own defaults (fallback extractors on, comments kept, no tree-size cap).
_TRAFILATURA_DEFAULTS = HtmlConfig(
    extractor="trafilatura", fast=False, favor_precision=False, include_comments=True, max_tree_elements=0,
    time_limit_seconds=0,
)
VARIANTS: dict[str, HtmlConfig] = {
    "trafilatura_defaults": _TRAFILATURA_DEFAULTS,
    "favor_precision": replace(_TRAFILATURA_DEFAULTS, favor_precision=True),
    # datatrove's Trafilatura extractor: extract(favor_precision=True, include_comments=False,
    # deduplicate=True), no tree-size cap
    "datatrove": replace(_TRAFILATURA_DEFAULTS, favor_precision=True, include_comments=False, deduplicate=True),
    # corpusforge's extractors ([sources.cc.html] extractor = ...)
    "hybrid": HtmlConfig(),  # the default
    "hybrid_reference": HtmlConfig(extractor="hybrid_reference"),  # the same text with trafilatura itself
    "trafilatura": HtmlConfig(extractor="trafilatura"),
    "trafilatura_fast": HtmlConfig(extractor="trafilatura", fast=True),
    "resiliparse": HtmlConfig(extractor="resiliparse"),
    # other candidates measured when choosing the settings
    "fast": replace(_TRAFILATURA_DEFAULTS, fast=True),
    "fast_nocomments": HtmlConfig(extractor="trafilatura", fast=True, favor_precision=False),
}
DEFAULT_VARIANTS = ["trafilatura_defaults", "favor_precision", "datatrove", "hybrid", "hybrid_reference", "trafilatura",
                    "trafilatura_fast", "resiliparse"]
_TOKEN_RE = re.compile(r"\w+")


def _load_trafilatura_eval(max_pages: int) -> list[dict[str, Any]]:
    root = DATA / "trafilatura_eval"
    spec = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    pages = []
    for url, entry in sorted(spec.items()):
        for folder in ("eval", "cache"):
            path = root / "html" / folder / (entry["file"] + ".gz")
            if path.exists():
                pages.append({"url": url, "path": str(path), "with": entry["with"], "without": entry["without"]})
                break
    return _subset(pages, max_pages)


def _load_newspaper(max_pages: int) -> list[dict[str, Any]]:
    root = DATA / "newspaper_fulltext"
    pages = []
    with open(root / "pairs.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["status"] == "reference_text":
                expected = (root / row["text_file"]).read_text(encoding="utf-8", errors="replace")
                pages.append({"url": row["url"], "path": str(root / row["html_file"]), "expected": expected})
    return _subset(pages, max_pages)


def _subset(pages: list[dict[str, Any]], max_pages: int) -> list[dict[str, Any]]:
    if max_pages <= 0 or len(pages) <= max_pages:
        return pages
    step = len(pages) / max_pages
    return [pages[int(i * step)] for i in range(max_pages)]


def _extract_one(args: tuple[str, str, HtmlConfig]) -> tuple[str, float]:
    path, url, config = args
    payload = gzip.decompress(Path(path).read_bytes())
    t0 = time.process_time()
    html, _ = decode_html(payload, None)
    text, _ = extract_text(html, url, config)
    return text or "", time.process_time() - t0


def _run(pages: list[dict[str, Any]], config: HtmlConfig, workers: int) -> tuple[list[str], float]:
    jobs = [(p["path"], p["url"], config) for p in pages]
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(_extract_one, jobs, chunksize=4))
    return [t for t, _ in results], sum(s for _, s in results)


def _snippet_scores(pages: list[dict[str, Any]], texts: list[str]) -> dict[str, float]:
    tp = fn = tn = fp = 0
    for page, text in zip(pages, texts, strict=True):
        for s in page["with"]:
            tp, fn = (tp + 1, fn) if s in text else (tp, fn + 1)
        for s in page["without"]:
            tn, fp = (tn + 1, fp) if s not in text else (tn, fp + 1)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "must_contain_found": round(recall, 4),
        "must_not_contain_absent": round(tn / (tn + fp) if tn + fp else 0.0, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall) if precision + recall else 0.0, 4),
        "empty_outputs": sum(1 for t in texts if not t),
    }


def _token_scores(pages: list[dict[str, Any]], texts: list[str]) -> dict[str, float]:
    ps, rs, fs = [], [], []
    for page, text in zip(pages, texts, strict=True):
        got = Counter(_TOKEN_RE.findall(text.lower()))
        want = Counter(_TOKEN_RE.findall(page["expected"].lower()))
        common = sum((got & want).values())
        p = common / sum(got.values()) if got else 0.0
        r = common / sum(want.values()) if want else 0.0
        ps.append(p)
        rs.append(r)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    n = max(1, len(pages))
    return {"precision": round(sum(ps) / n, 4), "recall": round(sum(rs) / n, 4), "f1": round(sum(fs) / n, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-pages", type=int, default=0, help="evenly spaced subset of each set (0 = all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"of: {', '.join(VARIANTS)}")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"extraction data not found at {DATA}", file=sys.stderr)
        return 2
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    traf = _load_trafilatura_eval(args.max_pages)
    news = _load_newspaper(args.max_pages)
    results: dict[str, Any] = {
        "sets": {"trafilatura_eval": len(traf), "newspaper_fulltext": len(news)},
        "workers": args.workers,
        "variants": {},
    }
    for name in names:
        config = VARIANTS[name]
        t_texts, t_cpu = _run(traf, config, args.workers)
        n_texts, n_cpu = _run(news, config, args.workers)
        pages, cpu = len(traf) + len(news), t_cpu + n_cpu
        row = {
            "config": asdict(config),
            "trafilatura_eval": _snippet_scores(traf, t_texts),
            "newspaper_fulltext": _token_scores(news, n_texts),
            "cpu_seconds": round(cpu, 2),
            "pages_per_second_per_core": round(pages / cpu, 2) if cpu else None,
        }
        results["variants"][name] = row
        print(
            f"{name:28s} snippets found {row['trafilatura_eval']['must_contain_found']:.3f}"
            f" boilerplate absent {row['trafilatura_eval']['must_not_contain_absent']:.3f}"
            f" F1 {row['trafilatura_eval']['f1']:.3f} | news token P/R/F1"
            f" {row['newspaper_fulltext']['precision']:.3f}/{row['newspaper_fulltext']['recall']:.3f}"
            f"/{row['newspaper_fulltext']['f1']:.3f} | {row['pages_per_second_per_core']} pages/s/core",
            flush=True,
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
