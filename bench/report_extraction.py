"""The extraction sections of bench/RESULTS.md (quality and speed per extractor, the profile, the whole
`corpus extract` command), from bench/results/extraction_*.json and extract_command.json."""

from __future__ import annotations

from bench.report_tables import load, missing, table

_NOTES = {
    "trafilatura_defaults": "`trafilatura.extract` as shipped (comments, balanced focus, no tree cap)",
    "favor_precision": "trafilatura defaults + favor_precision",
    "datatrove": "datatrove's Trafilatura extractor (favor_precision, no comments, deduplicate)",
    "hybrid": "**corpusforge default**: fast pass, fallback only where the rule says, through the trafilatura "
              "mirror (sources/html_mirror.py)",
    "hybrid_reference": "`extractor = \"hybrid_reference\"`: the same rule and text with `trafilatura.extract` "
                        "itself",
    "trafilatura": "`extractor = \"trafilatura\"`: the fallback on every page (the default before)",
    "trafilatura_fast": "`extractor = \"trafilatura\"`, `fast = true`: no fallback",
    "resiliparse": "`extractor = \"resiliparse\"`",
}


def quality() -> list[str]:
    d = load("extraction_quality")
    out = ["## Extraction quality and speed", ""]
    if not d:
        return out + missing(".venv/bin/python -m bench.extraction_quality")
    sets = d.get("sets", {})
    out += [f"trafilatura's evaluation set ({sets.get('trafilatura_eval', '?')} pages, snippet precision/recall) and "
            f"newspaper3k's full-text set ({sets.get('newspaper_fulltext', '?')} pages, token precision/recall per "
            "page, averaged); speed is pages per CPU second of extraction (decoding included), all variants in one "
            "run through the pipeline's code path. × = pages/s over trafilatura's defaults.", ""]
    base = d["variants"].get("trafilatura_defaults", {}).get("pages_per_second_per_core")
    rows = []
    for name, v in d["variants"].items():
        te, nf = v.get("trafilatura_eval", {}), v.get("newspaper_fulltext", {})
        speed = v.get("pages_per_second_per_core")
        rows.append([name, te.get("precision"), te.get("recall"), te.get("f1"), nf.get("precision"), nf.get("recall"),
                     nf.get("f1"), speed, round(speed / base, 2) if speed and base else None, _NOTES.get(name, "")])
    out += table(["extractor", "eval P", "eval R", "eval F1", "news P", "news R", "news F1", "pages/s/core", "×",
                  "what"], rows)
    return out + ["", "The default is `hybrid`: trafilatura's fast pass, its readability/jusText fallback only where "
                  "the fast pass looks unreliable, run through sources/html_mirror.py, a mirror of trafilatura 2.3.1's "
                  "steps for these settings with cheaper internals (Python predicates instead of its EXSLT-regex "
                  "XPath pruning, no needless tree copies, the fallback reusing the fast pass). Its text is "
                  "trafilatura's byte for byte (`hybrid_reference`, the same rule with `trafilatura.extract` itself, "
                  "has the same scores; tests/sources/test_html_mirror.py), so it keeps both F1 scores of the "
                  "previous default at over twice trafilatura's defaults' pages per CPU second. The trafilatura modes "
                  "also parse with a C-level element class lookup, which changes no output. Without the mirror no "
                  "setting reached 2x at that quality: trafilatura without its fallback on any page "
                  "(`trafilatura_fast`) loses F1, and a resiliparse first pass loses precision on about half the "
                  "pages (routing measurements below).", ""]


