"""Quality rule families are plug-ins: one class each, one registry line, and the stage loops over them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pytest

from filters import quality
from filters.quality import RULE_FAMILIES, QualityConfig, QualityStage, compute_scores, decide, stat_names
from filters.rules import RuleFamily
from pipeline.core.config import ConfigError
from pipeline.core.schema import Doc, docs_to_table


@dataclass
class DigitsConfig:
    languages: list[str] = field(default_factory=lambda: ["en"])
    max_digit_frac: float = 0.2


class DigitRules(RuleFamily):
    """A new family, as a user would write it: too many digits."""

    name = "digits"
    config_class = DigitsConfig

    def stat_names(self, settings: DigitsConfig) -> list[str]:
        return ["digit_frac"]

    def compute_stats(self, text: str, settings: DigitsConfig) -> tuple[str, dict[str, float]]:
        return text, {"digit_frac": sum(c.isdigit() for c in text) / max(1, len(text))}

    def reason(self, stats: dict[str, float], settings: DigitsConfig) -> str | None:
        return "quality:digits" if stats["digit_frac"] > settings.max_digit_frac else None


def test_the_registry_holds_the_families_in_scoring_order():
    assert list(RULE_FAMILIES) == ["c4", "min_tokens", "gopher_quality", "gopher_repetition", "code"]
    assert all(isinstance(f, RuleFamily) and f.name == n for n, f in RULE_FAMILIES.items())


def test_a_new_family_is_one_class_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(RULE_FAMILIES, "digits", DigitRules())
    with pytest.raises(ConfigError, match="unknown rule family 'digit'"):
        QualityConfig(rules={"web": ["digit"]})
    config = QualityConfig(rules={"web": ["digits", "min_tokens"], "tables": ["min_tokens", "digits"]},
                           min_tokens=5, default_rules=[])
    assert stat_names(config)[-1] == "quality_digit_frac"
    numbers = " ".join(str(i) for i in range(40))
    docs = [Doc("web/numbers", "web", numbers), Doc("web/short", "web", "four words of text"),
            Doc("tables/short-numbers", "tables", "1 2 3"), Doc("other/numbers", "other", numbers)]
    table = docs_to_table(docs)
    _, columns = compute_scores(table, config, None)
    assert columns["quality_digit_frac"].to_pylist()[1] == 0.0
    assert columns["quality_digit_frac"].to_pylist()[3] is None  # not a family of that source
    result = QualityStage(config).process(table)
    reasons = dict(zip(result.rejected.column("id").to_pylist(), result.rejected.column("reason").to_pylist(),
                       strict=True))
    # each source's families decide in the order it lists them; the first reason wins
    assert reasons == {"web/numbers": "quality:digits", "web/short": "quality:min_tokens",
                       "tables/short-numbers": "quality:min_tokens"}
    # the family's `languages` limit it to documents in those languages
    labelled = table.append_column("lang", pa.array(["de", "en", "en", "en"]))
    scored = QualityStage(config).process(labelled)
    assert "web/numbers" not in scored.rejected.column("id").to_pylist()
    # its settings come from its config_class when QualityConfig has no field of its name
    assert RULE_FAMILIES["digits"].settings(config) == DigitsConfig()
    assert RULE_FAMILIES["min_tokens"].settings(config) == 5
    # deciding again from the score columns: the family's reason, from its statistics
    assert decide(scored.rejected, config) == ["quality:min_tokens", "quality:min_tokens"]
    assert decide(result.rejected, config)[0] == "quality:digits"


def test_the_scoring_key_is_made_of_the_families_scoring_params():
    config = QualityConfig()
    before = quality.scoring_key(config, None)
    config.gopher_quality.min_words = 1  # a threshold: same scores
    assert quality.scoring_key(config, None) == before
    config.gopher_quality.stop_words = ["the"]  # changes a statistic
    assert quality.scoring_key(config, None) != before
