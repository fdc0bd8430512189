"""The config reference: every key of a build config with its default and a one-line help.

`corpus config --defaults` prints it as TOML (help as comments, `key = default` lines) that can be
copied into a config as it is; `corpus config --defaults --markdown` prints docs/config.md. Both come
from the config dataclasses themselves, reached through the registry: `[corpus]`, one `[sources.NAME]`
per registered extractor, one `[stages.NAME]` per registered stage, `[outputs]` and the tables of the
tools (`[train_quality]`), with their nested tables (`[outputs.mix]`, `[sources.reddit.fetch]`, ...).

A field's help is `metadata={"help": ...}` when it has one, else the comments written with it in the
source: the comment lines directly above the field and the comment at the end of its line(s), joined
into one line. A field with neither reads "(no help)".
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pipeline.core.config import to_plain

NO_HELP = "(no help)"
WRAP = 100  # help comments in the TOML are wrapped at this width
INLINE_MAX = 96  # a non-empty table default longer than this (as an inline table) gets its own [table]

INPUTS_HELP = ("input files, globs, directories or URLs (local, http(s), s3://, ...); "
               "`${workdir}` is replaced by the work directory")
ENABLED_HELP = "false leaves the stage out of the build"


class _Unset:
    def __repr__(self) -> str:
        return "(unset)"


UNSET = _Unset()  # a field with no default, or a default TOML cannot spell (None)


@dataclass
class Key:
    name: str
    default: Any  # plain data (lists, dicts, scalars), or UNSET
    type: str
    help: str
    entry: bool = False  # an entry of a mapping (its table's help says what the entries are)


@dataclass
class Table:
    path: tuple[str, ...]  # ("sources", "reddit", "fetch")
    help: str
    keys: list[Key] = field(default_factory=list)
    stage_defaults: dict[str, str] = field(default_factory=dict)  # a source's: stage name -> TOML inline table


# --------------------------------------------------------------------------------- help from source


_PRAGMA = re.compile(r"#\s*(noqa\b|type:|pragma\b|fmt:|ruff:)")  # tool comments, not help


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def _class_node(cls: type) -> tuple[ast.ClassDef, list[str], dict[int, str]] | None:
    """The class's AST, its source lines and its comments by line number (None without source)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if node is None:
        return None
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and not _PRAGMA.match(tok.string):
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    return node, source.splitlines(), comments


