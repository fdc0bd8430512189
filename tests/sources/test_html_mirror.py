"""sources/html_mirror.py: the mirror of trafilatura 2.3.1 behind `hybrid` gives trafilatura's own text.

Compared on real pages of both shared extraction sets: each Python matcher against the XPath expression
it replaces, and whole extractions against `hybrid_reference` (trafilatura itself)."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from dataclasses import replace
from functools import cache

import pytest
from lxml import etree
from lxml import html as lxml_html

from sources import html_mirror, html_modes, html_xpaths
from sources.html import HtmlConfig, decode_html
from tests.conftest import data_path


@cache
def _all_pages() -> tuple[tuple[str, str], ...]:
    """(url, decoded html) of every page of both sets, in a fixed order."""
    root = data_path("extraction", "trafilatura_eval")
    spec = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    paths = []
    for url, entry in sorted(spec.items()):
        path = root / "html" / "eval" / (entry["file"] + ".gz")
        if path.exists():
            paths.append((url, path))
    news = data_path("extraction", "newspaper_fulltext")
    with open(news / "pairs.tsv", encoding="utf-8") as f:
        paths += [(row["url"], news / row["html_file"]) for row in csv.DictReader(f, delimiter="\t")
                  if row["status"] == "reference_text"]
    return tuple((url, decode_html(gzip.decompress(path.read_bytes()))[0]) for url, path in paths)


def _pages(n: int, offset: int = 0) -> list[tuple[str, str]]:
    """n pages evenly spaced over both sets."""
    pages = _all_pages()
    step = len(pages) / n
    return [pages[(int(i * step) + offset) % len(pages)] for i in range(n)]


def _tree(page: str) -> etree._Element:
    tree = html_modes._parse(page)
    assert tree is not None
    return html_modes.drop_never_text(tree)


def _converted(page: str) -> etree._Element:
    """The tree the main extractor searches: cleaned and converted to trafilatura's tags (list, item, ...)."""
    from trafilatura.htmlprocessing import convert_tags, tree_cleaning

    options = html_modes._mirror_options(HtmlConfig(), None, fast=True)
    return convert_tags(tree_cleaning(_tree(page), options), options)


def _pairs() -> list[tuple[str, html_xpaths.Matcher, etree.XPath]]:
    from trafilatura import xpaths as X

    m = html_xpaths.matchers()
    lists = [("RAW_TREE_PRUNE_XPATH", m.raw_tree_prune, X.RAW_TREE_PRUNE_XPATH),
             ("REMOVE_COMMENTS_AND_LISTS_XPATH", m.remove_comments_and_lists, X.REMOVE_COMMENTS_AND_LISTS_XPATH),
             ("REMOVE_COMMENTS_XPATH", m.remove_comments, X.REMOVE_COMMENTS_XPATH),
             ("OVERALL_DISCARD_XPATH", m.overall_discard, X.OVERALL_DISCARD_XPATH),
             ("TEASER_DISCARD_XPATH", m.teaser_discard, X.TEASER_DISCARD_XPATH),
             ("PRECISION_DISCARD_XPATH", m.precision_discard, X.PRECISION_DISCARD_XPATH),
             ("DISCARD_IMAGE_ELEMENTS", m.discard_image_elements, X.DISCARD_IMAGE_ELEMENTS)]
    pairs = [(f"{name}[{i}]", mine[i], theirs[i]) for name, mine, theirs in lists for i in range(len(theirs))]
    assert all(len(mine) == len(theirs) for _, mine, theirs in lists)
    return pairs


def test_matchers_select_what_trafilaturas_xpaths_select_on_real_pages() -> None:
    from trafilatura import xpaths as X

    m = html_xpaths.matchers()
    pairs = _pairs()
    selected = Counter()
    for url, page in _pages(60):
        for tree in (_tree(page), _converted(page)):
            for name, mine, xpath in pairs:
                got = mine(tree)
                assert got == xpath(tree), (name, url)
                selected[name] += len(got)
            first, second = m.overall_discard_both(tree)
            assert (first, second) == (X.OVERALL_DISCARD_XPATH[0](tree), X.OVERALL_DISCARD_XPATH[1](tree)), url
            # BODY_XPATH: trafilatura takes the first element each expression returns
            for i, (mine, xpath) in enumerate(zip(m.body, X.BODY_XPATH, strict=True)):
                assert mine(tree)[:1] == xpath(tree)[:1], (f"BODY_XPATH[{i}]", url)
    # the comparison is not vacuous: most expressions select elements on these pages
    assert sum(1 for n in selected.values() if n) >= len(pairs) - 3, selected


def test_pruning_lists_in_one_walk_leaves_the_tree_trafilatura_leaves() -> None:
    from trafilatura import xpaths as X
    from trafilatura.htmlprocessing import prune_unwanted_nodes

    m = html_xpaths.matchers()
    for url, page in _pages(40, offset=3):
        theirs, mine = _tree(page), _tree(page)
        prune_unwanted_nodes(theirs, X.RAW_TREE_PRUNE_XPATH)
        prune_unwanted_nodes(theirs, X.REMOVE_COMMENTS_AND_LISTS_XPATH)
        html_mirror.prune_all(mine, m.raw_and_comments(mine, True))
        assert etree.tostring(mine) == etree.tostring(theirs), url
        theirs, mine = _converted(page), _converted(page)
        for xpaths in (X.DISCARD_IMAGE_ELEMENTS, X.TEASER_DISCARD_XPATH, X.PRECISION_DISCARD_XPATH):
            prune_unwanted_nodes(theirs, xpaths)
        html_mirror.prune_all(mine, m.section_discards(mine, True, True, True))
        assert etree.tostring(mine) == etree.tostring(theirs), url


