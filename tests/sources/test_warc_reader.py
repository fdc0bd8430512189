"""sources/warc_reader.py: the byte level under sources/warc.py (the records are tested in test_warc.py)."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import pytest

from sources.warc_reader import (
    _GZIP_RE,
    _WARC_START_RE,
    MAX_HEADER_BYTES,
    SCAN_CARRY_BYTES,
    _BoundedReader,
    _CorruptInput,
    _GzipMember,
    _Source,
)


class ShortReads(io.RawIOBase):
    """A non-seekable stream returning at most 7 bytes a read."""

    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.buf.read(7 if n is None or n < 0 else min(n, 7))


def test_source_unread_rewind_and_scan() -> None:
    data = b"junk " * 20 + b"\nWARC/1.0\r\nrest"
    src = _Source(io.BytesIO(data))
    head = src.read(5)
    src.unread(head)
    assert src.tell() == 0 and src.read(5) == b"junk "
    src.mark()
    src.read(12)
    src.rewind_to(5)
    assert src.tell() == 5 and src.read(5) == b"junk "
    assert src.scan(_WARC_START_RE) and src.tell() == data.index(b"WARC/")
    assert src.read(10) == b"WARC/1.0\r\n"
    assert not src.scan(_GZIP_RE)  # no gzip magic left: EOF


def test_scan_finds_a_record_start_split_over_many_short_reads() -> None:
    data = b"junk " * 3 + b"\nWARC/1.0\r\nrest"  # the start line spans three 7-byte reads
    src = _Source(ShortReads(data))
    assert src.scan(_WARC_START_RE) and src.tell() == data.index(b"WARC/")
    assert src.read(10) == b"WARC/1.0\r\n"
    src = _Source(ShortReads(b"WARC/1.0\r\nrest"))  # at the very start: `^`, across reads
    assert src.scan(_WARC_START_RE) and src.tell() == 0


def test_scan_does_not_take_a_mid_line_start_for_a_record_start() -> None:
    """`WARC/1.0` inside a line is no record start, wherever the reads cut the stream."""
    for pad in range(9):
        mid_line = b"x" * (SCAN_CARRY_BYTES + pad) + b"WARC/1.0\r\n"
        data = mid_line + b"more\nWARC/1.1\r\nrecord"
        for raw in (io.BytesIO(data), ShortReads(data)):
            src = _Source(raw)
            assert src.scan(_WARC_START_RE) and src.read(10) == b"WARC/1.1\r\n", (pad, type(raw).__name__)


def test_gzip_member_reads_one_member_and_leaves_the_source_after_it() -> None:
    first, second = gzip.compress(b"first member"), gzip.compress(b"second")
    src = _Source(ShortReads(first + second))
    member = _GzipMember(src)
    assert member.read() == b"first member"
    assert src.tell() == len(first)
    member = _GzipMember(src)
    assert member.read(3) == b"sec"
    member.drain()
    assert src.tell() == len(first + second) and src.read() == b""


def test_a_truncated_gzip_member_is_corrupt_input() -> None:
    data = gzip.compress(b"x" * 10_000)
    with pytest.raises(_CorruptInput, match="truncated gzip member"):
        _GzipMember(_Source(io.BytesIO(data[: len(data) // 2]))).read()


def test_bounded_reader_refuses_a_header_block_without_end() -> None:
    reader = _BoundedReader(io.BytesIO(b"WARC/1.0\r\nX: " + b"a" * (2 * MAX_HEADER_BYTES)))
    assert reader.readline() == b"WARC/1.0\r\n"
    with pytest.raises(_CorruptInput, match=f"longer than {MAX_HEADER_BYTES} bytes"):
        reader.readline()


def test_the_reader_does_not_import_the_records_module() -> None:
    code = "import sys, sources.warc_reader; assert 'sources.warc' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
