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
pa.array(["a"]), pa.table({"n": [1, 2]})  # lists without a type: what makes pyarrow look for pandas
assert "pandas" not in sys.modules and "fsspec" not in sys.modules, [m for m in sys.modules if m in ("pandas", "fsspec")]
import pandas, fsspec
assert table.to_pandas().shape == (1, 5)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reading_a_shard_from_its_bytes_imports_neither_pyarrow_dataset_nor_pandas(tmp_path) -> None:
    """A shard task's first read in a Ray worker: pq.read_table would import pyarrow.dataset and pandas
    (~0.3 s of CPU per worker process); the table must be the one pq.read_table gives."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.core.io import write_table

    path = tmp_path / "s.parquet"
    write_table(pa.table({"id": ["a", "b"], "n": [1, 2]}).replace_schema_metadata({"k": "v"}), path)
    code = f"""
import sys
from pipeline.core.shards import read_shard_bytes, table_from_bytes
got = table_from_bytes(read_shard_bytes({str(path)!r}), "s.parquet")
assert "pyarrow.dataset" not in sys.modules and "pandas" not in sys.modules, "imported"
sys.stdout.buffer.write(got.schema.serialize().to_pybytes())
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True).stdout
    assert pa.ipc.read_schema(pa.py_buffer(out)) == pq.read_table(path).schema
    from pipeline.core.shards import read_shard_bytes, table_from_bytes

    got = table_from_bytes(read_shard_bytes(path), path)
    assert got.equals(pq.read_table(path)) and got.schema.metadata == pq.read_table(path).schema.metadata
