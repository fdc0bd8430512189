"""The build config: `[corpus]`, `[sources.*]`, `[stages.*]`, `[outputs]` of a TOML file, validated
against the registered extractors' and stages' config dataclasses before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.config import WORKDIR_VAR, ConfigError, from_mapping, load_toml, stable_hash, to_plain


@dataclass
class CorpusConfig:
    name: str = "corpus"
    seed: int = 0
    workdir: str = "work"
    out: str = "out"
    # Where a copy of each version's manifest goes ("" for nowhere): small enough to commit.
    manifests_dir: str = "manifests"
    # Generate the embedded demo inputs into `<workdir>/demo-inputs` (and serve the Reddit-linked pages
    # on 127.0.0.1:demo_port) first.
    demo: bool = False
    demo_port: int = 18765


LOCATION_KEYS = ("workdir", "out", "manifests_dir")


@dataclass
class SourceSection:
    inputs: list[str] = field(default_factory=list)
    options: Any = None  # the extractor's own config dataclass


@dataclass
class BuildConfig:
    corpus: CorpusConfig
    sources: dict[str, SourceSection]
    stages: dict[str, Any]  # stage name -> that stage's config dataclass (enabled stages only)
    outputs: Any = None  # pipeline.outputs.OutputsConfig, when the config has an [outputs] table
    path: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> dict[str, Any]:
        """The config minus where things are written: two builds that differ only there are the same."""
        corpus = {k: v for k, v in self.raw.get("corpus", {}).items() if k not in LOCATION_KEYS}
        return {**self.raw, "corpus": corpus}

    @property
    def effective(self) -> dict[str, Any]:
        """Every setting in force, defaults included, so a diff shows `0.3 -> 0.2`, not `(absent) -> 0.2`."""
        corpus = {k: v for k, v in to_plain(self.corpus).items() if k not in LOCATION_KEYS}
        sources = {name: {"inputs": self.raw["sources"][name].get("inputs", []), **to_plain(sec.options)}
                   for name, sec in self.sources.items()}
        out: dict[str, Any] = {"corpus": corpus, "sources": sources,
                               "stages": {name: to_plain(cfg) for name, cfg in self.stages.items()}}
        if self.outputs is not None:
            out["outputs"] = to_plain(self.outputs)
        return _with_workdir_var(out, str(self.corpus.workdir))

    @property
    def hash(self) -> str:
        return stable_hash(self.identity)


def _with_workdir_var(value: Any, workdir: str) -> Any:
    """Settings as keyed: the work directory written back as `${workdir}`, so that the same build in
    another work directory (or on object storage) records the same effective config."""
    if isinstance(value, str):
        return value.replace(workdir, WORKDIR_VAR) if workdir and workdir != "." else value
    if isinstance(value, list):
        return [_with_workdir_var(v, workdir) for v in value]
    if isinstance(value, dict):
        return {k: _with_workdir_var(v, workdir) for k, v in value.items()}
    return value


def _substitute(value: Any, workdir: str) -> Any:
    """`${workdir}` in any string of a config table becomes the build's work directory."""
    if isinstance(value, str):
        return value.replace(WORKDIR_VAR, workdir)
    if isinstance(value, list):
        return [_substitute(v, workdir) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, workdir) for k, v in value.items()}
    return value


def load_build_config(path: Path, workdir: str | None = None) -> BuildConfig:
    """Load and validate a build config; `workdir` overrides corpus.workdir (and `${workdir}` in inputs)."""
    from pipeline.running.registry import UnknownSourceError, check_order, extractor_class, stage_class

    raw = load_toml(path)
    where = str(path)
    allowed = {"corpus", "sources", "stages", "outputs", "train_quality"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown config key {key!r}; known: {', '.join(sorted(allowed))}")
    corpus = from_mapping(CorpusConfig, raw.get("corpus", {}), f"{where}: corpus")
    if workdir:
        corpus.workdir = workdir
    sources: dict[str, SourceSection] = {}
    for name, table in raw.get("sources", {}).items():
        try:
            cls = extractor_class(name)
        except UnknownSourceError as exc:
            raise ConfigError(f"{where}: sources.{name}: {exc}") from None
        table = dict(table)
        inputs = table.pop("inputs", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise ConfigError(f"{where}: sources.{name}.inputs: expected a list of paths or URLs")
        inputs = [i.replace(WORKDIR_VAR, corpus.workdir) for i in inputs]
        options = from_mapping(cls.config_class, _substitute(table, corpus.workdir), f"{where}: sources.{name}")
        sources[name] = SourceSection(inputs=inputs, options=options)
    stages: dict[str, Any] = {}
    for name, table in raw.get("stages", {}).items():
        try:
            cls = stage_class(name)
        except KeyError as exc:
            raise ConfigError(f"{where}: stages.{name}: {exc.args[0]}") from None
        table = dict(table)
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}: stages.{name}.enabled: expected true or false")
        if enabled:
            table = _substitute(table, corpus.workdir)
            stages[name] = from_mapping(cls.config_class, table, f"{where}: stages.{name}")
    outputs = None
    if "outputs" in raw:
        from pipeline.outputs.writer import OutputsConfig

        outputs = from_mapping(OutputsConfig, _substitute(raw["outputs"], corpus.workdir), f"{where}: outputs")
    try:
        check_order(list(stages))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return BuildConfig(corpus=corpus, sources=sources, stages=stages, outputs=outputs, path=str(path), raw=raw)
