"""The C4 rules (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", section 2.2).

C4 cleans a page line by line and then may reject the whole page. Cleaning changes the text, so it
is a documented step of scoring: `c4_clean` returns the cleaned text, which replaces `text` in the
quality stage's kept output, and statistics:

* `c4_lines_removed` — lines dropped by the line rules (column `quality_c4_lines_removed`);
* `c4_sentences` — sentences in the kept lines (ends of `.`, `!`, `?`, possibly followed by quotes
  or brackets);
* `c4_lorem_ipsum`, `c4_curly_bracket`, `c4_bad_words` — counts of kept lines with "lorem ipsum",
  with "{", and of distinct `bad_words` found in the kept text (C4 used the LDNOOBW list, which is
  not shipped here: give your own list).

Line rules, in C4's order (each line stripped first): drop lines with a word longer than
`max_word_length` characters; remove citation markers (`[1]`, `[edit]`, `[citation needed]`); drop
lines not ending in terminal punctuation (`.`, `!`, `?`, `"`, `'`) or ending in an ellipsis; drop
lines with fewer than `min_words_per_line` words; drop lines mentioning "javascript"; drop lines with
a cookie/privacy-policy phrase.

Page rules (reasons): `quality:c4_lorem_ipsum`, `quality:c4_curly_bracket`, `quality:c4_bad_words`,
`quality:c4_few_sentences` (fewer than `min_sentences`, 5 in C4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from filters.rules import RuleFamily
from pipeline.core.config import at_least

CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
SENTENCE_END_RE = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
END_PUNCTUATION = (".", "!", "?", '"', "'")
ELLIPSIS = "..."
POLICY_PHRASES = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"]


@dataclass
class C4Config:
    """C4's line-cleaning parameters (they change the text) and page-rejection thresholds."""

    languages: list[str] = field(default_factory=lambda: ["en"])  # docs with another `lang` skip the page rules
    max_word_length: int = 1000
    remove_citations: bool = True
    require_terminal_punctuation: bool = True
    min_words_per_line: int = 3
    drop_javascript_lines: bool = True
    policy_phrases: list[str] = field(default_factory=lambda: list(POLICY_PHRASES))
    reject_lorem_ipsum: bool = True
    reject_curly_bracket: bool = True
    bad_words: list[str] = field(default_factory=list)
    min_sentences: int = 5

    def __post_init__(self) -> None:
        at_least(self, 1, "max_word_length")
        at_least(self, 0, "min_words_per_line", "min_sentences")


STAT_NAMES = ["c4_lines_removed", "c4_sentences", "c4_lorem_ipsum", "c4_curly_bracket", "c4_bad_words"]
INT_STATS = {"c4_lines_removed"}


def cleaning_params(cfg: C4Config) -> dict[str, object]:
    """The parameters that decide the cleaned text and the statistics (for the scoring key)."""
    return {
        "max_word_length": cfg.max_word_length,
        "remove_citations": cfg.remove_citations,
        "require_terminal_punctuation": cfg.require_terminal_punctuation,
        "min_words_per_line": cfg.min_words_per_line,
        "drop_javascript_lines": cfg.drop_javascript_lines,
        "policy_phrases": cfg.policy_phrases,
        "bad_words": cfg.bad_words,
    }


def _keep_line(line: str, cfg: C4Config) -> str | None:
    """The cleaned line, or None when a line rule drops it."""
    words = line.split()
    if 0 < cfg.max_word_length < len(line) and any(len(w) > cfg.max_word_length for w in words):
        return None
    if cfg.remove_citations:
        line = CITATION_RE.sub("", line).strip()
        words = line.split()
    if cfg.require_terminal_punctuation and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
        return None
    if len(words) < cfg.min_words_per_line:
        return None
    lower = line.lower()
    if cfg.drop_javascript_lines and "javascript" in lower:
        return None
    if any(p in lower for p in cfg.policy_phrases):
        return None
    return line


def _bad_word_count(text: str, bad_words: list[str]) -> int:
    if not bad_words:
        return 0
    lower = text.lower()
    tokens = set(re.findall(r"\w+", lower))
    found = 0
    for bw in bad_words:
        bw = bw.lower()
        found += (bw in tokens) if " " not in bw else (bw in lower)
    return found


def c4_clean(text: str, cfg: C4Config) -> tuple[str, dict[str, float]]:
    """C4's line cleaning: (cleaned text, statistics). Kept lines are joined with newlines."""
    kept: list[str] = []
    removed = 0
    lorem = curly = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue  # blank lines are layout, not content: not counted as removed
        cleaned = _keep_line(line, cfg)
        if cleaned is None:
            removed += 1
            continue
        lower = cleaned.lower()
        lorem += "lorem ipsum" in lower
        curly += "{" in cleaned
        kept.append(cleaned)
    cleaned_text = "\n".join(kept)
    stats = {
        "c4_lines_removed": removed,
        "c4_sentences": float(sum(len(SENTENCE_END_RE.findall(ln)) for ln in kept)),
        "c4_lorem_ipsum": float(lorem),
        "c4_curly_bracket": float(curly),
        "c4_bad_words": float(_bad_word_count(cleaned_text, cfg.bad_words)),
    }
    return cleaned_text, stats


def c4_reason(s: dict[str, float], cfg: C4Config) -> str | None:
    if cfg.reject_lorem_ipsum and s["c4_lorem_ipsum"] > 0:
        return "quality:c4_lorem_ipsum"
    if cfg.reject_curly_bracket and s["c4_curly_bracket"] > 0:
        return "quality:c4_curly_bracket"
    if s["c4_bad_words"] > 0:
        return "quality:c4_bad_words"
    if s["c4_sentences"] < cfg.min_sentences:
        return "quality:c4_few_sentences"
    return None


class C4Rules(RuleFamily):
    """The `c4` family: line cleaning (the text changes) and the page rules."""

    name = "c4"
    config_class = C4Config
    int_stats = frozenset(INT_STATS)

    def stat_names(self, settings: C4Config) -> list[str]:
        return list(STAT_NAMES)

    def compute_stats(self, text: str, settings: C4Config) -> tuple[str, dict[str, float]]:
        return c4_clean(text, settings)

    def reason(self, stats: dict[str, float], settings: C4Config) -> str | None:
        return c4_reason(stats, settings)

    def scoring_params(self, settings: C4Config) -> dict[str, object]:
        return {"c4": cleaning_params(settings)}
