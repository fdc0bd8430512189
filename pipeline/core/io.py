"""All file I/O of the pipeline: local paths and object-storage URIs behind one small interface.

`as_path(x)` gives a `pathlib.Path` for a local path (or `file://` URI) and a `RemotePath` for any
other URI (`s3://bucket/key`, `gs://...`, anything fsspec knows). A `RemotePath` has the part of the
pathlib interface the pipeline uses (`/`, `name`, `stem`, `parent`, `exists`, `glob`, `open`,
`read_bytes`, `write_bytes`, ...), so code written against paths runs unchanged on object storage.
Writes go through `atomic_write`, `write_bytes_atomic`, `write_table` and `write_json` below.

Object storage has no atomic rename and no partial objects: an object appears whole when its upload
completes. So a remote write is spooled locally (a temp file), then uploaded in one `PUT`/multipart
upload; a local write goes to a temporary name in the same directory and is renamed. Either way a
reader never sees half a file, and the files that make work count (task records, `_stage.json`,
`manifest.json`) are written last. Local files honour the umask (temporary files are created 0600).

Object storage itself (the S3/GCS/fsspec filesystems, retries while a store throttles, `RemotePath`)
lives in `pipeline.core.remote`; import it from here, which re-exports what callers use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Union

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from pipeline.core.remote import SPOOL_BYTES as SPOOL_BYTES
from pipeline.core.remote import RemotePath as RemotePath
from pipeline.core.remote import StorageError as StorageError
from pipeline.core.remote import _hint, _retrying
from pipeline.core.remote import filesystem as filesystem
from pipeline.core.remote import scheme_of as scheme_of

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def _prefer_jemalloc() -> None:
    """Arrow allocates through jemalloc rather than its default mimalloc, unless the user chose a pool
    (`ARROW_DEFAULT_MEMORY_POOL`). pyarrow's mimalloc asks the kernel for huge pages; where transparent
    huge pages are granted on request (`defrag = madvise`, a common default), the kernel compacts memory
    on those faults, and the first few hundred MB a process allocates cost seconds of system time (the
    mix's shuffle of 5,000 documents: 2.9 s against 1.0 s; dedup on them: 1.1 s of system time against
    0.3). Set here because every process that runs our tasks imports this module first."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_prefer_jemalloc()


def is_remote(spec: Any) -> bool:
    """True for object-storage (or other non-local) URIs; http(s) URLs are inputs, not storage."""
    if isinstance(spec, RemotePath):
        return True
    s = scheme_of(spec) if isinstance(spec, str | os.PathLike) else ""
    return bool(s) and s != "file"


def as_path(spec: str | os.PathLike) -> AnyPath:
    """A local `Path`, or a `RemotePath` for a URI."""
    if isinstance(spec, Path | RemotePath):
        return spec
    s = str(spec)
    sch = scheme_of(s)
    if not sch:
        return Path(s)
    if sch == "file":
        return Path(s[len("file://"):])
    return RemotePath(s)


def join(base: str | os.PathLike, *parts: str) -> str:
    """`base/part/...` as a string, for local paths and URIs alike."""
    p = as_path(base)
    for part in parts:
        p = p / part
    return str(p)



AnyPath = Union[Path, RemotePath]  # noqa: UP007 - a runtime alias used in isinstance-free annotations


def check_location(path: str | os.PathLike) -> None:
    """Fail fast, naming the path and what to set, when a work or output location cannot be used:
    an unreachable endpoint, missing credentials, a missing bucket."""
    p = as_path(path)
    if isinstance(p, Path):
        return
    bucket = p.fs_path.split("/", 1)[0]
    info = _retrying(str(p), "use", lambda: p.fs.get_file_info(bucket))
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"{p}: cannot use: bucket {bucket!r} not found{_hint(str(p))}")


# ------------------------------------------------------------------------------------ local cache


def cache_dir(kind: str = "") -> str:
    """The one local directory the pipeline writes to besides local work/output dirs: downloads of
    remote files that a library must read from a real file (models, tokenizers, git repositories),
    and write spools. `$CORPUSFORGE_CACHE`, else `<tmp>/corpusforge-cache`."""
    root = os.environ.get("CORPUSFORGE_CACHE") or os.path.join(tempfile.gettempdir(), "corpusforge-cache")
    d = os.path.join(root, kind) if kind else root
    os.makedirs(d, exist_ok=True)
    return d


