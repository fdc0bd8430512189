"""sources/html_modes.py: the selectable extractors, the hybrid's rule, and hostile pages through the cc path."""

from __future__ import annotations

import gzip
import io
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from lxml import html as lxml_html

from pipeline.core.config import ConfigError, from_mapping
from pipeline.core.schema import Doc, Rejected
from sources import html_modes
from sources.cc import CommonCrawlConfig, extract_warc_file
from sources.html import HtmlConfig, decode_html, extract_html
from tests.conftest import data_path


def _eval_pages(n: int, start: int = 0) -> list[tuple[str, bytes, dict]]:
    """(url, html bytes, annotations) of real pages of trafilatura's evaluation set."""
    root = data_path("extraction", "trafilatura_eval")
    spec = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    pages = []
    for url, entry in sorted(spec.items())[start:]:
        path = root / "html" / "eval" / (entry["file"] + ".gz")
        if path.exists() and url.startswith("http"):
            pages.append((url, gzip.decompress(path.read_bytes()), entry))
        if len(pages) == n:
            break
    return pages


@pytest.mark.parametrize("extractor", html_modes.EXTRACTORS)
def test_every_extractor_gives_the_main_text_of_real_pages(extractor: str) -> None:
    cfg = HtmlConfig(extractor=extractor)
    wanted = found = with_text = 0
    pages = _eval_pages(20)
    for url, payload, entry in pages:
        result = extract_html(payload, url, None, cfg)
        assert (result.text is None) != (result.reason is None)
        text = result.text or ""
        with_text += bool(text)
        wanted += len(entry["with"])
        found += sum(s in text for s in entry["with"])
    assert with_text >= len(pages) - 2 and found / wanted > 0.75, (extractor, found, wanted)


def test_trafilatura_mode_gives_what_trafilatura_gives_on_the_page_string() -> None:
    # our parse (same checks and repairs, C-level class lookup) changes nothing in trafilatura's output
    cfg = HtmlConfig(extractor="trafilatura")
    for url, payload, _ in _eval_pages(12, start=100):
        page, _ = decode_html(payload)
        text, used = html_modes.run(page, url, cfg)
        assert used == "trafilatura" and text == html_modes._trafilatura(page, url, cfg, fast=False), url


def test_unknown_extractor_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="extractor: must be one of hybrid, trafilatura, resiliparse, hybrid_reference"):
        from_mapping(CommonCrawlConfig, {"html": {"extractor": "magic"}}, "x.toml: sources.cc")
    assert from_mapping(CommonCrawlConfig, {"html": {"extractor": "resiliparse"}}, "x").html.extractor == "resiliparse"


def test_hybrid_rule_on_lengths_and_page_share() -> None:
    cfg = HtmlConfig()
    page = lxml_html.fromstring("<html><body><p>" + "word " * 1000 + "</p></body></html>")
    assert html_modes.needs_fallback("short", page, cfg)  # below hybrid_min_chars
    long_text = "word " * 100  # 500 chars but 10% of the page's words
    assert html_modes.needs_fallback(long_text, page, cfg)
    assert not html_modes.needs_fallback("word " * 300, page, cfg)  # 30% of the page
    assert not html_modes.needs_fallback(long_text, page, HtmlConfig(hybrid_min_page_share=0))


def test_hybrid_takes_the_fast_pass_or_the_fallback_as_its_rule_says() -> None:
    cfg = HtmlConfig()
    passes = Counter()
    for url, payload, _ in _eval_pages(40):
        page, _ = decode_html(payload)
        text, used = html_modes.hybrid(page, url, cfg)
        passes[used] += 1
        tree = html_modes.drop_never_text(html_modes._parse(page))
        fast = html_modes._trafilatura(tree, url, cfg, fast=True)
        assert used == ("fallback" if html_modes.needs_fallback(fast, tree, cfg) else "fast"), url
        assert text == (fast if used == "fast" else html_modes._trafilatura(tree, url, cfg, fast=False)), url
    # both branches are taken on real pages, the fast one for most of them
    assert passes["fallback"] >= 1 and passes["fast"] > passes["fallback"], passes


def test_nesting_depth_scan() -> None:
    assert html_modes.nesting_depth("<html><body><p>a<br>b<p>c<div><img src=x></div></body></html>") == 3
    deep = "<html><body>" + "<div>" * 20_000 + "x" + "</div>" * 20_000 + "</body></html>"
    assert html_modes.too_deep(deep, 1_000)
    assert not html_modes.too_deep("<html><body>" + "<div>x</div>" * 20_000 + "</body></html>", 1_000)


# ----------------------------------------------------------------------------------------- hostile pages


def _warc(path: Path, pages: list[tuple[str, bytes, str]]) -> Path:
    """A gzipped WARC of HTTP 200 responses (url, body, content type), written with warcio."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for url, body, ctype in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=headers))
    return path


@pytest.mark.parametrize("extractor", html_modes.EXTRACTORS)
def test_hostile_pages_are_counted_rejections_with_reasons(tmp_path: Path, extractor: str) -> None:
    (url, real, _), = _eval_pages(1, start=5)
    rng = random.Random(0)
    deep = b"<html><body>" + b"<div>" * 100_000 + b"text" + b"</div>" * 100_000 + b"</body></html>"
    huge = b"<html><body>" + b"<p>Fifty megabytes of one paragraph after another.</p>" * 1_000_000 + b"</body></html>"
    noise = b"<html><body><p>" + bytes(rng.randrange(256) for _ in range(100_000)) + b"</p></body></html>"
    assert len(huge) > 50_000_000
    warc = _warc(tmp_path / "hostile.warc.gz", [
        ("https://example.com/deep", deep, "text/html"),
        ("https://example.com/huge", huge, "text/html"),
        ("https://example.com/noise", noise, "text/html; charset=utf-8"),
        (url, real, "text/html"),
    ])
    cfg = CommonCrawlConfig(languages=[])
    cfg.html.extractor = extractor
    out = {item.url: item for item in extract_warc_file(warc, warc.name, cfg)}
    assert len(out) == 4  # every record is a document or a counted rejection, and the run went on
    reasons = {u: item.reason for u, item in out.items() if isinstance(item, Rejected)}
    assert reasons["https://example.com/huge"] == "cc:html-too-large"
    assert reasons["https://example.com/noise"] == "cc:bad-encoding"
    assert reasons["https://example.com/deep"] in ("cc:extract-empty", "cc:extract-failed")
    assert isinstance(out[url], Doc) and out[url].text
