"""The datatrove side of bench/filters_vs_datatrove.py: its filters' decisions and CPU time per document.

Runs INSIDE the datatrove virtual environment (../bench-venvs/datatrove, see bench/__init__.py), never the project's; it
imports nothing from corpusforge. Reads a JSON Lines file (one {"id", "text"} per line) and writes one
JSON object:

    python bench/datatrove_filters.py --docs docs.jsonl --lid-model lid.176.ftz --out result.json

For each filter (LanguageFilter(["en"], threshold 0.5, ft176 backend on the given model file),
GopherQualityFilter, GopherRepetitionFilter and C4QualityFilter, all with their defaults, which are the
papers' thresholds) it calls `filter(doc)` on a fresh `Document` per text, single process, and records
per document whether it is kept and datatrove's reason when not, plus the CPU seconds of the loop
(`time.process_time`, best of `--repeats`; models and tokenizers are loaded before timing starts).

The lid.176 file is handed to datatrove as a `file://` MODEL_URL, so its downloader copies the local file
into its asset cache (set HF_ASSETS_CACHE to keep that cache out of the home directory); nothing is fetched
from the web.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _filters(lid_model: str) -> dict:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )

    lang = LanguageFilter(languages=["en"], language_threshold=0.5)
    lang.model.MODEL_URL = "file://" + str(Path(lid_model).resolve())  # the same model file as ours
    return {
        "langid": lang,
        "gopher_quality": GopherQualityFilter(),
        "gopher_repetition": GopherRepetitionFilter(),
        "c4": C4QualityFilter(),
    }


def _decide(flt, doc) -> tuple[bool, str | None]:
    """(kept, reason); LanguageFilter gives no reason, so its dropped documents get `lang:<label>@<score>`."""
    result = flt.filter(doc)
    if isinstance(result, tuple):
        return bool(result[0]), None if result[0] else str(result[1])
    if result:
        return True, None
    if "language" in doc.metadata:
        return False, f"lang:{doc.metadata['language']}@{doc.metadata['language_score']:.2f}"
    return False, "filtered"


def run(docs: list[dict], lid_model: str, repeats: int) -> dict:
    from datatrove.data import Document

    out: dict = {"docs": len(docs), "filters": {}}
    for name, flt in _filters(lid_model).items():
        _decide(flt, Document(text=docs[0]["text"], id=docs[0]["id"]))  # warm-up: loads model / spaCy
        best = float("inf")
        decisions: list[tuple[bool, str | None]] = []
        for _ in range(repeats):
            fresh = [Document(text=d["text"], id=d["id"]) for d in docs]  # C4 rewrites doc.text
            start = time.process_time()
            decisions = [_decide(flt, doc) for doc in fresh]
            best = min(best, time.process_time() - start)
        out["filters"][name] = {
            "cpu_s": best,
            "kept": [k for k, _ in decisions],
            "reasons": [r for _, r in decisions],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", required=True, help="JSON Lines of {id, text}")
    ap.add_argument("--lid-model", required=True, help="lid.176 .bin/.ftz file (no download)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    with open(args.docs, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    result = run(docs, args.lid_model, args.repeats)
    result["ids"] = [d["id"] for d in docs]
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")
    print(json.dumps({name: round(f["cpu_s"], 3) for name, f in result["filters"].items()}))


if __name__ == "__main__":
    main()
