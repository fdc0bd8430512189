"""The extractor contract: inputs become work units, a work unit becomes documents and rejections.

An extractor never touches Ray. `plan` runs in the driver (it may use the executor for a global
step, as the Reddit recipe needs to sum scores over all dumps before fetching); `extract` runs in a
task, one per work unit, and yields `Doc` or `Rejected` for every record it reads, so that records
in = documents kept + records rejected.

An extractor also declares, as data, its source's settings for the stages that take per-source
settings (`stage_defaults`: language policy, quality rule families); the build merges a config's
settings for the source over them, so that no filter names a source.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pipeline.core.config import ConfigError, from_mapping
from pipeline.core.io import AnyPath, as_path, is_remote, local_file, local_tree, sha256_file
from pipeline.core.schema import Doc, Rejected
from pipeline.core.stage import Executor, StageHooks


class InputError(ValueError):
    """An input that cannot be used; the message names the path or URL (raised before work starts)."""


@dataclass(frozen=True)
class WorkUnit:
    """One task's worth of input: `key` names its output shards, `fingerprint` keys reuse."""

    key: str
    payload: dict[str, Any]
    fingerprint: str


@dataclass
class PlanContext:
    executor: Executor
    scratch: AnyPath  # a directory private to this extractor run, for global-step intermediates
    fingerprints: Any = None  # pipeline.running.fingerprints.FingerprintCache
    extra: dict[str, Any] = field(default_factory=dict)


class Extractor:
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    config_class: ClassVar[type]
    #: This source's settings for the stages that take per-source settings, as data: by stage name,
    #: one table shaped like the stage's `source_settings` dataclass, e.g. `{"langid": {"languages":
    #: ["en"], "min_score": 0.5}, "quality": {"rules": ["min_tokens", "gopher_repetition"]}}`. They
    #: apply to the documents whose `source` is `name`. The build merges what the user sets for this
    #: source in `[stages.<stage>]` over them, key by key; the filters never name a source.
    stage_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.config_class()

    @classmethod
    def check_files(cls, config: Any, where: str) -> None:
        """The pre-flight of `corpus build`, before any work starts: every file the extractor will read
        with `config` besides its inputs (models) is there. `where` names the source's config table
        (`configs/x.toml: sources.cc`); an error names it and the key (see `StageHooks.check_files`)."""

    def setup(self) -> None:
        """Load heavy state (models); called once per worker process before `extract`."""

    def plan(self, inputs: list[str], ctx: PlanContext) -> list[WorkUnit]:
        """Default: one work unit per local file (globs expanded, sorted)."""
        units = []
        for path in expand_inputs(inputs):
            fp = ctx.fingerprints.of(path) if ctx.fingerprints is not None else file_fingerprint(path)
            units.append(WorkUnit(key=unit_key(path, fp), payload={"path": str(path)}, fingerprint=fp))
        return units

    def extract(self, unit: WorkUnit) -> Iterator[Doc | Rejected]:  # pragma: no cover - abstract
        raise NotImplementedError


def stage_defaults_of(extractors: Iterable[type[Extractor]], stage: type[StageHooks]) -> dict[str, dict[str, Any]]:
    """{source name: the settings it declares for `stage`} over `extractors` (a later one with the same
    name wins), each checked against the stage's `source_settings`: a ConfigError names the extractor
    class and the key."""
    out: dict[str, dict[str, Any]] = {}
    for cls in extractors:
        table = cls.stage_defaults.get(stage.name)
        if table is None:
            continue
        where = f"{cls.__module__}:{cls.__qualname__}.stage_defaults.{stage.name}"
        if stage.source_settings is None:
            raise ConfigError(f"{where}: stage {stage.name!r} has no per-source settings")
        try:
            from_mapping(stage.source_settings, table, where)
        except ConfigError as exc:
            raise ConfigError(str(exc) if where in str(exc) else f"{where}: {exc}") from None
        out[cls.name] = copy.deepcopy(dict(table))
    return out


