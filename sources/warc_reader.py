"""The byte level under sources/warc.py: a resilient reader of WARC/ARC/WET bytes.

Kept apart from the records API (`sources.warc`: `WarcRecord`, `WarcError`, `iter_records`) so that
each module does one thing. Here are:

* `_Source`, a byte stream (a local file or any non-seekable stream: HTTP, S3) with pushback, an
  absolute position, and the bytes of the current member/record kept (up to `MAX_RESYNC_BYTES`) so
  that the reader can rewind and resynchronise after a corrupt part (`_Source.scan` finds the next
  gzip member magic or record start);
* `_GzipMember`, one gzip member decompressed at a time (`.warc.gz` files hold one member per record);
* warcio made defensive: `_BoundedReader` bounds a header block (WARC or HTTP headers) to
  `MAX_HEADER_BYTES` (warcio's readline is quadratic in a line's length), `_RecordLoader` refuses a
  record without a valid Content-Length or version line, an HTTP record without WARC-Target-URI and
  a record that ends inside its HTTP headers, and `_ArchiveIterator` refuses a record not followed by
  a blank line (its Content-Length is wrong), each by raising `_CorruptInput`;
* `_READ_ERRORS`, the exceptions that cost one record (or gzip member) rather than the file.

This module does not import sources.warc (no cycle): the records are made there.
"""

from __future__ import annotations

import io
import re
import zlib
from typing import BinaryIO

from pipeline.core.imports import unimportable

with unimportable("fsspec"):  # warcio.utils imports it for warcio's command-line tools only (~0.05 s)
    import warcio.utils  # noqa: F401
from warcio.archiveiterator import ArchiveIterator  # noqa: E402
from warcio.bufferedreaders import DecompressingBufferedReader  # noqa: E402
from warcio.exceptions import ArchiveLoadFailed  # noqa: E402
from warcio.recordloader import ArcWarcRecordLoader  # noqa: E402
from warcio.statusandheaders import StatusAndHeadersParserException  # noqa: E402

BLOCK = 1 << 16
MAX_RESYNC_BYTES = 64 << 20  # bytes kept to rewind after a corrupt part; beyond, resync from where we are
SCAN_CARRY_BYTES = 8 << 10  # longer than the first line of a record (an ARC line holds a URL)
MAX_HEADER_BYTES = 64 << 10  # one header block (WARC or HTTP headers, up to their blank line)

GZIP_MAGIC = b"\x1f\x8b\x08"
_GZIP_RE = re.compile(re.escape(GZIP_MAGIC))
_WARC_START_RE = re.compile(rb"(?:^|\n)(WARC/[01]\.\d+\r?\n)")
_ARC_START_RE = re.compile(rb"(?:^|\n)(\S+ \S+ \d{14} \S+ \d+\r?\n)")


class _CorruptInput(Exception):
    """Raised inside the reader for a damaged gzip member; becomes a `WarcError`."""


# ------------------------------------------------------------------------------------ byte source


