"""The recipe configs (configs/openwebtext.toml, configs/pile-style.toml): they load, say what docs/recipes.md
says they say, and their rules do what the recipes did on real data."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from filters.classifier import ClassifierTrainConfig
from filters.evalsets import load_eval_sets
from filters.langid import decide_one, policy_for
from filters.quality import rules_for
from pipeline.core.config import from_mapping
from pipeline.running.build import run_build
from pipeline.running.buildconfig import BuildConfig, load_build_config
from pipeline.running.registry import PIPELINE_ORDER
from sources.pushshift import DEFAULT_BLOCKED_DOMAINS, DEFAULT_BLOCKED_EXTENSIONS, classify, iter_dump
from tests.conftest import REPO, data_path

OWT = REPO / "configs" / "openwebtext.toml"
PILE = REPO / "configs" / "pile-style.toml"
RECIPES = [OWT, PILE]
# Sources whose extractor reads http(s) inputs itself; the others take local paths only.
URL_SOURCES = {"cc", "reddit"}
PUSHSHIFT = re.compile(r"^https://files\.pushshift\.io/reddit/submissions/RS_(\d{4})-(\d{2})\.zst$")


def load(path: Path, workdir: Path | None = None) -> BuildConfig:
    return load_build_config(path, workdir=str(workdir) if workdir else None)


def dump_months(config: BuildConfig) -> list[tuple[int, int]]:
    months = []
    for url in config.sources["reddit"].inputs:
        m = PUSHSHIFT.match(url)
        assert m, f"not a Pushshift submission dump URL: {url}"
        months.append((int(m.group(1)), int(m.group(2))))
    return months


def consecutive(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    out, (y, m) = [], first
    while (y, m) <= last:
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# --------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_stages_run_in_pipeline_order(path):
    config = load(path)
    assert list(config.stages) == [s for s in PIPELINE_ORDER if s in config.stages]
    assert config.outputs is not None and config.outputs.tokenize.tokenizer.endswith("gpt-neox-20b.tokenizer.json")
    assert config.outputs.tokenize.eos_token == "<|endoftext|>"
    raw = tomllib.loads(path.read_text())
    assert raw["corpus"]["name"] == config.corpus.name and not raw["corpus"].get("demo", False)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_remote_inputs_are_https_urls_of_sources_that_read_urls(path):
    config = load(path)
    for name, section in config.sources.items():
        assert section.inputs, f"sources.{name} has no inputs"
        for spec in section.inputs:
            if "://" in spec:
                assert spec.startswith("https://"), spec
                assert name in URL_SOURCES, f"sources.{name} cannot read URLs: {spec}"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_workdir_places_every_local_input(tmp_path, path):
    """Local inputs, models, tokenizer and eval sets all follow --workdir (cluster: shared storage)."""
    config = load(path, tmp_path)
    local = [i for s in config.sources.values() for i in s.inputs if "://" not in i]
    local.append(config.outputs.tokenize.tokenizer)
    if "quality" in config.stages and config.stages["quality"].classifier_model:
        local.append(config.stages["quality"].classifier_model)
    if "decontam" in config.stages:
        local += [v.rsplit(":", 1)[0] for v in config.stages["decontam"].evals.values()]
    assert local and all(p.startswith(f"{tmp_path}/inputs/") for p in local), local


# ------------------------------------------------------------------------------------ OpenWebText


def test_openwebtext_reads_every_monthly_dump_of_webtexts_span():
    config = load(OWT)
    assert list(config.sources) == ["reddit"]
    assert dump_months(config) == consecutive((2005, 6), (2017, 12))


def test_openwebtext_thresholds_are_the_recipes():
    config = load(OWT)
    reddit = config.sources["reddit"].options
    assert (reddit.min_score, reddit.drop_over_18) == (3, True)
    assert set(DEFAULT_BLOCKED_DOMAINS) <= set(reddit.blocked_domains)
    assert set(DEFAULT_BLOCKED_EXTENSIONS) <= set(reddit.blocked_extensions)
    langid = config.stages["langid"]
    assert decide_one(policy_for(langid, "reddit"), "en", 0.5, "{}") is None
    assert decide_one(policy_for(langid, "reddit"), "en", 0.49, "{}") == "lang:en-below-0.5"
    assert decide_one(policy_for(langid, "reddit"), "de", 0.99, "{}") == "lang:de"
    quality = config.stages["quality"]
    assert rules_for(quality, "reddit") == ["min_tokens"] and quality.min_tokens == 128
    assert quality.classifier_model is None
    dedup = config.stages["dedup"]
    assert (dedup.threshold, dedup.shingle_size, dedup.exact, dedup.near) == (0.5, 5, True, True)
    assert "decontam" not in config.stages  # OpenWebText did not decontaminate


def test_openwebtext_url_rules_on_real_pushshift_dumps():
    """The recipe's rules on the first two real months: Wikipedia, Google and non-HTML links are dropped."""
    rules = load(OWT).sources["reddit"].options.rules()
    reasons: dict[str, list[str]] = {}
    total = 0
    for name in ("RS_v2_2005-06.zst", "RS_v2_2005-07.zst"):
        for line in iter_dump(str(data_path("reddit", name))):
            assert line.record is not None, line.error
            total += 1
            sub = classify(line.line, line.record, rules)
            if sub.reason:
                reasons.setdefault(sub.reason, []).append(sub.detail)
    assert total == 103 + 1079
    assert sorted(reasons) == ["reddit:blocked-domain", "reddit:blocked-extension"]
    assert {"wikipedia.org", "google.com"} <= set(reasons["reddit:blocked-domain"])
    assert {"pdf", "jpg"} <= set(reasons["reddit:blocked-extension"])
    assert total - sum(map(len, reasons.values())) > 1100  # the news links stay


