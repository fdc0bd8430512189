"""sources/warc.py on the real archive files in ../shared/data/warc, whole, cut short and damaged."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from pathlib import Path

import pytest

from sources.warc import WarcError, WarcFormatError, WarcRecord, iter_records
from tests.conftest import data_path

RESILIPARSE = "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"
AUT_WARC = "aut_IAH-20080430204825-00000-blackbook.warc.gz"
AUT_ARC = "aut_IAH-20080430204825-00000-blackbook.arc.gz"

# Record counts as documented in ../shared/data/warc/SOURCES.md.
EXPECTED = {
    RESILIPARSE: {"warcinfo": 1, "request": 17, "response": 16, "metadata": 16},
    AUT_WARC: {"warcinfo": 1, "request": 261, "response": 299, "metadata": 261},
    AUT_ARC: {"warcinfo": 1, "response": 299},
    "commoncrawl-whirlwind_whirlwind.warc.gz": {"warcinfo": 1, "request": 1, "response": 1, "metadata": 1},
    "commoncrawl-whirlwind_whirlwind.warc.wet.gz": {"warcinfo": 1, "conversion": 1},
    "commoncrawl-whirlwind_whirlwind.warc.wat.gz": {"warcinfo": 1, "metadata": 1},
    "dolma_sample-0001.warc.gz": {"warcinfo": 1, "request": 15, "response": 15, "resource": 2, "metadata": 1},
}


def _read(source, name: str = "f", **kw) -> tuple[list[WarcRecord], list[WarcError]]:
    records, errors = [], []
    for item in iter_records(source, name, **kw):
        (errors if isinstance(item, WarcError) else records).append(item)
    return records, errors


class ReadOnly:
    """A stream with `read` only (no seek/tell), like an HTTP body."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) - self.pos if n is None or n < 0 else min(n, 7919)  # odd, short reads
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_shared_file_reads_completely(name: str) -> None:
    records, errors = _read(data_path("warc", name), name)
    assert errors == []
    assert Counter(r.rec_type for r in records) == EXPECTED[name]
    for r in records:
        assert r.name == name
        if r.rec_type == "response" and r.uri and r.uri.startswith("http"):
            assert r.http_status is not None


def test_offsets_point_at_the_gzip_member_of_the_record() -> None:
    path = data_path("warc", RESILIPARSE)
    raw = path.read_bytes()
    records, _ = _read(path)
    assert [r.offset for r in records] == sorted({r.offset for r in records})
    for r in records[1:6]:
        member = zlib.decompressobj(31).decompress(raw[r.offset :])
        assert member.startswith(b"WARC/1.0")
        assert r.record_id.encode() in member[:2000]


def test_common_crawl_response_fields() -> None:
    records, _ = _read(data_path("warc", RESILIPARSE))
    resp = [r for r in records if r.rec_type == "response"]
    assert all(r.http_status == 200 for r in resp)
    assert all(r.record_id.startswith("<urn:uuid:") and r.date.startswith("2020-08-08") for r in resp)
    first = resp[0]
    assert first.uri == "http://003338.cn/l41/481397.html"
    assert first.content_type == "text/html"
    assert b"<html" in first.payload[:2000].lower()
    # the payload is the HTTP body, not headers
    assert not first.payload.startswith(b"HTTP/")


def test_arc_and_warc_of_the_same_crawl_agree() -> None:
    arc, _ = _read(data_path("warc", AUT_ARC))
    warc, _ = _read(data_path("warc", AUT_WARC))
    arc_resp = {(r.uri, r.http_status, r.payload) for r in arc if r.rec_type == "response"}
    warc_resp = {(r.uri, r.http_status, r.payload) for r in warc if r.rec_type == "response"}
    assert arc_resp == warc_resp
    assert all(r.format == "arc" and r.record_id is None for r in arc)
    assert arc[1].date == "2008-04-30T20:48:25Z"


