"""pipeline/core/shardcache.py: work kept by content, here the tables a build keeps for itself."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from pipeline.core.shardcache import ShardCache


@pytest.mark.parametrize("name", ["rows.arrow", "rows.parquet"])
def test_a_kept_table_is_computed_once_and_read_back_equal(tmp_path, name):
    table = pa.table({"id": ["a", "b", "é"], "n": pa.array([1, 2, 3], pa.int64()), "blob": [b"x" * 1000, b"", None]})
    cache = ShardCache(tmp_path / "cache")
    entry = cache.entry("0" * 64, kind="test")
    calls = []

    def compute() -> pa.Table:
        calls.append(1)
        return table

    assert cache.table(entry, name, compute).equals(table)
    assert cache.table(entry, name, compute).equals(table)  # from the entry: not computed again
    assert calls == [1]
    if name.endswith(".arrow"):  # an Arrow IPC file, compressed
        with ipc.open_file(pa.memory_map(str(entry / name))) as reader:
            assert reader.read_all().equals(table)
    assert cache.table(None, name, compute).equals(table) and calls == [1, 1]  # no entry: computed, not kept
