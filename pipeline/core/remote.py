"""Object storage: the filesystem behind every URI, retries while a store throttles, and `RemotePath`.

Split out of `pipeline.core.io` so that module keeps to local paths, the local cache, atomic writes
and tables. `pipeline.core.io` is still the module everyone imports: it re-exports what callers use
from here (`RemotePath`, `StorageError`, `scheme_of`, `filesystem`, ...). This module imports
`pipeline.core.io` only inside a function (the write spool's directory), never at import time.

Why pyarrow.fs first and fsspec second: pyarrow is already a dependency, its S3 and GCS clients are
C++ (multipart uploads, retries with backoff on throttling through `AwsStandardS3RetryStrategy`), and
Parquet reads and writes go through it anyway; fsspec (already installed) covers every other scheme
(Azure, HDFS, memory, ...) wrapped as a pyarrow filesystem, so the rest of the code sees one interface.

Credentials and endpoints come from the standard environment (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, or an instance role), never
from a config, so they never enter a manifest.
"""

from __future__ import annotations

import fnmatch
import io as _io
import os
import posixpath
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
from pyarrow import fs as pafs

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
SPOOL_BYTES = 64 << 20


class StorageError(OSError):
    """A path that cannot be read or written; the message names it and says what to check."""


def scheme_of(spec: str | os.PathLike) -> str:
    m = _SCHEME_RE.match(str(spec))
    return m.group(1).lower() if m else ""


# ------------------------------------------------------------------------------------ filesystems

_FS_CACHE: dict[tuple[str, str], pafs.FileSystem] = {}
_FS_LOCK = threading.Lock()


def _s3_filesystem() -> pafs.FileSystem:
    kwargs: dict[str, Any] = {
        # standard retry mode: exponential backoff with jitter on throttling (SlowDown, 503) and
        # transient network errors
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=int(os.environ.get("CORPUSFORGE_S3_RETRIES", "6"))),
        "connect_timeout": 10,
        "request_timeout": 120,
        # an object smaller than one part (most shards, every record) goes up in one PutObject instead
        # of create + upload part + complete: a third of the requests
        "allow_delayed_open": True,
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        sch, sep, rest = endpoint.partition("://")
        kwargs["endpoint_override"] = rest.rstrip("/") if sep else sch
        kwargs["scheme"] = sch if sep else "https"
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def _fsspec_filesystem(scheme: str) -> pafs.FileSystem:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is installed with the lock
        raise StorageError(f"{scheme}://: no filesystem for this scheme (install fsspec)") from exc
    try:
        return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(scheme)))
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{scheme}://: no filesystem for this scheme: {exc}") from None


def filesystem(scheme: str) -> pafs.FileSystem:
    """One filesystem object per scheme and process, built from the environment."""
    key = (scheme, os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "")
    with _FS_LOCK:
        if key not in _FS_CACHE:
            if scheme in ("s3", "s3a"):
                _FS_CACHE[key] = _s3_filesystem()
            elif scheme in ("gs", "gcs"):
                _FS_CACHE[key] = pafs.GcsFileSystem()
            else:
                _FS_CACHE[key] = _fsspec_filesystem(scheme)
        return _FS_CACHE[key]


def _hint(uri: str) -> str:
    if scheme_of(uri) in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        return (f" (endpoint {endpoint}; check AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                "or the instance role, and that the bucket exists)")
    return ""


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s*\(Request ID: [^)]*\)", "", msg)


# What a store says when it wants us to slow down or try again. The SDK retries most of these itself;
# some calls (completing a multipart upload) it does not, so whole-object operations retry here too.
_RETRY_RE = re.compile(r"SLOW_DOWN|SlowDown|Throttl|SERVICE_UNAVAILABLE|Service Unavailable|\b503\b|"
                       r"INTERNAL_FAILURE|InternalError|RequestTimeout", re.I)


