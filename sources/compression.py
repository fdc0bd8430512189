"""Opening compressed inputs by file name, with truncation reported instead of silently ignored.

gzip, bz2 and xz raise EOFError on a cut-short file by themselves; zstd's stream reader just stops,
so `ZstdReader` checks that the last frame was complete. Pushshift dumps need a 2 GiB window.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path
from typing import IO

import zstandard

from pipeline.core.io import as_path

ZSTD_MAX_WINDOW = 2**31


class ZstdReader(io.RawIOBase):
    """A readable zstd stream over any number of frames; EOFError if the input ends mid-frame."""

    def __init__(self, raw: IO[bytes], chunk_size: int = 1 << 20) -> None:
        self._raw = raw
        self._chunk = chunk_size
        self._dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._obj = self._dctx.decompressobj()
        self._buf = b""
        self._in_frame = False
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf and not self._eof:
            data = self._raw.read(self._chunk)
            if not data:
                self._eof = True
                if self._in_frame:
                    raise EOFError("zstd stream ends in the middle of a frame (truncated file)")
                break
            while data:
                self._in_frame = True
                self._buf += self._obj.decompress(data)
                if self._obj.eof:
                    data = self._obj.unused_data
                    self._obj = self._dctx.decompressobj()
                    self._in_frame = False
                else:
                    data = b""
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_binary(path: Path | str) -> IO[bytes]:
    """Decompressing reader chosen by suffix: .gz, .bz2, .xz, .zst, else the plain file."""
    path = as_path(path)
    raw = path.open("rb")
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=raw)
    if suffix == ".bz2":
        return bz2.BZ2File(raw)
    if suffix == ".xz":
        return lzma.LZMAFile(raw)
    if suffix == ".zst":
        return io.BufferedReader(ZstdReader(raw), buffer_size=1 << 20)
    return raw


def open_text(path: Path | str) -> IO[str]:
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace", newline="\n")
