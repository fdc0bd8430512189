"""Sources declare their stage defaults as data (`Extractor.stage_defaults`); a build config's
per-source settings are merged over them key by key, validated, and the filters name no source."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from filters.langid import LangPolicy, LanguageIdConfig, decide_one, policy_for
from filters.quality import RULE_FAMILIES, QualityConfig, rules_for, scoring_key
from pipeline.cli import main
from pipeline.core.config import ConfigError, stable_hash, to_plain
from pipeline.core.extractor import Extractor
from pipeline.core.schema import Doc, docs_to_table
from pipeline.core.shards import read_table, write_table
from pipeline.demo.content import FOREIGN, prose_paragraphs
from pipeline.running.buildconfig import load_build_config, load_stage_config
from pipeline.running.registry import registered_extractors
from tests.conftest import REPO

GERMAN = FOREIGN["de"][0]
ENGLISH = " ".join(p for _, p in prose_paragraphs()[:3])


@dataclass
class ForumConfig:
    pass


class ForumExtractor(Extractor):
    """A user-defined source, named `package.module:Class` in a config, with its own stage defaults."""

    name = "forum"
    config_class = ForumConfig
    stage_defaults = {
        "langid": {"languages": ["fr"], "min_score": 0.3},
        "quality": {"rules": ["min_tokens", "gopher_repetition"], "classifier": True},
    }


def _declaring(cls_name: str, name: str, stage_defaults: dict) -> type[Extractor]:
    """A source whose only trait is a (wrong) stage declaration, loadable as `tests...:<cls_name>`."""
    return type(cls_name, (Extractor,), {"name": name, "config_class": ForumConfig, "stage_defaults": stage_defaults,
                                         "__module__": __name__})


TypoExtractor = _declaring("TypoExtractor", "typo", {"langid": {"langauges": ["fr"]}})
BadFamilyExtractor = _declaring("BadFamilyExtractor", "bad-family", {"quality": {"rules": ["gopher"]}})
UnknownStageExtractor = _declaring("UnknownStageExtractor", "unknown-stage", {"lang_id": {"languages": ["fr"]}})
DedupExtractor = _declaring("DedupExtractor", "dedup-defaults", {"dedup": {"threshold": 0.9}})

FORUM = f"{__name__}:ForumExtractor"


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "corpus.toml"
    path.write_text(body)
    return path


SOURCES = """
[sources.cc]
inputs = ["x.warc.gz"]
[sources.wikipedia]
inputs = ["x.xml.bz2"]
[sources.books]
inputs = ["books"]
"""


def test_a_policy_for_one_source_keeps_the_others_defaults(tmp_path):
    """Setting a policy for wikipedia alone used to replace every default: cc and books lost theirs."""
    path = _config(tmp_path, SOURCES + """
[stages.langid.policies.wikipedia]
min_score = 0.2
""")
    langid = load_build_config(path).stages["langid"]
    assert decide_one(policy_for(langid, "cc"), "de", 0.99, "{}") == "lang:de"
    assert decide_one(policy_for(langid, "cc"), "en", 0.49, "{}") == "lang:en-below-0.5"
    assert decide_one(policy_for(langid, "books"), "de", 0.99, '{"language": "en"}') == "lang:de"
    assert decide_one(policy_for(langid, "books"), "de", 0.99, '{"language": "de"}') is None
    assert decide_one(policy_for(langid, "code"), "und", 0.0, "{}") is None  # still exempt
    # wikipedia: the user's key, and its declared language_from_meta kept
    assert langid.policies["wikipedia"] == LangPolicy(language_from_meta="language", min_score=0.2)
    assert decide_one(policy_for(langid, "wikipedia"), "de", 0.99, '{"language": "en"}') == "lang:de"


def test_standalone_stage_command_gets_the_same_merge(tmp_path):
    """`corpus langid --config` with only a wikipedia policy still drops German Common Crawl pages."""
    path = _config(tmp_path, SOURCES + """
[stages.langid.policies.wikipedia]
min_score = 0.2
""")
    docs = [Doc("cc/en", "cc", ENGLISH), Doc("cc/de", "cc", GERMAN),
            Doc("books/de", "books", GERMAN, meta={"language": "en"}),
            Doc("wikipedia/de", "wikipedia", GERMAN, meta={"language": "de"})]
    write_table(docs_to_table(docs), tmp_path / "in" / "a.parquet")
    assert main(["langid", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                 "--config", str(path), "--serial"]) == 0
    rejected = read_table(tmp_path / "out" / "rejected" / "a.parquet")
    reasons = dict(zip(rejected.column("id").to_pylist(), rejected.column("reason").to_pylist(), strict=True))
    assert reasons == {"cc/de": "lang:de", "books/de": "lang:de"}


def test_a_user_key_overrides_only_that_key(tmp_path):
    path = _config(tmp_path, SOURCES + """
[stages.langid.policies.cc]
min_score = 0.9

