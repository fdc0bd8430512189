"""Pushshift submission dumps and the OpenWebText URL rules.

Reading: `RS_*.zst` (zstd with a long window, as Pushshift writes them: `max_window_size=2**31`),
`.xz`, `.bz2`, `.gz` or plain newline-delimited JSON, from a local path or an http(s) URL (streamed,
never held in memory). `iter_dump` yields one `DumpLine` per line read, good or bad, so the caller can
count every record; a dump cut short ends with a `truncated` line instead of an exception, and a file
of which not even the first line can be decompressed is an `InputError` naming it.

URL rules (OpenWebText): only link submissions with an http(s) URL. The URL is normalized: `&amp;`
unescaped (older Reddit API output escaped it), scheme and host lowercased, IDN hosts to punycode,
default port and fragment dropped, percent-escapes of unreserved characters decoded, tracking
parameters (`utm_*`, `fbclid`, ...) removed, query parameters sorted, an empty path made `/`. The
normalized form is both the dedup key and what gets fetched; `www.` and http/https are kept as given,
since a site may serve only one of them. A host is blocked if it or any parent domain is on the
domain blocklist; a path is blocked by the extension of its last segment.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import zstandard

from pipeline.core.extractor import InputError
from pipeline.core.io import as_path, sha256_file

REMOTE_SCHEMES = ("http://", "https://")

# Reddit itself, image/video/audio hosts, social sites, and Wikipedia (evaluation sets draw on it).
DEFAULT_BLOCKED_DOMAINS: list[str] = [
    # reddit
    "reddit.com", "redd.it", "redditmedia.com", "redditstatic.com", "reddituploads.com",
    # images
    "imgur.com", "gfycat.com", "redgifs.com", "giphy.com", "flickr.com", "flic.kr", "instagram.com",
    "pinterest.com", "tinypic.com", "photobucket.com", "imageshack.us", "imageshack.com", "imgflip.com",
    "postimg.cc", "ibb.co", "i.redd.it", "500px.com", "deviantart.com", "gyazo.com", "prnt.sc",
    # video
    "youtube.com", "youtu.be", "vimeo.com", "dailymotion.com", "twitch.tv", "liveleak.com",
    "streamable.com", "vid.me", "vine.co", "tiktok.com", "metacafe.com", "veoh.com", "break.com",
    # audio
    "soundcloud.com", "spotify.com", "bandcamp.com", "mixcloud.com", "last.fm", "pandora.com",
    # social
    "twitter.com", "x.com", "t.co", "facebook.com", "fb.com", "fb.me", "tumblr.com", "linkedin.com",
    "myspace.com", "plus.google.com", "snapchat.com", "vk.com", "weibo.com",
    # wikipedia and its media
    "wikipedia.org", "wikimedia.org", "wikiquote.org", "wiktionary.org", "wikibooks.org", "wikisource.org",
]

DEFAULT_BLOCKED_EXTENSIONS: list[str] = [
    # images
    "jpg", "jpeg", "png", "gif", "gifv", "bmp", "tif", "tiff", "webp", "svg", "ico", "heic", "psd",
    # video
    "mp4", "webm", "avi", "mov", "mkv", "flv", "wmv", "m4v", "mpg", "mpeg", "3gp", "ogv",
    # audio
    "mp3", "wav", "ogg", "oga", "flac", "m4a", "aac", "wma", "mid", "midi",
    # documents and data
    "pdf", "ps", "eps", "doc", "docx", "ppt", "pptx", "xls", "xlsx", "odt", "ods", "odp", "rtf",
    "csv", "json", "xml", "rss", "atom",
    # web assets
    "css", "js", "woff", "woff2", "ttf", "otf", "eot",
    # archives
    "zip", "gz", "tgz", "tar", "rar", "7z", "bz2", "xz", "zst",
    # executables and packages
    "exe", "msi", "dmg", "apk", "deb", "rpm", "iso", "bin", "jar", "swf", "torrent",
]

TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid"}
TRACKING_PREFIXES = ("utm_",)
_DEFAULT_PORTS = {"http": 80, "https": 443}


# ------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class DumpLine:
    """One line of a dump: `record` when it parsed as a JSON object, else `error` says why not.

    `truncated` marks the end of a dump that was cut short (its decompressor failed): not a record,
    but it is reported so a shortened input never passes unnoticed.
    """

    line: int
    record: dict[str, Any] | None = None
    error: str | None = None
    truncated: bool = False


def is_remote(spec: str) -> bool:
    return spec.startswith(REMOTE_SCHEMES)


class _HashingReader(io.RawIOBase):
    """Passes bytes through and hashes them: a remote dump is fingerprinted while it is parsed."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.sha256.update(data)
        self.size += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def _open_raw(spec: str, timeout_s: float) -> IO[bytes]:
    if is_remote(spec):
        import requests

        try:
            resp = requests.get(spec, stream=True, timeout=timeout_s,
                                headers={"User-Agent": "corpusforge (dump reader)"})
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise InputError(f"cannot download dump {spec}: {exc}") from None
        resp.raw.decode_content = True  # undo a transfer gzip, not the dump's own compression
        return resp.raw
    try:
        return as_path(spec).open("rb")
    except OSError as exc:
        raise InputError(f"cannot open dump {spec}: {exc}") from None