class _Source:
    """A byte stream with pushback, an absolute position, and a rewindable recent history."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.pending = bytearray()
        self.pos = 0
        self.history = bytearray()
        self.history_start = 0  # absolute offset of history[0]
        self.history_ok = True

    def read(self, n: int = BLOCK) -> bytes:
        if self.pending:
            data = bytes(self.pending[:n])
            del self.pending[:n]
            if len(data) < n:
                data += self.raw.read(n - len(data)) or b""
        else:
            data = self.raw.read(n) or b""
        if self.history_ok:
            self.history += data
            if len(self.history) > MAX_RESYNC_BYTES:
                self.history_ok = False
                self.history = bytearray()
        self.pos += len(data)
        return data

    def tell(self) -> int:
        return self.pos

    def unread(self, data: bytes) -> None:
        if not data:
            return
        self.pending[:0] = data
        self.pos -= len(data)
        if self.history_ok:
            del self.history[len(self.history) - len(data):]

    def mark(self, offset: int | None = None) -> None:
        """Forget history before `offset` (default: the current position)."""
        offset = self.pos if offset is None else offset
        if not self.history_ok:
            self.history_ok = True
            self.history = bytearray()
            self.history_start = self.pos
        drop = max(0, min(offset - self.history_start, len(self.history)))
        del self.history[:drop]
        self.history_start += drop

    def rewind_to(self, offset: int) -> None:
        """Go back to `offset` if the history still holds it, else stay where we are."""
        if self.history_ok and self.history_start <= offset < self.pos:
            back = self.pos - offset
            self.unread(bytes(self.history[len(self.history) - back:]))

    def scan(self, pattern: re.Pattern[bytes]) -> bool:
        """Skip to the start of group 1 (or the whole match) of the next `pattern` match; False at EOF."""
        carry, from_start = b"", True  # the carried bytes begin where the scan began, until trimmed
        while True:
            block = self.read(BLOCK)
            if not block:
                return False
            buf = carry + block
            m = pattern.search(buf)
            if m and not from_start and m.start() == 0 and not buf.startswith(b"\n"):
                # `^` matched where the carried bytes were cut, which is not the start of a line
                m = pattern.search(buf, 1)
            if m:
                start = m.start(1) if m.re.groups else m.start()
                self.unread(buf[start:])
                return True
            # the last bytes searched go with the next read, however short the reads, so that a
            # match split across reads is found
            if len(buf) > SCAN_CARRY_BYTES:
                carry, from_start = buf[-SCAN_CARRY_BYTES:], False
            else:
                carry = buf


class _GzipMember:
    """A file-like view of one gzip member of `src`; leaves `src` just after the member."""

    def __init__(self, src: _Source) -> None:
        self.src = src
        self.d = zlib.decompressobj(31)
        self.out = bytearray()
        self.eof = False

    def _fill(self, need: int) -> None:
        while len(self.out) < need and not self.eof:
            inp = self.d.unconsumed_tail
            if not inp:
                inp = self.src.read(BLOCK)
                if not inp:
                    raise _CorruptInput("truncated gzip member (file ends inside it)")
            try:
                self.out += self.d.decompress(inp, 4 * BLOCK)
            except zlib.error as exc:
                raise _CorruptInput(f"corrupt gzip data: {exc}") from None
            if self.d.eof:
                self.src.unread(self.d.unused_data)
                self.eof = True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            while not self.eof:
                self._fill(len(self.out) + BLOCK)
            n = len(self.out)
        else:
            self._fill(n)
        data = bytes(self.out[:n])
        del self.out[:n]
        return data

    def readline(self, limit: int = -1) -> bytes:  # pragma: no cover - warcio uses its own buffering
        buf = io.BytesIO(self.read())
        return buf.readline(limit)

    def drain(self) -> None:
        while not self.eof:
            self.out.clear()
            self._fill(BLOCK)
        self.out.clear()


# ------------------------------------------------------------------------ warcio, made defensive


class _BoundedReader(DecompressingBufferedReader):
    """warcio's reader with a linear `readline` and a bound on header blocks.

    warcio's own `readline` concatenates block after block (quadratic in the line's length: a gzip
    member inflating to one 1 GiB header line ran for hours). Here a header block (the lines read
    since the last blank line or body read) longer than MAX_HEADER_BYTES is a corrupt record."""

    _header_bytes = 0

    def read(self, length: int | None = None) -> bytes:
        self._header_bytes = 0
        return super().read(length)

    def readline(self, length: int | None = None) -> bytes:
        if length is not None and length < 0:
            length = None
        if length == 0:
            return b""
        self._fillbuff()
        if self.empty():
            return b""
        parts = [self.buff.readline(length)]
        size = len(parts[0])
        while not parts[-1].endswith(b"\n") and (length is None or size < length):
            if self._header_bytes + size > MAX_HEADER_BYTES:
                break
            self._fillbuff()
            if self.empty():
                break
            parts.append(self.buff.readline(None if length is None else length - size))
            size += len(parts[-1])
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _CorruptInput(f"header block longer than {MAX_HEADER_BYTES} bytes (a header line without end?)")
        line = parts[0] if len(parts) == 1 else b"".join(parts)
        if not line.strip():
            self._header_bytes = 0
        return line


class _RecordLoader(ArcWarcRecordLoader):
    """warcio's record loader, refusing records it would otherwise crash on or drop without a word."""

    _headers_read = False

    def parse_record_stream(self, stream, statusline=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._headers_read = False
        try:
            return super().parse_record_stream(stream, statusline, *args, **kwargs)
        except EOFError:
            if self._headers_read:  # warcio would end the file here as if it were empty
                raise _CorruptInput("the record ends inside its HTTP headers") from None
            raise

    def _detect_type_load_headers(self, stream, statusline=None, known_format=None):  # type: ignore[no-untyped-def]
        fmt, headers = super()._detect_type_load_headers(stream, statusline, known_format)
        self._headers_read = True
        if fmt == "warc":
            if not headers.protocol:
                raise _CorruptInput("a WARC record without a version line")
            length = (headers.get_header("Content-Length") or "").strip()
            if not length.isdigit():
                raise _CorruptInput(f"a WARC record without a valid Content-Length ({length!r}): "
                                    "an unterminated or damaged header")
        return fmt, headers

    def load_http_headers(self, rec_type, uri, stream, length):  # type: ignore[no-untyped-def]
        if uri is None and length != 0 and rec_type in self.HTTP_RECORDS:
            raise _CorruptInput(f"a {rec_type} record without WARC-Target-URI")
        return super().load_http_headers(rec_type, uri, stream, length)


class _ArchiveIterator(ArchiveIterator):
    """warcio's iterator with the bounded reader and the defensive loader, and a record whose
    Content-Length is wrong (not followed by a blank line) raised as corrupt instead of a warning
    on stderr (the reader then resynchronises at the next record start)."""

    def __init__(self, fileobj, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(fileobj, **kwargs)
        self.reader = _BoundedReader(self.fh)
        self.loader = _RecordLoader(verify_http=False, arc2warc=kwargs.get("arc2warc", False))

    def _consume_blanklines(self):  # type: ignore[no-untyped-def]
        empty_size = 0
        while True:
            line = self.reader.readline()
            if not line:
                return None, empty_size
            if line.strip():
                break
            empty_size += len(line)
        if empty_size == 0 and self.record is not None:
            raise _CorruptInput(f"record not followed by a blank line: its length ({self.record.length}) is wrong "
                                f"(next bytes {line[:40]!r})")
        return line, empty_size


class _Tell:
    """Exposes `read`/`tell` of a `_Source` (warcio computes offsets from `tell`)."""

    def __init__(self, src: _Source) -> None:
        self.src = src

    def read(self, n: int = -1) -> bytes:
        return self.src.read(BLOCK if n is None or n < 0 else n)

    def tell(self) -> int:
        return self.src.pos


# warcio's own failures on records it cannot parse (AttributeError/TypeError/IndexError/KeyError
# included: a malformed record must cost that record, not the file).
_READ_ERRORS = (_CorruptInput, ArchiveLoadFailed, StatusAndHeadersParserException, ValueError, EOFError,
                AttributeError, TypeError, IndexError, KeyError)
