"""`corpus build`: reuse, incremental rebuild, early errors, kill-and-resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.config import ConfigError
from pipeline.core.extractor import InputError
from pipeline.core.shards import read_json
from pipeline.running.build import check_inputs, run_build, select_sources
from pipeline.running.buildconfig import load_build_config
from pipeline.versions.manifest import write_version
from tests.conftest import REPO
from tests.pipeline.helpers import write_config, write_jsonl_inputs


def _build(cfg_path: Path, executor):
    config = load_build_config(cfg_path)
    sources = select_sources(config, None)
    check_inputs(config, sources)
    workdir = Path(config.corpus.workdir)
    result = run_build(config, executor, sources=sources, workdir=workdir, log=lambda *_: None)
    version = write_version(config, result, sources=sources, out=Path(config.corpus.out), workdir=workdir)
    return result, version


def _outputs(version) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in read_json(version.manifest_path)["outputs"]}


def test_rebuild_reuses_everything_and_lands_in_the_same_version(tmp_path, ray_executor):
    write_jsonl_inputs(tmp_path / "in", 4, 30)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    first, v1 = _build(cfg, ray_executor)
    assert [s.report.shards_computed for s in first.steps] == [4, 4]
    second, v2 = _build(cfg, ray_executor)
    assert [s.report.shards_computed for s in second.steps] == [0, 0]
    assert [s.report.shards_reused for s in second.steps] == [4, 4]
    assert v1.dir == v2.dir and _outputs(v1) == _outputs(v2)
    manifest = read_json(v1.manifest_path)
    assert manifest["totals"]["docs"] == sum(f["docs"] for f in manifest["outputs"]) > 0
    assert (tmp_path / "o" / "manifests" / "testcorpus" / f"{v1.version}.json").exists()


def test_changing_a_stage_config_reruns_only_that_stage(tmp_path, ray_executor):
    write_jsonl_inputs(tmp_path / "in", 3, 30)
    kwargs = dict(inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    _, v1 = _build(write_config(tmp_path / "a.toml", min_words=8, **kwargs), ray_executor)
    result, v2 = _build(write_config(tmp_path / "b.toml", min_words=20, **kwargs), ray_executor)
    extract, stage = result.steps
    assert (extract.report.shards_reused, extract.report.shards_computed) == (3, 0)
    assert (stage.report.shards_reused, stage.report.shards_computed) == (0, 3)
    assert v1.version != v2.version
    kept = lambda v: read_json(v.manifest_path)["totals"]["docs"]  # noqa: E731
    assert kept(v2) < kept(v1)


def test_adding_an_input_file_reruns_extraction_of_the_new_file_only(tmp_path, ray_executor):
    write_jsonl_inputs(tmp_path / "in", 2, 20)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    _build(cfg, ray_executor)
    write_jsonl_inputs(tmp_path / "in", 3, 20)  # rewrites the first two identically, adds a third
    result, _ = _build(cfg, ray_executor)
    # the extract step's key changed (new input), but its first two tasks are found in... a new directory:
    # everything after it is recomputed, nothing is silently mixed with the old inputs.
    assert result.steps[0].report.shards_total == 3


def test_config_errors_name_the_key_source_and_path(tmp_path):
    write_jsonl_inputs(tmp_path / "in", 1, 5)
    base = dict(inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    bad_key = write_config(tmp_path / "k.toml", extra="\n[stages.dedupe]\nx = 1\n", **base)
    with pytest.raises(ConfigError, match="stages.dedupe"):
        load_build_config(bad_key)
    typo = tmp_path / "t.toml"
    typo.write_text(write_config(tmp_path / "t0.toml", **base).read_text().replace("min_words =", "min_wrds ="))
    with pytest.raises(ConfigError, match=r"unknown config key .*min_wrds"):
        load_build_config(typo)
    missing = write_config(tmp_path / "m.toml", **{**base, "inputs": f"{tmp_path}/nowhere/*.jsonl"})
    config = load_build_config(missing)
    with pytest.raises(InputError, match=r"sources.jsonl: input not found: .*nowhere"):
        check_inputs(config, select_sources(config, None))
    with pytest.raises(Exception, match="unknown source 'reddditt'"):
        select_sources(config, ["reddditt"])


def test_until_stops_after_a_stage_without_writing_a_version(tmp_path, ray_executor):
    write_jsonl_inputs(tmp_path / "in", 2, 10)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    config = load_build_config(cfg)
    result = run_build(config, ray_executor, sources=["jsonl"], workdir=tmp_path / "w", log=lambda *_: None,
                       until="min_words")
    assert result.stopped_after == "min_words" and (result.final_dirs[0] / "_stage.json").exists()
    with pytest.raises(ConfigError, match="--until dedupe: no such stage"):
        run_build(config, ray_executor, sources=["jsonl"], workdir=tmp_path / "w", until="dedupe")


def _corpus(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def test_cli_rejects_unknown_config_key_before_any_work(tmp_path):
    write_jsonl_inputs(tmp_path / "in", 1, 5)
    cfg = write_config(tmp_path / "k.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w",
                       out=tmp_path / "o", extra="\n[corpus2]\n")
    proc = _corpus("build", "--config", str(cfg))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "unknown config key 'corpus2'" in out
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_killed_build_resumes_without_recomputing_finished_shards(tmp_path):
    write_jsonl_inputs(tmp_path / "in", 8, 20)
    kwargs = dict(inputs=f"{tmp_path}/in/*.jsonl", out=tmp_path / "o", sleep_per_shard=1.5)
    cfg = write_config(tmp_path / "c.toml", workdir=tmp_path / "w", **kwargs)
    proc = _corpus("build", "--config", str(cfg), "--workers", "1")
    stage_root = tmp_path / "w" / "stages" / "min_words"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = list(stage_root.glob("*/_tasks/*.json"))
        if len(done) >= 2:
            break
        if proc.poll() is not None:
            pytest.fail(f"build ended before it could be killed:\n{proc.stdout.read()}")
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(4)  # a Ray worker orphaned mid-task may still finish its shard: that is a finished shard too
    finished_before = {p.name for p in stage_root.glob("*/_tasks/*.json")}
    assert 2 <= len(finished_before) < 8
    mtimes = {p.name: p.stat().st_mtime_ns for p in stage_root.glob("*/*.parquet")}

    rerun = _corpus("build", "--config", str(cfg), "--workers", "1")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert f"min_words: 8 tasks ({len(finished_before)} reused, {8 - len(finished_before)} computed)" in out
    for p in stage_root.glob("*/*.parquet"):  # finished shards were not rewritten
        if p.name in mtimes and p.stem + ".json" in finished_before:
            assert p.stat().st_mtime_ns == mtimes[p.name]

    clean_cfg = write_config(tmp_path / "clean.toml", workdir=tmp_path / "w2", **kwargs)
    clean = _corpus("build", "--config", str(clean_cfg), "--workers", "2")
    clean_out, _ = clean.communicate(timeout=300)
    assert clean.returncode == 0, clean_out
    version = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("corpus testcorpus version")]
    clean_version = [line.split(": ", 1)[1] for line in clean_out.splitlines() if line.startswith("corpus testcorpus")]
    assert version == clean_version  # same version directory
    resumed = {p.name: p.read_bytes() for p in stage_root.glob("*/*.parquet")}
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "w2" / "stages" / "min_words").glob("*/*.parquet")}
    assert resumed == fresh


# ------------------------------------------------------------------ values and files checked up front


@pytest.mark.parametrize(("extra", "key", "message"), [
    ("[outputs.mix]\nvalidation_fraction = 1.5\n", "outputs.mix.validation_fraction", "must be in [0, 1], got 1.5"),
    ("[outputs]\ntrain_vocab_size = -1\n", "outputs.train_vocab_size", "got -1"),
    ('[sources.reddit]\ninputs = ["RS_x.zst"]\n[sources.reddit.fetch]\nper_host_interval_s = -5\n',
     "sources.reddit.fetch.per_host_interval_s", "must be >= 0, got -5.0"),
    ('[sources.reddit]\ninputs = ["RS_x.zst"]\nmin_score = -3\n', "sources.reddit.min_score", "must be >= 0, got -3"),
    ("[stages.langid.policies.cc]\nmin_score = 2.0\n", "stages.langid.policies.cc.min_score", "must be in [0, 1]"),
    ("[stages.decontam]\nngram = 5\nshort_ngram = 8\n", "stages.decontam.short_ngram", "<= ngram (5)"),
])
def test_out_of_range_values_fail_at_load_naming_file_and_key(tmp_path, extra, key, message):
    write_jsonl_inputs(tmp_path / "in", 1, 5)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w",
                       out=tmp_path / "o", extra=extra)
    with pytest.raises(ConfigError) as exc:
        load_build_config(cfg)
    assert str(exc.value).startswith(f"{cfg}: {key}: ") and message in str(exc.value)


def _eval_file(tmp_path: Path) -> Path:
    path = tmp_path / "evals" / "qa.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_text('{"question": "what is the thirteen word question of this small test set", "answer": "yes"}\n')
    return path


@pytest.mark.parametrize(("extra", "key", "message"), [
    ('[stages.decontam]\nevals = {{ qa = "{tmp}/evals/missing.jsonl:question,answer" }}\n',
     "stages.decontam.evals.qa", "file not found: {tmp}/evals/missing.jsonl"),
    ('[stages.decontam]\nevals = {{ qa = "{tmp}/evals/qa.jsonl:question,answr" }}\n',
     "stages.decontam.evals.qa", "no field 'answr'"),
    ("[stages.decontam]\n", "stages.decontam.evals", "name at least one eval set"),
    ('[stages.langid]\nmodel_path = "{tmp}/lid.176.bin"\n', "stages.langid.model_path", "file not found"),
    ('[outputs.tokenize]\ntokenizer = "{tmp}/nope.tokenizer.json"\n', "outputs.tokenize.tokenizer",
     "tokenizer file not found: {tmp}/nope.tokenizer.json"),
    ("[outputs]\nmegatron = false\n", "outputs.tokenize.tokenizer", "set a tokenizers tokenizer.json, or train_vocab_size"),
])
def test_build_checks_every_file_it_will_read_before_any_work(tmp_path, capsys, extra, key, message):
    """Eval sets, models and the tokenizer are checked by the steps that read them before extraction
    starts (these failed after dedup, or after the whole pipeline, before)."""
    write_jsonl_inputs(tmp_path / "in", 1, 5)
    _eval_file(tmp_path)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w",
                       out=tmp_path / "o", extra=extra.format(tmp=tmp_path))
    assert main(["build", "--config", str(cfg), "--serial"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"corpus: error: {cfg}: {key}: ") and message.format(tmp=tmp_path) in err, err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "w").exists()  # nothing was extracted


def test_until_checks_only_the_files_of_the_steps_it_runs(tmp_path, capsys):
    """docs/recipes.md's pile-style step 1: `--until langid` before the classifier exists."""
    write_jsonl_inputs(tmp_path / "in", 1, 10)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o",
                       extra=f'[stages.quality]\nclassifier_model = "{tmp_path}/models/q.bin"\n[outputs]\n')
    assert main(["build", "--config", str(cfg), "--serial"]) == 2
    assert f"{cfg}: stages.quality.classifier_model: file not found: {tmp_path}/models/q.bin" in capsys.readouterr().err
    assert main(["build", "--config", str(cfg), "--serial", "--until", "min_words"]) == 0
    assert "stopped after min_words" in capsys.readouterr().out


