"""The Gopher (MassiveText) quality and repetition rules: statistics, then decisions.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
appendix A.1.1. Default thresholds are the paper's. Words are whitespace tokens. Statistics are
columns `quality_<stat>`; each rule below rejects with `quality:<reason>`:

Quality (`gopher_quality`, English prose; applied only to docs whose `lang` is in `languages`):

| stat | rule (reject when) | reason |
|---|---|---|
| gopher_words (words with a non-punctuation char) | < min_words (50) | gopher_min_words |
|  | > max_words (100,000) | gopher_max_words |
| gopher_mean_word_length | < 3 | gopher_short_words |
|  | > 10 | gopher_long_words |
| gopher_hash_ratio ("#" per word) | > 0.1 | gopher_hash_ratio |
| gopher_ellipsis_ratio ("..." and "…" per word) | > 0.1 | gopher_ellipsis_ratio |
| gopher_bullet_lines_frac (non-empty lines starting with a bullet) | > 0.9 | gopher_bullet_lines |
| gopher_ellipsis_lines_frac (non-empty lines ending with an ellipsis) | > 0.3 | gopher_ellipsis_lines |
| gopher_alpha_words_frac (words with a letter) | < 0.8 | gopher_alpha_words |
| gopher_stop_words (distinct of the, be, to, of, and, that, have, with) | < 2 | gopher_stop_words |

Repetition (`gopher_repetition`): lines are split on newlines, paragraphs on blank lines (both
stripped, empty ones ignored); n-gram character fractions count the characters of the words
(spaces excluded) over all words' characters.

| stat | reject when > | reason |
|---|---|---|
| gopher_dup_line_frac (lines seen before / lines) | 0.30 | gopher_dup_line_frac |
| gopher_dup_para_frac | 0.30 | gopher_dup_para_frac |
| gopher_dup_line_char_frac (chars in duplicate lines / chars in lines) | 0.20 | gopher_dup_line_char_frac |
| gopher_dup_para_char_frac | 0.20 | gopher_dup_para_char_frac |
| gopher_top_{n}gram_char_frac, n=2,3,4 (chars covered by the most frequent n-gram, if it occurs twice or more) | 0.20, 0.18, 0.16 | gopher_top_{n}gram |
| gopher_dup_{n}gram_char_frac, n=5..10 (chars of words inside any n-gram seen before) | 0.15 ... 0.10 | gopher_dup_{n}gram |
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

import numpy as np

from filters.rules import RuleFamily
from pipeline.core.config import at_least, fractions, require

PUNCTUATION = frozenset(string.punctuation + "«»‘’“”„‚–—…·•")
BULLETS = ("•", "●", "○", "◦", "▪", "▫", "‣", "⁃", "-", "*", "–", "—")
ELLIPSES = ("...", "…")
_PARA_RE = re.compile(r"\n\s*\n")
_CONTENT_RE = re.compile("[^" + re.escape("".join(sorted(PUNCTUATION))) + "]")
_LETTER_RE = re.compile(r"[^\W\d_]")


def _default_top_ngrams() -> dict[str, float]:
    return {"2": 0.20, "3": 0.18, "4": 0.16}


def _default_dup_ngrams() -> dict[str, float]:
    return {"5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10}


@dataclass
class GopherQualityConfig:
    """Thresholds of the Gopher quality rules (MassiveText paper values)."""

    languages: list[str] = field(default_factory=lambda: ["en"])  # docs with another `lang` skip these rules
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_hash_ratio: float = 0.1
    max_ellipsis_ratio: float = 0.1
    max_bullet_lines_frac: float = 0.9
    max_ellipsis_lines_frac: float = 0.3
    min_alpha_words_frac: float = 0.8
    min_stop_words: int = 2
    stop_words: list[str] = field(default_factory=lambda: ["the", "be", "to", "of", "and", "that", "have", "with"])

    def __post_init__(self) -> None:
        # The ratio and fraction thresholds are not bounded: a maximum below 0 (or a minimum above 1)
        # makes its rule reject every document, which is how a test shows that each rule is live.
        at_least(self, 0, "min_words", "min_mean_word_length", "min_stop_words")
        at_least(self, self.min_words, "max_words")
        at_least(self, self.min_mean_word_length, "max_mean_word_length")


@dataclass
class GopherRepetitionConfig:
    """Thresholds of the Gopher repetition rules; n-gram tables map n (as text) to the max fraction."""

    max_dup_line_frac: float = 0.30
    max_dup_para_frac: float = 0.30
    max_dup_line_char_frac: float = 0.20
    max_dup_para_char_frac: float = 0.20
    max_top_ngram_char_frac: dict[str, float] = field(default_factory=_default_top_ngrams)
    max_dup_ngram_char_frac: dict[str, float] = field(default_factory=_default_dup_ngrams)

    def __post_init__(self) -> None:
        fractions(self, "max_dup_line_frac", "max_dup_para_frac", "max_dup_line_char_frac", "max_dup_para_char_frac")
        for table in ("max_top_ngram_char_frac", "max_dup_ngram_char_frac"):
            for n, limit in getattr(self, table).items():
                require(n.isdigit() and int(n) >= 1, f"{table}.{n}", "the key must be an n-gram size >= 1")
                require(0 <= limit <= 1, f"{table}.{n}", f"must be in [0, 1], got {limit!r}")


# ------------------------------------------------------------------------------------------ quality


def quality_stat_names() -> list[str]:
    return [
        "gopher_words", "gopher_mean_word_length", "gopher_hash_ratio", "gopher_ellipsis_ratio",
        "gopher_bullet_lines_frac", "gopher_ellipsis_lines_frac", "gopher_alpha_words_frac", "gopher_stop_words",
    ]


def quality_stats(text: str, stop_words: list[str]) -> dict[str, float]:
    words = text.split()
    content = [w for w in words if _CONTENT_RE.search(w)]
    n_words = max(1, len(words))
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    n_lines = max(1, len(lines))
    stop = set(stop_words)
    present = {w.strip(string.punctuation).lower() for w in words} & stop
    return {
        "gopher_words": float(len(content)),
        "gopher_mean_word_length": sum(len(w) for w in content) / len(content) if content else 0.0,
        "gopher_hash_ratio": text.count("#") / n_words,
        "gopher_ellipsis_ratio": (text.count("...") + text.count("…")) / n_words,
        "gopher_bullet_lines_frac": sum(ln.startswith(BULLETS) for ln in lines) / n_lines,
        "gopher_ellipsis_lines_frac": sum(ln.endswith(ELLIPSES) for ln in lines) / n_lines,
        "gopher_alpha_words_frac": sum(1 for w in words if _LETTER_RE.search(w)) / n_words,
        "gopher_stop_words": float(len(present)),
    }


def quality_reason(s: dict[str, float], cfg: GopherQualityConfig) -> str | None:
    if s["gopher_words"] < cfg.min_words:
        return "quality:gopher_min_words"
    if s["gopher_words"] > cfg.max_words:
        return "quality:gopher_max_words"
    if s["gopher_mean_word_length"] < cfg.min_mean_word_length:
        return "quality:gopher_short_words"
    if s["gopher_mean_word_length"] > cfg.max_mean_word_length:
        return "quality:gopher_long_words"
    if s["gopher_hash_ratio"] > cfg.max_hash_ratio:
        return "quality:gopher_hash_ratio"
    if s["gopher_ellipsis_ratio"] > cfg.max_ellipsis_ratio:
        return "quality:gopher_ellipsis_ratio"
    if s["gopher_bullet_lines_frac"] > cfg.max_bullet_lines_frac:
        return "quality:gopher_bullet_lines"
    if s["gopher_ellipsis_lines_frac"] > cfg.max_ellipsis_lines_frac:
        return "quality:gopher_ellipsis_lines"
    if s["gopher_alpha_words_frac"] < cfg.min_alpha_words_frac:
        return "quality:gopher_alpha_words"
    if s["gopher_stop_words"] < cfg.min_stop_words:
        return "quality:gopher_stop_words"
    return None


# --------------------------------------------------------------------------------------- repetition


def repetition_stat_names(cfg: GopherRepetitionConfig) -> list[str]:
    names = ["gopher_dup_line_frac", "gopher_dup_para_frac", "gopher_dup_line_char_frac", "gopher_dup_para_char_frac"]
    names += [f"gopher_top_{n}gram_char_frac" for n, _ in _sizes(cfg.max_top_ngram_char_frac)]
    names += [f"gopher_dup_{n}gram_char_frac" for n, _ in _sizes(cfg.max_dup_ngram_char_frac)]
    return names


def _sizes(table: dict[str, float]) -> list[tuple[int, float]]:
    """(n, threshold) pairs of an n-gram table, by n. Keys are text because TOML keys are."""
    return sorted((int(n), float(t)) for n, t in table.items())


def _dup_fractions(parts: list[str]) -> tuple[float, float]:
    """(fraction of parts seen before, fraction of characters in them)."""
    if not parts:
        return 0.0, 0.0
    seen: set[str] = set()
    dup = dup_chars = 0
    for p in parts:
        if p in seen:
            dup += 1
            dup_chars += len(p)
        else:
            seen.add(p)
    total_chars = sum(len(p) for p in parts)
    return dup / len(parts), dup_chars / total_chars if total_chars else 0.0


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_BASE = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads word ids over 64 bits before they are combined."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _ngram_hashes(mixed: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash of every n-gram of words (vectorised; collisions are negligibly rare)."""
    m = len(mixed) - n + 1
    h = mixed[:m].copy()
    for k in range(1, n):
        h = h * _BASE + mixed[k : k + m]  # wraps around modulo 2**64
    return _mix(h)


