"""Config helpers: TOML tables mapped onto dataclasses, with errors that name the offending key; stable hashes.

Every stage and extractor declares a config dataclass; `from_mapping` fills it from a TOML table and
rejects unknown keys and wrongly typed values before any work starts. Values out of range are the
dataclass's own business: its `__post_init__` checks them (`at_least`, `positive`, `fractions`,
`require`), raising `ConfigValueError` with the field's name, and `from_mapping` puts the file and the
table in front, so that `validation_fraction = 1.5` fails at load as
`configs/x.toml: outputs.mix.validation_fraction: must be in [0, 1], got 1.5`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config problem; the message names the file and the key."""


class ConfigValueError(ConfigError):
    """A value a config dataclass's `__post_init__` rejects. `key` is the field's name within the class
    (dotted for an entry of a table field, `epochs.wikipedia`); `from_mapping` names the file and the
    table in front of it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def require(ok: bool, key: str, message: str) -> None:
    """For `__post_init__`: raise ConfigValueError(key, message) unless `ok`."""
    if not ok:
        raise ConfigValueError(key, message)


def at_least(config: Any, minimum: float, *names: str) -> None:
    """For `__post_init__`: each named field of `config` is >= `minimum`."""
    for name in names:
        value = getattr(config, name)
        require(value >= minimum, name, f"must be >= {minimum}, got {value!r}")


def positive(config: Any, *names: str) -> None:
    """For `__post_init__`: each named field of `config` is > 0."""
    for name in names:
        value = getattr(config, name)
        require(value > 0, name, f"must be > 0, got {value!r}")


def fractions(config: Any, *names: str) -> None:
    """For `__post_init__`: each named field of `config` is in [0, 1]."""
    for name in names:
        value = getattr(config, name)
        require(0 <= value <= 1, name, f"must be in [0, 1], got {value!r}")


def from_mapping(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from `data`; `where` is the key path used in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {where}.{unknown[0]}"
            + (f" (and {', '.join(unknown[1:])})" if unknown[1:] else "")
            + f"; known keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)  # its __post_init__, if any, checks the values
    except ConfigValueError as exc:
        raise ConfigError(f"{where}.{exc.key}: {exc.message}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {k: _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else value
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value


def merge_per_source(defaults: dict[str, dict[str, Any]], user: Any, where: str) -> dict[str, Any]:
    """A table of per-source settings: for each source, the user's keys over the settings it
    declares (`Extractor.stage_defaults`), key by key, so that what the user does not set keeps its
    default; sources only the user names are kept as written. `where` names the user's table."""
    if not isinstance(user, dict):
        raise ConfigError(f"{where}: expected a table of sources, got {user!r}")
    merged: dict[str, Any] = {}
    for source, table in defaults.items():
        mine = user.get(source, {})
        if not isinstance(mine, dict):
            raise ConfigError(f"{where}.{source}: expected a table, got {mine!r}")
        merged[source] = {**table, **mine}
    for source, mine in user.items():
        merged.setdefault(source, mine)
    return merged


def to_plain(obj: Any) -> Any:
    """Dataclasses to plain JSON-able data, for hashing and the manifest."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def stable_hash(obj: Any, n: int = 16) -> str:
    blob = json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


WORKDIR_VAR = "${workdir}"


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