def _decompressed(raw: IO[bytes], spec: str) -> IO[bytes]:
    """A decompressing reader chosen by the dump's suffix (`.zst`, `.xz`, `.bz2`, `.gz`, else plain).

    zstd goes through `sources.compression.ZstdReader`, which allows Pushshift's 2 GiB window and,
    unlike zstandard's own stream reader, reports a file that ends mid-frame.
    """
    from sources.compression import ZstdReader

    name = spec.split("?", 1)[0].lower()
    if name.endswith((".zst", ".zstd")):
        return io.BufferedReader(ZstdReader(raw), buffer_size=1 << 20)
    if name.endswith(".xz"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if name.endswith(".bz2"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return io.BufferedReader(raw, buffer_size=1 << 20)  # type: ignore[arg-type]


_READ_ERRORS = (zstandard.ZstdError, lzma.LZMAError, EOFError, OSError, zlib.error)


class DumpReader:
    """Iterates the lines of one dump (numbered from 1; blank lines are not records and are skipped).

    After iteration, `sha256` and `size` describe the compressed bytes read, which fingerprints a
    remote dump without a second download.
    """

    def __init__(self, spec: str, timeout_s: float = 60.0) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self._hashing: _HashingReader | None = None

    @property
    def sha256(self) -> str:
        return "sha256:" + self._hashing.sha256.hexdigest() if self._hashing else ""

    @property
    def size(self) -> int:
        return self._hashing.size if self._hashing else 0

    def __iter__(self) -> Iterator[DumpLine]:
        self._hashing = _HashingReader(_open_raw(self.spec, self.timeout_s))
        stream = _decompressed(self._hashing, self.spec)  # type: ignore[arg-type]
        line_no = 0
        try:
            while True:
                try:
                    raw = stream.readline()
                except _READ_ERRORS as exc:
                    if line_no == 0:
                        raise InputError(f"{self.spec}: not a readable dump: {exc}") from None
                    yield DumpLine(line_no + 1, error=f"dump is truncated or corrupt: {exc}", truncated=True)
                    return
                if not raw:
                    return
                line_no += 1
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n") and _stream_failed(stream):
                    yield DumpLine(line_no, error="dump is truncated: its last line is incomplete", truncated=True)
                    return
                yield _parse_line(line_no, raw)
        finally:
            stream.close()


def iter_dump(spec: str, timeout_s: float = 60.0) -> Iterator[DumpLine]:
    """Every line of a dump; see `DumpReader`."""
    return iter(DumpReader(spec, timeout_s))


def _stream_failed(stream: IO[bytes]) -> bool:
    try:
        stream.read(1)
    except _READ_ERRORS:
        return True
    return False


def _parse_line(line_no: int, raw: bytes) -> DumpLine:
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        return DumpLine(line_no, error=f"invalid JSON: {exc}")
    if not isinstance(record, dict):
        return DumpLine(line_no, error=f"expected a JSON object, got {type(record).__name__}")
    return DumpLine(line_no, record=record)


def dump_fingerprint(spec: str) -> str:
    """sha256 of a local dump's compressed bytes (remote dumps are fingerprinted while parsed)."""
    return "sha256:" + sha256_file(spec)


# ----------------------------------------------------------------------------------------- URL rules


def normalize_url(url: str) -> str | None:
    """The canonical form of an http(s) URL, or None if it is not one (see the module docstring)."""
    if not isinstance(url, str):
        return None
    url = url.strip().replace("&amp;", "&")  # older Reddit API output HTML-escaped its URLs
    if not url or _CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.password is not None:
        return None
    try:
        host = host.lower() if host.isascii() else host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normalize_escapes(parts.path) or "/"
    params = [
        _normalize_escapes(p) for p in parts.query.split("&")
        if p and not _is_tracking(p.split("=", 1)[0].lower())
    ]
    return urlunsplit((scheme, netloc, path, "&".join(sorted(params)), ""))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_KEEP = "!#$&'()*+,/:;=?@[]~-._%"


def _normalize_escapes(text: str) -> str:
    """Percent-escapes of unreserved characters decoded, others upper-cased; unsafe characters escaped.

    Reserved characters keep their escaped or unescaped form, so `%2F` never turns into a `/`.
    """
    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    return quote(_ESCAPE.sub(fix, text), safe=_KEEP)


def _is_tracking(key: str) -> bool:
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def blocked_domain(host: str, blocked: set[str]) -> str | None:
    """The blocklist entry matching `host` or one of its parent domains, if any."""
    labels = host.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in blocked:
            return candidate
    return None


def url_extension(url: str) -> str:
    """The lowercased extension of the URL path's last segment ('' if it has none)."""
    path = urlsplit(url).path
    last = unquote(path.rsplit("/", 1)[-1])
    stem, dot, ext = last.rpartition(".")
    return ext.lower() if dot and stem else ""


def url_hash(normalized_url: str) -> str:
    return hashlib.sha1(normalized_url.encode("utf-8")).hexdigest()


def url_partition(normalized_url: str, partitions: int) -> int:
    """Which of `partitions` URL groups a URL belongs to: stable, from its sha1."""
    return int(url_hash(normalized_url)[:15], 16) % partitions


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def as_int(value: Any) -> int | None:
    """An integer field that Pushshift sometimes writes as a string or float; None if unusable."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**62:
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def short_name(spec: str) -> str:
    """A dump's file name, for ids and messages."""
    return Path(spec.split("?", 1)[0]).name or spec


# ------------------------------------------------------------------------------------ submissions


@dataclass(frozen=True)
class Submission:
    """The fields of a submission the recipe uses; `reason` is None if it passed the per-submission rules."""

    line: int
    submission_id: str
    subreddit: str
    score: int
    created_utc: int
    title: str
    url: str
    normalized_url: str | None
    reason: str | None
    detail: str = ""


@dataclass(frozen=True)
class UrlRules:
    blocked_domains: frozenset[str]
    blocked_extensions: frozenset[str]
    drop_over_18: bool = True

    @classmethod
    def of(cls, domains: list[str], extensions: list[str], drop_over_18: bool = True) -> UrlRules:
        return cls(
            frozenset(d.strip().lower().lstrip(".") for d in domains if d.strip()),
            frozenset(e.strip().lower().lstrip(".") for e in extensions if e.strip()),
            drop_over_18,
        )


def classify(line: int, record: dict[str, Any], rules: UrlRules) -> Submission:
    """Apply the per-submission rules, in order: self post, over 18, bad URL, blocked domain/extension.

    Score and duplicate rules need every dump and are applied later, per normalized URL.
    """
    sid = record.get("id")
    sid = str(sid) if isinstance(sid, str | int) and not isinstance(sid, bool) else ""
    subreddit = record.get("subreddit")
    subreddit = subreddit if isinstance(subreddit, str) else ""
    title = record.get("title")
    title = title if isinstance(title, str) else ""
    url = record.get("url")
    url = url if isinstance(url, str) else ""
    score = as_int(record.get("score")) or 0
    created = as_int(record.get("created_utc")) or 0
    domain = record.get("domain")
    base = dict(line=line, submission_id=sid, subreddit=subreddit, score=score, created_utc=created,
                title=title, url=url)

    if as_bool(record.get("is_self")) or (isinstance(domain, str) and domain.lower().startswith("self.")):
        return Submission(**base, normalized_url=None, reason="reddit:self-post")
    if rules.drop_over_18 and as_bool(record.get("over_18")):
        return Submission(**base, normalized_url=None, reason="reddit:over-18")
    norm = normalize_url(url)
    if norm is None:
        return Submission(**base, normalized_url=None, reason="reddit:bad-url",
                          detail="no url" if not url else "not an http(s) URL")
    hit = blocked_domain(url_host(norm), rules.blocked_domains)
    if hit is not None:
        return Submission(**base, normalized_url=norm, reason="reddit:blocked-domain", detail=hit)
    ext = url_extension(norm)
    if ext and ext in rules.blocked_extensions:
        return Submission(**base, normalized_url=norm, reason="reddit:blocked-extension", detail=ext)
    return Submission(**base, normalized_url=norm, reason=None)
