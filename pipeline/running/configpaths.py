"""Relative paths in a config file resolve against the file's directory, not the current one.

`resolve_config_paths` rewrites the TOML mapping of a config, as loaded and before anything else reads
it, so that every local path it names is absolute and normalized: `corpus.workdir`, `out` and
`manifests_dir`, every source's `inputs`, and the options of sources, stages and outputs that name
files or directories (their config classes' `path_options`). So a config means the same whichever directory `corpus` runs
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

def path_options(config_class: type) -> tuple[tuple[str, str], ...]:
    """The options of a config dataclass that name local files or directories, as it declares them
    (`path_options`): a dotted key into its table, and how the value holds paths: "path" (the string
    is one), "eval" (`PATH[:field1,field2]`, filters/evalsets.py; every value of the table is one),
    "keys" (every key of the table is an input as written in `inputs`), "paths" (a list of paths)."""
    return tuple(getattr(config_class, "path_options", ()))


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


def _apply(table: dict[str, Any], options: tuple[tuple[str, str], ...], base: str,
           path=resolve_path, eval_=resolve_eval) -> None:
    for dotted, kind in options:
        *parents, key = dotted.split(".")
        node: Any = table
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key not in node:
            continue
        value = node[key]
        if kind == "path":
            node[key] = path(value, base)
        elif kind == "eval" and isinstance(value, dict):
            node[key] = {k: eval_(v, base) for k, v in value.items()}
        elif kind == "paths" and isinstance(value, list):
            node[key] = [path(v, base) for v in value]
        elif kind == "keys" and isinstance(value, dict):
            node[key] = {path(k, base): v for k, v in value.items()}


CONFIGDIR_VAR = "${configdir}"


def _relative(value: Any, base: str) -> Any:
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    return CONFIGDIR_VAR + "/" + os.path.relpath(value, base)


def keyed_paths(plain: dict[str, Any], config_class: type, config_path: str | os.PathLike) -> dict[str, Any]:
    """A stage's or source's config as its step key sees it: the local paths it names written relative
    to the config file's directory (`${configdir}/...`), so that a checkout moved elsewhere, or the copy
    Ray unpacks for `ray job submit`, keys the same steps (the files' contents are keyed separately)."""
    if not config_path:
        return plain
    plain = copy.deepcopy(plain)
    base = os.path.dirname(os.path.abspath(config_path))
    _apply(plain, path_options(config_class), base, path=_relative, eval_=_relative)
    return plain


def resolve_config_paths(raw: dict[str, Any], config_path: str | os.PathLike) -> dict[str, Any]:
    """A copy of a config's TOML mapping with its relative local paths resolved against the directory
    of `config_path`. Sections that do not validate are left for the config loader to report."""
    return _rewrite(raw, config_path, resolve_path, resolve_eval, locations=True)


def keyed_config(raw: dict[str, Any], config_path: str | os.PathLike) -> dict[str, Any]:
    """A resolved TOML mapping as a version's identity sees it: local paths (inputs, models, eval sets)
    relative to the config's directory (`${configdir}/...`), so that the same project in another
    directory, or Ray's unpacked copy of it, is the same config."""
    if not config_path:
        return raw
    return _rewrite(raw, config_path, _relative, _relative, locations=False)


def _rewrite(raw: dict[str, Any], config_path: str | os.PathLike, path, eval_, *, locations: bool) -> dict[str, Any]:
    from pipeline.running.registry import extractor_class, stage_class

    base = os.path.dirname(os.path.abspath(config_path))
    raw = copy.deepcopy(raw)
    corpus = raw.get("corpus")
    if isinstance(corpus, dict) and locations:
        for key in LOCATION_KEYS:
            if isinstance(corpus.get(key), str):
                corpus[key] = path(corpus[key], base)
    sources = raw.get("sources")
    for name, table in sources.items() if isinstance(sources, dict) else ():
        if not isinstance(table, dict):
            continue
        inputs = table.get("inputs")
        if isinstance(inputs, str):
            table["inputs"] = path(inputs, base)
        elif isinstance(inputs, list):
            table["inputs"] = [path(i, base) for i in inputs]
        try:
            cls = extractor_class(name)
        except Exception:  # noqa: BLE001 - an unknown source: load_build_config names it
            continue
        _apply(table, path_options(cls.config_class), base, path, eval_)
    stages = raw.get("stages")
    for name, table in stages.items() if isinstance(stages, dict) else ():
        if not isinstance(table, dict):
            continue
        try:
            cls = stage_class(name)
        except Exception:  # noqa: BLE001 - an unknown stage: load_build_config names it
            continue
        _apply(table, path_options(cls.config_class), base, path, eval_)
    if isinstance(raw.get("outputs"), dict):
        from pipeline.outputs.writer import OutputsConfig

        _apply(raw["outputs"], path_options(OutputsConfig), base, path, eval_)
    return raw
