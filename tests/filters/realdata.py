"""Real documents for the filter tests and benchmark, read in place from ../shared/data.

Each loader skips (via `data_path`) when its data is absent. Labels come from the data's own
metadata: the `<html lang>` attribute of a page, the `dcterms:language` of a Gutenberg RDF record.
"""

from __future__ import annotations

import bz2
import gzip
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

from tests.conftest import data_path

_HTML_LANG_RE = re.compile(r"<html[^>]*\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)
_RDF_LANG_RE = re.compile(r"<dcterms:language>\s*<rdf:Description[^>]*>\s*<rdf:value[^>]*>([^<]+)</rdf:value>")


def gutenberg_body(name: str, encoding: str = "latin-1") -> str:
    """A Gutenberg text between its START and END markers, with LF line endings."""
    text = data_path("gutenberg", name).read_text(encoding=encoding).lstrip("\ufeff").replace("\r\n", "\n")
    start = text.index("\n", text.index("*** START")) + 1
    return text[start : text.index("*** END")].strip()


def gutenberg_language(number: int) -> str:
    rdf = data_path("gutenberg", f"pg{number}.rdf").read_text(encoding="utf-8")
    m = _RDF_LANG_RE.search(rdf)
    assert m, f"pg{number}.rdf has no dcterms:language"
    return m.group(1).strip()


def _html(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")


_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "table",
    "section", "article", "header", "footer", "nav", "aside", "form", "blockquote", "pre", "dt", "dd", "title",
}


def page_text(html: str) -> str:
    """All visible text of a page, one line per block element: navigation, cookie notices and
    footers included, the way a crude crawler would keep it."""
    import lxml.html

    tree = lxml.html.fromstring(html)
    for bad in tree.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()
    for el in tree.iter():
        if isinstance(el.tag, str) and el.tag.lower() in _BLOCK_TAGS:
            el.tail = "\n" + (el.tail or "")
    lines = (" ".join(line.split()) for line in tree.text_content().splitlines())
    return "\n".join(line for line in lines if line)


def trafilatura_page(file_name: str) -> tuple[str, dict]:
    """(html, annotation) of one page of trafilatura's evaluation set, by HTML file name."""
    import json

    root = data_path("extraction", "trafilatura_eval")
    entries = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    entry = next((e for e in entries.values() if e["file"] == file_name), {})
    for sub in ("eval", "cache"):
        path = root / "html" / sub / f"{file_name}.gz"
        if path.exists():
            return _html(path), entry
    raise FileNotFoundError(file_name)


@lru_cache(maxsize=4)
def labelled_pages(per_language: int = 4, min_chars: int = 400) -> tuple[tuple[str, str, str], ...]:
    """(file name, html lang, main text by trafilatura) for up to `per_language` pages per language,
    from trafilatura's multilingual evaluation pages and newspaper3k's article pages."""
    import trafilatura

    root = data_path("extraction")
    paths = sorted((root / "trafilatura_eval" / "html").glob("*/*.html.gz"))
    paths += sorted((root / "newspaper_fulltext" / "html").glob("*.html.gz"))
    taken: dict[str, int] = {}
    out = []
    for path in paths:
        html = _html(path)
        m = _HTML_LANG_RE.search(html[:20000])
        if not m:
            continue
        lang = m.group(1).lower()
        if taken.get(lang, 0) >= per_language:
            continue
        text = trafilatura.extract(html) or ""
        if len(text) < min_chars:
            continue
        taken[lang] = taken.get(lang, 0) + 1
        out.append((path.name, lang, text))
    return tuple(out)


@lru_cache(maxsize=2)
def wikipedia_articles(limit: int = 30, min_chars: int = 2000) -> tuple[tuple[str, str], ...]:
    """(title, plain text) of the first real articles of the 2016 enwiki dump head."""
    import mwparserfromhell

    path = data_path("wikipedia", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    out: list[tuple[str, str]] = []
    with bz2.open(path) as f:
        for _, elem in ET.iterparse(f):
            if not elem.tag.endswith("}page"):
                continue
            ns = {"m": elem.tag.split("}")[0][1:]}
            title = elem.findtext("m:title", "", ns)
            wikitext = elem.findtext("m:revision/m:text", "", ns) or ""
            elem.clear()
            if wikitext.lower().startswith("#redirect") or len(wikitext) < min_chars:
                continue
            text = mwparserfromhell.parse(wikitext[:30000]).strip_code().strip()
            text = re.sub(r"\n{3,}", "\n\n", text)
            if len(text) >= min_chars:
                out.append((title, text))
            if len(out) >= limit:
                break
    return tuple(out)


@lru_cache(maxsize=2)
def whole_page_texts(per_file: int = 25, min_chars: int = 300) -> tuple[tuple[str, str], ...]:
    """(url, all visible text of the page, navigation and boilerplate included) of real crawled
    HTML pages: the raw-crawl text a quality classifier learns to tell from curated text."""
    import lxml.etree
    from warcio.archiveiterator import ArchiveIterator

    out: list[tuple[str, str]] = []
    for name in ("aut_IAH-20080430204825-00000-blackbook.warc.gz", "dolma_sample-0001.warc.gz",
                 "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"):
        taken = 0
        with open(data_path("warc", name), "rb") as f:
            for rec in ArchiveIterator(f):
                if taken >= per_file:
                    break
                ctype = rec.http_headers.get_header("Content-Type") if rec.http_headers else None
                if rec.rec_type != "response" or "html" not in (ctype or ""):
                    continue
                html = rec.content_stream().read().decode("utf-8", errors="replace")
                try:
                    text = page_text(html)
                except (ValueError, lxml.etree.LxmlError):  # empty or unparsable document
                    continue
                if len(text) >= min_chars:
                    out.append((rec.rec_headers.get_header("WARC-Target-URI"), text))
                    taken += 1
    return tuple(out)


def curated_docs(book_chunk_words: int = 800, chunks_per_book: int = 12) -> list:
    """Positive examples for the quality classifier: Wikipedia articles and chunks of English books."""
    from pipeline.core.schema import Doc

    docs = [Doc(f"wikipedia/{title}", "wikipedia", text) for title, text in wikipedia_articles()]
    for name in ("14263.txt", "15122.txt", "16595.txt", "16215.txt"):
        paras, cur, n = gutenberg_body(name).split("\n\n"), [], 0
        for p in paras:
            cur.append(p)
            if sum(len(c.split()) for c in cur) >= book_chunk_words:
                docs.append(Doc(f"books/{name}#{n}", "books", "\n\n".join(cur)))
                cur, n = [], n + 1
                if n >= chunks_per_book:
                    break
    return docs


def crawled_docs() -> list:
    """Negative examples: whole-page text of real crawled pages, as raw `cc` documents."""
    from pipeline.core.schema import Doc

    return [Doc(f"cc/{i:03d}", "cc", text, url) for i, (url, text) in enumerate(whole_page_texts())]
