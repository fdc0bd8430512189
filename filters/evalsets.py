"""Eval sets for decontamination, loaded from local files: JSON lines, Parquet or plain text.

An eval set is named on the command line or in a build config as `NAME=PATH[:fields]`:

- JSON lines (`.jsonl`, `.json`, optionally `.gz`/`.zst`) and Parquet: `fields` is required and says
  which fields make up one item, e.g. `piqa=valid.jsonl:goal,sol1,sol2` or
  `gsm8k=test.jsonl:question,answer`; the fields of a record are joined with a newline. A field that
  holds a list of strings (multiple-choice options) contributes every string.
- Plain text (any other suffix): the part after `:` is the split mode, `lines` (default; one item
  per non-blank line) or `blocks` (one item per blank-line-separated block).

A problem with an eval file is an error before any work starts, naming the file and the line:
decontaminating against part of an eval set without saying so would be silent data loss of another
kind.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.config import ConfigError
from pipeline.core.extractor import InputError
from pipeline.core.io import as_path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
FIELDS_RE = re.compile(r"^[^,:=\s]+(,[^,:=\s]+)*$")
TEXT_MODES = ("lines", "blocks")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


class EvalSetError(InputError):
    """An eval file that cannot be used; the message names the file and, where it applies, the line."""


@dataclass(frozen=True)
class EvalItem:
    key: str  # where the item is in its file: "line 12", "row 3", "block at line 40"
    text: str


@dataclass
class EvalSet:
    name: str
    path: str
    fields: list[str]
    items: list[EvalItem] = field(default_factory=list)


def parse_eval_spec(spec: str) -> tuple[str, str, list[str]]:
    """`NAME=PATH[:fields]` (the CLI's `--eval`) -> (name, path, fields)."""
    name, sep, value = spec.partition("=")
    if not sep:
        raise ConfigError(f"eval set {spec!r}: expected NAME=PATH[:field1,field2]")
    path, fields = parse_eval_value(name.strip(), value, where=f"eval set {spec!r}")
    return name.strip(), path, fields


def parse_eval_value(name: str, value: str, where: str | None = None) -> tuple[str, list[str]]:
    """The value of one `evals` config entry, `PATH[:fields]` -> (path, fields)."""
    where = where or f"evals.{name} = {value!r}"
    if not NAME_RE.match(name):
        raise ConfigError(f"{where}: the name {name!r} must be letters, digits, '.', '_' or '-'")
    value = value.strip()
    path, fields_text = value, ""
    head, sep, tail = value.rpartition(":")
    # A ':' introduces fields only if what follows is not part of a path (no '/' or '\'), and the
    # whole value is not itself an existing file.
    if sep and "/" not in tail and "\\" not in tail and not as_path(value).is_file():
        path, fields_text = head, tail
        if not FIELDS_RE.match(fields_text):
            raise ConfigError(f"{where}: fields must be a comma-separated list of names, got {fields_text!r}")
    if not path:
        raise ConfigError(f"{where}: the path is empty")
    return path, fields_text.split(",") if fields_text else []


def load_eval_sets(evals: dict[str, str]) -> list[EvalSet]:
    """Every configured eval set, sorted by name; errors name the set, the file and the line."""
    out = []
    for name in sorted(evals):
        path, fields = parse_eval_value(name, evals[name])
        out.append(load_eval_set(name, path, fields))
    return out


def load_eval_set(name: str, path: str | Path, fields: list[str]) -> EvalSet:
    p = as_path(path)
    if not p.is_file():
        raise EvalSetError(f"eval set {name}: file not found: {p}")
    kind = _kind(p)
    if kind == "parquet":
        items = list(_parquet_items(p, fields))
    elif kind == "jsonl":
        items = list(_jsonl_items(p, fields))
    else:
        mode = fields[0] if fields else "lines"
        if len(fields) > 1 or mode not in TEXT_MODES:
            raise EvalSetError(
                f"eval set {name}: {p} is plain text; after ':' give 'lines' or 'blocks', not {','.join(fields)!r}"
            )
        items = list(_text_items(p, mode))
    if not items:
        raise EvalSetError(f"eval set {name}: {p} holds no items")
    return EvalSet(name=name, path=str(p), fields=list(fields), items=items)


def _kind(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last == ".parquet":
        return "parquet"
    if last in JSONL_SUFFIXES:
        return "jsonl"
    return "text"


def _open_text(p: Path) -> io.TextIOBase:
    name = p.name.lower()
    if name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(p.open("rb"), "rb"), encoding="utf-8")
    if name.endswith(".zst"):
        import zstandard

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(p.open("rb")), encoding="utf-8")
    return io.TextIOWrapper(p.open("rb"), encoding="utf-8")


def _field_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return None


def _item_text(record: Any, fields: list[str], where: str) -> str:
    if not isinstance(record, dict):
        raise EvalSetError(f"{where}: expected a JSON object, got {type(record).__name__}")
    parts = []
    for f in fields:
        if f not in record:
            raise EvalSetError(f"{where}: no field {f!r}; fields here: {', '.join(sorted(record))}")
        text = _field_text(record[f])
        if text is None:
            raise EvalSetError(f"{where}: field {f!r} is not text (got {type(record[f]).__name__})")
        parts.append(text)
    return "\n".join(parts)


def _need_fields(p: Path, fields: list[str], available: list[str]) -> None:
    if not fields:
        raise EvalSetError(
            f"{p}: name the fields that make up an item, as NAME=PATH:field1,field2; fields here: "
            + ", ".join(available)
        )


def _jsonl_items(p: Path, fields: list[str]) -> Iterator[EvalItem]:
    try:
        with _open_text(p) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{p}:{lineno}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise EvalSetError(f"{where}: invalid JSON: {exc}") from None
                if not fields:
                    _need_fields(p, fields, sorted(record) if isinstance(record, dict) else [])
                yield EvalItem(f"line {lineno}", _item_text(record, fields, where))
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise EvalSetError(f"{p}: cannot read: {exc}") from None


def _parquet_items(p: Path, fields: list[str]) -> Iterator[EvalItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        from pipeline.core.io import local_file

        local = local_file(p)
        schema = pq.read_schema(local)
        _need_fields(p, fields, schema.names)
        missing = [f for f in fields if f not in schema.names]
        if missing:
            raise EvalSetError(f"{p}: no field {missing[0]!r}; fields here: {', '.join(schema.names)}")
        rows = pq.read_table(local, columns=fields).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise EvalSetError(f"{p}: cannot read Parquet: {exc}") from None
    for i, row in enumerate(rows):
        yield EvalItem(f"row {i}", _item_text(row, fields, f"{p}: row {i}"))


def _text_items(p: Path, mode: str) -> Iterator[EvalItem]:
    try:
        with _open_text(p) as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise EvalSetError(f"{p}: cannot read: {exc}") from None
    if mode == "lines":
        for lineno, line in enumerate(lines, 1):
            if line.strip():
                yield EvalItem(f"line {lineno}", line)
        return
    block: list[str] = []
    start = 0
    for lineno, line in enumerate([*lines, ""], 1):
        if line.strip():
            if not block:
                start = lineno
            block.append(line)
        elif block:
            yield EvalItem(f"block at line {start}", "\n".join(block))
            block = []
