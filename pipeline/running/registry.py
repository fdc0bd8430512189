"""The registry of plug-ins: extractors by source name and document stages in pipeline order.

The running layer reaches plug-ins only through here, by dotted name, imported lazily (so that
`corpus extract --source books` does not import trafilatura). A user-defined plug-in is named
`package.module:Class`.
"""

from __future__ import annotations

import importlib

from pipeline.core.extractor import Extractor, install_extractor_registry
from pipeline.core.stage import GlobalStage, ShardStage

EXTRACTORS: dict[str, str] = {
    "cc": "sources.cc:CommonCrawlExtractor",
    "reddit": "sources.reddit:RedditExtractor",
    "wikipedia": "sources.wikipedia:WikipediaExtractor",
    "books": "sources.books:BooksExtractor",
    "code": "sources.code:CodeExtractor",
    "jsonl": "sources.jsonl:JsonlExtractor",
}

STAGES: dict[str, str] = {
    "langid": "filters.langid:LanguageIdStage",
    "quality": "filters.quality:QualityStage",
    "dedup": "dedup.stage:DedupStage",
    "decontam": "filters.decontam:DecontamStage",
}
PIPELINE_ORDER = list(STAGES)

# Tables of a build config read by a tool rather than by the build (`corpus train-quality --config`):
# table name -> its config dataclass.
TOOL_TABLES: dict[str, str] = {
    "train_quality": "filters.classifier:ClassifierTrainConfig",
}


class UnknownSourceError(ValueError):
    pass


def _load(target: str) -> type:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def extractor_class(name: str) -> type[Extractor]:
    """A registered source name, or `package.module:Class` for a user-defined extractor."""
    try:
        target = EXTRACTORS[name] if ":" not in name else name
    except KeyError:
        raise UnknownSourceError(
            f"unknown source {name!r}; known sources: {', '.join(sorted(EXTRACTORS))}"
        ) from None
    try:
        return _load(target)
    except (ImportError, AttributeError) as exc:
        raise UnknownSourceError(f"source {name!r}: cannot load {target}: {exc}") from None


def registered_extractors() -> list[type[Extractor]]:
    """Every registered extractor class, in registry order (imports them all)."""
    return [extractor_class(name) for name in EXTRACTORS]


# Stage configs built outside a build (`LanguageIdConfig()`) read the registered sources' declared
# defaults through the core (pipeline.core.extractor.registered_stage_defaults).
install_extractor_registry(registered_extractors)


def stage_class(name: str) -> type[ShardStage] | type[GlobalStage]:
    """A registered stage name, or `package.module:Class` for a user-defined stage."""
    try:
        target = STAGES[name] if ":" not in name else name
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; known stages: {', '.join(STAGES)}") from None
    try:
        return _load(target)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"stage {name!r}: cannot load {target}: {exc}") from None


def tool_class(name: str) -> type:
    """The config dataclass of a tool's table (see TOOL_TABLES)."""
    return _load(TOOL_TABLES[name])


def check_order(names: list[str]) -> None:
    """Registered stages must come in pipeline order (dedup after the filters, ...)."""
    known = [n for n in names if n in STAGES]
    expected = [n for n in PIPELINE_ORDER if n in known]
    if known != expected:
        raise ValueError(f"stages must run in the order {' -> '.join(expected)}, the config has {' -> '.join(known)}")
