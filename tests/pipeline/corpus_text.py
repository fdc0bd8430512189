"""Real documents for the tokenize / mix / export tests: Gutenberg books and Wikipedia from ../shared/data."""

from __future__ import annotations

import bz2
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa

from pipeline.core.schema import DOC_SCHEMA
from pipeline.core.shards import write_table
from tests.conftest import data_path

# (file, encoding): English ASCII, French UTF-8 with BOM, Dutch ISO-8859-1
BOOKS = (("16215.txt", "ascii"), ("44157-0.txt", "utf-8"), ("24675-8.txt", "latin-1"))


def book_docs(paragraphs_per_doc: int = 25, max_docs_per_book: int = 40) -> list[dict]:
    """Each book cut into documents of whole paragraphs, text kept as is (CRLF line ends included)."""
    docs = []
    for name, encoding in BOOKS:
        raw = data_path("gutenberg", name).read_bytes().decode(encoding)
        paras = raw.split("\r\n\r\n")
        for k in range(min(max_docs_per_book, len(paras) // paragraphs_per_doc)):
            text = "\r\n\r\n".join(paras[k * paragraphs_per_doc:(k + 1) * paragraphs_per_doc])
            docs.append(_row(f"books/{name.split('.')[0]}#{k}", "books", text, {"title": name}))
    return docs


def wikipedia_docs(max_pages: int = 25, max_chars: int = 12_000) -> list[dict]:
    """Vietnamese articles as WikiExtractor output them, and English wikitext from the enwiki dump head."""
    docs = []
    extracted = data_path("wikipedia", "wikiextractor_viwiki_test.expected_output_wiki_00.txt").read_text("utf-8")
    for m in re.finditer(r'<doc id="(\d+)" url="([^"]*)" title="([^"]*)">\n(.*?)</doc>', extracted, re.S):
        if m.group(4).strip():
            docs.append(_row(f"wikipedia/vi/{m.group(1)}", "wikipedia", m.group(4), {"title": m.group(3)},
                             url=m.group(2)))
    dump = data_path("wikipedia", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    ns = "{http://www.mediawiki.org/xml/export-0.10/}"
    with bz2.open(dump) as f:
        for _, el in ET.iterparse(f):
            if el.tag != f"{ns}page":
                continue
            text = el.findtext(f"{ns}revision/{ns}text") or ""
            if el.find(f"{ns}redirect") is None and text.strip():
                docs.append(_row(f"wikipedia/en/{el.findtext(f'{ns}id')}", "wikipedia", text[:max_chars],
                                 {"title": el.findtext(f"{ns}title")}))
                if len(docs) >= max_pages:
                    break
            el.clear()
    return docs


def _row(doc_id: str, source: str, text: str, meta: dict, url: str | None = None) -> dict:
    return {"id": doc_id, "source": source, "text": text, "url": url, "meta": json.dumps(meta, sort_keys=True)}


def write_doc_shards(directory: Path, docs: list[dict], n_shards: int, prefix: str = "part") -> list[Path]:
    """Docs dealt round-robin into `n_shards` Parquet shards named `<prefix>-NNN.parquet`."""
    paths = []
    for s in range(n_shards):
        path = directory / f"{prefix}-{s:03d}.parquet"
        write_table(pa.Table.from_pylist(docs[s::n_shards], schema=DOC_SCHEMA), path)
        paths.append(path)
    return paths


def shard_order(docs: list[dict], n_shards: int) -> list[dict]:
    """The documents in the order tokenize_shards reads them from `write_doc_shards(..., n_shards)`."""
    return [d for s in range(n_shards) for d in docs[s::n_shards]]