[stages.quality]
rules = { cc = ["min_tokens"] }
""")
    config = load_build_config(path)
    assert config.stages["langid"].policies["cc"] == LangPolicy(languages=["en"], min_score=0.9)
    assert config.stages["langid"].policies["reddit"] == LangPolicy(languages=["en"], min_score=0.5)
    quality = config.stages["quality"]
    assert rules_for(quality, "cc") == ["min_tokens"]
    assert rules_for(quality, "wikipedia") == ["gopher_repetition"]  # not `default_rules`
    assert rules_for(quality, "books") == ["min_tokens", "gopher_repetition"]
    assert quality.classifier_sources == ["cc"]  # declared by cc, kept
    path = _config(tmp_path, SOURCES + "[stages.quality]\nclassifier_sources = []\n")
    assert load_build_config(path).stages["quality"].classifier_sources == []  # the user's list wins


def test_no_user_settings_give_the_declared_defaults_everywhere(tmp_path):
    """A build, `corpus <stage>` with and without --config, and a config built in Python agree, so
    their step and scoring keys agree."""
    path = _config(tmp_path, SOURCES + "[stages.langid]\n[stages.quality]\n")
    built = load_build_config(path).stages
    for config in (load_stage_config("langid", path), load_stage_config("langid"), LanguageIdConfig()):
        assert stable_hash(to_plain(config)) == stable_hash(to_plain(built["langid"]))
    for config in (load_stage_config("quality", path), load_stage_config("quality"), QualityConfig()):
        assert scoring_key(config, None) == scoring_key(built["quality"], None)
        assert stable_hash(to_plain(config)) == stable_hash(to_plain(built["quality"]))
    # the sources' declarations, for the record
    assert built["langid"].policies["cc"] == LangPolicy(languages=["en"], min_score=0.5)
    assert built["langid"].policies["code"] == LangPolicy(exempt=True)
    assert built["quality"].rules["cc"] == ["c4", "min_tokens", "gopher_quality", "gopher_repetition"]
    assert "jsonl" not in built["langid"].policies  # declares nothing: `default_policy`


def test_a_user_defined_source_gets_its_declared_defaults(tmp_path):
    path = _config(tmp_path, f"""
[sources."{FORUM}"]
inputs = ["forum.jsonl"]

[stages.langid.policies.forum]
min_score = 0.6

[stages.quality]
""")
    config = load_build_config(path)
    assert config.stages["langid"].policies["forum"] == LangPolicy(languages=["fr"], min_score=0.6)
    assert decide_one(policy_for(config.stages["langid"], "forum"), "en", 0.99, "{}") == "lang:en"
    assert config.stages["langid"].policies["cc"] == LangPolicy(languages=["en"], min_score=0.5)
    quality = config.stages["quality"]
    assert rules_for(quality, "forum") == ["min_tokens", "gopher_repetition"]
    assert quality.classifier_sources == ["cc", "forum"]
    # the standalone command reads the user-defined sources of its --config too
    assert load_stage_config("langid", path).policies["forum"] == LangPolicy(languages=["fr"], min_score=0.6)


def test_unknown_keys_are_rejected_naming_file_and_key(tmp_path):
    path = _config(tmp_path, SOURCES + "[stages.langid.policies.wikipedia]\nlangauge_from_meta = \"x\"\n")
    with pytest.raises(ConfigError, match=r"corpus\.toml: stages\.langid\.policies\.wikipedia\.langauge_from_meta"):
        load_build_config(path)
    with pytest.raises(ConfigError, match=r"corpus\.toml: stages\.langid\.policies\.wikipedia\.langauge_from_meta"):
        load_stage_config("langid", path)
    path = _config(tmp_path, SOURCES + "[stages.langid]\npolicies = 3\n")
    with pytest.raises(ConfigError, match=r"corpus\.toml: stages\.langid\.policies: expected a table"):
        load_build_config(path)
    path = _config(tmp_path, SOURCES + "[stages.quality]\nrules = { cc = [\"gopher\"] }\n")
    with pytest.raises(ConfigError, match="unknown rule family 'gopher'"):
        load_build_config(path)
    # a source's own declaration is checked too, naming the extractor class and the key
    path = _config(tmp_path, f'[sources."{__name__}:TypoExtractor"]\ninputs = []\n[stages.langid]\n')
    with pytest.raises(ConfigError, match=r"corpus\.toml: stages\.langid: .*TypoExtractor\.stage_defaults\.langid\.langauges"):
        load_build_config(path)
    path = _config(tmp_path, f'[sources."{__name__}:BadFamilyExtractor"]\ninputs = []\n[stages.quality]\n')
    with pytest.raises(ConfigError, match=r"BadFamilyExtractor\.stage_defaults\.quality: .*unknown rule family 'gopher'"):
        load_build_config(path)
    path = _config(tmp_path, f'[sources."{__name__}:UnknownStageExtractor"]\ninputs = []\n')
    with pytest.raises(ConfigError, match=r"UnknownStageExtractor\.stage_defaults: unknown stage 'lang_id'"):
        load_build_config(path)
    # a source declaring settings for a stage that takes none
    path = _config(tmp_path, f'[sources."{__name__}:DedupExtractor"]\ninputs = []\n[stages.dedup]\n')
    with pytest.raises(ConfigError, match=r"DedupExtractor\.stage_defaults\.dedup: stage 'dedup' has no per-source"):
        load_build_config(path)


def test_the_filters_name_no_source():
    """No string literal in filters/ names a source with stage defaults: they live in the sources.
    (`code` is also the name of a rule family, in rules_code.py.)"""
    sources = {cls.name for cls in registered_extractors() if cls.stage_defaults}
    assert {"cc", "reddit", "wikipedia", "books", "code"} <= sources
    found = []
    for path in sorted((REPO / "filters").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in sources:
                if (path.name, node.value) != ("rules_code.py", RULE_FAMILIES["code"].name):
                    found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not found, found