# The registered extractors, listed by the running layer's registry, which installs this function
# when it is imported (`import pipeline` does): the core imports nothing above it.
_registered_extractors: Callable[[], list[type[Extractor]]] | None = None


def install_extractor_registry(registered: Callable[[], list[type[Extractor]]]) -> None:
    global _registered_extractors
    _registered_extractors = registered


def registered_stage_defaults(stage: type[StageHooks]) -> dict[str, dict[str, Any]]:
    """What every registered source declares for `stage`: the per-source defaults of a stage config
    built without a build config (`LanguageIdConfig()`), as `corpus langid` without --config gets them."""
    return stage_defaults_of(_registered_extractors() if _registered_extractors else [], stage)


def expand_inputs(inputs: list[str]) -> list[AnyPath]:
    """Expand globs and directories (local or on object storage) to files; an input that matches
    nothing is an InputError naming it."""
    out: list[AnyPath] = []
    for spec in inputs:
        if is_remote(spec):
            out.extend(_expand_remote(spec))
            continue
        if spec.startswith("file://"):  # a local path spelled as a URI
            spec = spec[len("file://"):]
        matches = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
        if not matches or not all(Path(m).exists() for m in matches):
            raise InputError(f"input not found: {spec}")
        for m in matches:
            p = Path(m)
            out.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    return sorted(dict.fromkeys(out), key=str)


def _expand_remote(spec: str) -> list[AnyPath]:
    try:
        if glob.has_magic(spec):
            head, _, _ = spec.partition("*")
            base = as_path(head.rpartition("/")[0])
            pattern = spec[len(str(base)) + 1:]
            matches = [p for p in base.glob(pattern)]
        else:
            p = as_path(spec)
            matches = [p] if p.is_file() else list(p.rglob("*"))
    except OSError as exc:
        raise InputError(f"{spec}: cannot list: {exc}") from None
    if not matches:
        raise InputError(f"input not found: {spec}")
    return matches


def localize_inputs(inputs: list[str]) -> tuple[list[str], dict[str, str]]:
    """For an extractor whose planning walks a local tree (symlinks, sibling files): inputs on object
    storage are mirrored into the local cache. Returns the local inputs and {local root: remote root},
    with which `to_remote` maps planned paths back, so work units name the shared copy, not this
    machine's cache."""
    local: list[str] = []
    roots: dict[str, str] = {}
    for spec in inputs:
        if not is_remote(spec):
            local.append(spec)
            continue
        if glob.has_magic(spec):
            head = spec[: spec.index(next(c for c in spec if c in "*?["))]
            base = head.rpartition("/")[0]
            root = local_tree(base)
            local.append(str(root) + spec[len(base):])
            roots[str(root)] = base
        else:
            p = as_path(spec)
            root = local_tree(spec) if not p.is_file() else local_file(spec).parent
            roots[str(root)] = spec if not p.is_file() else str(p.parent)
            local.append(str(root) if not p.is_file() else str(local_file(spec)))
    return local, roots


def to_remote(path: str | os.PathLike, roots: dict[str, str]) -> str:
    """A path under a root of `localize_inputs`, as its object-storage URI (other paths unchanged)."""
    text = str(path)
    for local_root, remote_root in roots.items():
        if text.startswith(local_root + "/"):
            return remote_root + text[len(local_root):]
    return text


def unit_key(path: Path | str, fingerprint: str = "") -> str:
    """A filesystem-safe, stable name for a work unit: readable stem plus a short hash.

    With the input's content fingerprint the hash ignores where the file lives, so moving the inputs
    (or the work directory holding the demo's) does not rename a single output shard.
    """
    text = str(path)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text.rstrip("/").rpartition("/")[2])[:60]
    basis = f"{stem}\0{fingerprint}" if fingerprint else text
    return f"{stem}-{hashlib.sha1(basis.encode()).hexdigest()[:8]}"


def file_fingerprint(path: str | os.PathLike) -> str:
    return "sha256:" + sha256_file(path)
