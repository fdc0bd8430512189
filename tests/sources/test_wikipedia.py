"""The wikipedia extractor on real dumps: counts, ids and meta, clean text, cut and broken dumps, Ray."""

from __future__ import annotations

import bz2
import collections
import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.core.extractor import PlanContext, WorkUnit
from pipeline.core.schema import Doc, Rejected
from pipeline.running.runner import run_extract
from sources.wikipedia import WikipediaConfig, WikipediaExtractor
from tests.conftest import data_path

ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEFTOVER_MARKUP = ("{{", "}}", "[[", "]]", "<ref", "'''", "==")


def run(path: Path, config: WikipediaConfig | None = None) -> list[Doc | Rejected]:
    return list(WikipediaExtractor(config).extract(WorkUnit("t", {"path": str(path)}, "x")))


def reasons(items) -> collections.Counter[str]:
    return collections.Counter(i.reason if isinstance(i, Rejected) else "kept" for i in items)


@pytest.fixture(scope="module")
def enwiki_items():
    return run(data_path("wikipedia", ENWIKI))


def test_enwiki_counts(enwiki_items):
    # 206 pages: 205 in ns 0 of which 99 redirects (SOURCES.md: 100 <redirect>, one is in ns 4).
    counts = reasons(enwiki_items)
    assert sum(counts.values()) == 206
    assert counts["wikipedia:redirect"] == 99
    assert counts["wikipedia:namespace"] == 1
    assert counts["wikipedia:disambiguation"] >= 5
    assert counts["kept"] == 206 - 99 - 1 - counts["wikipedia:disambiguation"] - counts["wikipedia:empty"]
    assert counts["kept"] >= 95


def test_enwiki_ids_meta_and_clean_text(enwiki_items):
    docs = [d for d in enwiki_items if isinstance(d, Doc)]
    anarchism = docs[0]
    assert anarchism.id == "wikipedia/en/12"
    assert anarchism.url == "https://en.wikipedia.org/wiki/Anarchism"
    assert anarchism.meta["title"] == "Anarchism"
    assert anarchism.meta["page_id"] == 12 and anarchism.meta["revision_id"] == 716551092
    assert anarchism.meta["language"] == "en" and anarchism.meta["timestamp"].startswith("2016-")
    assert anarchism.text.startswith("Anarchism is a political philosophy that advocates self-governed societies")
    assert "\n\nEtymology and terminology\n\n" in anarchism.text
    assert len({d.id for d in docs}) == len(docs)
    for d in docs:
        for tok in LEFTOVER_MARKUP:
            assert tok not in d.text, (d.meta["title"], tok)
        assert "Category:" not in d.text and "thumb|" not in d.text


def test_disambiguation_kept_when_configured():
    items = run(data_path("wikipedia", ENWIKI), WikipediaConfig(skip_disambiguation=False))
    assert reasons(items)["wikipedia:disambiguation"] == 0
    assert any(isinstance(i, Doc) and i.meta["title"] == "Austin (disambiguation)" for i in items)


def test_viwiki_export_without_closing_tag_is_a_counted_truncation():
    # The real viwiki export ends after its last </page>, without </mediawiki>.
    path = data_path("wikipedia", "wikiextractor_viwiki_test.xml")
    items = run(path)
    counts = reasons(items)
    assert counts == {"kept": 5, "wikipedia:redirect": 3, "wikipedia:namespace": 1, "wikipedia:empty": 1,
                      "wikipedia:truncated-dump": 1}
    cut = [i for i in items if isinstance(i, Rejected) and i.reason == "wikipedia:truncated-dump"][0]
    assert cut.meta["file"] == str(path) and cut.meta["pages_before"] == 10
    vi = next(i for i in items if isinstance(i, Doc) and i.meta["title"] == "Tiếng Việt")
    assert vi.id == "wikipedia/vi/13" and vi.url == "https://vi.wikipedia.org/wiki/Ti%E1%BA%BFng_Vi%E1%BB%87t"
    assert "Thể loại" not in vi.text and "Tập tin" not in vi.text


def _enwiki_xml() -> bytes:
    return bz2.decompress(data_path("wikipedia", ENWIKI).read_bytes())


