"""`[stages.dedup] against` / `corpus dedup --against`: new documents that duplicate documents of an
earlier, published version are removed, naming that document and version; the version is only read."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.cli import main
from pipeline.core.io import sha256_file
from pipeline.running.build import check_files, check_inputs, run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.versions.manifest import write_version
from pipeline.versions.verify import verify
from tests.pipeline.helpers import long_paragraphs

CONFIG = """
[corpus]
name = "crawl"
workdir = "{workdir}"
out = "{out}"
manifests_dir = ""

[sources.jsonl]
inputs = ["{inputs}/*.jsonl"]
id_field = "id"

[stages.dedup]
{against}
"""


def _write(directory: Path, docs: list[tuple[str, str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "part.jsonl", "w", encoding="utf-8") as f:
        for doc_id, text in docs:
            f.write(json.dumps({"id": doc_id, "text": text}) + "\n")


def _build(tmp_path: Path, name: str, inputs: Path, against: str, executor):
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(workdir=tmp_path / "work", out=tmp_path / "out", inputs=inputs,
                                  against=f'against = ["{against}"]' if against else ""))
    config = load_build_config(path)
    sources = select_sources(config, None)
    check_inputs(config, sources)
    check_files(config, sources)
    result = run_build(config, executor, sources=sources, workdir=config.corpus.workdir, log=lambda *_: None)
    return result, write_version(config, result, sources=sources, out=config.corpus.out, workdir=config.corpus.workdir)


def _rejected(result) -> dict[str, str]:
    out_dir = next(s.out_dir for s in result.steps if s.name == "dedup")
    reasons: dict[str, str] = {}
    for f in sorted((out_dir / "rejected").glob("*.parquet")):
        t = pq.read_table(f, columns=["id", "reason"])
        reasons.update(zip(t["id"].to_pylist(), t["reason"].to_pylist(), strict=True))
    return reasons


def test_second_crawl_repeating_pages_is_deduplicated_against_the_first_version(tmp_path, ray_executor):
    texts = long_paragraphs(16)
    _write(tmp_path / "crawl1", [(f"a{i}", t) for i, t in enumerate(texts[:10])])
    first, v1 = _build(tmp_path, "first", tmp_path / "crawl1", "", ray_executor)
    before = {p: sha256_file(p) for p in sorted(Path(v1.dir).rglob("*")) if p.is_file()}

    # the second crawl: two pages again verbatim, one with a few words changed, and six new ones
    words = texts[2].split()
    edited = " ".join(words[:-3] + ["and", "so", "forth"])
    second = [("b0", texts[0]), ("b1", texts[1]), ("b2", edited)] + [(f"b{i}", texts[i + 7]) for i in range(3, 9)]
    _write(tmp_path / "crawl2", second)
    grown, v2 = _build(tmp_path, "second", tmp_path / "crawl2", str(v1.dir), ray_executor)

    rejected = _rejected(grown)
    assert rejected == {
        "jsonl/b0": f"exact-dup:jsonl/a0@{v1.version}",
        "jsonl/b1": f"exact-dup:jsonl/a1@{v1.version}",
        "jsonl/b2": f"near-dup:jsonl/a2@{v1.version}",
    }
    kept = {r["id"] for f in sorted((Path(v2.dir) / "docs").glob("*.parquet")) for r in pq.read_table(f).to_pylist()}
    assert kept == {f"jsonl/b{i}" for i in range(3, 9)}
    # the first version was only read: every file as it was, and it verifies
    assert {p: sha256_file(p) for p in sorted(Path(v1.dir).rglob("*")) if p.is_file()} == before
    assert verify(v1.manifest_path) == []
    # without `against`, the same crawl keeps them all: the earlier version is what removed them
    alone, _ = _build(tmp_path, "alone", tmp_path / "crawl2", "", ray_executor)
    assert _rejected(alone) == {}


def test_dedup_command_against_a_version(tmp_path, ray_executor, capsys):
    texts = long_paragraphs(6)
    _write(tmp_path / "crawl1", [(f"a{i}", t) for i, t in enumerate(texts[:3])])
    _, v1 = _build(tmp_path, "first", tmp_path / "crawl1", "", ray_executor)
    _write(tmp_path / "crawl2", [("b0", texts[0]), ("b1", texts[4])])
    _build(tmp_path, "second", tmp_path / "crawl2", "", ray_executor)
    extracted = [d for d in (tmp_path / "work" / "stages" / "extract-jsonl").iterdir()
                 if any("jsonl/b0" in pq.read_table(f)["id"].to_pylist() for f in d.glob("*.parquet"))][0]
    out = tmp_path / "deduped"
    assert main(["dedup", "--in", str(extracted), "--out", str(out), "--against", str(v1.dir), "--workers", "1"]) == 0
    t = pq.read_table(next((out / "rejected").glob("*.parquet")))
    assert t["reason"].to_pylist() == [f"exact-dup:jsonl/a0@{v1.version}"]
    assert main(["dedup", "--in", str(extracted), "--out", str(tmp_path / "x"), "--against", str(tmp_path)]) == 2
    assert "not a corpus version" in capsys.readouterr().err