# ---------------------------------------------------------------------------------------- Pile-style


def test_pile_style_has_all_five_sources_with_their_inputs():
    config = load(PILE)
    assert list(config.sources) == ["cc", "reddit", "wikipedia", "books", "code"]
    cc = config.sources["cc"]
    assert len(cc.inputs) == 1
    assert re.fullmatch(r"https://data\.commoncrawl\.org/crawl-data/CC-MAIN-\d{4}-\d{2}/warc\.paths\.gz", cc.inputs[0])
    assert cc.options.max_files > 0 and cc.options.paths_url_prefix == "https://data.commoncrawl.org/"
    assert dump_months(config) == consecutive((2005, 6), (2020, 4))  # OpenWebText2's span
    assert config.sources["reddit"].options.blocked_domains == load(OWT).sources["reddit"].options.blocked_domains
    assert re.search(r"enwiki-\*-pages-articles-multistream\*\.xml\*\.bz2$", config.sources["wikipedia"].inputs[0])


def test_pile_style_thresholds_are_the_recipes():
    config = load(PILE)
    assert config.sources["reddit"].options.min_score == 3
    langid = config.stages["langid"]
    for source in ("cc", "reddit"):
        assert decide_one(policy_for(langid, source), "en", 0.49, "{}") == "lang:en-below-0.5"
    assert decide_one(policy_for(langid, "wikipedia"), "en", 0.2, '{"language": "en"}') is None
    assert decide_one(policy_for(langid, "code"), "und", 0.0, "{}") is None
    quality = config.stages["quality"]
    assert quality.classifier_model and quality.classifier_model.endswith(".bin")
    assert (quality.classifier_sources, quality.pareto_alpha) == (["cc"], 3.0)
    assert "min_tokens" in rules_for(quality, "reddit") and quality.min_tokens == 128
    dedup = config.stages["dedup"]
    assert (dedup.threshold, dedup.shingle_size) == (0.5, 5)
    assert dedup.source_priority[0] == "wikipedia" and sorted(dedup.source_priority) == sorted(config.sources)
    assert config.stages["decontam"].ngram == 13 and config.stages["decontam"].evals


