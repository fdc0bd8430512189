"""Reading WARC, ARC and WET files robustly, from local files or any byte stream (HTTP, S3).

`iter_records` yields one `WarcRecord` per archive record, and a `WarcError` for each corrupt part
(a truncated or damaged gzip member, a malformed record) with the file name and byte offset, then
carries on with the rest of the file where the format allows:

* gzip-compressed files (`.warc.gz`, `.arc.gz`, `.warc.wet.gz`, one gzip member per record, as
  Common Crawl ships them) are decompressed member by member here; after a bad member the reader
  resynchronises at the next gzip member magic, so one damaged record costs one record;
* uncompressed files (`.warc`, `.arc`) resynchronise at the next line that starts a record.

Record parsing itself is warcio's, made defensive: a header block (WARC or HTTP headers) longer than
`MAX_HEADER_BYTES` (warcio's readline is quadratic in a line's length), a record without a valid
Content-Length or version line (an unterminated header), an HTTP record without WARC-Target-URI,
a record that ends inside its HTTP headers, and a record not followed by a blank line (its
Content-Length is wrong: in an uncompressed file the reader resynchronises at the next record start,
so the records a too-long length swallowed are read again) are each a `WarcError` with the record's
offset. (A Content-Length too long by exactly the length of the records it swallows is not detected.)

The reader works on non-seekable streams: it keeps the bytes of
the current member/record (up to `MAX_RESYNC_BYTES`) so that it can rewind to resynchronise.

This module is the records API (`WarcRecord`, `WarcError`, `iter_records`) and the resynchronising
loops over gzip members or record starts; the byte-level reading under it (the rewindable byte
source, gzip members, warcio made defensive, `MAX_HEADER_BYTES`, `MAX_RESYNC_BYTES`) is in
sources/warc_reader.py.

A file in which no record at all can be read raises `WarcFormatError` naming the file, so that the
runner lists that work unit as failed instead of silently producing nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sources.warc_reader import (
    _ARC_START_RE,
    _GZIP_RE,
    _READ_ERRORS,
    _WARC_START_RE,
    GZIP_MAGIC,
    _ArchiveIterator,
    _CorruptInput,
    _GzipMember,
    _Source,
    _Tell,
)

PayloadFilter = Callable[["WarcRecord"], bool]

DEFAULT_MAX_PAYLOAD_BYTES = 8 << 20
PAYLOAD_TYPES = ("warcinfo", "response", "resource", "conversion", "revisit")


class WarcFormatError(ValueError):
    """A file that is not a WARC/ARC/WET file, or of which no record can be read."""


@dataclass
class WarcRecord:
    """One archive record. `payload` is the HTTP body (dechunked and content-decoded) for response
    records, the block for resource/conversion records, and b"" for other types.

    `offset` is the byte offset in the file of the record (of its gzip member, for compressed files:
    the offset Common Crawl's index uses); `inner_offset` is the record's offset inside that member
    when one member holds several records (non-chunked gzip), else 0.
    """

    name: str
    offset: int
    rec_type: str
    format: str  # "warc" or "arc"
    uri: str | None
    record_id: str | None
    date: str | None
    warc_headers: dict[str, str]
    http_status: int | None = None
    http_headers: list[tuple[str, str]] = field(default_factory=list)
    payload: bytes = b""
    payload_truncated: bool = False  # longer than max_payload_bytes; `payload` holds the head only
    payload_error: str | None = None  # the body could not be decoded (bad chunking/compression)
    inner_offset: int = 0

    def http_header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.http_headers:
            if k.lower() == lname:
                return v
        return None

    @property
    def content_type(self) -> str | None:
        """The HTTP Content-Type for HTTP records, else the WARC Content-Type of the block."""
        if self.http_headers:
            return self.http_header("content-type")
        return self.warc_headers.get("content-type")


@dataclass(frozen=True)
class WarcError:
    """A corrupt part of a file: where it starts, and what was wrong."""

    name: str
    offset: int
    message: str


WarcItem = WarcRecord | WarcError


def _arc_date(value: str | None) -> str | None:
    if value and len(value) >= 14 and value[:14].isdigit():
        v = value
        return f"{v[0:4]}-{v[4:6]}-{v[6:8]}T{v[8:10]}:{v[10:12]}:{v[12:14]}Z"
    return value


def _make_record(
    record, name: str, offset: int, inner_offset: int, max_payload: int, want: PayloadFilter | None
) -> WarcRecord:
    headers = {k.lower(): v for k, v in record.rec_headers.headers}
    if record.format.startswith("arc"):
        uri, rec_id, date = headers.get("uri"), None, _arc_date(headers.get("archive-date"))
        rec_type = "warcinfo" if record.rec_type == "arc_header" else record.rec_type
        fmt = "arc"
    else:
        uri, rec_id, date = headers.get("warc-target-uri"), headers.get("warc-record-id"), headers.get("warc-date")
        rec_type, fmt = record.rec_type, "warc"
    rec = WarcRecord(
        name=name, offset=offset, inner_offset=inner_offset, rec_type=rec_type, format=fmt, uri=uri,
        record_id=rec_id, date=date, warc_headers=headers,
    )
    if record.http_headers is not None:
        rec.http_headers = list(record.http_headers.headers)
        if rec_type in ("response", "revisit"):
            code = (record.http_headers.get_statuscode() or "").strip()
            rec.http_status = int(code) if code.isdigit() else None
    if rec_type in PAYLOAD_TYPES and (want is None or want(rec)):
        try:
            data = record.content_stream().read(max_payload + 1)
        except _CorruptInput:
            raise
        except Exception as exc:  # noqa: BLE001 - bad chunking/compression of one body: reported per record
            rec.payload_error = f"{type(exc).__name__}: {exc}"
        else:
            rec.payload_truncated = len(data) > max_payload
            rec.payload = data[:max_payload]
    return rec


def _records(
    stream, name: str, member_offset: int | None, opts: _Options, state: dict[str, int]
) -> Iterator[WarcItem]:
    """Records of one stream: a gzip member starting at `member_offset`, or (None) an uncompressed
    file whose `tell` is the absolute offset. `state["next"]` follows the start of the next record.

    Raises `_CorruptInput`/warcio errors on damage (a record whose length is wrong, a header block
    without end, a response without target URI, ...). A record whose content is shorter than its
    declared length is a `WarcError` in a gzip member; in an uncompressed file it raises, so that
    the records its declared length swallowed are found again by resynchronising.
    """
    it = _ArchiveIterator(stream, arc2warc=False)
    for record in it:
        start = it.offset
        if member_offset is None:
            rec = _make_record(record, name, start, 0, opts.max_payload, opts.want)
        else:
            rec = _make_record(record, name, member_offset, start, opts.max_payload, opts.want)
        it.read_to_end(record)
        missing = getattr(record.raw_stream, "limit", 0)
        if missing > 0:
            message = f"record truncated: {missing} bytes of its content are missing"
            if member_offset is None:
                raise _CorruptInput(message)
            state["next"] = it.offset
            yield WarcError(name, rec.offset, message)
            continue
        state["next"] = it.offset
        yield rec


@dataclass(frozen=True)
class _Options:
    max_payload: int
    want: PayloadFilter | None


def _iter_gzip(src: _Source, name: str, opts: _Options) -> Iterator[WarcItem]:
    while True:
        start = src.pos
        src.mark(start)
        head = src.read(3)
        if not head:
            return
        src.unread(head)
        if head != GZIP_MAGIC:
            yield WarcError(name, start, f"not a gzip member (starts with {head!r})")
            src.read(1)
            if not src.scan(_GZIP_RE):
                return
            continue
        member = _GzipMember(src)
        try:
            yield from _records(member, name, start, opts, {})
            member.drain()
        except _READ_ERRORS as exc:
            yield WarcError(name, start, _describe(exc))
            src.rewind_to(start + 1)
            if not src.scan(_GZIP_RE):
                return


def _iter_plain(src: _Source, name: str, opts: _Options, start_re: re.Pattern[bytes]) -> Iterator[WarcItem]:
    while True:
        state = {"next": src.pos}
        src.mark()
        try:
            for item in _records(_Tell(src), name, None, opts, state):
                src.mark(state["next"])
                yield item
            return
        except _READ_ERRORS as exc:
            yield WarcError(name, state["next"], _describe(exc))
            src.rewind_to(state["next"] + 1)
            if not src.scan(start_re):
                return


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if not isinstance(exc, _CorruptInput) else text


def iter_records(
    path_or_stream: str | Path | BinaryIO,
    name: str,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    payload_filter: PayloadFilter | None = None,
) -> Iterator[WarcItem]:
    """Yield every record of a WARC/ARC/WET file (gzip or not, detected from the bytes) and a
    `WarcError` for every corrupt part. `name` is used in errors and records (the file's name or URL).

    Payloads are read (up to `max_payload_bytes`) for the record types in PAYLOAD_TYPES and, if
    `payload_filter` is given, only for records it accepts (it sees the headers, not the payload), so
    that images and other unwanted bodies are never decoded.

    Raises `WarcFormatError` if the input is not an archive at all or no record could be read.
    """
    if isinstance(path_or_stream, str | Path):
        try:
            with open(path_or_stream, "rb") as f:
                yield from iter_records(
                    f, name, max_payload_bytes=max_payload_bytes, payload_filter=payload_filter
                )
        except OSError as exc:
            raise WarcFormatError(f"{name}: cannot read: {exc}") from exc
        return
    src = _Source(path_or_stream)
    opts = _Options(max_payload_bytes, payload_filter)
    head = src.read(16)
    src.unread(head)
    if not head:
        raise WarcFormatError(f"{name}: empty file")
    if head.startswith(GZIP_MAGIC):
        items = _iter_gzip(src, name, opts)
    elif head.startswith(b"WARC/"):
        items = _iter_plain(src, name, opts, _WARC_START_RE)
    elif head.startswith(b"filedesc:"):
        items = _iter_plain(src, name, opts, _ARC_START_RE)
    else:
        raise WarcFormatError(f"{name}: not a WARC, ARC or WET file (starts with {head[:8]!r})")
    # Errors with no good record between them are one corrupt region (a resync may first land on a
    # false gzip magic inside compressed data): it is reported once, when the next good record shows
    # where it ends.
    region: WarcError | None = None
    seen_record = False
    for item in items:
        if isinstance(item, WarcError):
            region = region or item
            continue
        seen_record = True
        if region is not None:
            yield _ended(region, item.offset)
            region = None
        yield item
    if region is not None:
        if not seen_record:
            raise WarcFormatError(f"{name}: no readable record; at offset {region.offset}: {region.message}")
        yield _ended(region, None)


def _ended(region: WarcError, resumed_at: int | None) -> WarcError:
    where = f"resumed at offset {resumed_at}" if resumed_at is not None else "nothing readable after it"
    return WarcError(region.name, region.offset, f"{region.message} ({where})")
