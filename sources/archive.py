"""The WARC archive of fetched pages: what sources/fetch.py fetched, kept so a rerun fetches nothing twice.

`WarcArchive` stores `FetchResult`s: successful bodies as WARC `response` records (gzip per record,
the body as decoded by the client, with `Content-Encoding`/`Transfer-Encoding` renamed to
`X-Archive-Orig-*` so WARC readers do not decode twice), and every outcome, failures included, in a
JSON-lines index beside each WARC segment. A later run reads the indexes and fetches only URLs
without an outcome (`refetch_failed` retries failures).

A segment is written under temporary names (`.seg-N.warc.gz.<token>.tmp` and
`.seg-N.outcomes.jsonl.<token>.tmp`): each response record is flushed to the WARC before its outcome
line is appended to the temporary index, and the writer holds an exclusive lock (flock) on both
files. When the fetch ends (or is interrupted by an exception) the segment is published: the WARC
is renamed, then the index, sorted by URL, is written under its final name. A task killed mid-fetch
leaves its temporary files; the next reader of the archive (`outcomes`, `fetch_into`) publishes
them — every outcome whose record is wholly on disk is kept (the WARC cut after the last of them),
so what was fetched is not fetched again — and deletes what holds nothing; files another live writer
still locks are left alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sources.fetch import Fetcher, FetchResult


@dataclass
class Outcome:
    """The index entry of one fetched URL: where its response is archived, or why there is none."""

    url: str
    reason: str | None
    detail: str
    final_url: str | None
    status: int | None
    redirects: list[str]
    attempts: int
    fetched_at: str
    warc: str | None = None  # segment file name, in the same directory as the index
    offset: int | None = None
    length: int | None = None
    record_id: str | None = None


SEGMENT_GLOB = "seg-*.outcomes.jsonl"
_RENAMED_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}
# Temporary files of a segment being written (the token is absent in files of older versions).
_TMP_INDEX_RE = re.compile(r"^\.(seg-\d+)\.outcomes\.jsonl(?:\.([0-9a-f]+))?\.tmp$")
_TMP_WARC_RE = re.compile(r"^\.(seg-\d+)\.warc\.gz\.([0-9a-f]+)\.tmp$")
_TMP_SORTED_RE = re.compile(r"^\.(seg-\d+)\.outcomes\.jsonl\.([0-9a-f]+)\.sorted\.tmp$")  # a final index, unfinished
_SEGMENT_NUMBER_RE = re.compile(r"^\.?seg-(\d+)\.")


class WarcArchive:
    """A directory of WARC segments with outcome indexes; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def outcomes(self) -> dict[str, Outcome]:
        """Every recorded outcome by URL; a later segment's outcome replaces an earlier one's. Segments
        a killed writer left are published first (`recover`)."""
        out: dict[str, Outcome] = {}
        if not self.directory.is_dir():
            return out
        self.recover()
        for index in sorted(self.directory.glob(SEGMENT_GLOB)):
            with open(index, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        o = Outcome(**json.loads(line))
                        out[o.url] = o
        return out

    def record_path(self, outcome: Outcome) -> Path:
        assert outcome.warc is not None
        return self.directory / outcome.warc

    def fetch_into(self, fetcher: Fetcher, urls: list[str]) -> dict[str, Outcome]:
        """Fetch `urls` into one new segment; returns their outcomes (also written to its index)."""
        if not urls:
            return {}
        self.directory.mkdir(parents=True, exist_ok=True)
        self.recover()
        numbers = [int(m.group(1)) for p in self.directory.iterdir() if (m := _SEGMENT_NUMBER_RE.match(p.name))]
        name = f"seg-{1 + max(numbers, default=-1):05d}"
        warc_name = f"{name}.warc.gz"
        token = uuid.uuid4().hex[:8]
        tmp_warc = self.directory / f".{warc_name}.{token}.tmp"
        tmp_index = self.directory / f".{name}.outcomes.jsonl.{token}.tmp"
        with open(tmp_index, "w", encoding="utf-8") as index_f, open(tmp_warc, "wb") as f:
            _lock(index_f)
            _lock(f)
            writer = _SegmentWriter(f, warc_name, fetcher.config.user_agent)

            def record(result: FetchResult) -> None:
                outcome = writer.write(result)
                f.flush()  # the record is in the file before its index line names it
                index_f.write(_index_line(outcome))
                index_f.flush()

            try:
                fetcher.fetch_many(urls, record)
            finally:  # interrupted or not: what was fetched is published
                for fh in (f, index_f):
                    fh.flush()
                    os.fsync(fh.fileno())
                outcomes = self._publish(name, tmp_warc, tmp_index)
        return outcomes

    def recover(self) -> None:
        """Publish the segments killed writers left (their temporary index and WARC), keeping every
        outcome whose record is wholly on disk; delete temporary files that hold nothing. Files a live
        writer locks are left alone."""
        if not self.directory.is_dir():
            return
        for tmp_index in sorted(self.directory.iterdir()):
            m = _TMP_INDEX_RE.match(tmp_index.name)
            if m is None:
                continue
            name, token = m.group(1), m.group(2)
            with _locked_or_none(tmp_index) as held:
                if not held:
                    continue
                if (self.directory / f"{name}.outcomes.jsonl").exists():  # published; killed before cleanup
                    tmp_index.unlink(missing_ok=True)
                    continue
                tmp_warc = self.directory / f".{name}.warc.gz.{token}.tmp" if token else None
                if tmp_warc is not None and tmp_warc.exists():
                    self._publish(name, tmp_warc, tmp_index)
                else:  # the WARC was renamed already (or there is none)
                    self._publish(name, self.directory / f"{name}.warc.gz", tmp_index)
        for leftover in sorted(self.directory.iterdir()):
            # A WARC with no index left beside it (nothing in it is referenced), or an unfinished copy
            # of a final index (its temporary index, published above, was the complete one).
            if _TMP_WARC_RE.match(leftover.name) or _TMP_SORTED_RE.match(leftover.name):
                with _locked_or_none(leftover) as held:
                    if held:
                        leftover.unlink(missing_ok=True)

    def _publish(self, name: str, warc: Path, tmp_index: Path) -> dict[str, Outcome]:
        """Make `warc` (temporary or final) segment `name` with the outcomes of `tmp_index` that are
        complete and whose record is wholly in the WARC; returns them."""
        size = warc.stat().st_size if warc.exists() else 0
        outcomes: dict[str, Outcome] = {}
        end = 0
        with open(tmp_index, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # the line the kill cut short
                try:
                    outcome = Outcome(**json.loads(line))
                except (ValueError, TypeError):
                    continue
                if outcome.warc is not None:
                    assert outcome.offset is not None and outcome.length is not None
                    if outcome.offset + outcome.length > size:
                        continue  # its record never reached the disk whole
                    end = max(end, outcome.offset + outcome.length)
                outcomes[outcome.url] = outcome
        final_warc = self.directory / f"{name}.warc.gz"
        if end == 0:  # no record is referenced: the WARC (if any) holds nothing worth keeping
            warc.unlink(missing_ok=True)
        else:
            if size > end:  # a record written after the last indexed one: cut, so the file reads whole
                with open(warc, "r+b") as f:
                    f.truncate(end)
                    os.fsync(f.fileno())
            if warc != final_warc:
                os.replace(warc, final_warc)
        index = self.directory / f"{name}.outcomes.jsonl"
        tmp_sorted = self.directory / f".{index.name}.{uuid.uuid4().hex[:8]}.sorted.tmp"
        with open(tmp_sorted, "w", encoding="utf-8") as f:
            _lock(f)
            for url in sorted(outcomes):
                f.write(_index_line(outcomes[url]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_sorted, index)
        tmp_index.unlink(missing_ok=True)
        return outcomes


def _index_line(outcome: Outcome) -> str:
    return json.dumps(asdict(outcome), sort_keys=True, ensure_ascii=False) + "\n"


def _lock(f: io.IOBase) -> None:
    """An exclusive lock held while `f` is open: recovery leaves a live writer's files alone."""
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextlib.contextmanager
def _locked_or_none(path: Path):  # type: ignore[no-untyped-def]
    """Yields True holding an exclusive lock on `path`, or False if another process holds one."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - held for the duration of the block
    except OSError:
        yield False
        return
    try:
        try:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError:
            yield False
            return
        yield True
    finally:
        f.close()


class _SegmentWriter:
    def __init__(self, f: io.BufferedWriter, warc_name: str, user_agent: str) -> None:
        from warcio.warcwriter import WARCWriter

        self.f = f
        self.warc_name = warc_name
        self.writer = WARCWriter(f, gzip=True)
        info = self.writer.create_warcinfo_record(warc_name, {
            "software": "corpusforge sources/archive.py (warcio)",
            "http-header-user-agent": user_agent,
            "format": "WARC File Format 1.1",
        })
        self.writer.write_record(info)

    def write(self, r: FetchResult) -> Outcome:
        from warcio.statusandheaders import StatusAndHeaders

        outcome = Outcome(
            url=r.url, reason=r.reason, detail=r.detail, final_url=r.final_url, status=r.status,
            redirects=r.redirects, attempts=r.attempts,
            fetched_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        if r.reason is not None or r.body is None:
            return outcome
        headers = [(f"X-Archive-Orig-{k}" if k.lower() in _RENAMED_HEADERS else k, v) for k, v in r.headers]
        headers.append(("Content-Length", str(len(r.body))))
        http_headers = StatusAndHeaders(f"{r.status} {r.reason_phrase}".strip(), headers, protocol=r.http_version)
        warc_headers = {"WARC-Source-URI": r.url} if r.final_url != r.url else {}
        rec = self.writer.create_warc_record(
            r.final_url or r.url, "response", payload=io.BytesIO(r.body), http_headers=http_headers,
            warc_headers_dict=warc_headers,
        )
        start = self.f.tell()
        self.writer.write_record(rec)
        outcome.warc, outcome.offset, outcome.length = self.warc_name, start, self.f.tell() - start
        outcome.record_id = rec.rec_headers.get_header("WARC-Record-ID")
        return outcome