def test_pile_style_epochs_are_the_pile_papers_table_1():
    mix = load(PILE).outputs.mix
    # Pile-CC 1.0, OpenWebText2 2.0, Wikipedia (en) 3.0, Gutenberg (PG-19) 2.5, Github 1.0
    assert mix.epochs == {"cc": 1.0, "reddit": 2.0, "wikipedia": 3.0, "books": 2.5, "code": 1.0}
    assert not mix.weights
    assert mix.validation_fraction == mix.test_fraction == 0.001


def test_pile_style_classifier_training_table_loads():
    raw = tomllib.loads(PILE.read_text())
    train = from_mapping(ClassifierTrainConfig, raw["train_quality"], "train_quality")
    assert train.negative_sources == ["cc"] and "cc" not in train.positive_sources
    assert set(train.positive_sources) <= set(load(PILE).sources)


def test_pile_style_eval_sets_load_from_the_real_files(tmp_path):
    """The recipe's eval specs name real fields: with the real files in place, every set loads."""
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "evals").symlink_to(data_path("eval_sets"))
    evals = load(PILE, tmp_path).stages["decontam"].evals
    sets = {s.name: s for s in load_eval_sets(evals)}
    assert {n: len(s.items) for n, s in sets.items()} == {"piqa": 1838, "gsm8k": 1319, "humaneval": 164}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_tokenizer_is_the_real_gpt_neox_tokenizer(tmp_path, path):
    from pipeline.outputs.tokenize import load_tokenizer

    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "tokenizers").symlink_to(data_path("tokenizers"))
    tokenize = load(path, tmp_path).outputs.tokenize
    loaded = load_tokenizer(tokenize.tokenizer, tokenize.eos_token)
    assert loaded.eos_id == 0 and loaded.tokenizer.encode("Hello world").ids == [12092, 1533]


# ------------------------------------------------------------------------ the documented workflow


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def test_pile_style_three_step_workflow_on_real_data(tmp_path, ray_executor):
    """docs/recipes.md's steps, offline: the first build stops at quality naming the missing classifier,
    `corpus train-quality --config configs/pile-style.toml` trains it from the langid output, and the
    rebuild reuses extraction and langid and writes the outputs. Real inputs are put where the recipe
    looks for them; only the Common Crawl listing URL is replaced by a local WARC file."""
    from pipeline.cli import main
    from pipeline.running.runner import StageFailed

    work = tmp_path / "work"
    inputs = work / "inputs"
    _link(inputs / "wikipedia" / "enwiki-20160305-pages-articles-multistream1.xml-p10p30302.bz2",
          data_path("wikipedia", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"))
    _link(inputs / "gutenberg", data_path("gutenberg"))
    _link(inputs / "code" / "dedup", REPO / "dedup")
    _link(inputs / "evals", data_path("eval_sets"))
    _link(inputs / "tokenizers", data_path("tokenizers"))
    config = load(PILE, work)
    config.sources["cc"].inputs = [str(data_path("warc", "aut_IAH-20080430204825-00000-blackbook.warc.gz"))]
    sources = ["cc", "wikipedia", "books", "code"]  # reddit would fetch linked pages from the web

    with pytest.raises(StageFailed, match=r"fastText model not found: .*inputs/models/pile-cc-quality\.bin"):
        run_build(config, ray_executor, sources=sources, workdir=work, log=lambda *_: None)
    langid_dirs = list((work / "stages" / "langid").iterdir())
    assert len(langid_dirs) == 1
    model = Path(config.stages["quality"].classifier_model)
    assert main(["train-quality", "--positive", str(langid_dirs[0]), "--config", str(PILE), "--out", str(model)]) == 0
    assert model.is_file()

    result = run_build(config, ray_executor, sources=sources, workdir=work, log=lambda *_: None)
    steps = {s.name: s.report for s in result.steps}
    assert all(steps[f"extract:{s}"].shards_computed == 0 for s in sources)
    assert steps["langid"].shards_computed == 0 and steps["quality"].shards_computed > 0
    epochs = result.outputs["mix"]["epochs"]  # the Pile's epochs, applied to the sources present
    assert {"wikipedia", "books", "code"} <= set(epochs) <= set(sources)
    assert epochs == {s: config.outputs.mix.epochs[s] for s in epochs}
    assert result.outputs["tokens"]["train"]["tokens"] > 0
