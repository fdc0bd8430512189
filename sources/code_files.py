"""Listing the files of a code root safely: a directory, a git repository (tracked files at HEAD) or an
archive (.tar(.gz|.bz2|.xz)/.tgz or .zip), as `Entry`s in path order whose bytes are read lazily.

A directory walk never follows a symlink out of the root; git symlinks and submodules are not
followed, and git tree entries whose path leaves the root (an entry named `..`) are rejected as
archive members are; archive members with absolute paths, `..`, links or device entries are rejected; and
archive expansion is bounded in member count and total bytes (zip bombs are rejected, counted).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from zlib import error as zlib_error

from sources.code_rules import is_license_file, listing_rejection

if TYPE_CHECKING:
    from sources.code import CodeConfig

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")


@dataclass
class Entry:
    """One file of a root: its listing facts, and how to read its bytes (at most limit + 1 of them)."""

    path: str  # POSIX path relative to the root
    size: int
    reject: str | None = None  # a reason decided from the listing alone
    data: bytes | None = None
    loader: Callable[[], bytes] | None = None  # reads lazily, so a large repository is never all in memory
    error: str | None = None

    def load(self) -> bytes:
        if self.data is None and self.loader is not None:
            self.data, self.loader = self.loader(), None
        return self.data or b""


class FileLister:
    """The entries of one root, with the limits of a `CodeConfig` (file size, archive members and bytes)."""

    def __init__(self, config: CodeConfig) -> None:
        self.config = config

    def entries(self, root: Path, kind: str) -> Iterator[Entry]:
        """`kind` is "archive", "git" or "dir" (see `root_kind`)."""
        if kind == "archive":
            return self._archive_entries(root)
        if kind == "git":
            return self._git_entries(root)
        return self._dir_entries(root)

    def _dir_entries(self, root: Path) -> Iterator[Entry]:
        real_root = os.path.realpath(root)
        limit = self.config.max_file_bytes
        found: list[tuple[str, str]] = []  # (relative posix path, absolute path)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for d in list(dirnames):
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    found.append((_rel(full, root), full))  # reported below, never descended
            for name in filenames:
                full = os.path.join(dirpath, name)
                found.append((_rel(full, root), full))
        for rel, full in sorted(found):
            if os.path.islink(full):
                target = os.path.realpath(full)
                if os.path.commonpath([real_root, target]) != real_root:
                    yield Entry(rel, 0, "code:symlink-escape")
                    continue
                if not os.path.isfile(target):
                    yield Entry(rel, 0, "code:symlink-dir" if os.path.isdir(target) else "code:broken-symlink")
                    continue
            try:
                size = os.path.getsize(full)
            except OSError:
                yield Entry(rel, 0, "code:unreadable")
                continue
            reject = listing_rejection(rel, self.config.vendored_dirs)
            if not os.path.isfile(full):
                reject = "code:special-file"
            entry = Entry(rel, size, reject)
            if _needs_bytes(rel, reject) and os.path.isfile(full):
                if size > limit:
                    entry.reject = entry.reject or "code:too-large"
                else:
                    entry.loader = _file_loader(full, limit)
            yield entry

    def _git_entries(self, root: Path) -> Iterator[Entry]:
        """Tracked files at HEAD via `git ls-tree` and one `git cat-file --batch` process."""
        try:
            listing = git(root, "ls-tree", "-r", "-l", "-z", "--full-tree", "HEAD")
        except subprocess.CalledProcessError as exc:
            yield Entry("!HEAD", 0, "code:git-no-head", error=exc.stderr.decode(errors="replace").strip())
            return
        rows = []
        for record in listing.split(b"\0"):
            if not record:
                continue
            info, _, path_b = record.partition(b"\t")
            mode, otype, sha, size = info.split(None, 3)
            path = path_b.decode("utf-8", "surrogateescape")
            rows.append((path, mode.decode(), otype.decode(), sha.decode(), size.strip().decode()))
        rows.sort()
        limit = self.config.max_file_bytes
        wanted: list[Entry] = []
        shas: list[str] = []
        out: list[Entry] = []
        for path, mode, otype, sha, size in rows:
            if _unsafe_member(path):  # a hostile tree entry named `..` (git fsck refuses it, mktree does not)
                out.append(Entry(path, 0, "code:unsafe-path"))
                continue
            if mode == "120000":
                out.append(Entry(path, 0, "code:symlink"))
                continue
            if otype == "commit":
                out.append(Entry(path, 0, "code:submodule"))
                continue
            n = int(size) if size.isdigit() else 0
            reject = listing_rejection(path, self.config.vendored_dirs)
            entry = Entry(path, n, reject)
            if _needs_bytes(path, reject):
                if n > limit:
                    entry.reject = entry.reject or "code:too-large"
                elif is_license_file(path):
                    entry.data = git(root, "cat-file", "blob", sha, check=False)[: limit + 1]  # read first
                else:
                    wanted.append(entry)
                    shas.append(sha)
            out.append(entry)
        if shas:
            stream = _BlobStream(root, shas)
            for i, entry in enumerate(wanted):
                entry.loader = functools.partial(stream.get, i)
        yield from out

    def _archive_entries(self, path: Path) -> Iterator[Entry]:
        kind = archive_kind(path)
        try:
            if kind == "zip":
                yield from self._zip_entries(path)
            else:
                yield from self._tar_entries(path)
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
            yield Entry(f"!{path.name}", 0, "code:corrupt-archive", error=f"{path}: {exc}")

    def _bounded(self, count: int, total: int) -> str | None:
        if count > self.config.max_archive_members:
            return "code:archive-member-limit"
        if total > self.config.max_archive_bytes:
            return "code:archive-size-limit"
        return None

    def _zip_entries(self, path: Path) -> Iterator[Entry]:
        limit = self.config.max_file_bytes
        total = 0
        with zipfile.ZipFile(path) as zf:
            infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
            for count, info in enumerate(infos, 1):
                name = info.filename
                reject = _unsafe_member(name) or self._bounded(count, total)
                if reject is None and (info.external_attr >> 16) & 0o170000 == 0o120000:
                    reject = "code:symlink"
                rel = name if reject == "code:unsafe-path" else _clean_member(name)
                if reject is None:
                    reject = listing_rejection(rel, self.config.vendored_dirs)
                entry = Entry(rel, info.file_size, reject)
                if _needs_bytes(rel, reject) and not (reject or "").startswith("code:archive"):
                    if info.file_size > limit:
                        entry.reject = entry.reject or "code:too-large"
                    else:
                        try:
                            with zf.open(info) as f:
                                entry.data = f.read(limit + 1)  # the declared size may lie
                        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                            entry.reject, entry.error = entry.reject or "code:corrupt-member", str(exc)
                        total += len(entry.data or b"")
                        if len(entry.data or b"") > limit:
                            entry.reject, entry.data = entry.reject or "code:zip-bomb", None
                yield entry

    def _tar_entries(self, path: Path) -> Iterator[Entry]:
        """A tar is read as a stream (once): the bytes of wanted members are held, bounded by
        max_archive_bytes; a cut or corrupt archive keeps the members read before the damage."""
        limit = self.config.max_file_bytes
        total = 0
        entries: list[Entry] = []
        try:
            with tarfile.open(path, "r:*") as tf:
                for count, member in enumerate(tf, 1):
                    if member.isdir():
                        continue
                    bound = self._bounded(count, total)
                    if bound:
                        entries.append(Entry(f"!{path.name}:{count}", 0, bound, error=f"{path}: member {count}"))
                        break
                    entries.append(self._tar_entry(tf, member, limit))
                    total += len(entries[-1].data or b"")
        except (tarfile.TarError, OSError, EOFError, zlib_error) as exc:
            entries.append(Entry(f"!{path.name}", 0, "code:corrupt-archive", error=f"{path}: {exc}"))
        yield from sorted(entries, key=lambda e: e.path)

    def _tar_entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> Entry:
        name = member.name
        reject = _unsafe_member(name)
        rel = name if reject else _clean_member(name)
        if reject is None:
            if member.issym() or member.islnk():
                reject = "code:symlink"
            elif not member.isfile():
                reject = "code:special-file"
            else:
                reject = listing_rejection(rel, self.config.vendored_dirs)
        entry = Entry(rel, member.size, reject)
        if _needs_bytes(rel, reject) and member.isfile():
            if member.size > limit:
                entry.reject = entry.reject or "code:too-large"
            else:
                f = tf.extractfile(member)
                entry.data = f.read(limit + 1) if f is not None else b""
        return entry


def archive_kind(path: Path) -> str | None:
    name = path.name.lower()
    if not path.is_file():
        return None
    if name.endswith(".zip"):
        return "zip"
    return "tar" if name.endswith(ARCHIVE_SUFFIXES) else None


def root_name(root: Path) -> str:
    name = root.resolve().name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_git_repo(root: Path) -> bool:
    return (root / ".git").exists()


def root_kind(root: Path) -> str:
    """How a root's files are listed: "archive", "git" or "dir"."""
    return "archive" if root.is_file() else ("git" if is_git_repo(root) else "dir")