def test_a_good_eval_set_and_tokenizer_pass_the_checks(tmp_path):
    from pipeline.running.build import check_files

    write_jsonl_inputs(tmp_path / "in", 1, 5)
    _eval_file(tmp_path)
    extra = (f'[stages.decontam]\nevals = {{ qa = "{tmp_path}/evals/qa.jsonl:question,answer" }}\n'
             "[outputs]\ntrain_vocab_size = 300\n")
    config = load_build_config(write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl",
                                            workdir=tmp_path / "w", out=tmp_path / "o", extra=extra))
    check_files(config, select_sources(config, None))


# ------------------------------------------------------------------ one line for an unwritable --out


def test_unwritable_out_is_one_line_naming_the_path(tmp_path):
    write_jsonl_inputs(tmp_path / "in", 1, 10)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    (tmp_path / "file.txt").write_text("a file where a directory should be\n")
    out = tmp_path / "file.txt" / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "build", "--config", str(cfg), "--out", str(out), "--serial"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    [error] = [line for line in proc.stderr.splitlines() if "error" in line.lower()]  # beside progress lines
    assert error.startswith(f"corpus: error: {out}") and error.endswith(": Not a directory"), proc.stderr


def test_os_errors_of_any_command_are_one_line(tmp_path, ray_executor, capsys):
    """The last resort of `corpus`: an OSError (disk full, permission denied, ...) names its path."""
    write_jsonl_inputs(tmp_path / "in", 1, 10)
    _, version = _build(write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w",
                                     out=tmp_path / "o"), ray_executor)
    (tmp_path / "file.txt").write_text("x")
    report = tmp_path / "file.txt" / "report.html"
    assert main(["report", str(version.dir), "--out", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("corpus: error: ") and str(tmp_path / "file.txt") in err and len(err.splitlines()) == 1
    assert main(["verify", str(tmp_path / "no-such-version")]) == 2  # FileNotFoundError still one line
    err = capsys.readouterr().err
    assert "no-such-version" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------ a source that yields nothing


def test_a_source_that_yields_nothing_fails_the_build_unless_allowed(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.jsonl").write_text("")
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    assert main(["build", "--config", str(cfg), "--serial"]) == 1
    captured = capsys.readouterr()
    assert ("corpus: error: source jsonl yielded no documents (1 input(s), 0 records read); nothing to build "
            "from it (--allow-empty builds anyway)") in captured.err
    assert "min_words" not in captured.out  # stopped after extraction
    assert not (tmp_path / "o" / "testcorpus").exists()

    assert main(["build", "--config", str(cfg), "--serial", "--allow-empty"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: source jsonl yielded no documents (1 input(s), 0 records read)" in out
    [version] = [p for p in (tmp_path / "o" / "testcorpus").iterdir() if not p.name.startswith(".")]
    assert read_json(version / "manifest.json")["totals"]["docs"] == 0


def test_a_source_whose_records_are_all_rejected_is_empty_too(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jsonl").write_text("{not json\n" * 3)
    cfg = write_config(tmp_path / "c.toml", inputs=f"{tmp_path}/in/*.jsonl", workdir=tmp_path / "w", out=tmp_path / "o")
    assert main(["build", "--config", str(cfg), "--serial"]) == 1
    assert "source jsonl yielded no documents (1 input(s), 3 records read, all rejected: jsonl:malformed 3)" in (
        capsys.readouterr().err)