def test_gzip_multistream_bz2_and_plain_give_the_same_docs(tmp_path):
    head, _, rest = _enwiki_xml().partition(b"<page>")
    pages = [b"<page>" + p for p in rest.split(b"<page>")[:40]]
    pages[-1] = pages[-1].partition(b"</page>")[0] + b"</page>\n"
    xml = head + b"".join(pages) + b"</mediawiki>\n"
    (tmp_path / "d.xml").write_bytes(xml)
    (tmp_path / "d.xml.gz").write_bytes(gzip.compress(xml))
    # multistream: the header in its own stream, then 10 pages per stream, as Wikimedia writes them
    chunks = [head] + [b"".join(pages[i : i + 10]) for i in range(0, 40, 10)] + [b"</mediawiki>\n"]
    (tmp_path / "d-multistream.xml.bz2").write_bytes(b"".join(bz2.compress(c) for c in chunks))
    expected = [(i.id, getattr(i, "text", "")) for i in run(tmp_path / "d.xml")]
    assert len(expected) == 40 and sum(isinstance(i, Doc) for i in run(tmp_path / "d.xml")) >= 3
    for name in ("d.xml.gz", "d-multistream.xml.bz2"):
        assert [(i.id, getattr(i, "text", "")) for i in run(tmp_path / name)] == expected, name


def test_truncated_bz2_keeps_pages_before_the_cut(tmp_path):
    data = data_path("wikipedia", ENWIKI).read_bytes()
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(data[: len(data) // 2])
    items = run(cut)
    counts = reasons(items)
    assert counts["wikipedia:truncated-dump"] == 1
    assert 20 < counts["kept"] < 98
    row = next(i for i in items if isinstance(i, Rejected) and i.reason == "wikipedia:truncated-dump")
    assert row.meta["file"] == str(cut) and row.meta["decompressed_offset"] > 0
    assert items[-1] is row


def test_malformed_xml_and_empty_file(tmp_path):
    xml = _enwiki_xml()
    i = xml.index(b"<title>Autism</title>")
    bad = tmp_path / "bad.xml"
    bad.write_bytes(xml[:i] + b"<title>Autism</oops>" + xml[i + 21 :])
    items = run(bad)
    counts = reasons(items)
    assert counts["wikipedia:malformed-xml"] == 1 and counts["kept"] >= 1
    row = next(i for i in items if isinstance(i, Rejected) and i.reason == "wikipedia:malformed-xml")
    assert "mismatched tag" in row.meta["error"] and "line" in row.meta["error"]
    empty = tmp_path / "empty.xml.bz2"
    empty.write_bytes(b"")
    assert reasons(run(empty)) == {"wikipedia:empty-file": 1}
    garbage = tmp_path / "garbage.bz2"
    garbage.write_bytes(b"BZh9" + b"\x00" * 100)
    assert reasons(run(garbage)) == {"wikipedia:corrupt-dump": 1}


def test_run_extract_with_ray(tmp_path, ray_executor):
    ex = WikipediaExtractor()
    units = ex.plan([str(data_path("wikipedia"))], PlanContext(ray_executor, tmp_path))
    # the directory's SOURCES.md and WikiExtractor output are not dumps
    assert [Path(u.payload["path"]).name for u in units] == [ENWIKI, "wikiextractor_viwiki_test.xml"]
    report = run_extract(ex, units, tmp_path / "out", ray_executor)
    assert not report.failed
    stage = json.loads((tmp_path / "out" / "_stage.json").read_text())
    totals = stage["totals"]
    assert totals["in_docs"] == 206 + 11 and totals["kept_docs"] + totals["rejected_docs"] == totals["in_docs"]
    kept = pq.read_table(sorted((tmp_path / "out").glob("*.parquet"))).to_pylist()
    assert {r["id"] for r in kept} >= {"wikipedia/en/12", "wikipedia/vi/13"}
    rejected = pq.read_table(sorted((tmp_path / "out" / "rejected").glob("*.parquet"))).to_pylist()
    assert {"wikipedia:redirect", "wikipedia:truncated-dump"} <= {r["reason"] for r in rejected}


def test_dump_streamed_over_http_gives_the_same_documents(tmp_path):
    """A dump given as a URL is streamed (never stored) and yields exactly what the local file does."""
    import functools
    import http.server
    import threading

    from pipeline.core.extractor import PlanContext
    from sources.wikipedia import WikipediaExtractor
    from tests.conftest import data_path

    dump = data_path("wikipedia", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(dump.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{dump.name}"
        ex = WikipediaExtractor()
        [remote] = ex.plan([url], PlanContext(None, tmp_path))
        [local] = ex.plan([str(dump)], PlanContext(None, tmp_path))
        assert remote.fingerprint == f"url:{url}"
        got = [(d.id, d.text, getattr(d, "reason", None)) for d in ex.extract(remote)]
        want = [(d.id, d.text, getattr(d, "reason", None)) for d in ex.extract(local)]
        assert got == want and len(got) > 100
    finally:
        server.shutdown()
