"""The main-text extractors selectable as `[sources.cc.html] extractor = ...` (measured in bench/RESULTS.md).

* `hybrid` (the default): the page is parsed once, elements that never hold main text (script, style,
  svg, iframe, ...) are dropped, and trafilatura runs without its readability/jusText fallback
  comparison. That fallback changes the output of about 6% of pages, those where trafilatura's own
  extraction is short or covers little of the page, so it runs (on the same tree) only where the fast
  pass looks unreliable: its text is shorter than `hybrid_min_chars`, or has fewer words than
  `hybrid_min_page_share` of the page's words (16% of the annotated pages). Same F1 as `trafilatura` on
  both annotated sets, less CPU. trafilatura's steps run through sources/html_mirror.py, a mirror of them
  with cheaper internals (Python predicates for its XPath pruning, no needless tree copies, the fast
  pass's work reused by the fallback): the same text byte for byte at half the CPU.
* `hybrid_reference`: the same rule with `trafilatura.extract` itself for both passes (twice the CPU of
  `hybrid`), the reference `hybrid` is tested and measured against.
* `trafilatura`: every page through trafilatura's full cascade (`fast = true` skips the fallback).
* `resiliparse`: resiliparse's C++ main-content heuristics (lexbor parser). Many times faster, lower
  precision (more boilerplate). C++ cannot be interrupted by the time limit, so pages with very many tags
  nested very deep (which it handles in quadratic time) go to the `trafilatura` path instead.

Both trafilatura modes parse with trafilatura's parser settings and checks but a C-level element class
lookup (see `_parser`), and hand trafilatura the tree.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sources import html_mirror

if TYPE_CHECKING:
    from sources.html import HtmlConfig

EXTRACTORS = ("hybrid", "trafilatura", "resiliparse", "hybrid_reference")
# Elements whose text is never main text: dropped (tail text kept) before any XPath runs over the tree.
NEVER_TEXT = ("script", "style", "noscript", "svg", "template", "link", "iframe", "object", "embed", "canvas",
              "map", "audio", "video", "source", "track", "param", "select", "math")
# Only pages with more tags are scanned for depth (4 of the 1,117 annotated pages): fewer tags nest at most
# 10,000 deep, about 3 s of resiliparse at worst (it took 0.3 s at 3,000, 3 s at 10,000 nested divs).
DEEP_CHECK_TAGS = 10_000
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr p li option".split())


@lru_cache(maxsize=8)
def trafilatura_config(min_extracted_chars: int, max_tree_elements: int) -> Any:
    from trafilatura.settings import use_config

    cfg = use_config()
    cfg.set("DEFAULT", "MIN_EXTRACTED_SIZE", str(min_extracted_chars))
    cfg.set("DEFAULT", "MAX_TREE_SIZE", str(max_tree_elements) if max_tree_elements > 0 else "")
    cfg.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
    return cfg


def nesting_depth(html: str) -> int:
    """Deepest element nesting by a scan of the tags (void and optional-close tags do not nest)."""
    depth = deepest = 0
    for m in _TAG_RE.finditer(html):
        closing, name, selfclosing = m.groups()
        if closing:
            depth = max(0, depth - 1)
        elif not selfclosing and name.lower() not in _VOID:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def too_deep(html: str, max_depth: int) -> bool:
    """Whether the page nests deeper than `max_depth`; counting tags first keeps ordinary pages cheap."""
    return html.count("<") > DEEP_CHECK_TAGS and nesting_depth(html) > max_depth


@lru_cache(maxsize=1)
def _parser() -> Any:
    """trafilatura's HTML parser settings with a C-level element class lookup: lxml.html's own lookup is a
    Python call per element proxy, ~8% of extraction time; trafilatura uses none of the form classes it
    provides, and its output on both annotated sets is the same byte for byte."""
    from lxml import etree
    from lxml import html as lxml_html

    parser = lxml_html.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8",
                                  remove_comments=True, remove_pis=True)
    parser.set_element_class_lookup(etree.ElementDefaultClassLookup(
        element=lxml_html.HtmlElement, comment=lxml_html.HtmlComment, pi=lxml_html.HtmlProcessingInstruction,
        entity=lxml_html.HtmlEntity))
    return parser


def _parse(html: str) -> Any:
    """The page's tree as trafilatura's `load_html` builds it (same checks and repairs), or None."""
    from lxml import html as lxml_html
    from trafilatura.utils import is_dubious_html

    def from_bytes() -> Any:
        try:
            return lxml_html.fromstring(html.encode("utf-8", "surrogatepass"), parser=_parser())
        except Exception:  # noqa: BLE001 - as load_html: an unparsable page has no tree
            return None

    beginning = html[:50].lower()
    dubious = is_dubious_html(beginning)
    html = html_mirror.repair_faulty_html(html, beginning)
    tree, tried_bytes = None, False
    try:
        tree = lxml_html.fromstring(html, parser=_parser())
    except ValueError:  # a str with an encoding declaration: lxml wants bytes
        tree, tried_bytes = from_bytes(), True
    except Exception:  # noqa: BLE001, S110 - e.g. "Document is empty": the bytes pass below decides
        pass
    if (tree is None or len(tree) < 1) and not tried_bytes:
        tree = from_bytes()
    return None if tree is None or (dubious and len(tree) < 2) else tree


def _trafilatura(doc: Any, url: str | None, config: HtmlConfig, fast: bool) -> str:
    """trafilatura.extract on a string or a parsed tree (which it copies, so the tree can be reused)."""
    import trafilatura

    return trafilatura.extract(
        doc,
        url=url,
        fast=fast,
        favor_precision=config.favor_precision,
        favor_recall=config.favor_recall,
        include_comments=config.include_comments,
        include_tables=config.include_tables,
        with_metadata=False,
        deduplicate=config.deduplicate,
        config=trafilatura_config(config.min_extracted_chars, config.max_tree_elements),
    ) or ""


def drop_never_text(tree: Any) -> Any:
    """Remove script, style, svg, ... subtrees (keeping the text after them) in place: in C, where lxml.html's
    `drop_tree` per element took twice the CPU, for the same tree and the same text (the text after a removed
    element stays a text node of its own, which the lxml API reads merged with the text before it)."""
    from lxml.etree import strip_elements

    strip_elements(tree, *NEVER_TEXT, with_tail=False)
    return tree


def needs_fallback(text: str, tree: Any, config: HtmlConfig) -> bool:
    """The hybrid rule: is the fast pass's text short, or a small share of the page's words?"""
    page_words = len(tree.text_content().split()) if config.hybrid_min_page_share > 0 else 0
    return _short(text, page_words, config)


def hybrid(html: str, url: str | None, config: HtmlConfig) -> tuple[str, str]:
    """`hybrid_reference`, trafilatura itself: (text, pass used: `fast` or `fallback`), see the module doc."""
    tree = _parse(html)
    if tree is None:
        return "", "fast"
    drop_never_text(tree)
    text = _trafilatura(tree, url, config, fast=True)
    if not needs_fallback(text, tree, config):
        return text, "fast"
    return _trafilatura(tree, url, config, fast=False), "fallback"


def _mirror_options(config: HtmlConfig, url: str | None, fast: bool) -> Any:
    """The Extractor `_trafilatura`'s call would make for this page, for sources/html_mirror.py."""
    return html_mirror.options_for(_extractor(fast, config.favor_precision, config.favor_recall,
                                              config.include_comments, config.include_tables, config.deduplicate,
                                              config.min_extracted_chars, config.max_tree_elements), url)