def local_file(path: str | os.PathLike) -> Path:
    """A local file with the content of `path`: the path itself when local, else a cached download
    (keyed by URI, size and mtime, so a changed object is fetched again)."""
    p = as_path(path)
    if isinstance(p, Path):
        return p
    st = p.stat()
    digest = hashlib.sha256(f"{p}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:24]
    dst = Path(cache_dir("files")) / digest / p.name
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dst) as out, p.open("rb") as src:
            shutil.copyfileobj(src, out, 8 << 20)
    return dst


def local_tree(path: str | os.PathLike) -> Path:
    """A local directory with the content of `path` (a prefix on object storage): the path itself
    when local, else a cached download of every object under it."""
    p = as_path(path)
    if isinstance(p, Path):
        return p
    tree = p.tree()
    sig = hashlib.sha256()
    for rel, st in tree.items():
        sig.update(f"{p / rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    dst = Path(cache_dir("trees")) / sig.hexdigest()[:24] / p.name
    done = dst.parent / ".complete"
    if not done.exists():
        for rel in tree:
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target) as out, (p / rel).open("rb") as src:
                shutil.copyfileobj(src, out, 8 << 20)
        done.write_text("")
    return dst


@contextlib.contextmanager
def local_mirror(path: str | os.PathLike) -> Iterator[Path]:
    """A local working directory for code that writes files in place (a WARC archive, streaming
    Parquet writers): the path itself when local; for a URI a local copy of what is there, whose new
    or changed files are uploaded on a clean exit. Names starting with `_` (commit records) go last;
    names starting with `.` (temporary files) never go. Meant for a directory one task owns."""
    p = as_path(path)
    if isinstance(p, Path):
        yield p
        return
    # same last name as the remote directory: code may record it (a WARC archive's partition name)
    local = Path(cache_dir("mirrors")) / hashlib.sha256(str(p).encode()).hexdigest()[:24] / p.name
    local.mkdir(parents=True, exist_ok=True)
    before = {rel: st.st_size for rel, st in p.tree().items()}
    for rel, size in before.items():
        target = local / rel
        if not (target.is_file() and target.stat().st_size == size):
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target) as out, (p / rel).open("rb") as src:
                shutil.copyfileobj(src, out, 8 << 20)
    yield local
    changed = []
    for f in local.rglob("*"):
        rel = f.relative_to(local).as_posix()
        if f.is_file() and not f.name.startswith(".") and before.get(rel) != f.stat().st_size:
            changed.append(rel)
    for rel in sorted(changed, key=lambda r: (posixpath.basename(r).startswith("_"), r)):
        copy_file(local / rel, p / rel)


# ------------------------------------------------------------------------------------ writing