def _needs_bytes(path: str, reject: str | None) -> bool:
    return reject is None


def _rel(full: str, root: Path) -> str:
    return PurePosixPath(*Path(os.path.relpath(full, root)).parts).as_posix()


def _unsafe_member(name: str) -> str | None:
    """Archive member names that could write or read outside the root."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in norm.split("/"):
        return "code:unsafe-path"
    return None


def _clean_member(name: str) -> str:
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def git(root: Path, *args: str, check: bool = True) -> bytes:
    """The stdout of `git -C root args` (b"" on failure, or CalledProcessError with `check`)."""
    cmd = ["git", "-c", f"safe.directory={Path(root).resolve()}", "-C", str(root), *args]
    res = subprocess.run(cmd, capture_output=True, check=False)
    if check and res.returncode != 0:
        raise subprocess.CalledProcessError(res.returncode, cmd, res.stdout, res.stderr)
    return res.stdout if res.returncode == 0 else b""


def _file_loader(full: str, limit: int) -> Callable[[], bytes]:
    def load() -> bytes:
        with open(full, "rb") as f:
            return f.read(limit + 1)

    return load


class _BlobStream:
    """Blob contents from one `git cat-file --batch`, read in request order (earlier ones may be skipped)."""

    def __init__(self, root: Path, shas: list[str]) -> None:
        self.shas = shas
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.next_index = 0

    def _start(self) -> subprocess.Popen[bytes]:
        cmd = ["git", "-c", f"safe.directory={Path(self.root).resolve()}", "-C", str(self.root), "cat-file", "--batch"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stdin = proc.stdin
        assert stdin is not None

        def feed() -> None:
            try:
                stdin.write("".join(s + "\n" for s in self.shas).encode())
            except OSError:
                pass
            finally:
                stdin.close()

        threading.Thread(target=feed, daemon=True).start()
        return proc

    def _read_one(self) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        header = self.proc.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            return b""
        data = self.proc.stdout.read(int(header[2]))
        self.proc.stdout.read(1)  # the newline after each object
        return data

    def get(self, index: int) -> bytes:
        if index < self.next_index:
            raise RuntimeError(f"git blob {index} requested after {self.next_index - 1}: out of order")
        if self.proc is None:
            self.proc = self._start()
        while self.next_index < index:
            self._read_one()
            self.next_index += 1
        self.next_index += 1
        data = self._read_one()
        if self.next_index == len(self.shas):
            self.close()
        return data

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __del__(self) -> None:
        self.close()
