"""The build config: `[corpus]`, `[sources.*]`, `[stages.*]`, `[outputs]` of a TOML file, validated
against the registered extractors' and stages' config dataclasses before any work starts.

A stage with per-source settings (langid's policies, quality's rule families) gets, for every
registered source and every user-defined source of the config, the settings the source declares
(`Extractor.stage_defaults`), with what the config sets for that source merged over them key by key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.config import (
    WORKDIR_VAR,
    ConfigError,
    from_mapping,
    load_toml,
    require,
    stable_hash,
    to_plain,
)
from pipeline.core.extractor import Extractor, stage_defaults_of
from pipeline.core.stage import StageHooks
from pipeline.running.configpaths import keyed_config, keyed_paths, resolve_config_paths, resolve_path
from pipeline.running.registry import UnknownSourceError


@dataclass
class CorpusConfig:
    name: str = "corpus"  # names the version directory `<out>/<name>/` and the manifests' folder
    seed: int = 0  # recorded with the version; seeded steps have their own seed (outputs.mix.seed, ...)
    workdir: str = "work"  # where step outputs are kept for reuse (local or a URI); `--workdir` overrides
    out: str = "out"  # where corpus versions are written (local or a URI); `--out` overrides
    # Where a copy of each version's manifest goes ("" for nowhere): small enough to commit.
    manifests_dir: str = "manifests"
    # Generate the embedded demo inputs into `<workdir>/demo-inputs` (and serve the Reddit-linked pages
    # on 127.0.0.1:demo_port) first.
    demo: bool = False
    demo_port: int = 18765  # the port of the demo's local web server

    def __post_init__(self) -> None:
        require(bool(self.name) and "/" not in self.name and self.name not in (".", ".."), "name",
                f"must be a directory name, got {self.name!r}")
        require(1 <= self.demo_port <= 65535, "demo_port", f"must be a TCP port (1-65535), got {self.demo_port}")


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
        return keyed_config({**self.raw, "corpus": corpus}, self.path)

    @property
    def effective(self) -> dict[str, Any]:
        """Every setting in force, defaults included, so a diff shows `0.3 -> 0.2`, not `(absent) -> 0.2`."""
        corpus = {k: v for k, v in to_plain(self.corpus).items() if k not in LOCATION_KEYS}
        identity = self.identity

        def keyed(cfg: Any) -> dict[str, Any]:  # `${workdir}` first, then paths relative to the config
            return keyed_paths(with_workdir_var(to_plain(cfg), str(self.corpus.workdir)), type(cfg), self.path)

        sources = {name: {"inputs": identity["sources"][name].get("inputs", []), **keyed(sec.options)}
                   for name, sec in self.sources.items()}
        out: dict[str, Any] = {"corpus": corpus, "sources": sources,
                               "stages": {name: keyed(cfg) for name, cfg in self.stages.items()}}
        if self.outputs is not None:
            out["outputs"] = keyed(self.outputs)
        return out

    @property
    def hash(self) -> str:
        return stable_hash(self.identity)


def with_workdir_var(value: Any, workdir: str) -> Any:
    """Settings as keyed: the work directory written back as `${workdir}`, so that the same build in
    another work directory (or on object storage) records the same effective config."""
    if isinstance(value, str):
        return value.replace(workdir, WORKDIR_VAR) if workdir and workdir != "." else value
    if isinstance(value, list):
        return [with_workdir_var(v, workdir) for v in value]
    if isinstance(value, dict):
        return {k: with_workdir_var(v, workdir) for k, v in value.items()}
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


def declaring_extractors(configured: list[type[Extractor]]) -> list[type[Extractor]]:
    """The extractors whose declared stage defaults (`Extractor.stage_defaults`) go into the stage
    configs: every registered one, configured or not (adding a registered source to a build then
    changes no stage config, so no stage's finished work is redone), then the build's user-defined ones."""
    from pipeline.running.registry import registered_extractors

    registered = registered_extractors()
    return registered + [cls for cls in configured if cls not in registered]


def with_source_defaults(stage: type[StageHooks], table: dict[str, Any], extractors: list[type[Extractor]],
                         where: str) -> dict[str, Any]:
    """A stage's config table as written (`where` names it), with the settings that `extractors`
    declare for the stage merged under it: per source, the table's keys win, the other defaults stay
    (the stage's `merge_source_settings`). A declaration that does not fit the stage's
    `source_settings` is a ConfigError naming the extractor class and the key."""
    try:
        defaults = stage_defaults_of(extractors, stage)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return stage.merge_source_settings(table, defaults, where)


def _check_declared_stages(extractors: list[type[Extractor]], stage_names: set[str], where: str) -> None:
    for cls in extractors:
        unknown = sorted(set(cls.stage_defaults) - stage_names)
        if unknown:
            raise ConfigError(f"{where}: {cls.__module__}:{cls.__qualname__}.stage_defaults: unknown stage "
                              f"{unknown[0]!r}; known: {', '.join(sorted(stage_names))}")


def load_stage_config(name: str, path: Path | None = None) -> Any:
    """One stage's config as `corpus <stage> [--config FILE]` runs it: the file's `[stages.<name>]`
    table (no file: all defaults), with the stage defaults of the registered sources and of the
    user-defined sources the file's `[sources]` names merged under it, as in a build."""
    from pipeline.running.registry import extractor_class, stage_class

    cls = stage_class(name)
    raw = resolve_config_paths(load_toml(path), path) if path else {}
    where = f"{path}: stages.{name}" if path else f"stages.{name}"
    table = raw.get("stages", {}).get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    table = {k: v for k, v in table.items() if k != "enabled"}
    configured = []
    for source in raw.get("sources", {}):
        if ":" in source:  # user-defined; the registered ones are all included anyway
            try:
                configured.append(extractor_class(source))
            except UnknownSourceError as exc:
                raise ConfigError(f"{path}: sources.{source}: {exc}") from None
    table = with_source_defaults(cls, table, declaring_extractors(configured), where)
    return from_mapping(cls.config_class, table, where)


def load_build_config(path: Path, workdir: str | None = None) -> BuildConfig:
    """Load and validate a build config; `workdir` overrides corpus.workdir (and `${workdir}` in inputs)."""
    from pipeline.running.registry import STAGES, check_order, extractor_class, stage_class

    # Relative paths in the file are relative to its directory (pipeline/running/configpaths.py).
    raw = resolve_config_paths(load_toml(path), path)
    where = str(path)
    allowed = {"corpus", "sources", "stages", "outputs", "train_quality"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown config key {key!r}; known: {', '.join(sorted(allowed))}")
    corpus = from_mapping(CorpusConfig, raw.get("corpus", {}), f"{where}: corpus")
    if workdir:
        corpus.workdir = resolve_path(workdir, ".")  # a command-line path: relative to the current directory
    sources: dict[str, SourceSection] = {}
    configured: list[type[Extractor]] = []
    for name, table in raw.get("sources", {}).items():
        try:
            cls = extractor_class(name)
        except UnknownSourceError as exc:
            raise ConfigError(f"{where}: sources.{name}: {exc}") from None
        configured.append(cls)
        table = dict(table)
        inputs = table.pop("inputs", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise ConfigError(f"{where}: sources.{name}.inputs: expected a list of paths or URLs")
        inputs = [i.replace(WORKDIR_VAR, corpus.workdir) for i in inputs]
        options = from_mapping(cls.config_class, _substitute(table, corpus.workdir), f"{where}: sources.{name}")
        sources[name] = SourceSection(inputs=inputs, options=options)
    extractors = declaring_extractors(configured)
    stages: dict[str, Any] = {}
    stage_names = set(STAGES)
    for name, table in raw.get("stages", {}).items():
        try:
            cls = stage_class(name)
        except KeyError as exc:
            raise ConfigError(f"{where}: stages.{name}: {exc.args[0]}") from None
        stage_names.add(cls.name)
        table = dict(table)
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}: stages.{name}.enabled: expected true or false")
        if enabled:
            table = _substitute(table, corpus.workdir)
            # Each source's declared settings for the stage, under what the config sets for it.
            table = with_source_defaults(cls, table, extractors, f"{where}: stages.{name}")
            stages[name] = from_mapping(cls.config_class, table, f"{where}: stages.{name}")
    _check_declared_stages(extractors, stage_names, where)
    outputs = None
    if "outputs" in raw:
        from pipeline.outputs.writer import OutputsConfig

        outputs = from_mapping(OutputsConfig, _substitute(raw["outputs"], corpus.workdir), f"{where}: outputs")
    try:
        check_order(list(stages))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return BuildConfig(corpus=corpus, sources=sources, stages=stages, outputs=outputs, path=str(path), raw=raw)
