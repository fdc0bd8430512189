"""Input fingerprints (sha256 of content), cached by (path, size, mtime) so rebuilds do not rehash.

Remote inputs are hashed by content too (streamed), so an input's fingerprint, and with it every key
and the version, does not depend on where the input lives or how its path was spelled.
"""

from __future__ import annotations

import os
from typing import Any

from pipeline.core.extractor import file_fingerprint
from pipeline.core.io import AnyPath, as_path, read_json, write_json


class FingerprintCache:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path: AnyPath = as_path(path)
        self._data: dict[str, list] = {}
        try:
            if self.path.exists():
                self._data = read_json(self.path)
        except ValueError:
            self._data = {}
        self._dirty = False

    def of(self, file: str | os.PathLike) -> str:
        """The file's fingerprint, hashed only when neither its path nor (locally) its inode is known
        with this size and mtime: a moved or renamed input, or a hard link to one, is not read again."""
        fp = self.cached(file)
        if fp is None:
            fp = file_fingerprint(as_path(file).resolve())
            self.remember(file, fp)
        return fp

    def cached(self, file: str | os.PathLike) -> str | None:
        """The fingerprint known for the file (by path or inode, with its size and mtime), or None;
        never reads the file."""
        st, keys = self._stat(file)
        for key in keys:
            cached = self._data.get(key)
            if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
                return cached[2]
        return None

    def remember(self, file: str | os.PathLike, fingerprint: str) -> None:
        """Record a fingerprint computed elsewhere (a task that read the file) for the file as it is now."""
        st, keys = self._stat(file)
        for key in keys:
            if self._data.get(key) != [st.st_size, st.st_mtime_ns, fingerprint]:
                self._data[key] = [st.st_size, st.st_mtime_ns, fingerprint]
                self._dirty = True

    @staticmethod
    def _stat(file: str | os.PathLike) -> tuple[Any, list[str]]:
        p = as_path(file).resolve()
        st = p.stat()
        keys = [str(p)]
        if getattr(st, "st_ino", 0):
            keys.append(f"inode:{st.st_dev}:{st.st_ino}")
        return st, keys

    def save(self) -> None:
        if self._dirty:
            write_json(self._data, self.path)
            self._dirty = False
