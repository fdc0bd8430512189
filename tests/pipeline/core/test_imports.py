"""pipeline/core/imports.py: optional modules kept out of a command's process, still importable after."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.core.imports import unimportable


def test_unimportable_fails_the_import_inside_the_block_only(tmp_path, monkeypatch) -> None:
    (tmp_path / "_cf_optional.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with unimportable("_cf_optional"):
        with pytest.raises(ModuleNotFoundError):
            __import__("_cf_optional")
    assert __import__("_cf_optional").VALUE == 1  # importable as ever after the block
    monkeypatch.delitem(sys.modules, "_cf_optional")


def test_the_extract_path_imports_neither_pandas_nor_fsspec() -> None:
    """pyarrow's pandas check and warcio's fsspec import, ~0.2 s of CPU per command (see the module)."""
    code = """
import sys
import pyarrow as pa
from pipeline.core.accounting import count_shard
from pipeline.core.schema import DOC_SCHEMA, Doc, docs_to_table, with_rejection
import sources.cc
table = docs_to_table([Doc("cc/1", "cc", "text", None, {})])
count_shard(None, table, with_rejection(table, "s", ["cc:x"]))
pa.array(["a"], pa.string())
assert "pandas" not in sys.modules and "fsspec" not in sys.modules, [m for m in sys.modules if m in ("pandas", "fsspec")]
import pandas, fsspec
assert table.to_pandas().shape == (1, 5)
"""
    subprocess.run([sys.executable, "-c", code], check=True)