def test_wet_conversion_record_has_text_payload() -> None:
    records, _ = _read(data_path("warc", "commoncrawl-whirlwind_whirlwind.warc.wet.gz"))
    conv = records[1]
    assert conv.rec_type == "conversion" and conv.uri == "https://an.wikipedia.org/wiki/Escopete"
    assert conv.content_type == "text/plain"
    assert "Escopete" in conv.payload.decode("utf-8")


@pytest.mark.parametrize("name", [RESILIPARSE, AUT_ARC])
def test_truncated_gzip_file_keeps_everything_before_the_cut(tmp_path: Path, name: str) -> None:
    data = data_path("warc", name).read_bytes()
    full, _ = _read(data_path("warc", name))
    cut = len(data) * 2 // 3
    p = tmp_path / name
    p.write_bytes(data[:cut])
    records, errors = _read(p, name)
    complete = [r for r in full if r.offset < cut]
    # every record whose member starts before the cut is read, except the one the cut falls in
    assert [r.record_id or r.uri for r in records] == [r.record_id or r.uri for r in complete[:-1]]
    assert len(errors) == 1
    assert errors[0].offset == complete[-1].offset and "truncated gzip member" in errors[0].message
    assert errors[0].name == name


def test_damaged_gzip_member_is_skipped_and_reading_resumes(tmp_path: Path) -> None:
    data = bytearray(data_path("warc", RESILIPARSE).read_bytes())
    full, _ = _read(data_path("warc", RESILIPARSE))
    victim = next(r for r in full if r.rec_type == "response" and r.offset > len(data) // 3)
    data[victim.offset + 200 : victim.offset + 400] = b"\0" * 200
    p = tmp_path / "damaged.warc.gz"
    p.write_bytes(bytes(data))
    for source in (p, ReadOnly(bytes(data))):
        records, errors = _read(source, "damaged.warc.gz")
        assert [e.offset for e in errors] == [victim.offset]
        assert "resumed at offset" in errors[0].message
        assert [r.record_id for r in records] == [r.record_id for r in full if r is not victim]


def test_non_seekable_stream_reads_the_same_records() -> None:
    path = data_path("warc", AUT_WARC)
    by_file, _ = _read(path)
    by_stream, _ = _read(ReadOnly(path.read_bytes()))
    assert [(r.record_id, r.offset, r.payload) for r in by_stream] == [
        (r.record_id, r.offset, r.payload) for r in by_file
    ]


def test_uncompressed_warc_whole_cut_and_malformed(tmp_path: Path) -> None:
    raw = gzip.decompress(data_path("warc", RESILIPARSE).read_bytes())
    full, _ = _read(data_path("warc", RESILIPARSE))
    plain = tmp_path / "plain.warc"
    plain.write_bytes(raw)
    records, errors = _read(plain)
    assert errors == [] and [r.record_id for r in records] == [r.record_id for r in full]
    assert records[1].offset == raw.index(b"WARC/1.0", 1)

    cut = tmp_path / "cut.warc"
    cut.write_bytes(raw[: len(raw) // 2])
    records, errors = _read(cut)
    assert len(errors) == 1 and "record truncated" in errors[0].message
    assert [r.record_id for r in records] == [r.record_id for r in full[: len(records)]]

    at = raw.index(b"WARC/1.0\r\n", len(raw) // 2)
    bad = tmp_path / "bad.warc"
    bad.write_bytes(raw[:at] + b"GARBAGE!\r\n" + raw[at + 10 :])
    records, errors = _read(ReadOnly(bad.read_bytes()))
    assert [e.offset for e in errors] == [at]
    assert len(records) == len(full) - 1


def test_uncompressed_arc(tmp_path: Path) -> None:
    raw = gzip.decompress(data_path("warc", AUT_ARC).read_bytes())
    p = tmp_path / "plain.arc"
    p.write_bytes(raw)
    records, errors = _read(p)
    assert errors == [] and Counter(r.rec_type for r in records) == EXPECTED[AUT_ARC]


def test_payload_filter_and_size_cap() -> None:
    path = data_path("warc", RESILIPARSE)
    records, _ = _read(path, payload_filter=lambda r: False)
    assert all(r.payload == b"" for r in records)
    records, _ = _read(path, max_payload_bytes=1000)
    resp = [r for r in records if r.rec_type == "response"]
    assert all(len(r.payload) <= 1000 for r in resp) and any(r.payload_truncated for r in resp)


def test_unreadable_inputs_raise_naming_the_file(tmp_path: Path) -> None:
    cases = {
        "empty.warc.gz": b"",
        "text.warc": b"this is not an archive\n",
        "garbage.warc.gz": gzip.compress(b"garbage line\n" * 100),
        "noise.warc.gz": b"\x1f\x8b\x08" + bytes(range(256)) * 4,
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(WarcFormatError, match=name.replace(".", r"\.")):
            _read(p, name)
    with pytest.raises(WarcFormatError, match="missing.warc.gz"):
        _read(tmp_path / "missing.warc.gz", "missing.warc.gz")


# ------------------------------------------------------------- hostile records (issue 14, items 3, 4, 10)


def _members(path: Path) -> tuple[bytes, list[WarcRecord], list[int]]:
    """The file's bytes, its records, and the byte offsets where its gzip members (one per record) start."""
    raw = path.read_bytes()
    records, _ = _read(path)
    return raw, records, [r.offset for r in records] + [len(raw)]


def _header_line_bomb(megabytes: int) -> bytes:
    """One gzip member whose WARC header has a line of `megabytes` MiB without end: generated as a
    stream (1 MiB at a time), about 1 KB compressed per inflated MiB."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.com/bomb\r\nX-Bomb: ")]
    block = b"a" * (1 << 20)
    out += [z.compress(block) for _ in range(megabytes)]
    out.append(z.flush())
    return b"".join(out)


_READ_IN_SUBPROCESS = """
import json, sys
from sources.warc import WarcError, iter_records
items = [(type(i).__name__, i.offset, getattr(i, "message", None)) for i in iter_records(sys.argv[1], "bomb.warc.gz")]
print(json.dumps(items))
"""


def test_a_header_line_without_end_is_a_corrupt_record_read_in_linear_time(tmp_path: Path) -> None:
    """A member inflating to a 32 MiB header line (no newline) between real records: warcio's readline
    is quadratic in the line (hours for 1 GiB); the reader bounds a header block to 64 KiB, counts the
    member as corrupt at its offset and reads on. Run in a subprocess with a generous guard of 60 s."""
    import json
    import subprocess
    import sys

    raw, records, starts = _members(data_path("warc", RESILIPARSE))
    at = starts[10]
    bomb = _header_line_bomb(32)
    p = tmp_path / "bomb.warc.gz"
    p.write_bytes(raw[:at] + bomb + raw[at:])
    proc = subprocess.run([sys.executable, "-c", _READ_IN_SUBPROCESS, str(p)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    items = json.loads(proc.stdout)
    errors = [(offset, message) for kind, offset, message in items if kind == "WarcError"]
    print(f"{len(bomb)} compressed bytes inflating to 32 MiB: {len(items) - len(errors)} records, errors {errors}")
    assert [o for o, _ in errors] == [at] and "header block longer than 65536 bytes" in errors[0][1]
    shifted = [o if o < at else o + len(bomb) for o in starts[:-1]]
    assert [o for kind, o, _ in items if kind == "WarcRecord"] == shifted
    assert proc.stderr == ""


def _recompress(raw: bytes, starts: list[int], i: int, edit) -> bytes:
    """The file with member i replaced by the gzip of edit(member i's decompressed bytes)."""
    member = gzip.decompress(raw[starts[i] : starts[i + 1]])
    return raw[: starts[i]] + gzip.compress(edit(member)) + raw[starts[i + 1] :]


def _drop_target_uri(record: bytes) -> bytes:
    head, sep, rest = record.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"warc-target-uri:")]
    return b"\r\n".join(lines) + sep + rest


def _plain_starts(plain: bytes, n: int) -> list[int]:
    """Where the n records of an uncompressed WARC start, and its length."""
    starts = [0]
    for _ in range(n - 1):
        starts.append(plain.index(b"\r\n\r\nWARC/1.0\r\n", starts[-1]) + 4)
    return [*starts, len(plain)]


UNTERMINATED = b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.com/x\r\nWARC-Date: 2020-08-08T20:48:25"
assert len(UNTERMINATED) == 100


def test_a_record_without_target_uri_or_with_an_unterminated_header_costs_only_itself(tmp_path: Path) -> None:
    raw, records, starts = _members(data_path("warc", RESILIPARSE))
    victim = next(i for i, r in enumerate(records) if r.rec_type == "response" and i > 5)
    gz = _recompress(raw, starts, victim, _drop_target_uri)
    grow = len(gz) - len(raw)
    at = starts[victim + 3] + grow  # an unterminated 100-byte header as a member of its own
    gz = gz[:at] + gzip.compress(UNTERMINATED) + gz[at:]
    got, errors = _read(ReadOnly(gz), "hostile.warc.gz")
    print("gzip:", [(e.offset, e.message) for e in errors])
    assert [e.offset for e in errors] == [starts[victim], at]
    assert "without WARC-Target-URI" in errors[0].message and "Content-Length" in errors[1].message
    assert [r.record_id for r in got] == [r.record_id for i, r in enumerate(records) if i != victim]

    # The same in an uncompressed file: the unterminated header at the very end, and in the middle.
    plain = gzip.decompress(raw)
    rec_starts = _plain_starts(plain, len(records))
    start, end = rec_starts[victim], rec_starts[victim + 1]
    edited = _drop_target_uri(plain[start:end])
    body = plain[:start] + edited + plain[end:]
    mid = rec_starts[victim + 3] + len(edited) - (end - start)
    for data, where in ((body[:mid] + UNTERMINATED + b"\r\n\r\n" + body[mid:], mid), (body + UNTERMINATED, len(body))):
        got, errors = _read(ReadOnly(data), "hostile.warc")
        print("plain:", [(e.offset, e.message) for e in errors])
        assert [e.offset for e in errors] == [start, where]
        assert [r.record_id for r in got] == [r.record_id for i, r in enumerate(records) if i != victim]


@pytest.mark.parametrize("delta", [300, -300, 7])
def test_a_lying_content_length_in_an_uncompressed_warc_is_counted(tmp_path: Path, capfd, delta: int) -> None:
    """A Content-Length too long swallows the next record, too short keeps a record cut short: both are
    a counted corrupt record at its offset (not a warning on stderr), and the next record is read."""
    plain = gzip.decompress(data_path("warc", RESILIPARSE).read_bytes())
    full, _ = _read(data_path("warc", RESILIPARSE))
    victim = next(i for i, r in enumerate(full) if r.rec_type == "response" and i > 5)
    start = _plain_starts(plain, len(full))[victim]
    head_end = plain.index(b"\r\n\r\n", start)
    head = plain[start:head_end]
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
                 .split(b":")[1])
    lied = head.replace(b"Content-Length: %d" % length, b"Content-Length: %d" % (length + delta))
    data = plain[:start] + lied + plain[head_end:]
    got, errors = _read(ReadOnly(data), "lying.warc")
    print(f"Content-Length {delta:+}:", [(e.offset, e.message) for e in errors], f"{len(got)} of {len(full)} records")
    assert [e.offset for e in errors] == [start]
    assert [r.record_id for r in got] == [r.record_id for i, r in enumerate(full) if i != victim]
    assert "Content-Length" not in capfd.readouterr().err
