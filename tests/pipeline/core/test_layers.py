"""The layers import downwards only: the core imports nothing above it, plug-ins import only the core,
and the running, outputs and versions layers reach plug-ins only through the registry (by name)."""

from __future__ import annotations

import ast

from tests.conftest import REPO

PLUGINS = ("sources", "filters", "dedup")


def _module(path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path) -> list[str]:
    """Every project module a file imports, at top level or inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [m for m in out if m.split(".")[0] in ("pipeline", *PLUGINS)]


def _files(*packages: str):
    for pkg in packages:
        yield from sorted((REPO / pkg).rglob("*.py"))


def _allowed(importer: str, imported: str) -> bool:
    top = importer.split(".")[0]
    if importer.startswith("pipeline.core"):
        return imported.startswith("pipeline.core") or imported == "pipeline"
    if top in PLUGINS:
        return imported.startswith("pipeline.core") or imported.split(".")[0] == top
    if importer.startswith(("pipeline.running", "pipeline.outputs", "pipeline.versions", "pipeline.demo")):
        return imported.split(".")[0] == "pipeline"
    return True  # the CLI sits on top


def test_no_upward_or_sideways_imports():
    bad = []
    for path in _files("pipeline", *PLUGINS):
        mod = _module(path)
        bad += [f"{mod} imports {imp}" for imp in _imports(path) if not _allowed(mod, imp)]
    assert not bad, "layering violations:\n  " + "\n  ".join(bad)


def test_the_walk_sees_imports_inside_functions(tmp_path):
    """The checker itself: an import hidden in a function body is found, and judged."""
    hidden = tmp_path / "hidden.py"
    hidden.write_text("import os\n\ndef f():\n    from pipeline.running.build import run_build\n    return run_build\n")
    assert _imports(hidden) == ["pipeline.running.build", "pipeline.running.build.run_build"]
    assert not _allowed("pipeline.core.io", "pipeline.running.build")
    assert not _allowed("sources.cc", "filters.langid")
    assert not _allowed("pipeline.running.build", "filters.decontam")
    assert _allowed("sources.cc", "pipeline.core.io") and _allowed("pipeline.cli", "filters.classifier")
