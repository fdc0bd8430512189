"""Relative paths in a config file resolve against the file's directory, not the current one.

`resolve_config_paths` rewrites the TOML mapping of a config, as loaded and before anything else reads
it, so that every local path it names is absolute and normalized: `corpus.workdir`, `out` and
`manifests_dir`, every source's `inputs`, and the options of sources, stages and outputs that name
files or directories (`PATH_OPTIONS`). So a config means the same whichever directory `corpus` runs
in (a checkout, the working directory Ray unpacks for `ray job submit`), and a path spelled relative to
the config's directory or spelled absolute is the same string in the config hash, the step keys and
the version. Left as written: URIs (`s3://`, `gs://`, `http(s)://`, `file://`...), strings holding
`${workdir}` (resolved against the work directory, later) and empty strings. Command-line paths
(`--workdir`, `--out`, `--config`) are not in the file: they are relative to the current directory.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

from pipeline.core.config import WORKDIR_VAR

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

LOCATION_KEYS = ("workdir", "out", "manifests_dir")

# The options that name local files or directories, per config dataclass (`module:QualifiedName`):
# a dotted key into its table, and how the value holds paths: "path" (the string is one),
# "eval" (`PATH[:field1,field2]`, filters/evalsets.py; every value of the table is one), "keys" (every
# key of the table is an input as written in `inputs`). tests/pipeline/running/test_config_paths.py
# checks that each entry names a real field.
PATH_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "sources.cc:CommonCrawlConfig": (("lang_model_path", "path"),),
    "sources.reddit:RedditConfig": (("archive_dir", "path"), ("extraction.lang_model_path", "path")),
    "sources.code:CodeConfig": (("repo_name", "keys"),),
    "filters.langid:LanguageIdConfig": (("model_path", "path"),),
    "filters.quality:QualityConfig": (("classifier_model", "path"),),
    "filters.decontam:DecontamConfig": (("evals", "eval"),),
    "pipeline.outputs.writer:OutputsConfig": (("tokenize.tokenizer", "path"),),
}


def class_id(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_path(value: str, base: str | os.PathLike) -> str:
    """`value` joined to `base` and normalized when it is a local path; as written otherwise."""
    if not isinstance(value, str) or not value or WORKDIR_VAR in value or _URI.match(value):
        return value
    return os.path.normpath(os.path.join(os.path.abspath(base), value))


def resolve_eval(value: str, base: str | os.PathLike) -> str:
    """An eval-set entry `PATH[:fields]` with its path resolved (the split as filters/evalsets.py does it)."""
    if not isinstance(value, str) or not value.strip() or WORKDIR_VAR in value or _URI.match(value.strip()):
        return value
    text = value.strip()
    whole = resolve_path(text, base)
    if os.path.isfile(whole):
        return whole
    head, sep, tail = text.rpartition(":")
    if sep and head and "/" not in tail and "\\" not in tail:
        return f"{resolve_path(head, base)}:{tail}"
    return whole


def _apply(table: dict[str, Any], options: tuple[tuple[str, str], ...], base: str) -> None:
    for dotted, kind in options:
        *parents, key = dotted.split(".")
        node: Any = table
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key not in node:
            continue
        value = node[key]
        if kind == "path":
            node[key] = resolve_path(value, base)
        elif kind == "eval" and isinstance(value, dict):
            node[key] = {k: resolve_eval(v, base) for k, v in value.items()}
        elif kind == "keys" and isinstance(value, dict):
            node[key] = {resolve_path(k, base): v for k, v in value.items()}


def resolve_config_paths(raw: dict[str, Any], config_path: str | os.PathLike) -> dict[str, Any]:
    """A copy of a config's TOML mapping with its relative local paths resolved against the directory
    of `config_path`. Sections that do not validate are left for the config loader to report."""
    from pipeline.running.registry import extractor_class, stage_class

    base = os.path.dirname(os.path.abspath(config_path))
    raw = copy.deepcopy(raw)
    corpus = raw.get("corpus")
    if isinstance(corpus, dict):
        for key in LOCATION_KEYS:
            if isinstance(corpus.get(key), str):
                corpus[key] = resolve_path(corpus[key], base)
    sources = raw.get("sources")
    for name, table in sources.items() if isinstance(sources, dict) else ():
        if not isinstance(table, dict):
            continue
        inputs = table.get("inputs")
        if isinstance(inputs, str):
            table["inputs"] = resolve_path(inputs, base)
        elif isinstance(inputs, list):
            table["inputs"] = [resolve_path(i, base) for i in inputs]
        try:
            cls = extractor_class(name)
        except Exception:  # noqa: BLE001 - an unknown source: load_build_config names it
            continue
        _apply(table, PATH_OPTIONS.get(class_id(cls.config_class), ()), base)
    stages = raw.get("stages")
    for name, table in stages.items() if isinstance(stages, dict) else ():
        if not isinstance(table, dict):
            continue
        try:
            cls = stage_class(name)
        except Exception:  # noqa: BLE001 - an unknown stage: load_build_config names it
            continue
        _apply(table, PATH_OPTIONS.get(class_id(cls.config_class), ()), base)
    if isinstance(raw.get("outputs"), dict):
        from pipeline.outputs.writer import OutputsConfig

        _apply(raw["outputs"], PATH_OPTIONS.get(class_id(OutputsConfig), ()), base)
    return raw
