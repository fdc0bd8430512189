"""`corpus config --defaults`: every key of a build config with its default and help, as TOML that loads
back to the defaults, and docs/config.md generated from it."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field

from pipeline.cli import main
from pipeline.core.config import from_mapping, to_plain
from pipeline.outputs.writer import OutputsConfig
from pipeline.running import registry
from pipeline.running.buildconfig import CorpusConfig, load_build_config
from pipeline.running.config_reference import (
    NO_HELP,
    dataclass_tables,
    field_help,
    reference,
    render_markdown,
    render_toml,
)
from tests.conftest import REPO

FIX = "corpus config --defaults --markdown > docs/config.md"


def test_docs_config_md_is_current():
    doc = REPO / "docs" / "config.md"
    assert doc.exists(), f"docs/config.md is missing; generate it with: {FIX}"
    assert doc.read_text(encoding="utf-8") == render_markdown(), (
        f"docs/config.md is not current (a config dataclass, its comments or the registry changed); "
        f"regenerate it with: {FIX}"
    )


def _printed_defaults(capsys) -> str:
    assert main(["config", "--defaults"]) == 0
    return capsys.readouterr().out


def test_printed_defaults_parse_and_load_back_to_every_default(tmp_path, capsys):
    text = _printed_defaults(capsys)
    data = tomllib.loads(text)
    assert set(data) == {"corpus", "sources", "stages", "outputs", *registry.TOOL_TABLES}
    assert list(data["sources"]) == list(registry.EXTRACTORS)
    assert list(data["stages"]) == list(registry.STAGES)
    for nested in ("[outputs.mix]", "[outputs.tokenize]", "[sources.reddit.fetch]", "[sources.cc.html]"):
        assert f"\n{nested}\n" in text

    # The whole printout is a valid build config whose every setting is the default.
    path = tmp_path / "defaults.toml"
    path.write_text(text, encoding="utf-8")
    config = load_build_config(path)
    # (the printed locations, relative paths written in a config, resolve against its directory)
    written = {k: str(tmp_path / getattr(CorpusConfig(), k)) for k in ("workdir", "out", "manifests_dir")}
    assert to_plain(config.corpus) == to_plain(CorpusConfig(**written))
    for name, section in config.sources.items():
        assert section.inputs == []
        assert to_plain(section.options) == to_plain(registry.extractor_class(name).config_class()), name
    assert list(config.stages) == list(registry.STAGES)
    for name, options in config.stages.items():
        assert to_plain(options) == to_plain(registry.stage_class(name).config_class()), name
    assert to_plain(config.outputs) == to_plain(OutputsConfig())
    for name in registry.TOOL_TABLES:
        cls = registry.tool_class(name)
        assert to_plain(from_mapping(cls, data[name], name)) == to_plain(cls())


def _fields(cls: type, instance, path: tuple[str, ...]):
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            yield from _fields(type(value), value, (*path, f.name))
        else:
            yield ".".join((*path, f.name))


def test_every_field_of_every_config_is_printed_with_its_help(capsys):
    text = _printed_defaults(capsys)
    lines = text.splitlines()
    i = lines.index('source_name = "jsonl"')
    assert lines[i - 1] == "# the `source` column of the documents"
    i = lines.index('manifests_dir = "manifests"')
    assert lines[i - 1] == "# Where a copy of each version's manifest goes (\"\" for nowhere): small enough to commit."
    # a default TOML cannot spell (None) is shown commented out, with its type
    assert "# classifier_model = ...  (unset by default; str | None)" in lines

    tables = reference()
    printed = {".".join(t.path) for t in tables} | {".".join((*t.path, k.name)) for t in tables for k in t.keys}
    configs = [(CorpusConfig, ("corpus",)), (OutputsConfig, ("outputs",))]
    configs += [(registry.extractor_class(n).config_class, ("sources", n)) for n in registry.EXTRACTORS]
    configs += [(registry.stage_class(n).config_class, ("stages", n)) for n in registry.STAGES]
    configs += [(registry.tool_class(n), (n,)) for n in registry.TOOL_TABLES]
    expected = {key for cls, path in configs for key in _fields(cls, cls(), path)}
    assert expected - printed == set()


@dataclass
class _Inner:
    """An inner table."""

    depth: int = 2  # how deep


@dataclass
class _Example:
    """An example config."""

    plain: int = 1  # a trailing comment
    # A comment above the field,
    # on two lines.
    above: str = "x"
    # Above and
    both: list[str] = field(default_factory=lambda: ["a", "b"])  # at the end
    long: list[int] = field(
        default_factory=lambda: [1, 2, 3],  # a comment inside the field
    )

    bare: float = 0.5
    helped: bool = field(default=True, metadata={"help": "from the metadata"})  # not this
    unset: str | None = None  # None has no TOML spelling
    inner: _Inner = field(default_factory=lambda: _Inner(depth=3))
    odd_keys: dict[str, float] = field(default_factory=lambda: {"a b": 1.0, "2": 0.5})
    tables: dict[str, _Inner] = field(default_factory=lambda: {"x": _Inner(4)})
    text: str = 'quote " backslash \\ tab \t newline \n del \x7f'
    tool: int = 0  # noqa: E501


def test_help_comes_from_comments_and_metadata():
    helps = field_help(_Example)
    assert helps["plain"] == "a trailing comment"
    assert helps["above"] == "A comment above the field, on two lines."
    assert helps["both"] == "Above and; at the end"
    assert helps["long"] == "a comment inside the field"
    assert helps["bare"] == ""  # a blank line cuts off the comment of the field before
    assert helps["helped"] == "from the metadata"
    assert helps["tool"] == ""  # a linter's comment is no help
    tables = dataclass_tables(_Example, ("stages", "example"))
    assert [t.path for t in tables] == [("stages", "example"), ("stages", "example", "inner"),
                                        ("stages", "example", "tables"), ("stages", "example", "tables", "x")]
    text = render_toml(tables)
    assert f"# {NO_HELP}\nbare = 0.5" in text
    assert "# how deep\ndepth = 3" in text  # the value the field's factory gives, not the class default
    data = tomllib.loads(text)["stages"]["example"]
    assert "unset" not in data
    assert to_plain(from_mapping(_Example, data, "example")) == to_plain(_Example())
