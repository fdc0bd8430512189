"""Relative paths in a config resolve against the config file's directory, and the version does not
depend on how a path was spelled."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from pipeline.core.shards import read_json
from pipeline.running.build import check_inputs, run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.running.configpaths import path_options, resolve_eval, resolve_path
from pipeline.versions.manifest import write_version
from tests.conftest import REPO
from tests.pipeline.helpers import real_paragraphs, write_jsonl_inputs

CONFIG = """
[corpus]
name = "spelled"
workdir = "{workdir}"
out = "{out}"
manifests_dir = "{manifests}"

[sources.jsonl]
inputs = ["{inputs}"]
id_field = "id"
source_from_meta = "pile_set_name"

[stages.decontam]
evals = {{ qa = "{evals}:question,answer" }}
"""


def _build(cfg: Path, executor):
    config = load_build_config(cfg)
    sources = select_sources(config, None)
    check_inputs(config, sources)
    result = run_build(config, executor, sources=sources, workdir=config.corpus.workdir, log=lambda *_: None)
    version = write_version(config, result, sources=sources, out=config.corpus.out, workdir=config.corpus.workdir)
    return result, version


def test_relative_and_absolute_spellings_build_the_same_version(tmp_path, ray_executor, monkeypatch):
    cfg_dir = tmp_path / "project" / "configs"
    cfg_dir.mkdir(parents=True)
    write_jsonl_inputs(tmp_path / "project" / "data", 3, 20)
    evals = tmp_path / "project" / "evals" / "qa.jsonl"
    evals.parent.mkdir()
    para = real_paragraphs(5)[4]
    evals.write_text(json.dumps({"question": " ".join(para.split()[:12]), "answer": "yes"}) + "\n")

    relative = cfg_dir / "relative.toml"
    relative.write_text(CONFIG.format(workdir="../work-rel", out="../out-rel", manifests="../manifests-rel",
                                      inputs="../data/*.jsonl", evals="../evals/qa.jsonl"))
    project = tmp_path / "project"
    absolute = cfg_dir / "absolute.toml"
    absolute.write_text(CONFIG.format(workdir=project / "work-abs", out=project / "out-abs",
                                      manifests=project / "manifests-abs",
                                      inputs=f"{project}/./data/../data/*.jsonl", evals=project / "evals" / "qa.jsonl"))
    # Neither the current directory nor the config's spelling matters.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    rel_result, rel_version = _build(relative, ray_executor)
    abs_result, abs_version = _build(absolute, ray_executor)

    for name in ("work-rel", "out-rel", "manifests-rel"):  # written beside the config's directory
        assert (project / name).is_dir(), name
    assert list(elsewhere.iterdir()) == []
    assert [s.report.shards_computed for s in abs_result.steps] == [s.report.shards_computed for s in rel_result.steps]
    assert [s.key for s in rel_result.steps] == [s.key for s in abs_result.steps]
    assert rel_version.version == abs_version.version
    assert rel_version.dir == project / "out-rel" / "spelled" / rel_version.version
    rel_manifest, abs_manifest = read_json(rel_version.manifest_path), read_json(abs_version.manifest_path)
    assert rel_manifest["config"] == abs_manifest["config"]
    # recorded relative to the config's directory: the same project elsewhere is the same config
    assert rel_manifest["config"]["resolved"]["sources"]["jsonl"]["inputs"] == ["${configdir}/../data/*.jsonl"]
    decontam = rel_manifest["config"]["effective"]["stages"]["decontam"]
    assert decontam["evals"] == {"qa": "${configdir}/../evals/qa.jsonl:question,answer"}


def test_the_same_project_in_another_directory_builds_the_same_version(tmp_path, ray_executor):
    """A checkout moved (or Ray's unpacked copy of it for `ray job submit`): same steps, same version."""
    import shutil

    first = tmp_path / "one" / "project"
    (first / "configs").mkdir(parents=True)
    write_jsonl_inputs(first / "data", 2, 15)
    (first / "evals").mkdir()
    (first / "evals" / "qa.jsonl").write_text(json.dumps({"question": "what is it", "answer": "a test"}) + "\n")
    (first / "configs" / "c.toml").write_text(CONFIG.format(workdir="../work", out="../out", manifests="",
                                                            inputs="../data/*.jsonl", evals="../evals/qa.jsonl"))
    second = tmp_path / "two" / "elsewhere" / "project"
    shutil.copytree(first, second)
    a_result, a_version = _build(first / "configs" / "c.toml", ray_executor)
    b_result, b_version = _build(second / "configs" / "c.toml", ray_executor)
    assert [s.key for s in a_result.steps] == [s.key for s in b_result.steps]
    assert a_version.version == b_version.version
    assert read_json(a_version.manifest_path)["config"] == read_json(b_version.manifest_path)["config"]


def test_command_line_workdir_is_relative_to_the_current_directory(tmp_path, monkeypatch):
    cfg = tmp_path / "configs" / "c.toml"
    cfg.parent.mkdir()
    cfg.write_text('[corpus]\nworkdir = "../w"\nout = "../o"\n\n[sources.jsonl]\ninputs = ["${workdir}/in/*.jsonl"]\n')
    monkeypatch.chdir(tmp_path / "configs")
    assert load_build_config(Path("c.toml")).corpus.workdir == str(tmp_path / "w")
    config = load_build_config(Path("c.toml"), workdir="cli-work")
    assert config.corpus.workdir == str(tmp_path / "configs" / "cli-work")
    assert config.corpus.out == str(tmp_path / "o")
    assert config.sources["jsonl"].inputs == [f"{tmp_path}/configs/cli-work/in/*.jsonl"]
    assert load_build_config(Path("c.toml"), workdir="s3://bucket/work").corpus.workdir == "s3://bucket/work"


def test_uris_workdir_references_and_eval_fields_are_kept():
    base = "/base/configs"
    assert resolve_path("s3://bucket/x", base) == "s3://bucket/x"
    assert resolve_path("https://example.org/a.warc.gz", base) == "https://example.org/a.warc.gz"
    assert resolve_path("file:///data/x", base) == "file:///data/x"
    assert resolve_path("${workdir}/inputs/x", base) == "${workdir}/inputs/x"
    assert resolve_path("", base) == ""
    assert resolve_path("../data/*.jsonl", base) == "/base/data/*.jsonl"
    assert resolve_path("/abs//x/../y", base) == "/abs/y"
    assert resolve_eval("../evals/piqa.jsonl:goal,sol1", base) == "/base/evals/piqa.jsonl:goal,sol1"
    assert resolve_eval("evals/plain.jsonl", base) == "/base/configs/evals/plain.jsonl"
    assert resolve_eval("s3://b/e.jsonl:q", base) == "s3://b/e.jsonl:q"
    assert resolve_eval("${workdir}/e.jsonl:q", base) == "${workdir}/e.jsonl:q"


def test_every_path_option_names_a_field_of_its_config_class():
    """Each config class's `path_options` name real fields; the classes that read files declare some."""
    from pipeline.outputs.writer import OutputsConfig
    from pipeline.running.registry import EXTRACTORS, STAGES, extractor_class, stage_class

    classes = [extractor_class(n).config_class for n in EXTRACTORS] + [stage_class(n).config_class for n in STAGES]
    classes.append(OutputsConfig)
    declared = 0
    for cls in classes:
        for dotted, kind in path_options(cls):
            declared += 1
            assert kind in {"path", "eval", "keys", "paths"}
            obj = cls()
            for part in dotted.split("."):
                assert dataclasses.is_dataclass(obj), f"{cls.__name__}: {dotted}"
                assert part in {f.name for f in dataclasses.fields(obj)}, f"{cls.__name__}: {dotted}"
                obj = getattr(obj, part)
    assert declared >= 7


def test_shipped_configs_write_at_the_repository_top(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # `make corpus` runs at the top, a Ray job in its unpacked copy: the same
    for name in ("demo.toml", "pile-style.toml", "openwebtext.toml"):
        corpus = load_build_config(REPO / "configs" / name).corpus
        assert (corpus.workdir, corpus.out, corpus.manifests_dir) == (
            str(REPO / "work"), str(REPO / "out"), str(REPO / "manifests")), name
    assert os.listdir(tmp_path) == []
