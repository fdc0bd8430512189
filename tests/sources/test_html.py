"""sources/html.py: charset decoding and trafilatura extraction on real pages."""

from __future__ import annotations

import gzip
import json
import threading
import time

import pytest

from sources.html import (
    ExtractionTimeout,
    HtmlConfig,
    decode_html,
    extract_html,
    garbled,
    rough_text,
    time_limit,
    title_of,
)
from sources.warc import WarcRecord, iter_records
from tests.conftest import data_path


def _responses(name: str) -> list[WarcRecord]:
    return [
        r for r in iter_records(data_path("warc", name), name)
        if isinstance(r, WarcRecord) and r.rec_type == "response" and r.http_status == 200
    ]


def test_decodes_every_real_common_crawl_page() -> None:
    pages = _responses("resiliparse_CC-MAIN-2020-34_warcfile.warc.gz")
    codecs_used = {}
    for r in pages:
        text, codec = decode_html(r.payload, r.content_type)
        codecs_used[r.uri] = codec
        assert "\ufffd" not in text[:5000], r.uri
    # GBK-declared pages decode with the gb18030 superset; undeclared UTF-8 pages as UTF-8
    assert "gb18030" in codecs_used.values() and "utf-8" in codecs_used.values()
    chinese = [decode_html(r.payload, r.content_type)[0] for r in pages if codecs_used[r.uri] == "gb18030"]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in chinese)


def test_charset_precedence_and_fallbacks() -> None:
    body = "<html><head><meta charset='iso-8859-1'></head><body>Grüße aus Köln</body></html>"
    latin = body.encode("cp1252")
    assert decode_html(latin, None) == (body, "cp1252")  # meta tag
    assert decode_html(latin, "text/html; charset=windows-1252")[1] == "cp1252"  # HTTP header
    # a wrong declaration (UTF-8 declared, Latin-1 bytes) is passed over instead of garbling the text
    text, codec = decode_html(latin, "text/html; charset=utf-8")
    assert "Grüße" in text and codec == "cp1252"
    utf8 = body.replace("iso-8859-1", "utf-8").encode("utf-8")
    assert decode_html(b"\xef\xbb\xbf" + utf8, "text/html; charset=latin-1")[1] == "utf-8"  # BOM wins
    assert decode_html(utf8, "text/html; charset=no-such-charset")[1] == "utf-8"
    # undetectable noise never raises
    text, _ = decode_html(bytes(range(256)) * 50, "text/html; charset=utf-8")
    assert isinstance(text, str)


def test_extracts_main_text_of_annotated_pages() -> None:
    root = data_path("extraction", "trafilatura_eval")
    spec = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    wanted = found = leaked = in_page = 0
    for url, entry in sorted(spec.items())[:40]:
        path = root / "html" / "eval" / (entry["file"] + ".gz")
        if not path.exists():
            continue
        payload = gzip.decompress(path.read_bytes())
        result = extract_html(payload, url, None, HtmlConfig())
        page_text = rough_text(decode_html(payload)[0], max_chars=10**7)
        assert (result.text is None) != (result.reason is None)
        text = result.text or ""
        wanted += len(entry["with"])
        in_page += sum(s in page_text for s in entry["without"])
        found += sum(s in text for s in entry["with"])
        leaked += sum(s in text for s in entry["without"])
    # the main text is kept and most boilerplate present on the pages is left out
    assert wanted > 50 and in_page > 50
    assert found / wanted > 0.8 and leaked / in_page < 0.5, (found, wanted, leaked, in_page)


def test_rejections_have_reasons() -> None:
    cfg = HtmlConfig()
    assert extract_html(b"<html><body></body></html>", None, None, cfg).reason == "extract-empty"
    assert extract_html(b"x" * 100, None, None, HtmlConfig(max_html_bytes=50)).reason == "html-too-large"
    deep = b"<html><body>" + b"<div>" * 100_000 + b"text" + b"</div>" * 100_000 + b"</body></html>"
    assert extract_html(deep, None, None, cfg).reason in ("extract-empty", "extract-failed")


def test_garbled_share_of_the_head() -> None:
    assert not garbled("", 0.01) and not garbled("<html>plain text\r\n\tand more</html>", 0.01)
    assert not garbled("a" * 99 + "\ufffd", 0.01)  # 1% is not more than 1%
    assert garbled("a" * 98 + "\ufffd\x7f", 0.01) and garbled("\x00\x01\x1f", 0.5)
    assert not garbled("a" * (64 << 10) + "\x00" * 1000, 0.01)  # only the head is looked at


def test_time_limit_interrupts_in_the_main_thread_only() -> None:
    with pytest.raises(ExtractionTimeout):
        with time_limit(0.05):
            time.sleep(5)
    done = []

    def worker() -> None:
        with time_limit(0.01):  # no signals off the main thread: the block runs to completion
            time.sleep(0.05)
        done.append(True)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert done == [True]


def test_cheap_text_views() -> None:
    html = (
        "<html><head><title> A &amp; B </title><style>p{}</style></head>"
        "<body><script>var x = '<p>no</p>';</script><!-- hidden --><p>Visible &eacute;</p></body></html>"
    )
    assert title_of(html) == "A & B"
    assert rough_text(html) == "Visible é"


def _sleep_under_limit(seconds: float) -> str:
    try:
        with time_limit(0.05):
            time.sleep(seconds)
    except ExtractionTimeout:
        return "timeout"
    return "done"


def test_time_limit_works_inside_ray_tasks(ray_executor) -> None:
    # Ray runs ordinary tasks in the worker's main thread, so the SIGALRM limit applies there
    assert ray_executor.map(_sleep_under_limit, [2.0]) == ["timeout"]