def test_attribute_edge_cases_match_the_xpaths() -> None:
    # string(@id|@class) is the attribute written first; a missing attribute is ""; @x='' still exists
    html = """<html><body>
      <div id="main" class="comment-list">a</div><div class="comment-list" id="main">b</div>
      <div class="x" id="comments">c</div><div id="x" class="cookie-bar">d</div><div class="x" id="cookie">e</div>
      <div data-lp-replacement-content="">f</div><span role="NAVIGATION">g</span><p style="display: none">h</p>
      <div id="x" style="hidden">i</div><div style="x" id="hidden">j</div><div aria-hidden="true">k</div>
      <div class="reply-x" id="y">l</div><div id="reply-y" class="x">m</div><section class="Teaser">n</section>
      <div id="x" class="page-bottom">o</div><div class="x link y">p</div><div style="border: 1px">q</div>
      <ul class="comments">r</ul><ol id="comment-3">s</ol><ul id="disqus_thread">t</ul><header>u</header>
      <div class="image-caption">v</div><aside class="infinite-scroll"><h1>w</h1></aside>
      <aside class="infinite-scroll">x</aside><div class="mvp-post-add-box"><h1>y</h1></div>
      <main>z</main><div class="main-body">z</div><article class="fullTEXT">z</article>
      <div id="Main-Content">z</div><div class="post">z</div><div itemprop="articleBody">z</div>
    </body></html>"""
    tree = lxml_html.fromstring(html)
    for name, mine, xpath in _pairs():
        assert mine(tree) == xpath(tree), name
        assert all(len(mine(el)) == len(xpath(el)) for el in tree.iter("div", "body")), name
    from trafilatura import xpaths as X

    for i, (mine, xpath) in enumerate(zip(html_xpaths.matchers().body, X.BODY_XPATH, strict=True)):
        for el in [tree, *tree.iter("body", "div")]:
            assert mine(el)[:1] == xpath(el)[:1], i


def test_hybrid_gives_the_reference_text_on_real_pages() -> None:
    cfg, ref = HtmlConfig(), HtmlConfig(extractor="hybrid_reference")
    passes = Counter()
    for url, page in _pages(90, offset=1):
        text, used = html_modes.run(page, url, cfg)
        assert (text, used) == html_modes.run(page, url, ref), url
        passes[used] += 1
    assert passes["fallback"] >= 5 and passes["fast"] > passes["fallback"], passes


@pytest.mark.parametrize("settings", [
    {"fast": True}, {"include_tables": False, "hybrid_min_chars": 1000, "hybrid_min_page_share": 0.0},
    {"favor_precision": False},  # not mirrored: trafilatura itself runs
])
def test_other_settings_give_the_reference_text(settings: dict) -> None:
    cfg = replace(HtmlConfig(), **settings)
    ref = replace(cfg, extractor="trafilatura" if cfg.fast else "hybrid_reference")
    for url, page in _pages(25, offset=2):
        assert html_modes.run(page, url, cfg)[0] == html_modes.run(page, url, ref)[0], url


def test_with_deduplication_the_fallback_sees_what_trafilatura_sees() -> None:
    # trafilatura's duplicate filter counts segments in a process-wide cache: each mode starts from empty
    from trafilatura.deduplication import LRU_TEST

    pages = _pages(30, offset=4)
    texts = {}
    for extractor in ("hybrid", "hybrid_reference"):
        LRU_TEST.clear()
        cfg = HtmlConfig(extractor=extractor, deduplicate=True)
        texts[extractor] = [html_modes.run(page, url, cfg) for url, page in pages + pages]
    LRU_TEST.clear()
    assert texts["hybrid"] == texts["hybrid_reference"]
    # the second round finds segments seen in the first: deduplication did take effect
    assert texts["hybrid"][:len(pages)] != texts["hybrid"][len(pages):]


def test_another_trafilatura_version_is_not_mirrored(monkeypatch: pytest.MonkeyPatch) -> None:
    import trafilatura

    url, page = _pages(1)[0]
    cfg = HtmlConfig()
    assert html_mirror.supported(html_modes._mirror_options(cfg, url, fast=True))
    monkeypatch.setattr(trafilatura, "__version__", "9.9.9")
    assert not html_mirror.supported(html_modes._mirror_options(cfg, url, fast=True))
    assert html_modes.run(page, url, cfg) == html_modes.run(page, url, HtmlConfig(extractor="hybrid_reference"))


def test_repair_faulty_html_is_trafilaturas() -> None:
    from trafilatura.utils import repair_faulty_html

    cases = ["<!DOCTYPE html/>\n<html><body>a</body></html>", "<html/>\n<body>b\x00c\x1fd\ufffe</body>",
             "<html><body>\x0bplain\uffff</body></html>", "<html><body>é\u200b\x7f</body></html>",
             # the doctype line: left as it is, repaired, or the whole page (no line break: one is added)
             "<!DOCTYPE html>\n<html></html>", '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN">\r\n<html>',
             '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN"><html><body>c</body></html>', "<!doctype html>"]
    cases += [page for _, page in _pages(30)]
    for html in cases:
        beginning = html[:50].lower()
        assert html_mirror.repair_faulty_html(html, beginning) == repair_faulty_html(html, beginning)
