"""HTML to main text: charset decoding, cheap text views, and the configured extractor with a time limit.

Decoding follows the browser's order: byte-order mark, then the HTTP `Content-Type` charset, then a
`<meta>` charset in the first bytes, then strict UTF-8, then detection (charset-normalizer); a
declared charset that does not decode the bytes is passed over. Nothing here raises on bad bytes:
the last resort decodes with replacement characters.

Extraction (sources/html_modes.py) is selectable, `[sources.cc.html] extractor = "hybrid" |
"trafilatura" | "resiliparse" | "hybrid_reference"`; the default `hybrid` runs trafilatura's
readability/jusText fallback only where trafilatura's fast pass looks unreliable, with the F1 of running it
everywhere at less CPU, and runs trafilatura's steps through a mirror with cheaper internals
(sources/html_mirror.py) that gives trafilatura's text byte for byte at half the CPU.
trafilatura's settings were chosen by measurement (bench/extraction_quality.py): `favor_precision`
without user comments scores at least as well as the defaults on both annotated sets (trafilatura's
987 pages, 130 news pages) and is faster. One pathological page must not stall a task, so each
extraction runs under a wall-clock limit: a SIGALRM timer when running in a process's main thread
(where Ray runs ordinary tasks, and `--workers 1` runs everything), and caps on the HTML size, the tree
size (trafilatura's MAX_TREE_SIZE) and, for the C++ extractor the timer cannot interrupt, the nesting
depth.
"""

from __future__ import annotations

import codecs
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.core.config import at_least, fractions, require
from sources import html_modes

BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# WHATWG: labels that browsers decode with a superset codec.
CODEC_SUPERSETS = {"ascii": "cp1252", "latin_1": "cp1252", "iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030"}
_CHARSET_PARAM_RE = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9._:+-]+)", re.I)
_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9._:+-]+)", re.I)
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_SCRIPT_RE = re.compile(r"<(script|style|noscript|template|svg)\b.*?</\1\s*>", re.I | re.S)
_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
_TAG_RE = re.compile(r"<[^>]*>")
_ENTITY_RE = re.compile(r"&(#?\w+);")
_SPACE_RE = re.compile(r"\s+")
_GARBLED_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
# _GARBLED_RE's characters: a `str.find` of each (C-level, vectorised) is ~3x faster than the regex's scan
_GARBLED_CHARS = (*map(chr, (*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F)), "\ufffd")
DETECT_BYTES = 64 << 10  # charset detection looks at the head of the page only


@dataclass
class HtmlConfig:
    """How HTML becomes text. The defaults are the settings measured best (see bench/)."""

    # main-text extractor: "hybrid" (trafilatura's steps through a faster mirror, its fallback only where the
    # fast pass looks unreliable), "hybrid_reference" (the same text with trafilatura itself, 2x the CPU),
    # "trafilatura" (the fallback on every page), "resiliparse" (C++, much faster, more boilerplate)
    extractor: str = "hybrid"
    hybrid_min_chars: int = 250  # hybrid: the fallback runs where the fast pass's text is shorter than this
    hybrid_min_page_share: float = 0.2  # hybrid: or has fewer words than this share of the page's (0: off)
    fast: bool = False  # True: no readability/jusText fallback on any page (trafilatura, hybrid): faster, lower F1
    favor_precision: bool = True  # trafilatura's favor_precision: less boilerplate, some main text lost
    favor_recall: bool = False  # trafilatura's favor_recall: more text and boilerplate; wins over precision
    include_comments: bool = False  # user comments are mostly short, repetitive and off-topic
    include_tables: bool = True  # keep the text of <table> elements in the extraction
    deduplicate: bool = False  # trafilatura's in-page duplicate-segment removal (datatrove turns it on)
    min_extracted_chars: int = 250  # trafilatura's MIN_EXTRACTED_SIZE: below it, it tries harder
    min_text_chars: int = 1  # shorter extractions are rejected as `extract-empty`
    max_html_bytes: int = 2 << 20  # larger pages are rejected before parsing (`html-too-large`)
    max_tree_elements: int = 50_000  # trafilatura's MAX_TREE_SIZE: bigger DOMs are given up (0: no cap)
    max_nesting_depth: int = 1_000  # resiliparse: deeper pages (of > 10,000 tags) go to trafilatura instead
    # pages whose decoded head is more than this share control characters or U+FFFD are binary or in
    # an encoding nothing recognised: rejected as `bad-encoding` (real pages: at most 0.03%)
    max_garbled_share: float = 0.01
    time_limit_seconds: float = 10.0  # per page; 0 disables (only enforced in a main thread)

    def __post_init__(self) -> None:
        at_least(self, 0, "min_extracted_chars", "min_text_chars", "time_limit_seconds", "max_tree_elements")
        at_least(self, 1, "max_html_bytes", "max_nesting_depth")
        at_least(self, 0, "hybrid_min_chars")
        fractions(self, "hybrid_min_page_share", "max_garbled_share")
        require(self.extractor in html_modes.EXTRACTORS, "extractor",
                f"must be one of {', '.join(html_modes.EXTRACTORS)}, got {self.extractor!r}")


