"""Python equivalents of trafilatura 2.3.1's XPath lists (trafilatura/xpaths.py), for sources/html_mirror.py.

lxml evaluates each EXSLT `re:test()` of those expressions as a Python callback per element and
attribute (~45% of trafilatura's CPU on our pages). Here each expression is a Python predicate over
`iterdescendants(tags)` with the same regular expressions (answers remembered per attribute value),
returning the same elements in the same (document) order; tests/sources/test_html_mirror.py checks each
against its XPath on real pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Matcher = Callable[[Any], list[Any]]

# ------------------------------------------------------------------------------------- predicates


def _first(el: Any, a: str, b: str) -> str | None:
    """XPath's string(@a|@b) (None for ""): the value of whichever attribute comes first in the source."""
    va, vb = el.get(a), el.get(b)
    if va is None:
        return vb
    if vb is None:
        return va
    for key in el.keys():
        if key == a:
            return va
        if key == b:
            return vb
    return va  # pragma: no cover - both are present, one of them is among the keys


_MEMO_SIZE = 10_000  # values per regular expression, ~1 MB


def _test(pattern: str, flags: int = 0) -> Callable[[str | None], bool]:
    """`re:test(value, pattern)` as lxml evaluates it (Python's re.search; a missing attribute is ""), with
    the answers remembered: the same class and id values recur across a page's elements and passes."""
    search = re.compile(pattern, flags).search
    empty = search("") is not None
    if empty:  # the walks below skip elements without the attributes tested, true only if nothing matches ""
        raise ValueError(f"a pattern matching the empty string: {pattern!r}")
    memo: dict[str, bool] = {}

    def test(value: str | None) -> bool:
        if not value:
            return empty
        hit = memo.get(value)
        if hit is None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            hit = memo[value] = search(value) is not None
        return hit
    return test


def _tags_matcher(tags: tuple[str, ...], test: Callable[[Any], bool]) -> Matcher:
    """`.//*[self::t1 or self::t2 ...][test]`: the matching descendants in document order."""
    def match(tree: Any) -> list[Any]:
        return [el for el in tree.iterdescendants(*tags) if test(el)]
    return match


def _first_matcher(tags: tuple[str, ...] | None, test: Callable[[Any], bool]) -> Matcher:
    """`(.//*[self::t1 ...][test])[1]`: the first matching descendant, as a list of zero or one."""
    def match_first(tree: Any) -> list[Any]:
        for el in tree.iterdescendants(*tags) if tags else tree.iterdescendants(_element()):
            if test(el):
                return [el]
        return []
    return match_first


@lru_cache(maxsize=1)
def _element() -> Any:
    """The tag filter for elements only (no comments, processing instructions or entities)."""
    from lxml.etree import Element

    return Element


@dataclass(frozen=True)
class Matchers:
    """Python equivalents of trafilatura 2.3.1's XPath lists (trafilatura/xpaths.py), same names."""

    raw_tree_prune: list[Matcher]
    remove_comments_and_lists: list[Matcher]
    remove_comments: list[Matcher]
    overall_discard: list[Matcher]
    overall_discard_both: Callable[[Any], tuple[list[Any], list[Any]]]
    teaser_discard: list[Matcher]
    precision_discard: list[Matcher]
    discard_image_elements: list[Matcher]
    body: list[Matcher]
    # several of the lists above in one walk (see `prune_all`)
    raw_and_comments: Callable[[Any, bool], list[Any]]
    section_discards: Callable[[Any, bool, bool, bool], list[Any]]