def profile() -> list[str]:
    out = ["### Where extraction time goes", ""]
    runs = [(name, load(f"extraction_profile_{name}"))
            for name in ("trafilatura", "hybrid_reference", "hybrid", "resiliparse")]
    runs = [(n, d) for n, d in runs if d]
    if not runs:
        return out + missing(".venv/bin/python -m bench.extraction_profile --extractor trafilatura")
    out += ["cProfile over the cc source's per-page work (decode, language prefilter, extraction, title) on both "
            "sets, one process (`bench/extraction_profile.py`). Cumulative seconds per part; parts nest (the "
            "fallback comparison holds readability, jusText and XPath pruning of its own), so shares do not add "
            "up to 100%.", ""]
    parts = list(dict.fromkeys(p for _, d in runs for p in d["seconds"]))
    header = ["part"] + [f"{n}: s" for n, _ in runs] + [f"{n}: share" for n, _ in runs]
    rows = [[p] + [d["seconds"].get(p) for _, d in runs]
            + [f"{d['share'][p]:.1%}" if p in d["share"] else "" for _, d in runs] for p in parts]
    rows.append(["total profiled CPU s"] + [d["cpu_seconds_profiled"] for _, d in runs] + ["" for _ in runs])
    rows.append(["trafilatura runs (pages, plus the hybrid's fallbacks; the mirror's for `hybrid`)"] + [d.get("trafilatura_runs") for _, d in runs]
                + ["" for _ in runs])
    out += table(header, rows) + [""]
    views = next((d["prefilter_views"] for _, d in runs if "prefilter_views" in d), None)
    if views:
        out += ["Sharing one parse between the language prefilter and extraction, measured: the prefilter's regex "
                f"text view costs {views['regex_view_ms']} ms a page; parsing (with the never-text elements "
                f"dropped) {views['parse_ms']} ms and the tree's text {views['tree_view_ms']} ms. Parsing first "
                "would save the difference on pages that go on to extraction but add the parse to every page the "
                "prefilter rejects, a loss once those are more than "
                f"{(views['regex_view_ms'] - views['tree_view_ms']) / views['parse_ms']:.0%} of the pages, as in "
                "a multilingual crawl filtered for English. Not adopted; with the prefilter off the "
                "text view is no longer computed at all.", ""]
    return out


def command() -> list[str]:
    d = load("extract_command")
    out = ["### The whole `corpus extract --source cc --workers 1` command", ""]
    if not d:
        return out + missing(".venv/bin/python -m bench.extract_command")
    out += [f"{d['pages']:,} pages in the 1x benchmark WARCs, language prefilter off (every page extracted). The "
            "command is timed whole, from launch to exit; `trafilatura.extract` with its defaults only over its "
            "extraction loop, in one process with the pages in memory. Rounds interleave the runs; "
            f"load average after the run {d.get('load_after', 'n/a')}.", ""]
    rows = []
    for i, r in enumerate(d["rounds"]):
        peer = r["trafilatura_in_process"]
        rows.append([i, "trafilatura.extract (defaults), loop only", peer["pages_per_s"], peer["cpu_s"], "", ""])
        for name, c in r["command"].items():
            rows.append([i, f"corpus extract, extractor = {name}", c["pages_per_s"], c.get("cpu_s"),
                         c["ratio_to_trafilatura"], c.get("cpu_ratio_to_trafilatura")])
    out += table(["round", "run", "pages/s (wall)", "CPU s", "× (wall)", "× (CPU)"], rows)
    med = ", ".join(f"{k} {v}×" for k, v in d.get("median_ratio", {}).items())
    cpu = ", ".join(f"{k} {v}×" for k, v in d.get("median_cpu_ratio", {}).items())
    return out + ["", f"Median ratios to trafilatura in-process: wall {med}; CPU {cpu}. With `--workers 1` the "
                  "command runs in its own process without starting Ray (about 6 s before).", ""]


def routing() -> list[str]:
    d = load("extraction_routing")
    out = ["### A resiliparse first pass, trafilatura where it looks unreliable", ""]
    if not d:
        return out + missing(".venv/bin/python -m bench.extraction_routing")
    out += ["resiliparse (main content, no comments, no alt texts) on every page; pages whose resiliparse text "
            "is short or mostly short lines (a share of its characters in lines under 60 characters) go to "
            "trafilatura (the `trafilatura` extractor). Speed is relative to `trafilatura` on every page, "
            "CPU seconds per page measured in one run (`bench/extraction_routing.py`). The oracle routes exactly "
            "the pages where resiliparse scores worse than trafilatura (a bound no rule reaches); the rules on "
            "resiliparse's text alone lose eval F1 long before they gain 2x.", ""]
    rows = [[r["rule"], r["routed"], r["eval_f1"], r["news_f1"], r["speed_over_trafilatura"]] for r in d["rules"]]
    return out + table(["rule", "pages to trafilatura", "eval F1", "news F1", "× trafilatura pages/s"], rows) + [""]


def extraction_sections() -> list[str]:
    return [line for part in (quality, profile, command, routing) for line in part()]
