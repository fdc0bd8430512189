"""One I/O layer for local paths and object storage: a real S3 server on 127.0.0.1 (moto)."""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pytest

from pipeline.core import io
from pipeline.core.shards import list_shards


def _roundtrip(base) -> None:
    table = pa.table({"id": ["a/1", "a/2"], "text": ["x", "y"]})
    io.write_table(table, io.as_path(base) / "d" / "s1.parquet")
    io.write_table(table.slice(0, 0), io.as_path(base) / "d" / "s0.parquet")
    io.write_json({"b": 1, "a": [1, 2]}, io.join(base, "d", "_meta.json"))
    d = io.as_path(base) / "d"
    assert [p.name for p in list_shards(d)] == ["s0.parquet", "s1.parquet"]
    assert io.read_table(d / "s1.parquet").equals(table)
    assert io.read_table(d / "s0.parquet").num_rows == 0
    assert io.read_json(d / "_meta.json") == {"a": [1, 2], "b": 1}
    assert (d / "_meta.json").read_bytes().startswith(b'{\n  "a"')
    assert io.sha256_file(d / "s1.parquet") == __import__("hashlib").sha256(io.parquet_bytes(table)).hexdigest()


def test_local_and_s3_hold_the_same_bytes(tmp_path, s3_bucket):
    _roundtrip(tmp_path)
    _roundtrip(s3_bucket + "/run")
    for name in ("s0.parquet", "s1.parquet", "_meta.json"):
        assert (tmp_path / "d" / name).read_bytes() == io.as_path(f"{s3_bucket}/run/d/{name}").read_bytes()


def test_remote_path_algebra_and_listing(s3_bucket):
    p = io.as_path(s3_bucket) / "a" / "b.parquet"
    assert isinstance(p, io.RemotePath)
    assert (p.name, p.stem, p.suffix, str(p.parent)) == ("b.parquet", "b", ".parquet", f"{s3_bucket}/a")
    assert not p.exists()
    p.write_bytes(b"x")
    (io.as_path(s3_bucket) / "a" / "c" / "d.txt").write_bytes(b"yy")
    assert p.is_file() and p.parent.is_dir() and p.stat().st_size == 1
    assert [q.name for q in (io.as_path(s3_bucket) / "a").glob("*.parquet")] == ["b.parquet"]
    assert [q.relative_to(io.as_path(s3_bucket) / "a") for q in (io.as_path(s3_bucket) / "a").rglob("*")] == [
        "b.parquet", "c/d.txt"]
    tree = (io.as_path(s3_bucket) / "a").tree()
    assert {rel: st.st_size for rel, st in tree.items()} == {"b.parquet": 1, "c/d.txt": 2}
    io.remove_tree(io.as_path(s3_bucket) / "a")
    assert not p.exists()


def test_a_failed_write_leaves_nothing(tmp_path, s3_bucket):
    for base in (str(tmp_path), s3_bucket):
        target = io.as_path(base) / "x.bin"
        with pytest.raises(RuntimeError):
            with io.atomic_write(target) as f:
                f.write(b"half")
                raise RuntimeError("killed")
        assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_local_files_honour_the_umask(tmp_path):
    """Written in a fresh process whose umask is 022, as a shared machine's usually is: 0644, not 0600."""
    import subprocess
    import sys

    code = ("import os; os.umask(0o022); from pipeline.core import io; import pyarrow as pa; "
            f"io.write_json({{}}, {str(tmp_path / 'd' / 'f.json')!r}); "
            f"io.write_table(pa.table({{'a': [1]}}), {str(tmp_path / 'd' / 's.parquet')!r}); "
            f"io.makedirs({str(tmp_path / 'e' / 'f')!r})")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert stat.S_IMODE((tmp_path / "d" / "f.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d" / "s.parquet").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "e" / "f").stat().st_mode) == 0o755


def test_copy_and_local_file(tmp_path, s3_bucket):
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights" * 1000)
    remote = io.as_path(s3_bucket) / "models" / "model.bin"
    io.copy_file(src, remote)
    io.copy_file(remote, io.as_path(s3_bucket) / "copy" / "model.bin")
    local = io.local_file(io.as_path(s3_bucket) / "copy" / "model.bin")
    assert local.read_bytes() == src.read_bytes()
    assert str(local).startswith(io.cache_dir())


def test_storage_errors_are_one_line_and_name_the_path(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env["AWS_ENDPOINT_URL"])
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(k, s3_env[k])
    with pytest.raises(io.StorageError) as err:
        io.write_json({}, "s3://no-such-bucket-here/work/x.json")
    msg = str(err.value)
    assert "\n" not in msg and "s3://no-such-bucket-here/work/x.json" in msg and "bucket" in msg
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("CORPUSFORGE_S3_RETRIES", "1")
    with pytest.raises(io.StorageError) as err:
        io.as_path("s3://bucket/work/_stage.json").exists()
    assert "127.0.0.1:9" in str(err.value) and "AWS_ENDPOINT_URL" in str(err.value)


@pytest.mark.parametrize("chosen", ["", "system"])
def test_arrow_allocates_through_jemalloc_unless_the_user_chose_a_pool(chosen):
    """Importing io switches Arrow's default pool (mimalloc's huge-page faults cost seconds of system
    time on first use); a pool chosen through ARROW_DEFAULT_MEMORY_POOL is left alone."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    code = "import pyarrow as pa; import pipeline.core.io; print(pa.default_memory_pool().backend_name)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (chosen or "jemalloc")


def test_parquet_bytes_leaves_the_named_columns_uncompressed():
    import pyarrow.parquet as pq

    from pipeline.core.io import parquet_bytes

    table = pa.table({"text": ["a" * 500] * 50, "_tokens": [bytes(400)] * 50})
    data = parquet_bytes(table, uncompressed=["_tokens", "absent"])
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0)
    assert [meta.column(i).compression for i in range(2)] == ["ZSTD", "UNCOMPRESSED"]
    assert pq.read_table(pa.BufferReader(data)).equals(table)
    assert parquet_bytes(table, uncompressed=["absent"]) == parquet_bytes(table)  # none present: the default