@lru_cache(maxsize=16)
def _extractor(fast: bool, favor_precision: bool, favor_recall: bool, include_comments: bool, include_tables: bool,
               deduplicate: bool, min_extracted_chars: int, max_tree_elements: int) -> Any:
    """The Extractor `_trafilatura` has trafilatura build for every page (reading its config, ~2% of the
    extraction's CPU), built once: it depends only on these settings and the page's URL."""
    from trafilatura.settings import Extractor

    return Extractor(config=trafilatura_config(min_extracted_chars, max_tree_elements), output_format="txt",
                     fast=fast, precision=favor_precision, recall=favor_recall, comments=include_comments,
                     tables=include_tables, dedup=deduplicate)


def mirror(html: str, url: str | None, config: HtmlConfig) -> tuple[str, str]:
    """`hybrid`: the text of `hybrid_reference` (with `fast`, trafilatura's fast mode) through
    sources/html_mirror.py, at less CPU. Settings the mirror does not cover go to trafilatura itself."""
    fast_options = _mirror_options(config, url, fast=True)
    if not html_mirror.supported(fast_options):
        return run(html, url, replace(config, extractor="hybrid_reference"))
    tree = _parse(html)
    if tree is None:
        return "", "fast"
    drop_never_text(tree)
    if config.fast:
        return html_mirror.run(tree, fast_options).text, "fast"
    # the hybrid rule's page measure, taken before the extraction prunes the tree in place
    page_words = len(tree.text_content().split()) if config.hybrid_min_page_share > 0 else 0
    # trafilatura's duplicate filter counts every segment it sees: a fallback that reused the fast pass
    # would see them once where trafilatura sees them twice, so with it on the fallback starts over
    reuse = not config.deduplicate
    state = html_mirror.run(tree, fast_options, keep_for_fallback=reuse)
    if not _short(state.text, page_words, config):
        return state.text, "fast"
    slow_options = _mirror_options(config, url, fast=False)
    if reuse:
        return html_mirror.fallback(state, slow_options), "fallback"
    tree = drop_never_text(_parse(html))
    return html_mirror.run(tree, slow_options).text, "fallback"


def _short(text: str, page_words: int, config: HtmlConfig) -> bool:
    """The hybrid rule, given the page's word count (taken before an extraction that prunes the tree)."""
    if len(text) < config.hybrid_min_chars:
        return True
    return config.hybrid_min_page_share > 0 and len(text.split()) < config.hybrid_min_page_share * page_words


def resiliparse(html: str, config: HtmlConfig) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(html, main_content=True, preserve_formatting=True,
                              comments=config.include_comments, alt_texts=False)
    return unicodedata.normalize("NFC", text)


def run(html: str, url: str | None, config: HtmlConfig) -> tuple[str, str]:
    """The configured extractor on decoded HTML: (text, which path produced it)."""
    if config.extractor == "hybrid":
        return mirror(html, url, config)
    if config.extractor == "hybrid_reference" and not config.fast:
        return hybrid(html, url, config)
    if config.extractor == "resiliparse":
        if too_deep(html, config.max_nesting_depth):
            return _trafilatura(html, url, config, fast=config.fast), "trafilatura-deep"
        return resiliparse(html, config), "resiliparse"
    tree = _parse(html)
    return (_trafilatura(tree, url, config, fast=config.fast) if tree is not None else ""), "trafilatura"
