"""The interface of a quality rule family, after NeMo Curator's split of a filter into `score_document`
and `keep_document`: a family computes statistics (scores, written as `quality_<stat>` columns) and,
separately and cheaply, derives a rejection reason from them and its thresholds.

A family is one small class, registered by name in `filters.quality.RULE_FAMILIES`; a source lists
the families it uses (`stage_defaults["quality"]["rules"]`), and the quality stage loops over them.
A new family is one file (a subclass of `RuleFamily`) and one registry line. Its settings are the
`QualityConfig` field named like the family when there is one (`c4`, `gopher_quality`, ...), else
an instance of its `config_class`.

Families in the registry compute in registry order (a cleaning family, such as `c4`, comes first, as
the later ones score the cleaned text) and decide in the order a source lists them; the first
reason wins.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RuleFamily:
    """One family of heuristic rules: the statistics it computes and the reason it derives from them."""

    #: the family's name in `rules` (and of its `QualityConfig` field, when it has settings)
    name: ClassVar[str]
    #: its settings when `QualityConfig` has no field of its name (None: no settings)
    config_class: ClassVar[type | None] = None
    #: statistics stored as int64 columns (the others are float64)
    int_stats: ClassVar[frozenset[str]] = frozenset()

    def settings(self, config: Any) -> Any:
        """This family's settings within the quality stage's config."""
        if hasattr(config, self.name):
            return getattr(config, self.name)
        return self.config_class() if self.config_class is not None else None

    def stat_names(self, settings: Any) -> list[str]:
        """The statistics `compute_stats` returns (without the `quality_` prefix), in column order."""
        return []

    def compute_stats(self, text: str, settings: Any) -> tuple[str, dict[str, float]]:
        """The scoring step: (text for the next families, statistics). Only a cleaning family
        returns a text other than `text`; the quality stage keeps the cleaned text of kept rows."""
        return text, {}

    def applies(self, settings: Any, lang: str | None) -> bool:
        """Whether the family judges a document labelled `lang`: settings with a `languages` list
        limit it to those languages (an empty list, or an unlabelled document: always)."""
        languages = getattr(settings, "languages", None) or []
        return not languages or lang is None or lang in languages

    def reason(self, stats: dict[str, Any], settings: Any) -> str | None:  # pragma: no cover - abstract
        """The deciding step: `quality:<rule>` for the first rule the statistics fail, else None.
        `stats` holds every statistic of the document without prefix, and `words`."""
        raise NotImplementedError

    def scoring_params(self, settings: Any) -> dict[str, Any]:
        """The settings that change the statistics (not thresholds): entries of the quality stage's
        scoring key, which decides whether scores already in a shard can be reused."""
        return {}


class MinTokens(RuleFamily):
    """OpenWebText's minimum length: fewer than `QualityConfig.min_tokens` whitespace tokens (the
    stage's `quality_words` column, computed for every document) is `quality:min_tokens`."""

    name = "min_tokens"

    def reason(self, stats: dict[str, Any], settings: Any) -> str | None:
        return "quality:min_tokens" if stats["words"] < settings else None
