"""Could a resiliparse first pass, with trafilatura only where it looks unreliable, keep trafilatura's F1?

    .venv/bin/python -m bench.extraction_routing [--max-pages N]

On both shared extraction sets (bench/extraction_quality.py), every page through resiliparse and through
the `trafilatura` extractor, timed per page in CPU seconds in one process. Then, for routing rules on the
resiliparse text alone (routed: text under 500 characters, or more than a share of its characters in
lines under 60 characters, where boilerplate sits), the F1 of taking trafilatura's text on routed pages and
resiliparse's elsewhere, and the speed of running resiliparse everywhere plus trafilatura on routed pages.
The oracle routes the pages where resiliparse scores worse than trafilatura (snippets found lower or
boilerplate leaked higher; news token F1 lower): the best any rule could do. Results:
bench/results/extraction_routing.json.
"""

from __future__ import annotations

import argparse
import gzip
import re
import time
from collections import Counter
from pathlib import Path

from bench import save_results
from bench.extraction_quality import (
    DATA,
    _load_newspaper,
    _load_trafilatura_eval,
    _snippet_scores,
    _token_scores,
)
from sources.html import HtmlConfig, decode_html, extract_text

RESULTS = Path(__file__).resolve().parent / "results" / "extraction_routing.json"
SHORT_LINE = 60
_TOKEN_RE = re.compile(r"\w+")


def _timed(html: str, url: str, config: HtmlConfig) -> tuple[str, float]:
    t = time.process_time()
    text, _ = extract_text(html, url, config)
    return text or "", time.process_time() - t


def short_share(text: str) -> float:
    """Share of the text's characters in lines shorter than SHORT_LINE."""
    lines = [s.strip() for s in text.split("\n") if s.strip()]
    total = sum(map(len, lines))
    return sum(len(s) for s in lines if len(s) < SHORT_LINE) / total if total else 1.0


def _token_f1(text: str, expected: str) -> float:
    got, want = Counter(_TOKEN_RE.findall(text.lower())), Counter(_TOKEN_RE.findall(expected.lower()))
    common = sum((got & want).values())
    p, r = (common / sum(got.values()) if got else 0.0), (common / sum(want.values()) if want else 0.0)
    return 2 * p * r / (p + r) if p + r else 0.0


def _worse(page: dict, res: str, traf: str) -> bool:
    if "expected" in page:
        return _token_f1(res, page["expected"]) < _token_f1(traf, page["expected"])
    found = [sum(s in t for s in page["with"]) for t in (res, traf)]
    leaked = [sum(s in t for s in page["without"]) for t in (res, traf)]
    return found[0] < found[1] or leaked[0] > leaked[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-pages", type=int, default=0)
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"extraction data not found at {DATA}")
        return 2
    sets = {"eval": _load_trafilatura_eval(args.max_pages), "news": _load_newspaper(args.max_pages)}
    res_cfg, traf_cfg = HtmlConfig(extractor="resiliparse"), HtmlConfig(extractor="trafilatura")
    rows: dict[str, list[dict]] = {}
    for name, pages in sets.items():
        rows[name] = []
        for page in pages:
            html, _ = decode_html(gzip.decompress(Path(page["path"]).read_bytes()), None)
            res, res_s = _timed(html, page["url"], res_cfg)
            traf, traf_s = _timed(html, page["url"], traf_cfg)
            rows[name].append({"res": res, "res_s": res_s, "traf": traf, "traf_s": traf_s,
                               "short": short_share(res), "worse": _worse(page, res, traf)})
    everything = rows["eval"] + rows["news"]
    base = sum(r["traf_s"] for r in everything)

    def evaluate(rule: str, routed_of) -> dict:
        texts = {k: [r["traf"] if routed_of(r) else r["res"] for r in v] for k, v in rows.items()}
        cost = sum(r["res_s"] + (r["traf_s"] if routed_of(r) else 0.0) for r in everything)
        return {"rule": rule, "routed": sum(1 for r in everything if routed_of(r)),
                "eval_f1": _snippet_scores(sets["eval"], texts["eval"])["f1"],
                "news_f1": _token_scores(sets["news"], texts["news"])["f1"],
                "speed_over_trafilatura": round(base / cost, 2)}

    results = [evaluate("none (resiliparse only)", lambda r: False),
               evaluate("all (trafilatura only)", lambda r: True)]
    for share in (0.1, 0.2, 0.3, 0.5):
        results.append(evaluate(f"short lines > {share:.0%} or < 500 chars",
                                lambda r, s=share: r["short"] > s or len(r["res"]) < 500))
    results.append(evaluate("oracle", lambda r: r["worse"]))
    for r in results:
        print(r)
    save_results(RESULTS, {"pages": len(everything), "rules": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