@lru_cache(maxsize=1)
def matchers() -> Matchers:
    """Built from trafilatura's own token lists, so the regular expressions are the ones it compiles."""
    from trafilatura import xpaths as X

    alt = X._alt
    blocks = ("div", "item", "list", "p", "section", "span")
    element = _element()

    # RAW_TREE_PRUNE_XPATH
    mvp_any = _test("mvp-post-add-(?:box|wrap)|infinite-?scroll")
    mvp_box = _test("mvp-post-add-(?:box|wrap)")

    def raw0_of(el: Any, i: str | None, c: str | None) -> bool:
        if not (mvp_any(i) or mvp_any(c)):
            return False
        return next(el.iterdescendants("h1"), None) is None or mvp_box(i) or mvp_box(c)

    def raw0(el: Any) -> bool:
        return raw0_of(el, el.get("id"), el.get("class"))

    def raw1(el: Any) -> bool:
        return "elementor-share-buttons" in (el.get("class") or "")

    # REMOVE_COMMENTS_XPATH, REMOVE_COMMENTS_AND_LISTS_XPATH
    com_id = _test(f"^(?:{X._COMMENTS_ID}|disqus_thread|dsq-comments)")
    com_id_lists = _test(f"^(?:{X._COMMENTS_ID})")
    com_class = _test(X._COMMENTS_CLASS)

    def comments(el: Any) -> bool:
        return com_id(el.get("id")) or com_class(el.get("class"))

    def comments_and_lists_of(tag: str, i: str | None, c: str | None) -> bool:
        if not (com_id(i) or com_class(c)):
            return False
        return tag not in ("ol", "ul") or com_id_lists(i) or com_class(c)

    def comments_and_lists(el: Any) -> bool:
        return comments_and_lists_of(el.tag, el.get("id"), el.get("class"))

    # OVERALL_DISCARD_XPATH
    consent = _test(alt(X._CONSENT_ID_CLASS_TOKENS))
    od_id = _test(alt(X._OVERALL_DISCARD_BOTH_TOKENS + X._OVERALL_DISCARD_ID_TOKENS))
    od_class = _test(alt(X._OVERALL_DISCARD_BOTH_TOKENS + X._OVERALL_DISCARD_CLASS_TOKENS))
    hidden = _test("hidden")
    hidden_id = _test("reader-comments|akismet")
    hidden_class = _test("^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|hide-print"
                         "| hidden| hide|noprint|notloaded")
    block_set = frozenset(blocks)

    def overall0(el: Any, i: str | None, c: str | None) -> bool:
        return (el.get("data-lp-replacement-content") is not None
                or "nav" in (el.get("role") or "").replace("N", "n")
                or "MostPopularStories" in (el.get("data-component") or "")
                or consent(c if i is None else i if c is None else _first(el, "id", "class"))
                or od_id(i) or od_class(c))

    def overall1(el: Any, i: str | None, c: str | None) -> bool:
        if c == "comments-title":
            return True
        first = c if i is None else i if c is None else _first(el, "id", "class")
        if first is not None and first.startswith("reply-"):
            return True
        style = el.get("style")
        if hidden(style if i is None else i if style is None else _first(el, "id", "style")):
            return True
        if style is not None and ("display:none" in style or "display: none" in style):
            return True
        return hidden_id(i) or hidden_class(c) or el.get("aria-hidden") == "true"

    def overall_both(tree: Any) -> tuple[list[Any], list[Any]]:
        """Both OVERALL_DISCARD expressions in one walk over the tree."""
        first, second = [], []
        for el in tree.iterdescendants(element):
            i, c = el.get("id"), el.get("class")
            if el.tag in block_set and overall0(el, i, c):
                first.append(el)
            if overall1(el, i, c):
                second.append(el)
        return first, second

    def overall_discard0(tree: Any) -> list[Any]:
        return [el for el in tree.iterdescendants(*blocks) if overall0(el, el.get("id"), el.get("class"))]

    def overall_discard1(tree: Any) -> list[Any]:
        return [el for el in tree.iterdescendants(element) if overall1(el, el.get("id"), el.get("class"))]

    # TEASER_DISCARD_XPATH, PRECISION_DISCARD_XPATH, DISCARD_IMAGE_ELEMENTS
    def teaser(el: Any) -> bool:
        return "teaser" in (el.get("id") or "").replace("T", "t") or "teaser" in (el.get("class") or "").replace("T", "t")

    bottom = _test(r"(^|\s)bottom|bottom(\s|$)")
    link = _test(r"(^|\s)link(\s|$)")

    def precision1(el: Any) -> bool:
        first = _first(el, "id", "class")
        return bottom(first) or link(first) or "border" in (el.get("style") or "")

    def caption(el: Any) -> bool:
        return "caption" in (el.get("id") or "") or "caption" in (el.get("class") or "")

    # BODY_XPATH
    sections = ("article", "div", "main", "section")
    b0_id = _test(alt(X._ARTICLE_CONTENT_ID_TOKENS))
    b0_class = _test(alt(X._ARTICLE_CONTENT_CLASS_TOKENS))

    def body0(el: Any) -> bool:
        c, i = el.get("class"), el.get("id")
        return (c in ("post", "entry") or el.get("itemprop") == "articleBody" or i == "articleContent"
                or b0_id(i) or b0_class(c))

    b2_id = _test(alt(X._STORY_ID_TOKENS))
    b2_full = _test("fulltext", re.I)
    b2_class = _test(alt(X._STORY_CLASS_TOKENS))
    b2_classes = frozenset(("postarea", "art-postcontent", "text", "cell", "story"))

    def body2(el: Any) -> bool:
        c, i = el.get("class"), el.get("id")
        return (el.get("role") == "article" or i in ("article", "story") or c in b2_classes
                or b2_id(i) or b2_full(c) or b2_class(c))

    b3_id = _test(alt(X._MAIN_CONTENT_ID_TOKENS))
    b3_class = _test(alt(X._MAIN_CONTENT_CLASS_TOKENS))

    def body3(el: Any) -> bool:
        c, i = el.get("class") or "", el.get("id") or ""
        return (i == "content" or c == "content" or b3_id(i) or b3_class(c)
                or "main-content" in i.replace("C", "c").replace("M", "m")
                or "main-content" in c.replace("C", "c").replace("M", "m")
                or "page-content" in c.replace("C", "c").replace("P", "p"))

    def body4(el: Any) -> bool:
        if el.tag == "main":
            return True
        return el.tag in ("article", "div", "section") and (
            (el.get("class") or "").startswith("main") or (el.get("id") or "").startswith("main")
            or (el.get("role") or "").startswith("main"))

    raw_tags, comment_tags = frozenset(("div", "section", "aside")), frozenset(("div", "list", "section", "details", "ol", "ul"))

    def raw_and_comments(tree: Any, with_comments: bool) -> list[Any]:
        """RAW_TREE_PRUNE_XPATH, then (`with_comments`) REMOVE_COMMENTS_AND_LISTS_XPATH: each of their tests
        needs an id or a class (no pattern matches ""), so elements with neither are passed over."""
        found = []
        for el in tree.iterdescendants(*(raw_tags | comment_tags)):
            i, c = el.get("id"), el.get("class")
            if i is None and c is None:
                continue
            tag = el.tag
            if ((tag in raw_tags and (raw0_of(el, i, c) or "elementor-share-buttons" in (c or "")))
                    or (with_comments and tag in comment_tags and comments_and_lists_of(tag, i, c))):
                found.append(el)
        return found

    def section_discards(tree: Any, captions: bool, teasers: bool, precision: bool) -> list[Any]:
        """DISCARD_IMAGE_ELEMENTS, TEASER_DISCARD_XPATH, PRECISION_DISCARD_XPATH, each if asked for."""
        if precision:
            return [el for el in tree.iterdescendants(*blocks, "header")
                    if el.tag == "header" or (captions and caption(el)) or (teasers and teaser(el)) or precision1(el)]
        if not (captions or teasers):
            return []
        return [el for el in tree.iterdescendants(*blocks) if (captions and caption(el)) or (teasers and teaser(el))]

    return Matchers(
        raw_and_comments=raw_and_comments,
        section_discards=section_discards,
        raw_tree_prune=[_tags_matcher(("div", "section", "aside"), raw0), _tags_matcher(("div", "section", "aside"), raw1)],
        remove_comments_and_lists=[_tags_matcher(("div", "list", "section", "details", "ol", "ul"), comments_and_lists)],
        remove_comments=[_tags_matcher(("div", "list", "section", "details"), comments)],
        overall_discard=[overall_discard0, overall_discard1],
        overall_discard_both=overall_both,
        teaser_discard=[_tags_matcher(blocks, teaser)],
        precision_discard=[lambda tree: list(tree.iterdescendants("header")), _tags_matcher(blocks, precision1)],
        discard_image_elements=[_tags_matcher(blocks, caption)],
        body=[_first_matcher(sections, body0), _first_matcher(("article",), lambda el: True),
              _first_matcher(sections, body2), _first_matcher(sections, body3), _first_matcher(None, body4)],
    )