def _join(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    if not parts:
        return ""
    text = " ".join(parts)
    return re.sub(r"\s+", " ", text).strip()


@cache
def field_help(cls: type) -> dict[str, str]:
    """Help per field of dataclass `cls`: `metadata["help"]`, else its comments ("" when none)."""
    out: dict[str, str] = {}
    parsed = _class_node(cls)
    if parsed is not None:
        node, lines, comments = parsed
        previous_end = node.lineno
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                end = stmt.end_lineno or stmt.lineno
                trailing = _join([comments[n] for n in range(stmt.lineno, end + 1) if n in comments])
                leading: list[str] = []
                n = stmt.lineno - 1
                while n > previous_end and lines[n - 1].strip().startswith("#"):
                    leading.insert(0, comments.get(n, ""))
                    n -= 1
                lead = _join(leading)
                if lead and trailing:
                    out[stmt.target.id] = f"{lead.rstrip('.;:')}; {trailing}"
                else:
                    out[stmt.target.id] = lead or trailing
            previous_end = stmt.end_lineno or stmt.lineno
    for f in dataclasses.fields(cls):
        if f.metadata.get("help"):
            out[f.name] = " ".join(str(f.metadata["help"]).split())
    return out


def class_help(cls: type) -> str:
    """The first paragraph of a class's own docstring (not the signature @dataclass makes up)."""
    parsed = _class_node(cls)
    if parsed is not None:
        return _first_paragraph(ast.get_docstring(parsed[0]))
    doc = cls.__dict__.get("__doc__")
    return "" if not doc or doc.startswith(f"{cls.__name__}(") else _first_paragraph(doc)


# --------------------------------------------------------------------------------- the reference


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = str(tp).replace("typing.", "")
    return re.sub(r"\b(?:[A-Za-z_][\w]*\.)+([A-Za-z_]\w*)", r"\1", text)  # module paths off


def _defaults(cls: type, instance: Any = None) -> dict[str, Any]:
    """Each field's value in `instance`, else its default: from `cls()` when that works (so that
    __post_init__ counts), else from the field's default or factory."""
    if instance is None:
        try:
            instance = cls()
        except TypeError:
            instance = None
    out = {}
    for f in dataclasses.fields(cls):
        if instance is not None:
            out[f.name] = getattr(instance, f.name)
        elif f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = UNSET
    return out


def _is_table_dict(value: Any) -> bool:
    """A dict default shown as its own [table] rather than an inline `key = {...}`."""
    if not isinstance(value, dict) or not value:
        return False
    if any(dataclasses.is_dataclass(v) or isinstance(v, dict) for v in value.values()):
        return True
    try:
        return len(toml_value(to_plain(value))) > INLINE_MAX
    except ValueError:
        return True


def dataclass_tables(cls: type, path: tuple[str, ...], help: str = "", *, instance: Any = None,
                     extra: list[Key] | None = None, stage_defaults: dict[str, str] | None = None) -> list[Table]:
    """The table of dataclass `cls` at `path` (values from `instance`, else the defaults), followed by
    its nested tables."""
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    defaults = _defaults(cls, instance)
    table = Table(path, help or class_help(cls), list(extra or []), dict(stage_defaults or {}))
    nested: list[Table] = []
    for f in dataclasses.fields(cls):
        value = defaults[f.name]
        doc = helps.get(f.name, "")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            nested += dataclass_tables(type(value), (*path, f.name), doc or class_help(type(value)), instance=value)
        elif _is_table_dict(value):
            nested += _dict_tables(value, (*path, f.name), doc)
        else:
            default = UNSET if value is None else value if value is UNSET else to_plain(value)
            table.keys.append(Key(f.name, default, _type_name(hints.get(f.name, Any)), doc))
    return [table, *nested]


def _dict_tables(value: dict, path: tuple[str, ...], help: str) -> list[Table]:
    table = Table(path, help)
    nested: list[Table] = []
    for k, v in value.items():
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            nested += dataclass_tables(type(v), (*path, str(k)), f"`{k}`: {class_help(type(v))}".rstrip(": "),
                                       instance=v)
        elif _is_table_dict(v):
            nested += _dict_tables(v, (*path, str(k)), "")
        else:
            plain = to_plain(v)
            table.keys.append(Key(str(k), UNSET if plain is None else plain, type(plain).__name__, "", entry=True))
    return [table, *nested]


STAGE_DEFAULTS_HELP = ("settings this source declares for the stages (its `stage_defaults`): a config's "
                       "settings for this source in `[stages.NAME]` are merged over them, key by key")


def _stage_defaults(extractor: type) -> dict[str, str]:
    out = {}
    for stage, value in (getattr(extractor, "stage_defaults", None) or {}).items():
        try:
            out[str(stage)] = toml_value(to_plain(value))
        except ValueError:
            out[str(stage)] = repr(to_plain(value))
    return out


def reference() -> list[Table]:
    """Every table of a build config, in config order, from the registry's plug-ins."""
    from pipeline.outputs.writer import OutputsConfig
    from pipeline.running import registry
    from pipeline.running.buildconfig import CorpusConfig

    tables = dataclass_tables(CorpusConfig, ("corpus",), "the corpus: its name, seed and where work and versions go")
    for name in registry.EXTRACTORS:
        cls = registry.extractor_class(name)
        help = class_help(cls.config_class) or class_help(cls) or _first_paragraph(inspect.getmodule(cls).__doc__)
        tables += dataclass_tables(cls.config_class, ("sources", name), f"source `{name}`: {help}",
                                   extra=[Key("inputs", [], "list[str]", INPUTS_HELP)],
                                   stage_defaults=_stage_defaults(cls))
    for name in registry.STAGES:
        cls = registry.stage_class(name)
        help = class_help(cls.config_class) or class_help(cls) or _first_paragraph(inspect.getmodule(cls).__doc__)
        tables += dataclass_tables(cls.config_class, ("stages", name), f"stage `{name}`: {help}",
                                   extra=[Key("enabled", True, "bool", ENABLED_HELP)])
    tables += dataclass_tables(OutputsConfig, ("outputs",),
                               "training outputs: mixing, text shards, tokenization, Megatron export")
    for name in registry.TOOL_TABLES:
        cls = registry.tool_class(name)
        help = class_help(cls) or _first_paragraph(inspect.getmodule(cls).__doc__)
        tables += dataclass_tables(cls, (name,), f"read by `corpus {name.replace('_', '-')} --config`: {help}")
    return tables


def missing_help(tables: list[Table] | None = None) -> list[str]:
    """Dotted keys whose field has no help (neither a comment nor metadata)."""
    return [".".join((*t.path, k.name)) for t in (tables or reference()) for k in t.keys
            if not k.help and not k.entry]


# --------------------------------------------------------------------------------- TOML


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else toml_string(k)


def toml_value(v: Any) -> str:
    """A plain value as TOML (inline tables and arrays on one line); ValueError for None and others."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # 0.5, 1e-05, inf, nan: all TOML
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{toml_key(str(k))} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"no TOML spelling for {v!r}")


def _comment(text: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, WRAP - len(indent) - 2, break_on_hyphens=False,
                                                           break_long_words=False)] or [f"{indent}#"]


def render_toml(tables: list[Table] | None = None) -> str:
    tables = tables if tables is not None else reference()
    lines = ["# Every key of a build config with its default (`corpus config --defaults`).",
             "# Copy what you change; a key left out keeps its default. The reference: docs/config.md.", ""]
    for t in tables:
        lines += _comment(t.help or NO_HELP)
        if t.stage_defaults:
            lines += _comment(STAGE_DEFAULTS_HELP)
            lines += [f"#   {stage} = {value}" for stage, value in t.stage_defaults.items()]
        lines.append("[" + ".".join(toml_key(p) for p in t.path) + "]")
        for k in t.keys:
            if not k.entry or k.help:
                lines += _comment(k.help or NO_HELP)
            try:
                if k.default is UNSET:
                    raise ValueError
                lines.append(f"{toml_key(k.name)} = {toml_value(k.default)}")
            except ValueError:
                lines.append(f"# {toml_key(k.name)} = ...  (unset by default; {k.type})")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------- Markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markdown(tables: list[Table] | None = None) -> str:
    tables = tables if tables is not None else reference()
    lines = [
        "# Config reference",
        "",
        "<!-- Generated by `corpus config --defaults --markdown > docs/config.md`; do not edit by hand.",
        "     tests/pipeline/running/test_config_reference.py fails when it is not current. -->",
        "",
        "Every key of a build config (`configs/*.toml`), with its default and what it does, drawn from the",
        "config dataclasses of the registered sources and stages. `corpus config --defaults` prints the same",
        "as TOML, ready to copy into a config; a key left out of a config keeps its default. User-defined",
        'plug-ins (`[sources."pkg.mod:Class"]`, `[stages."pkg.mod:Class"]`) bring their own keys.',
        "",
        "Tables:",
        "",
    ]
    groups = {"sources": "Sources", "stages": "Stages"}
    seen: set[str] = set()
    for t in tables:
        name = ".".join(t.path)
        if t.path[0] in groups and t.path[0] not in seen:
            seen.add(t.path[0])
            lines.append(f"- {groups[t.path[0]]}")
        lines.append(f"{'  ' * _depth(t.path)}- [`[{name}]`](#{_anchor(name)})")
    lines.append("")
    seen = set()
    for t in tables:
        name = ".".join(t.path)
        if t.path[0] in groups and t.path[0] not in seen:
            seen.add(t.path[0])
            lines += [f"## {groups[t.path[0]]}", ""]
        lines += [f"{'#' * min(6, 2 + _depth(t.path))} [{name}]", ""]
        lines += [t.help or NO_HELP, ""]
        if t.stage_defaults:
            lines += [STAGE_DEFAULTS_HELP[0].upper() + STAGE_DEFAULTS_HELP[1:] + ":", ""]
            lines += [f"- `{stage}`: {_code(value)}" for stage, value in t.stage_defaults.items()]
            lines.append("")
        if t.keys:
            lines += ["| key | type | default | help |", "|---|---|---|---|"]
            for k in t.keys:
                try:
                    default = "(unset)" if k.default is UNSET else _code(toml_value(k.default))
                except ValueError:
                    default = _code(repr(k.default))
                help = k.help or ("" if k.entry else NO_HELP)
                lines.append(f"| `{_cell(k.name)}` | {_cell(_code(k.type))} | {_cell(default)} | {_cell(help)} |")
            lines.append("")
    return "\n".join(lines)


def _depth(path: tuple[str, ...]) -> int:
    """0 for a top-level table, 1 for a source, a stage or a table nested in a top-level one, ..."""
    return len(path) - 1


def _anchor(name: str) -> str:
    """GitHub's anchor of a heading `[name]`."""
    return re.sub(r"[^\w\- ]", "", f"[{name}]".lower()).replace(" ", "-")