def _top_ngram_frac(mixed: np.ndarray, lens: np.ndarray, n: int, total: int) -> float:
    if len(mixed) < n or not total:
        return 0.0
    h = _ngram_hashes(mixed, n)
    uniq, first, counts = np.unique(h, return_index=True, return_counts=True)
    best = int(np.argmax(counts))
    count = int(counts[best])
    if count < 2:
        return 0.0
    start = int(first[best])
    return min(1.0, count * int(lens[start : start + n].sum()) / total)


def _dup_ngram_frac(mixed: np.ndarray, lens: np.ndarray, n: int, total: int) -> float:
    if len(mixed) < n or not total:
        return 0.0
    h = _ngram_hashes(mixed, n)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    starts = np.nonzero(first[inverse] < np.arange(len(h)))[0]
    if not len(starts):
        return 0.0
    # mark words i..i+n-1 of every repeated n-gram starting at i, counting each word once
    delta = np.bincount(starts, minlength=len(mixed) + 1) - np.bincount(starts + n, minlength=len(mixed) + 1)
    covered = np.cumsum(delta)[: len(mixed)] > 0
    return float(lens[covered].sum()) / total


def repetition_stats(text: str, cfg: GopherRepetitionConfig) -> dict[str, float]:
    text = text.replace("\r\n", "\n")
    lines = [ln.strip() for ln in text.split("\n")]
    paras = [p.strip() for p in _PARA_RE.split(text)]
    out: dict[str, float] = {}
    out["gopher_dup_line_frac"], out["gopher_dup_line_char_frac"] = _dup_fractions([ln for ln in lines if ln])
    out["gopher_dup_para_frac"], out["gopher_dup_para_char_frac"] = _dup_fractions([p for p in paras if p])
    words = text.split()
    vocab: dict[str, int] = {}
    mixed = _mix(np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), np.uint64, len(words)))
    lens = np.fromiter(map(len, words), np.int64, len(words))
    total = int(lens.sum())
    for n, _ in _sizes(cfg.max_top_ngram_char_frac):
        out[f"gopher_top_{n}gram_char_frac"] = _top_ngram_frac(mixed, lens, n, total)
    for n, _ in _sizes(cfg.max_dup_ngram_char_frac):
        out[f"gopher_dup_{n}gram_char_frac"] = _dup_ngram_frac(mixed, lens, n, total)
    return out


