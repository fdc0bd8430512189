"""Wikipedia: MediaWiki XML dumps (pages-articles) to one document per article.

A dump (plain, .gz, .bz2 including multistream) is streamed with `iterparse`, each `<page>` cleared
once read, so memory stays bounded whatever the dump's size. Only articles (namespace 0) become
documents; redirects, other namespaces, disambiguation pages and pages left empty by cleaning are
counted as rejected. A dump cut short (or with broken XML) keeps every page before the cut and
records the cut as one `wikipedia:truncated-dump` (or `wikipedia:malformed-xml`) row naming the
file and the byte offset.
"""

from __future__ import annotations

import bz2
import gzip
import io
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pipeline.core.config import at_least, positive
from pipeline.core.extractor import Extractor, PlanContext, WorkUnit, unit_key
from pipeline.core.io import as_path
from pipeline.core.schema import Doc, Rejected
from sources.wikitext import WikitextCleaner, WikitextOptions

SOURCE = "wikipedia"
_DUMP_NAME = re.compile(r"\.xml(?:\.bz2|\.gz)?$|\.bz2$|\.gz$", re.I)

# Disambiguation markers: the magic word, and the usual templates in a few large wikis.
DEFAULT_DISAMBIGUATION_TEMPLATES = [
    "disambiguation", "disambig", "dab", "disamb", "hndis", "geodis", "numberdis", "letter disambiguation",
    "mathdab", "surname", "given name", "set index", "sia", "shipindex", "hospitaldis", "schooldis",
    "begriffsklärung", "homonymie", "desambiguación", "disambigua", "desambiguação", "doorverwijspagina",
    "неоднозначность", "多義語", "消歧义", "trang định hướng", "định hướng",
]


@dataclass
class WikipediaConfig:
    """Which pages become documents and how their wikitext is cleaned."""

    skip_disambiguation: bool = True  # reject disambiguation pages as `wikipedia:disambiguation`
    http_timeout_seconds: float = 60.0  # dumps given as http(s) URLs are streamed, never stored whole
    http_retries: int = 5  # reconnects (with a Range request) after a dropped download
    disambiguation_templates: list[str] = field(default_factory=lambda: list(DEFAULT_DISAMBIGUATION_TEMPLATES))  # mark disambiguation pages
    min_text_chars: int = 1  # shorter cleaned texts are rejected as `wikipedia:empty`
    keep_math: bool = False  # keep TeX from <math> as `$...$` (dropped by default, like templates)
    keep_lists: bool = True  # keep list items that have words
    keep_headings: bool = True  # keep section titles
    # File-namespace aliases the siteinfo does not list (e.g. Vietnamese "Hình").
    extra_file_namespaces: list[str] = field(default_factory=lambda: ["Hình", "Datei", "Fichier", "Bild"])

    def __post_init__(self) -> None:
        positive(self, "http_timeout_seconds")
        at_least(self, 0, "http_retries", "min_text_chars")


@dataclass
class SiteInfo:
    lang: str = "unknown"
    base_url: str = ""  # e.g. https://en.wikipedia.org/wiki/
    namespaces: dict[int, str] = field(default_factory=dict)


class _CountingReader:
    """A read-only stream that counts the (decompressed) bytes handed to the parser."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.offset = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.offset += len(data)
        return data


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff its format), put back in front."""

    def __init__(self, head: bytes, stream) -> None:
        self.head, self.stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.stream.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


