"""Growing a corpus (issue 17, first part): a shard stage's output is keyed by its input shard's
content, so adding a source computes langid and quality only on the new shards, and the version equals
a from-scratch build of everything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.running.build import check_inputs, run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.versions.manifest import write_version
from tests.conftest import data_path
from tests.pipeline.helpers import long_paragraphs, write_jsonl_inputs

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


REAL = """
[corpus]
name = "growing-web"
workdir = "{workdir}"
out = "{out}"
manifests_dir = ""

[sources.cc]
inputs = {warcs}
languages = ["en"]

[sources.wikipedia]
inputs = ["{wiki}"]
{books}
[stages.langid]

[stages.quality]

[stages.dedup]
source_priority = ["wikipedia", "books", "cc"]

[stages.decontam]
evals = {{ gsm8k = "{gsm8k}:question,answer" }}
"""


def _stats(result, step: str, name: str) -> dict:
    from pipeline.core.shards import read_json

    out_dir = next(s.out_dir for s in result.steps if s.name == step)
    return read_json(out_dir / name)


def test_web_and_wikipedia_then_books_reuses_every_shard_of_the_first_build(tmp_path, ray_executor):
    """Issue 17's proof: cc + wikipedia, then the same plus books and one more WARC: extraction, langid
    and quality of the first build's shards, their dedup signatures and decontamination scans are all
    reused; the version equals a from-scratch build of everything in another work directory."""
    warc = data_path("warc", "dolma_sample-0001.warc.gz")
    second_warc = data_path("warc", "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz")
    wiki = data_path("wikipedia", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    gsm8k = data_path("eval_sets", "gsm8k", "test.jsonl")
    books = tmp_path / "books"
    books.mkdir()
    for name in ("16215.txt", "44157-0.txt"):
        shutil.copy(data_path("gutenberg", name), books / name)

    def config(name: str, workdir: Path, grown: bool) -> Path:
        path = tmp_path / f"{name}.toml"
        warcs = [str(warc), str(second_warc)] if grown else [str(warc)]
        path.write_text(REAL.format(workdir=workdir, out=tmp_path / "out", warcs=json.dumps(warcs), wiki=wiki,
                                    gsm8k=gsm8k, books=f'[sources.books]\ninputs = ["{books}"]\n' if grown else ""))
        return path

    first, first_version = _build(config("first", tmp_path / "work", False), ray_executor)
    recording = _Recording(ray_executor)
    grown, grown_version = _build(config("grown", tmp_path / "work", True), recording)
    fresh, fresh_version = _build(config("fresh", tmp_path / "fresh-work", True), ray_executor)

    old = {s.name: s.report for s in first.steps}
    steps = {s.name: s.report for s in grown.steps}
    assert steps["extract:wikipedia"].shards_computed == 0  # the same extraction step: reused whole
    # cc has a new input: a new step, in which the first WARC's unit is reused, not extracted again
    assert (steps["extract:cc"].shards_reused, steps["extract:cc"].shards_computed) == (1, 1)
    new_shards = steps["extract:books"].shards_computed + len(steps["extract:cc"].outputs) - len(old["extract:cc"].outputs)
    web_shards = old["langid"].shards_total
    assert new_shards >= 2 and web_shards >= 2
    for stage in ("langid", "quality"):
        assert (steps[stage].shards_reused, steps[stage].shards_computed) == (web_shards, new_shards), stage
    # the global stages: every cc and wikipedia shard that reached them is signed / scanned once
    dedup_inputs = old["quality"].outputs
    signed = _stats(grown, "dedup", "_dedup.json")
    assert (signed["signatures_reused"], signed["signatures_computed"]) == (
        len(dedup_inputs), signed["shards"] - len(dedup_inputs))
    # quality's tasks and copies reported the digests of its shards: only the new ones are read to sign them
    assert recording.items("dedup: signatures") == signed["signatures_computed"]
    scanned = _stats(grown, "decontam", "_decontam.json")
    assert scanned["scans_reused"] == len(old["dedup"].outputs) and scanned["shards"] > scanned["scans_reused"]
    # dedup writes anew only the shards whose content or decisions are new; the others are copied
    assert new_shards <= signed["shards_rewritten"] < signed["shards"]
    fresh_dedup = _stats(fresh, "dedup", "_dedup.json")
    assert fresh_dedup["signatures_reused"] == 0 and fresh_dedup["shards_rewritten"] == fresh_dedup["shards"]

    assert grown_version.version == fresh_version.version != first_version.version
    grown_files = {e["path"]: e["sha256"] for e in _manifest(grown_version)["outputs"]}
    assert grown_files == {e["path"]: e["sha256"] for e in _manifest(fresh_version)["outputs"]}


class _Recording:
    """An executor that counts the items of each `map`, by its description."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, []

    def map(self, fn, items, **kw):
        self.calls.append((kw.get("desc", ""), len(items)))
        return self.inner.map(fn, items, **kw)

    def items(self, desc: str) -> int:
        return sum(n for d, n in self.calls if d == desc)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _manifest(version) -> dict:
    import json

    return json.loads(Path(version.manifest_path).read_text())


def test_diff_of_a_grown_build_lists_the_documents_whose_dedup_decision_changed(tmp_path, ray_executor):
    """The diff of an incremental build against its predecessor: the added documents, and each
    document one version kept and the other rejected, with the reason."""
    from pipeline.versions.diff import diff_manifests, format_diff

    texts = long_paragraphs(12)
    (tmp_path / "jsonl").mkdir()
    for f in range(2):
        (tmp_path / "jsonl" / f"part00{f}.jsonl").write_text(
            "".join(json.dumps({"id": f"{f}-{i}", "text": t}) + "\n" for i, t in enumerate(texts[f::2])))
    doc = {"id": "0-2", "text": texts[4]}
    # a new file repeating one of the first build's documents under an id that sorts first: it becomes
    # the survivor and the earlier copy is now the duplicate
    (tmp_path / "jsonl" / "part002.jsonl").write_text(json.dumps({**doc, "id": "+copy"}) + "\n")
    config = CONFIG.format(workdir=tmp_path / "work", out=tmp_path / "out", jsonl=tmp_path / "jsonl", books="")
    config = config.replace("[stages.quality]\n", "[stages.dedup]\n")  # no min-length rule to pass
    (tmp_path / "first.toml").write_text(config.replace("*.jsonl", "part00[01].jsonl"))
    (tmp_path / "grown.toml").write_text(config)
    _, a = _build(tmp_path / "first.toml", ray_executor)
    grown, b = _build(tmp_path / "grown.toml", ray_executor)

    d = diff_manifests(a.manifest_path, b.manifest_path)
    old_id = f"jsonl/{doc['id']}"
    assert d["documents"]["decisions"] == [
        {"id": old_id, "source": "jsonl", "change": "removed", "stage": "dedup", "reason": "exact-dup:jsonl/+copy"}]
    assert d["documents"]["added"] == {"jsonl": 1} and d["documents"]["removed"] == {"jsonl": 1}
    assert f"{old_id} (jsonl): removed by dedup exact-dup:jsonl/+copy" in format_diff(d)
    steps = {s.name: s.report for s in grown.steps}
    assert (steps["langid"].shards_reused, steps["langid"].shards_computed) == (2, 1)