def makedirs(path: str | os.PathLike) -> AnyPath:
    """Create a local directory honouring the umask (object storage needs none); return the path."""
    p = as_path(path)
    if isinstance(p, Path):
        p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str = "utf-8") -> Iterator[IO[Any]]:
    """Write a file so that readers see either nothing or the whole of it.

    Local: a temporary name in the same directory, renamed on success (the file gets the umask's
    permissions); remote: spooled and uploaded as one object. On an exception nothing is left.
    """
    p = as_path(path)
    if isinstance(p, RemotePath):
        f = p.open(mode, encoding=encoding)
        with f:
            yield f
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding})) as f:
            yield f
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    with atomic_write(path) as f:
        f.write(data)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """JSON with sorted keys, so equal content gives equal bytes; written atomically."""
    blob = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_bytes_atomic(blob.encode("utf-8"), path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(as_path(path).read_bytes())


def write_table(table: pa.Table, path: str | os.PathLike) -> None:
    """A zstd Parquet file with no run-dependent metadata (same table, same bytes), written atomically.

    A table with no rows is written with no row group: readers such as Hugging Face `datasets` refuse
    an empty row group.
    """
    with atomic_write(path) as f:
        f.write(parquet_bytes(table))


def write_table_sha256(table: pa.Table, path: str | os.PathLike) -> str:
    """`write_table`, returning the hex sha256 of the bytes written: whoever keys work by a shard's
    content learns its digest here, without reading the file back."""
    data = parquet_bytes(table)
    write_bytes_atomic(data, path)
    return hashlib.sha256(data).hexdigest()


def write_scratch_table(table: pa.Table, path: str | os.PathLike) -> None:
    """An intermediate Parquet file that only this run reads back: neither compressed nor dictionary
    encoded, in row groups of a million rows. Band keys and signatures do not compress; for text (the
    mix's buckets) lz4 with dictionaries cost 4x the CPU to write and 6x to read back (57 MB of
    documents: 0.23 + 0.33 s against 0.09 + 0.06 s) to save a third of bytes that live for one step."""
    sink = pa.BufferOutputStream()
    writer = pq.ParquetWriter(sink, table.schema, compression="none", use_dictionary=False,
                              write_statistics=False)
    if table.num_rows:
        writer.write_table(table, row_group_size=1 << 20)
    writer.close()
    with atomic_write(path) as f:
        f.write(sink.getvalue().to_pybytes())


def parquet_bytes(table: pa.Table, uncompressed: Sequence[str] = ()) -> bytes:
    """The bytes `write_table` writes for `table`; `uncompressed` names columns stored as they are
    (token ids: zstd took half the CPU of writing a mixed shard, for less than half their size)."""
    sink = pa.BufferOutputStream()
    names, plain = table.schema.names, set(uncompressed) & set(table.schema.names)
    compression: Any = {n: "none" if n in plain else "zstd" for n in names} if plain else "zstd"
    level: Any = {n: 3 for n in names if n not in plain} if plain else 3
    writer = pq.ParquetWriter(sink, table.schema, compression=compression, compression_level=level,
                              write_statistics=False, store_schema=True)
    if table.num_rows:
        writer.write_table(table, row_group_size=8192)
    writer.close()
    return sink.getvalue().to_pybytes()


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    p = as_path(path)
    if isinstance(p, RemotePath):
        # one GET of the whole object (shards are bounded), not a HEAD and a ranged GET per column chunk
        return table_from_parquet_bytes(p.read_bytes(), columns)
    if p.is_file():
        # the same table as pq.read_table, which goes through pyarrow.dataset: importing it imports pandas
        # (~0.15 s of CPU per command, ~0.3 s per Ray worker, none of it used)
        with pq.ParquetFile(p) as f:
            return f.read(columns=columns)
    return pq.read_table(p, columns=columns)


def table_from_parquet_bytes(data: bytes, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file's table from its bytes, without pyarrow.dataset (see `read_table`)."""
    with pq.ParquetFile(pa.BufferReader(data)) as f:
        return f.read(columns=columns)


def write_arrow_table(table: pa.Table, path: str | os.PathLike) -> None:
    """An Arrow IPC file (lz4), written atomically: for tables a build keeps for itself and reads back
    by the hundred (a cached part of a manifest's ledgers): opening one costs a tenth of a Parquet file's."""
    import pyarrow.ipc as ipc

    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema, options=ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    write_bytes_atomic(sink.getvalue().to_pybytes(), path)


def read_arrow_table(path: str | os.PathLike) -> pa.Table:
    """A table `write_arrow_table` wrote: memory-mapped locally, one GET remotely."""
    import pyarrow.ipc as ipc

    p = as_path(path)
    source = pa.BufferReader(p.read_bytes()) if isinstance(p, RemotePath) else pa.memory_map(str(p))
    with ipc.open_file(source) as reader:
        return reader.read_all()


def parquet_schema(path: str | os.PathLike) -> pa.Schema:
    p = as_path(path)
    if isinstance(p, RemotePath):
        return pq.read_schema(pa.BufferReader(p.read_bytes()))
    return pq.read_schema(p)


def parquet_num_rows(path: str | os.PathLike) -> int:
    """Rows of a Parquet file, from its footer alone."""
    p = as_path(path)
    if isinstance(p, RemotePath):
        def footer_rows() -> int:
            with p.fs.open_input_file(p.fs_path) as f:
                return pq.read_metadata(f).num_rows

        return _retrying(str(p), "read", footer_rows)
    return pq.read_metadata(p).num_rows


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a file to a local path or a URI: a hard link where both are local and linking works
    (outputs are written by rename, never in place), a server-side copy within one object store."""
    s, d = as_path(src), as_path(dst)
    if isinstance(s, Path) and isinstance(d, Path):
        d.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            d.unlink()
        try:
            os.link(s, d)
            return
        except OSError:
            pass
    if isinstance(s, RemotePath) and isinstance(d, RemotePath) and s.scheme == d.scheme:
        _retrying(str(d), "copy", lambda: s.fs.copy_file(s.fs_path, d.fs_path))
        return
    with s.open("rb") as fin, atomic_write(d) as fout:
        shutil.copyfileobj(fin, fout, 8 << 20)


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a directory or prefix and everything under it; a missing one is fine."""
    p = as_path(path)
    if isinstance(p, Path):
        shutil.rmtree(p, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        _retrying(str(p), "delete", lambda: p.fs.delete_dir_contents(p.fs_path, missing_dir_ok=True))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks: the one content hash for shards, models and inputs."""
    h = hashlib.sha256()
    with as_path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
