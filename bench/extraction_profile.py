"""Where extraction time goes: cProfile over the cc source's per-page work on the shared extraction sets.

    .venv/bin/python -m bench.extraction_profile [--max-pages N] [--extractor trafilatura]

Runs, per page and in one process, what `sources.cc.RecordExtractor.record` does to an HTML response:
charset decoding, the raw-HTML language prefilter (regex text view + fastText), extraction with the
chosen `[sources.cc.html]` extractor, and the title. The profile is then split into parts by the
cumulative CPU time of the functions that own them (parts nest in trafilatura's own order, so each
part's self share is its cumulative time minus the parts inside it). Results:
bench/results/extraction_profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import time
from dataclasses import replace
from pathlib import Path

from bench import save_results
from bench.extraction_quality import DATA, _load_newspaper, _load_trafilatura_eval
from sources.cc import CommonCrawlConfig, guess_languages, load_lang_model
from sources.html import HtmlConfig, decode_html, extract_text, rough_text, title_of

RESULTS = Path(__file__).resolve().parent / "results" / "extraction_profile.json"

# part -> the (module file suffix, function name) pairs whose cumulative time is that part's.
PARTS: dict[str, list[tuple[str, str]]] = {
    "decode (charset)": [("sources/html.py", "decode_html")],
    "prefilter text view (regex)": [("sources/html.py", "rough_text")],
    "prefilter fastText": [("sources/cc.py", "guess_languages")],
    "title": [("sources/html.py", "title_of")],
    "extraction, total": [("sources/html.py", "extract_text")],
    "parse (lxml)": [("trafilatura/utils.py", "load_html"), ("sources/html_modes.py", "_parse")],
    "XPath pruning (prune_unwanted_nodes, every call)": [("trafilatura/htmlprocessing.py", "prune_unwanted_nodes")],
    "hybrid: pruning by Python predicates (html_mirror)": [
        ("sources/html_mirror.py", "prune"), ("sources/html_mirror.py", "prune_all"),
        ("sources/html_mirror.py", "prune_overall_with_backup"), ("sources/html_xpaths.py", "raw_and_comments"),
        ("sources/html_xpaths.py", "section_discards")],
    "hybrid: main-content search (html_xpaths BODY_XPATH)": [("sources/html_xpaths.py", "match_first")],
    "tree cleaning (tree_cleaning)": [("trafilatura/htmlprocessing.py", "tree_cleaning")],
    "tag conversion (convert_tags)": [("trafilatura/htmlprocessing.py", "convert_tags")],
    "main extractor (extract_content)": [("trafilatura/main_extractor.py", "extract_content"),
                                         ("sources/html_mirror.py", "extract_content")],
    "fallback comparison (compare_extraction)": [("trafilatura/external.py", "compare_extraction"),
                                                 ("sources/html_mirror.py", "compare_extraction")],
    "  readability": [("trafilatura/external.py", "try_readability")],
    "  justext": [("trafilatura/external.py", "justext_rescue")],
    "baseline": [("trafilatura/baseline.py", "baseline")],
    "output text (determine_returnstring)": [("trafilatura/core.py", "determine_returnstring")],
    "tree copies (copy.copy)": [("copy.py", "copy")],
    "hybrid: fallback from the kept fast pass (html_mirror.fallback)": [("sources/html_mirror.py", "fallback")],
    "hybrid: drop never-text elements": [("sources/html_modes.py", "drop_never_text")],
    "hybrid: fallback rule": [("sources/html_modes.py", "needs_fallback"), ("sources/html_modes.py", "_short")],
    "resiliparse": [("sources/html_modes.py", "resiliparse")],
}


def _cumulative(stats: pstats.Stats) -> dict[str, float]:
    got = dict.fromkeys(PARTS, 0.0)
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for part, owners in PARTS.items():
            if any(func == name and file.endswith(suffix) for suffix, name in owners):
                got[part] += ct
    return got


def profile(pages: list[dict], html: HtmlConfig) -> dict:
    """Run the cc per-page work over `pages` under cProfile; seconds per part and in total."""
    model = load_lang_model("")
    payloads = [(gzip.decompress(Path(p["path"]).read_bytes()), p["url"]) for p in pages]
    prof = cProfile.Profile(time.process_time)  # CPU time: other work on the machine does not inflate it
    t0 = time.process_time()
    prof.enable()
    for payload, url in payloads:
        page, _ = decode_html(payload, None)
        guess_languages(model, rough_text(page))
        extract_text(page, url, html)
        title_of(page)
    prof.disable()
    total = time.process_time() - t0
    stats = pstats.Stats(prof)
    parts = {k: round(v, 3) for k, v in _cumulative(stats).items() if v > 0}
    # trafilatura runs per page: 1 on every page, 2 where the hybrid's rule calls for the fallback (for the
    # mirror in sources/html_mirror.py: its runs plus its fallbacks from a kept fast pass)
    runs = sum(nc for (file, _, func), (_, nc, *_rest) in stats.stats.items()  # type: ignore[attr-defined]
               if (func == "extract" and file.endswith("trafilatura/core.py"))
               or (func in ("run", "fallback") and file.endswith("sources/html_mirror.py")))
    return {"pages": len(pages), "cpu_seconds_profiled": round(total, 2), "trafilatura_runs": runs,
            "seconds": parts, "share": {k: round(v / total, 4) for k, v in parts.items()}}


def prefilter_views(pages: list[dict]) -> dict:
    """CPU ms per page of the prefilter's regex text view against parsing first and reading the tree's text
    (what sharing one parse between the prefilter and extraction would cost)."""
    from sources import html_modes

    htmls = [decode_html(gzip.decompress(Path(p["path"]).read_bytes()), None)[0] for p in pages]

    def tree_view(tree: object) -> str:
        body = tree.find("body")  # type: ignore[attr-defined]
        return " ".join((body if body is not None else tree).text_content()[:80_000].split())[:4000]

    t = time.process_time()
    for h in htmls:
        rough_text(h)
    regex = time.process_time() - t
    t = time.process_time()
    trees = [html_modes.drop_never_text(html_modes._parse(h)) for h in htmls]
    parse = time.process_time() - t
    t = time.process_time()
    for tree in trees:
        if tree is not None:
            tree_view(tree)
    view = time.process_time() - t
    ms = 1000 / max(1, len(htmls))
    return {"regex_view_ms": round(regex * ms, 3), "parse_ms": round(parse * ms, 3), "tree_view_ms": round(view * ms, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-pages", type=int, default=0)
    ap.add_argument("--extractor", default="", help="[sources.cc.html] extractor (default: the configured default)")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"extraction data not found at {DATA}")
        return 2
    html = CommonCrawlConfig().html
    if args.extractor:
        html = replace(html, extractor=args.extractor)
    pages = _load_trafilatura_eval(args.max_pages) + _load_newspaper(args.max_pages)
    result = {"extractor": html.extractor, **profile(pages, html), "prefilter_views": prefilter_views(pages)}
    for part, secs in result["seconds"].items():
        print(f"{part:45s} {secs:8.2f} s  {result['share'][part]:6.1%}")
    print(f"total (profiled) {result['cpu_seconds_profiled']} s over {result['pages']} pages, "
          f"{result['trafilatura_runs']} trafilatura runs; prefilter text views, ms/page: {result['prefilter_views']}")
    save_results(RESULTS.with_name(f"extraction_profile_{result['extractor']}.json"), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