def _retrying(uri: str, action: str, fn):
    """`fn()`, retried with exponential backoff and jitter while the store throttles; its errors as one
    `StorageError` line naming `uri`. Only for idempotent whole-object operations."""
    attempts = max(1, int(os.environ.get("CORPUSFORGE_S3_RETRIES", "6")))
    for attempt in range(attempts):
        try:
            return fn()
        except (StorageError, FileNotFoundError):
            raise
        except (OSError, pa.ArrowException) as exc:
            if attempt + 1 < attempts and _RETRY_RE.search(str(exc)):
                time.sleep(min(20.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2))
                continue
            raise StorageError(f"{uri}: cannot {action}: {_short(exc)}{_hint(uri)}") from None
    raise AssertionError("unreachable")  # pragma: no cover


class _Stat:
    def __init__(self, size: int, mtime_ns: int) -> None:
        self.st_size = size
        self.st_mtime_ns = mtime_ns
        self.st_mtime = mtime_ns / 1e9


class RemotePath:
    """A file or prefix on object storage, with the pathlib methods the pipeline uses."""

    __slots__ = ("_uri",)

    def __init__(self, uri: str) -> None:
        sch = scheme_of(uri)
        rest = uri[len(sch) + 3:]
        rest = re.sub(r"/+", "/", rest).rstrip("/")
        self._uri = f"{sch}://{rest}"

    # --- pure path algebra
    @property
    def scheme(self) -> str:
        return scheme_of(self._uri)

    @property
    def fs_path(self) -> str:
        """The path as the scheme's filesystem names it (`bucket/key`)."""
        return self._uri[len(self.scheme) + 3:]

    @property
    def fs(self) -> pafs.FileSystem:
        return filesystem(self.scheme)

    def __truediv__(self, other: str | os.PathLike) -> RemotePath:
        other = str(other)
        if scheme_of(other):
            return RemotePath(other)
        return RemotePath(posixpath.join(self._uri, other))

    def __str__(self) -> str:
        return self._uri

    def __repr__(self) -> str:
        return f"RemotePath({self._uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other._uri == self._uri

    def __hash__(self) -> int:
        return hash(self._uri)

    def __lt__(self, other: RemotePath) -> bool:
        return self._uri < str(other)

    @property
    def name(self) -> str:
        return posixpath.basename(self.fs_path)

    @property
    def stem(self) -> str:
        name = self.name
        i = name.rfind(".")
        return name[:i] if i > 0 else name

    @property
    def suffix(self) -> str:
        name = self.name
        i = name.rfind(".")
        return name[i:] if i > 0 else ""

    @property
    def suffixes(self) -> list[str]:
        name = self.name.lstrip(".")
        return ["." + part for part in name.split(".")[1:]]

    @property
    def parts(self) -> tuple[str, ...]:
        return (f"{self.scheme}://", *self.fs_path.split("/"))

    @property
    def parent(self) -> RemotePath:
        head = posixpath.dirname(self.fs_path)
        return RemotePath(f"{self.scheme}://{head}") if head else self

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def with_suffix(self, suffix: str) -> RemotePath:
        return self.parent / (self.stem + suffix)

    def relative_to(self, other: RemotePath | str) -> str:
        base = str(other).rstrip("/") + "/"
        if not self._uri.startswith(base):
            raise ValueError(f"{self} is not under {other}")
        return self._uri[len(base):]

    def resolve(self) -> RemotePath:
        return self

    def absolute(self) -> RemotePath:
        return self

    # --- queries
    def _info(self) -> pafs.FileInfo:
        return _retrying(self._uri, "stat", lambda: self.fs.get_file_info(self.fs_path))

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def stat(self) -> _Stat:
        info = self._info()
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"{self}: not found")
        return _Stat(info.size or 0, info.mtime_ns or 0)

    def _files(self, recursive: bool) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.fs_path, recursive=recursive, allow_not_found=True)
        try:
            return _retrying(self._uri, "list", lambda: self.fs.get_file_info(selector))
        except FileNotFoundError:
            return []

    def iterdir(self) -> Iterator[RemotePath]:
        for info in sorted(self._files(False), key=lambda i: i.path):
            yield RemotePath(f"{self.scheme}://{info.path}")

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Files whose path relative to this one matches `pattern`; `**/` recurses."""
        recursive = "**" in pattern or "/" in pattern
        base = self.fs_path.rstrip("/") + "/"
        pat = pattern[3:] if pattern.startswith("**/") else pattern
        for info in sorted(self._files(recursive), key=lambda i: i.path):
            if info.type != pafs.FileType.File:
                continue  # prefixes are implied by the objects under them
            rel = info.path[len(base):] if info.path.startswith(base) else info.path
            name = rel if "/" in pat else posixpath.basename(rel)
            if fnmatch.fnmatchcase(name, pat) or (pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pat)):
                yield RemotePath(f"{self.scheme}://{info.path}")

    def rglob(self, pattern: str) -> Iterator[RemotePath]:
        return self.glob("**/" + pattern)

    def tree(self) -> dict[str, _Stat]:
        """Every object under this prefix, by relative path, with its size and mtime: one listing,
        no request per object."""
        base = self.fs_path.rstrip("/") + "/"
        return {i.path[len(base):]: _Stat(i.size or 0, i.mtime_ns or 0)
                for i in sorted(self._files(True), key=lambda i: i.path)
                if i.type == pafs.FileType.File and i.path.startswith(base)}

    # --- reading
    def open(self, mode: str = "rb", encoding: str | None = None, **_: Any) -> IO[Any]:
        if "w" in mode or "a" in mode or "x" in mode:
            if "a" in mode:
                raise StorageError(f"{self}: object storage cannot append")
            return _RemoteWriter(self, text="b" not in mode, encoding=encoding or "utf-8")  # type: ignore[return-value]
        raw = _retrying(self._uri, "open", lambda: self.fs.open_input_file(self.fs_path))
        if "b" in mode:
            return raw  # type: ignore[return-value]
        return _io.TextIOWrapper(raw, encoding=encoding or "utf-8")  # type: ignore[arg-type]

    def read_bytes(self) -> bytes:
        def read() -> bytes:
            with self.fs.open_input_stream(self.fs_path, compression=None) as f:
                return f.read()

        return _retrying(self._uri, "read", read)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    # --- writing (each whole-object, so never partial)
    def write_bytes(self, data: bytes) -> int:
        _upload(_io.BytesIO(data), self)
        return len(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> int:
        return self.write_bytes(text.encode(encoding))

    def mkdir(self, parents: bool = False, exist_ok: bool = False, mode: int = 0o777) -> None:
        """Object storage has no directories: a prefix exists once an object is under it."""

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            _retrying(self._uri, "delete", lambda: self.fs.delete_file(self.fs_path))
        except FileNotFoundError:
            if not missing_ok:
                raise


class _RemoteWriter(_io.RawIOBase):
    """Spools writes to a local temp file, uploads on a clean close, discards on an exception."""

    def __init__(self, path: RemotePath, text: bool, encoding: str) -> None:
        super().__init__()
        self._path = path
        from pipeline.core.io import cache_dir  # io imports this module: no cycle at import time

        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, dir=cache_dir("spool"))
        self._text, self._encoding = text, encoding
        self._failed = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._text and isinstance(data, str):
            data = data.encode(self._encoding)
        return self._spool.write(data)

    def __exit__(self, exc_type, exc, tb):
        self._failed = exc_type is not None
        return super().__exit__(exc_type, exc, tb)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._failed:
                self._spool.seek(0)
                _upload(self._spool, self._path)
        finally:
            self._spool.close()
            super().close()


def _upload(fileobj: IO[bytes], dst: RemotePath) -> None:
    """One whole object from a seekable file; retried from its start while the store throttles."""
    def put() -> None:
        fileobj.seek(0)
        with dst.fs.open_output_stream(dst.fs_path, compression=None, metadata={}) as out:
            shutil.copyfileobj(fileobj, out, 8 << 20)

    _retrying(str(dst), "write", put)