@dataclass
class HtmlResult:
    """Either `text` (the extracted main text) or `reason` (why there is none), never both."""

    text: str | None
    reason: str | None
    encoding: str
    title: str | None = None


class ExtractionTimeout(Exception):
    pass


# ---------------------------------------------------------------------------------------- decoding


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return CODEC_SUPERSETS.get(name, name)


def http_charset(content_type: str | None) -> str | None:
    m = _CHARSET_PARAM_RE.search(content_type or "")
    return m.group(1) if m else None


def meta_charset(payload: bytes) -> str | None:
    m = _META_CHARSET_RE.search(payload[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def decode_html(payload: bytes, http_content_type: str | None = None) -> tuple[str, str]:
    """Decode page bytes to text; returns (text, codec used). Never raises on undecodable bytes."""
    for bom, name in BOMS:
        if payload.startswith(bom):
            return payload[len(bom):].decode(name, errors="replace"), name
    tried: set[str] = set()
    for label in (http_charset(http_content_type), meta_charset(payload), "utf-8"):
        name = _codec(label)
        if name is None or name in tried:
            continue
        tried.add(name)
        try:
            return payload.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    name = _detect(payload[:DETECT_BYTES])
    if name:
        return payload.decode(name, errors="replace"), name
    return payload.decode("cp1252", errors="replace"), "cp1252"


def _detect(head: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return _codec(best.encoding) if best is not None else None


# ------------------------------------------------------------------------------ cheap text views


def title_of(html: str) -> str | None:
    m = _TITLE_RE.search(html, 0, 200_000)  # the first 200,000 characters, without copying them
    if not m:
        return None
    title = _SPACE_RE.sub(" ", _unescape(_TAG_RE.sub(" ", m.group(1)))).strip()
    return title[:500] or None


def _unescape(text: str) -> str:
    import html as html_lib

    return html_lib.unescape(text) if "&" in text else text


def rough_text(html: str, max_chars: int = 4000) -> str:
    """Visible-ish text of a page by regex (no parsing), for cheap checks such as a language guess."""
    body_at = html.lower().find("<body")
    html = html[body_at:] if body_at >= 0 else html
    html = html[: max_chars * 20]
    text = _COMMENT_RE.sub(" ", _SCRIPT_RE.sub(" ", html))
    text = _SPACE_RE.sub(" ", _unescape(_TAG_RE.sub(" ", text))).strip()
    return text[:max_chars]


# -------------------------------------------------------------------------------------- extraction


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ExtractionTimeout in the block after `seconds` of wall time (main thread only; elsewhere,
    and for seconds <= 0, no limit)."""
    usable = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise ExtractionTimeout(f"extraction took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def garbled(html: str, max_share: float) -> bool:
    """Whether the decoded page's head is binary or undecodable noise rather than text."""
    head = html[:DETECT_BYTES]
    if not any(head.find(ch) >= 0 for ch in _GARBLED_CHARS):  # nearly every page: no need to count them
        return False
    return len(_GARBLED_RE.findall(head)) > max_share * len(head)


def extract_text(html: str, url: str | None, config: HtmlConfig) -> tuple[str | None, str | None]:
    """The configured extractor on decoded HTML: (text, None) or (None, reason: `bad-encoding`,
    `extract-timeout`, `extract-failed`, `extract-empty`)."""
    if garbled(html, config.max_garbled_share):
        return None, "bad-encoding"
    try:
        with time_limit(config.time_limit_seconds):
            text, _ = html_modes.run(html, url, config)
    except ExtractionTimeout:
        return None, "extract-timeout"
    except RecursionError:
        return None, "extract-failed"
    except Exception:  # noqa: BLE001 - one page's parser failure is that page's rejection
        return None, "extract-failed"
    text = (text or "").strip()
    if len(text) < max(1, config.min_text_chars):
        return None, "extract-empty"
    return text, None


def extract_html(
    payload: bytes, url: str | None, http_content_type: str | None, config: HtmlConfig
) -> HtmlResult:
    """Page bytes to main text, or the reason there is none (`html-too-large`, `bad-encoding`,
    `extract-timeout`, `extract-failed`, `extract-empty`)."""
    if len(payload) > config.max_html_bytes:
        return HtmlResult(None, "html-too-large", "")
    html, encoding = decode_html(payload, http_content_type)
    text, reason = extract_text(html, url, config)
    return HtmlResult(text, reason, encoding, title_of(html))