def open_dump(path: Path | str, config: WikipediaConfig | None = None) -> IO[bytes]:
    """Open a dump, local or http(s) (streamed), by its magic bytes (not its name): bz2 (multistream
    too), gzip, or plain XML."""
    from sources.inputs import HttpStream, is_url

    cfg = config or WikipediaConfig()
    raw = HttpStream(str(path), cfg.http_timeout_seconds, cfg.http_retries) if is_url(str(path)) else as_path(path).open("rb")
    head = raw.read(3)
    stream = io.BufferedReader(_Prefixed(head, raw), buffer_size=1 << 20)
    if head == b"BZh":
        return bz2.BZ2File(stream)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=stream)
    return stream


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class WikipediaExtractor(Extractor):
    name = "wikipedia"
    version = "1"
    config_class = WikipediaConfig
    stage_defaults = {
        # The dump's language (meta `language`) is the allowed one.
        "langid": {"language_from_meta": "language"},
        # Only the repetition rules: stubs and lists are wanted.
        "quality": {"rules": ["gopher_repetition"]},
    }

    def __init__(self, config: WikipediaConfig | None = None) -> None:
        super().__init__(config)
        names = "|".join(re.escape(t) for t in self.config.disambiguation_templates)
        self._disambig = re.compile(rf"\{{\{{\s*(?:{names})\s*(?:\||\}}\}})|__DISAMBIG__", re.I)

    def plan(self, inputs: list[str], ctx: PlanContext) -> list[WorkUnit]:
        """One work unit per dump file; inside directories only dump-like names (.xml, .bz2, .gz) count."""
        from sources.inputs import is_url

        units = []
        for spec in inputs:
            if is_url(spec):
                units.append(WorkUnit(key=unit_key(spec), payload={"path": spec}, fingerprint=f"url:{spec}"))
                continue
            for unit in super().plan([spec], ctx):
                path = as_path(unit.payload["path"])
                if as_path(spec).is_dir() and not _DUMP_NAME.search(path.name):
                    continue
                units.append(unit)
        return sorted(dict((u.key, u) for u in units).values(), key=lambda u: u.payload["path"])

    def extract(self, unit: WorkUnit) -> Iterator[Doc | Rejected]:
        from sources.inputs import is_url

        spec = unit.payload["path"]
        path = as_path(spec) if not is_url(spec) else Path(spec)
        if not is_url(spec) and path.stat().st_size == 0:
            yield self._dump_problem(path, "wikipedia:empty-file", "empty file", 0, SiteInfo())
            return
        site = SiteInfo()
        cleaner: WikitextCleaner | None = None
        stream = open_dump(spec, self.config)
        reader = _CountingReader(stream)
        pages = 0
        try:
            context = ET.iterparse(reader, events=("start", "end"))
            root = None
            for event, elem in context:
                if event == "start":
                    if root is None:
                        root = elem
                        lang = elem.get("{http://www.w3.org/XML/1998/namespace}lang")
                        site.lang = lang or site.lang
                    continue
                tag = _local(elem.tag)
                if tag == "siteinfo":
                    _read_siteinfo(elem, site)
                    cleaner = self._cleaner(site)
                    root.clear()
                elif tag == "page":
                    pages += 1
                    yield self._page(elem, site, cleaner or self._cleaner(site))
                    root.clear()  # drop the page (and any finished siblings) from the tree
        except (EOFError, ET.ParseError, OSError) as exc:
            if isinstance(exc, EOFError) or _parse_error_at_end(exc, stream):
                reason = "wikipedia:truncated-dump"
            elif isinstance(exc, ET.ParseError):
                reason = "wikipedia:malformed-xml"
            else:
                reason = "wikipedia:corrupt-dump"  # bad compressed data (CRC, invalid stream)
            yield self._dump_problem(spec, reason, str(exc), reader.offset, site, pages)
        finally:
            stream.close()

    # -- pages -------------------------------------------------------------------------------------

    def _cleaner(self, site: SiteInfo) -> WikitextCleaner:
        files = [site.namespaces[n] for n in (6, -2) if n in site.namespaces]
        cats = [site.namespaces[14]] if 14 in site.namespaces else []
        return WikitextCleaner(
            WikitextOptions(
                keep_headings=self.config.keep_headings,
                keep_lists=self.config.keep_lists,
                keep_math=self.config.keep_math,
                file_namespaces=files + list(self.config.extra_file_namespaces),
                category_namespaces=cats,
            )
        )

    def _page(self, page: ET.Element, site: SiteInfo, cleaner: WikitextCleaner) -> Doc | Rejected:
        fields: dict[str, Any] = {"redirect": False}
        wikitext = ""
        for child in page:
            tag = _local(child.tag)
            if tag in ("title", "ns", "id"):
                fields[tag] = (child.text or "").strip()
            elif tag == "redirect":
                fields["redirect"] = True
            elif tag == "revision":
                for rc in child:
                    rtag = _local(rc.tag)
                    if rtag == "id":
                        fields["revision_id"] = (rc.text or "").strip()
                    elif rtag == "timestamp":
                        fields["timestamp"] = (rc.text or "").strip()
                    elif rtag == "text":
                        wikitext = rc.text or ""
        title = fields.get("title", "")
        page_id = fields.get("id", "")
        meta = {
            "title": title,
            "page_id": int(page_id) if page_id.isdigit() else page_id,
            "revision_id": int(fields["revision_id"]) if fields.get("revision_id", "").isdigit() else None,
            "timestamp": fields.get("timestamp"),
            "language": site.lang,
            "url": self._url(site, title),
        }
        doc_id = f"{SOURCE}/{site.lang}/{page_id}"
        url = meta["url"]
        if fields.get("ns", "0") != "0":
            return Rejected(doc_id, SOURCE, "wikipedia:namespace", url, meta={**meta, "ns": fields.get("ns")})
        if fields["redirect"] or wikitext.lstrip()[:9].upper() == "#REDIRECT":
            return Rejected(doc_id, SOURCE, "wikipedia:redirect", url, meta=meta)
        if self.config.skip_disambiguation and (
            self._disambig.search(wikitext) or title.endswith("(disambiguation)")
        ):
            return Rejected(doc_id, SOURCE, "wikipedia:disambiguation", url, meta=meta)
        text = cleaner.clean(wikitext)
        if len(text) < max(1, self.config.min_text_chars):
            return Rejected(doc_id, SOURCE, "wikipedia:empty", url, text=text, meta=meta)
        return Doc(doc_id, SOURCE, text, url, meta)

    @staticmethod
    def _url(site: SiteInfo, title: str) -> str | None:
        if not site.base_url or not title:
            return None
        return site.base_url + urllib.parse.quote(title.replace(" ", "_"), safe="/:(),'!*")

    @staticmethod
    def _dump_problem(
        path: Path | str, reason: str, error: str, offset: int, site: SiteInfo, pages: int = 0
    ) -> Rejected:
        meta = {"file": str(path), "decompressed_offset": offset, "error": error, "pages_before": pages}
        name = str(path).rstrip("/").rpartition("/")[2]
        return Rejected(f"{SOURCE}/{site.lang}/{reason.partition(':')[2]}:{name}", SOURCE, reason, meta=meta)


def _read_siteinfo(elem: ET.Element, site: SiteInfo) -> None:
    for child in elem:
        tag = _local(child.tag)
        if tag == "base" and child.text:
            parts = urllib.parse.urlsplit(child.text.strip())
            site.base_url = f"{parts.scheme}://{parts.netloc}/wiki/"
        elif tag == "dbname" and child.text and site.lang == "unknown":
            site.lang = child.text.strip().removesuffix("wiki").replace("_", "-")
        elif tag == "namespaces":
            for ns in child:
                key = ns.get("key", "")
                if ns.text and key.lstrip("-").isdigit():
                    site.namespaces[int(key)] = ns.text.strip()


def _parse_error_at_end(exc: BaseException, stream: IO[bytes]) -> bool:
    """Whether an XML error is the input running out (a cut dump) rather than bad XML mid-stream."""
    if not isinstance(exc, ET.ParseError):
        return False
    if "no element found" in str(exc) or "unclosed token" in str(exc):
        try:
            return stream.read(1) == b""
        except (OSError, EOFError):
            return True
    return False
