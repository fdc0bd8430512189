"""Growing a corpus (issue 17, first part): a shard stage's output is keyed by its input shard's
content, so adding a source computes langid and quality only on the new shards, and the version equals
a from-scratch build of everything."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.running.build import check_inputs, run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.versions.manifest import write_version
from tests.conftest import data_path
from tests.pipeline.helpers import write_jsonl_inputs

CONFIG = """
[corpus]
name = "growing"
workdir = "{workdir}"
out = "{out}"
manifests_dir = ""

[sources.jsonl]
inputs = ["{jsonl}/*.jsonl"]
id_field = "id"
{books}
[stages.langid]

[stages.quality]
"""


def _build(path: Path, executor):
    config = load_build_config(path)
    sources = select_sources(config, None)
    check_inputs(config, sources)
    result = run_build(config, executor, sources=sources, workdir=config.corpus.workdir, log=lambda *_: None)
    return result, write_version(config, result, sources=sources, out=config.corpus.out, workdir=config.corpus.workdir)


def test_adding_a_source_computes_only_its_shards_and_matches_a_full_build(tmp_path, ray_executor):
    write_jsonl_inputs(tmp_path / "jsonl", 3, 20)
    books = tmp_path / "books"
    books.mkdir()
    for name in ("16215.txt", "44157-0.txt"):
        shutil.copy(data_path("gutenberg", name), books / name)
    books_section = f'[sources.books]\ninputs = ["{books}"]\n'

    def config(name: str, workdir: Path, with_books: bool) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(CONFIG.format(workdir=workdir, out=tmp_path / "out", jsonl=tmp_path / "jsonl",
                                      books=books_section if with_books else ""))
        return path

    first, _ = _build(config("first", tmp_path / "work", False), ray_executor)
    grown, grown_version = _build(config("grown", tmp_path / "work", True), ray_executor)
    fresh, fresh_version = _build(config("fresh", tmp_path / "fresh-work", True), ray_executor)

    steps = {s.name: s.report for s in grown.steps}
    jsonl_shards = next(s.report.shards_total for s in first.steps if s.name == "langid")
    books_shards = steps["extract:books"].shards_computed
    assert jsonl_shards >= 3 and books_shards >= 1
    for stage in ("langid", "quality"):
        assert (steps[stage].shards_reused, steps[stage].shards_computed) == (jsonl_shards, books_shards), stage
    assert {s.name: s.report.shards_reused for s in fresh.steps}["langid"] == 0  # another work dir: from scratch
    # the same bytes, whether the jsonl shards were copied from the first build or computed afresh
    assert grown_version.version == fresh_version.version