def repetition_reason(s: dict[str, float], cfg: GopherRepetitionConfig) -> str | None:
    if s["gopher_dup_line_frac"] > cfg.max_dup_line_frac:
        return "quality:gopher_dup_line_frac"
    if s["gopher_dup_para_frac"] > cfg.max_dup_para_frac:
        return "quality:gopher_dup_para_frac"
    if s["gopher_dup_line_char_frac"] > cfg.max_dup_line_char_frac:
        return "quality:gopher_dup_line_char_frac"
    if s["gopher_dup_para_char_frac"] > cfg.max_dup_para_char_frac:
        return "quality:gopher_dup_para_char_frac"
    for n, limit in _sizes(cfg.max_top_ngram_char_frac):
        if s[f"gopher_top_{n}gram_char_frac"] > limit:
            return f"quality:gopher_top_{n}gram"
    for n, limit in _sizes(cfg.max_dup_ngram_char_frac):
        if s[f"gopher_dup_{n}gram_char_frac"] > limit:
            return f"quality:gopher_dup_{n}gram"
    return None


# ------------------------------------------------------------------------------------------ families


class GopherQualityRules(RuleFamily):
    """The `gopher_quality` family (documents in `languages` only)."""

    name = "gopher_quality"
    config_class = GopherQualityConfig

    def stat_names(self, settings: GopherQualityConfig) -> list[str]:
        return quality_stat_names()

    def compute_stats(self, text: str, settings: GopherQualityConfig) -> tuple[str, dict[str, float]]:
        return text, quality_stats(text, settings.stop_words)

    def reason(self, stats: dict[str, float], settings: GopherQualityConfig) -> str | None:
        return quality_reason(stats, settings)

    def scoring_params(self, settings: GopherQualityConfig) -> dict[str, object]:
        return {"stop_words": settings.stop_words}


class GopherRepetitionRules(RuleFamily):
    """The `gopher_repetition` family (any language)."""

    name = "gopher_repetition"
    config_class = GopherRepetitionConfig

    def stat_names(self, settings: GopherRepetitionConfig) -> list[str]:
        return repetition_stat_names(settings)

    def compute_stats(self, text: str, settings: GopherRepetitionConfig) -> tuple[str, dict[str, float]]:
        return text, repetition_stats(text, settings)

    def reason(self, stats: dict[str, float], settings: GopherRepetitionConfig) -> str | None:
        return repetition_reason(stats, settings)

    def scoring_params(self, settings: GopherRepetitionConfig) -> dict[str, object]:
        return {"top_ngrams": sorted(settings.max_top_ngram_char_frac),
                "dup_ngrams": sorted(settings.max_dup_ngram_char_frac)}
