"""Builders of small real inputs and configs for the pipeline tests."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SHARED_DATA


def real_paragraphs(limit: int = 400) -> list[str]:
    """Paragraphs of real English prose: a Gutenberg book when ../shared/data is here, else the
    Python language reference that ships with every CPython (pydoc_data)."""
    book = SHARED_DATA / "gutenberg" / "44157-0.txt"
    if book.exists():
        text = book.read_text(encoding="utf-8", errors="replace")
        paras = [" ".join(p.split()) for p in text.split("\n\n")]
        return [p for p in paras if len(p.split()) >= 3][:limit]
    from pydoc_data.topics import topics

    from pipeline.demo.content import articles

    text = "\n\n".join(topics[k] for k in sorted(topics))
    paras = [p for p in (" ".join(p.split()) for p in text.split("\n\n")) if len(p.split()) >= 3]
    # the reference's paragraphs are mostly short; every third text is one of the demo's articles of
    # its running prose, long enough for the quality stage, as a book's paragraphs sometimes are
    long = [" ".join(" ".join(ps).split()) for _, ps in articles()]
    out: list[str] = []
    for i, p in enumerate(paras):
        out.append(p)
        if i % 2:
            out.append(long[(i // 2) % len(long)])
    return out[:limit]


def long_paragraphs(n: int, min_words: int = 40) -> list[str]:
    """`n` distinct paragraphs of real prose long enough for the default quality rules."""
    paras = list(dict.fromkeys(p for p in real_paragraphs(2000) if len(p.split()) >= min_words))
    assert len(paras) >= n, f"only {len(paras)} long paragraphs of real prose"
    return paras[:n]


def write_jsonl_inputs(directory: Path, files: int, docs_per_file: int, *, bad_lines: int = 1) -> list[Path]:
    """`files` JSONL files of real paragraphs (some short ones, some malformed lines)."""
    paras = real_paragraphs(files * docs_per_file)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        path = directory / f"part{f:03d}.jsonl"
        with open(path, "w", encoding="utf-8") as out:
            for i in range(docs_per_file):
                text = paras[(f * docs_per_file + i) % len(paras)]
                source = "books" if i % 3 else "web"
                out.write(json.dumps({"text": text, "id": f"{f}-{i}", "meta": {"pile_set_name": source}}) + "\n")
            for _ in range(bad_lines):
                out.write("{not json\n")
        paths.append(path)
    return paths


def write_config(path: Path, *, inputs: str, workdir: Path, out: Path, min_words: int = 8,
                 sleep_per_shard: float = 0.0, extra: str = "") -> Path:
    path.write_text(
        f"""
[corpus]
name = "testcorpus"
seed = 7
workdir = "{workdir}"
out = "{out}"
manifests_dir = "{out / 'manifests'}"

[sources.jsonl]
inputs = ["{inputs}"]
id_field = "id"
source_from_meta = "pile_set_name"

[stages."tests.pipeline.stages_for_tests:MinWordsStage"]
min_words = {min_words}
sleep_per_shard = {sleep_per_shard}
{extra}
"""
    )
    return path
