"""trafilatura 2.3.1's text extraction for corpusforge's settings, mirrored with cheaper internals.

The `hybrid` extractor (sources/html_modes.py) runs through this module: the same text as with trafilatura
itself (`hybrid_reference`), byte for byte on both annotated sets (tests/sources/test_html_mirror.py), at
about half the CPU. It mirrors the path that
`trafilatura.extract(tree, favor_precision=True, include_comments=False, output_format="txt")` takes in
trafilatura 2.3.1 (pinned in requirements.lock; any other version is handed to trafilatura itself),
calling trafilatura's own functions for every step except these (CPU shares from cProfile on both sets):

* XPath pruning and the main-content search (`prune_unwanted_nodes` with trafilatura's XPath lists,
  `BODY_XPATH`; ~45% of `hybrid_reference`; sources/html_xpaths.py): lxml evaluates each EXSLT `re:test()` as a Python callback per
  element and attribute. Here each expression is a Python predicate over `iterdescendants(tags)` with the
  same regular expressions (answers remembered per attribute value), returning the same elements in the
  same (document) order; lists that trafilatura prunes one after another are matched in one walk where
  that cannot change the result (`prune_all`). Even without `re:test`, lxml's XPath is slower than this.
* Tree copies (~5%): trafilatura copies the input tree (ours to change), and the raw and cleaned trees
  for the readability/jusText comparison: the raw tree is copied only where the comparison may run, the
  cleaned one is made again from it where jusText runs (a few pages in a hundred).
* The fallback: `hybrid_reference` runs trafilatura twice on a page whose fast pass looks
  unreliable. The second run repeats the first except for the comparison and, on pages where the main
  pass found too little, the wild-text recovery (which keeps teaser blocks in fast mode only). Here the
  first run's state is kept and only what differs runs again.
* The invalid-character scan of `repair_faulty_html` (~3%): a search per character before the regex.
* trafilatura's Extractor settings, read from its config for every page (~2%), are built once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import copy, deepcopy
from dataclasses import dataclass
from typing import Any

from sources.html_xpaths import Matcher, matchers

MIRRORED_VERSION = "2.3.1"

# ----------------------------------------------------------------------------------------- parsing

# the characters of trafilatura.utils.INVALID_XML_CHARS
_INVALID_XML_CHARS = (*map(chr, (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))), "\ufffe", "\uffff")


def repair_faulty_html(htmlstring: str, beginning: str) -> str:
    """utils.repair_faulty_html. Its regex substitution of invalid XML characters scans the whole page (~5% of
    `hybrid`'s CPU); a search for each character first is twice as fast, and real pages rarely have any.
    Its doctype repair splits and rejoins the whole page (~2%); here only where it changes the page."""
    from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, INVALID_XML_CHARS

    if any(htmlstring.find(ch) >= 0 for ch in _INVALID_XML_CHARS):  # str.find: ~20% faster than `in` here
        htmlstring = INVALID_XML_CHARS.sub("", htmlstring)
    if "doctype" in beginning:
        end = htmlstring.find("\n")
        firstline = htmlstring if end < 0 else htmlstring[:end]
        repaired = DOCTYPE_TAG.sub("", firstline, count=1)
        if end < 0:  # no line break: trafilatura's partition and join append one
            htmlstring = repaired + "\n"
        elif repaired != firstline:
            htmlstring = repaired + htmlstring[end:]
    for line in htmlstring[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>"):
            htmlstring = FAULTY_HTML.sub(r"\1>", htmlstring, count=1)
            break
    return htmlstring


# ----------------------------------------------------------------------------- mirrored functions


def prune(tree: Any, nodelist: Iterable[Matcher]) -> Any:
    """htmlprocessing.prune_unwanted_nodes without backup."""
    from trafilatura.xml import delete_element

    for expression in nodelist:
        for subtree in expression(tree):
            delete_element(subtree)
    return tree


def prune_all(tree: Any, elements: list[Any]) -> Any:
    """`prune` of several XPath lists at once, from the elements they all match on the unpruned tree.

    The same as pruning them one after another: these expressions test tags and attributes only (not
    `RAW_TREE_PRUNE_XPATH`'s `not(.//h1)`, which sees the same tree first in both), so pruning by one
    list changes what a later one matches only by detaching elements from the tree; deleting those too
    changes nothing visible. Deleting a set of elements (tails kept) gives the same tree in any order."""
    from trafilatura.xml import delete_element

    for subtree in elements:
        delete_element(subtree)
    return tree


def prune_overall_with_backup(tree: Any) -> Any:
    """htmlprocessing.prune_unwanted_nodes(tree, OVERALL_DISCARD_XPATH, with_backup=True)."""
    from trafilatura.xml import delete_element

    first, second = matchers().overall_discard_both(tree)
    matches = dict.fromkeys(first + second)
    outer = [elem for elem in matches if not any(a in matches for a in elem.iterancestors())]
    old_len = len(tree.text_content())
    if old_len - sum(len(elem.text_content()) for elem in outer) > old_len / 7:
        for elem in outer:
            delete_element(elem)
    return tree


def prune_unwanted_sections(tree: Any, potential_tags: set[str], options: Any, keep_teasers: bool = False) -> Any:
    """main_extractor.prune_unwanted_sections."""
    from lxml.etree import strip_tags
    from trafilatura.htmlprocessing import delete_by_link_density, link_density_test_tables
    from trafilatura.xml import delete_element

    m = matchers()
    favor_precision = options.focus == "precision"
    tree = prune_overall_with_backup(tree)
    not_recall = options.focus != "recall"
    tree = prune_all(tree, m.section_discards(tree, "graphic" not in potential_tags, not_recall and not keep_teasers,
                                              not_recall and favor_precision))
    for _ in range(2):
        tree = delete_by_link_density(tree, "div", backtracking=True, favor_precision=favor_precision)
        tree = delete_by_link_density(tree, "list", backtracking=False, favor_precision=favor_precision)
        tree = delete_by_link_density(tree, "p", backtracking=False, favor_precision=favor_precision)
    if "table" in potential_tags or favor_precision:
        boilerplate_tables = [elem for elem in tree.iter("table") if link_density_test_tables(elem) is True]
        for elem in boilerplate_tables:
            delete_element(elem, keep_tail=False)
    if favor_precision:
        while len(tree) > 0 and (tree[-1].tag == "head"):
            delete_element(tree[-1], keep_tail=False)
        tree = delete_by_link_density(tree, "head", backtracking=False, favor_precision=True)
        tree = delete_by_link_density(tree, "quote", backtracking=False, favor_precision=True)
    strip_tags(tree, "span", *(() if "ref" in potential_tags else ("ref",)))
    return tree


def _main_pass(tree: Any, options: Any) -> tuple[Any, str, set[str]]:
    """main_extractor._extract."""
    from lxml.etree import Element
    from trafilatura import main_extractor as ME
    from trafilatura.htmlprocessing import process_node
    from trafilatura.settings import INLINE_FORMATTABLE, TAG_CATALOG
    from trafilatura.utils import text_chars_test
    from trafilatura.xml import delete_element

    potential_tags = set(TAG_CATALOG)
    if options.tables is True:
        potential_tags.update(["table", "td", "th", "tr"])
    if options.images is True:
        potential_tags.add("graphic")
    if options.links is True:
        potential_tags.add("ref")
    result_body = Element("body")
    for expr in matchers().body:
        subtree = next((s for s in expr(tree) if s is not None), None)
        if subtree is None:
            continue
        subtree = prune_unwanted_sections(subtree, potential_tags, options)
        if len(subtree) == 0:
            continue
        ptest = subtree.xpath("//p//text()")
        factor = 1 if options.focus == "precision" else 3
        if not ptest or len("".join(ptest)) < options.min_extracted_size * factor:
            potential_tags.add("div")
        subelems = subtree.xpath(".//*")
        tags = {e.tag for e in subelems}
        if tags == {"lb"} or (subtree.tag == "div" and "div" in potential_tags and tags <= INLINE_FORMATTABLE | {"lb"}):
            subelems = [subtree]
        lead, start = None, len(result_body)
        if subelems != [subtree] and text_chars_test(subtree.text):
            lead = Element("p")
            lead.text = subtree.text
            lead = process_node(lead, options)
        for elem in subelems:
            if elem.getroottree().getroot() is result_body:
                continue
            tag, tail = elem.tag, elem.tail
            processed_elem = ME.handle_textelem(elem, potential_tags, options)
            if processed_elem is not None:
                result_body.append(processed_elem)
                if elem.getroottree().getroot() is not result_body:
                    elem.tag = "done"
            if (tag in ME.REBUILT_BLOCKS and text_chars_test(tail)
                    and (processed_elem is None or processed_elem.tail is None)):
                tail_elem = Element("p")
                tail_elem.text = tail
                if process_node(tail_elem, options) is not None:
                    result_body.append(tail_elem)
        while len(result_body) > 0 and (result_body[-1].tag in ME.NOT_AT_THE_END):
            delete_element(result_body[-1], keep_tail=False)
        if sum(e.tag != "graphic" for e in result_body) > 1:
            if lead is not None:
                result_body.insert(start, lead)
            break
    temp_text = " ".join(result_body.itertext()).strip()
    return result_body, temp_text, potential_tags


def recover_wild_text(tree: Any, result_body: Any, options: Any, potential_tags: set[str] | None = None,
                      consumed: set[Any] | None = None) -> Any:
    """main_extractor.recover_wild_text."""
    from trafilatura import main_extractor as ME
    from trafilatura.settings import DEDUPE_SCAN_CAP, MIN_DUPLICATE_LENGTH, TAG_CATALOG
    from trafilatura.utils import text_chars_test, trim

    potential_tags = set(TAG_CATALOG if potential_tags is None else potential_tags)
    search_expr = ".//code|.//p|.//quote|.//table|.//div[contains(@class, 'w3-code')]"
    if options.focus == "recall":
        potential_tags.update(["div", "lb"])
        search_expr += "|.//div|.//lb|.//list"
    search_tree = prune_unwanted_sections(tree, potential_tags, options, keep_teasers=options.fast)
    subelems = search_tree.xpath(search_expr)
    elem_texts = [ME._elem_text(el) for el in result_body]
    existing = "\n".join(filter(None, elem_texts))
    existing_elems = set(elem_texts)
    handled: set[Any] = set()
    for subelem in subelems:
        if (consumed and subelem in consumed) or any(a in handled for a in subelem.iterancestors()):
            continue
        processed = ME.handle_textelem(subelem, potential_tags, options)
        if processed is None:
            continue
        if processed is subelem:
            handled.add(subelem)
        text = ME._elem_text(processed)
        images = {img.get("src") for img in processed.iter("graphic")}
        if not text and images and images <= {g.get("src") for g in result_body.iter("graphic")}:
            continue
        under_cap = len(existing) <= DEDUPE_SCAN_CAP
        fragment = trim(text + (processed.tail or "")) if text_chars_test(processed.tail) else ""
        if text and (
            text in existing_elems
            or (under_cap and ((len(text) > MIN_DUPLICATE_LENGTH and text in existing) or (fragment and fragment in existing)))
        ):
            continue
        result_body.append(processed)
        if under_cap:
            existing += "\n" + (fragment or text)
        existing_elems.add(text)
    return result_body


def _finish_content(result_body: Any) -> Any:
    """The end of main_extractor.extract_content: drop repeats, strip leftovers and blank line breaks."""
    from lxml.etree import strip_elements, strip_tags
    from trafilatura import main_extractor as ME
    from trafilatura.settings import MIN_DUPLICATE_LENGTH
    from trafilatura.utils import SPACING_PROTECTED, text_chars_test
    from trafilatura.xml import delete_element

    previous = None
    for el in list(result_body):
        current = ME._elem_text(el)
        if current and current == previous and len(current) > MIN_DUPLICATE_LENGTH:
            delete_element(el, keep_tail=False)
        else:
            previous = current
    strip_elements(result_body, "done")
    strip_tags(result_body, "div")
    for linebreak in result_body.iter("lb"):
        if (
            linebreak.tail
            and not text_chars_test(linebreak.tail)
            and not any(anc.tag in SPACING_PROTECTED for anc in linebreak.iterancestors())
        ):
            linebreak.tail = None
    return result_body


@dataclass
class _Content:
    """extract_content's result, plus what a run without fast mode needs to redo the wild-text recovery."""

    body: Any
    text: str
    recovery: tuple[Any, Any, set[str], set[Any]] | None = None  # (tree, body before it, tags, consumed)


def extract_content(cleaned_tree: Any, options: Any, keep_recovery_input: bool) -> _Content:
    """main_extractor.extract_content; with `keep_recovery_input`, copies of the wild-text recovery's input
    (where it runs) so that it can run again with the other fast setting."""
    backup_tree = deepcopy(cleaned_tree)
    order = list(cleaned_tree.iter())
    result_body, temp_text, potential_tags = _main_pass(cleaned_tree, options)
    recovery = None
    if len(result_body) == 0 or len(temp_text) < options.min_extracted_size:
        consumed = {twin for elem, twin in zip(order, backup_tree.iter(), strict=True) if elem.tag == "done"}
        if keep_recovery_input:
            tree2, body2 = deepcopy(backup_tree), deepcopy(result_body)
            index = {el: i for i, el in enumerate(backup_tree.iter())}
            twins = list(tree2.iter())
            recovery = (tree2, body2, set(potential_tags), {twins[index[el]] for el in consumed})
        result_body = recover_wild_text(backup_tree, result_body, options, potential_tags, consumed)
        temp_text = " ".join(result_body.itertext()).strip()
    return _Content(_finish_content(result_body), temp_text, recovery)


def _redo_recovery(content: _Content, options: Any) -> tuple[Any, str]:
    """extract_content's result for `options` (the other fast setting) from a kept recovery input."""
    if content.recovery is None:
        return content.body, content.text
    tree, body, potential_tags, consumed = content.recovery
    body = recover_wild_text(tree, body, options, potential_tags, consumed)
    text = " ".join(body.itertext()).strip()
    return _finish_content(body), text


def compare_extraction(cleaned_tree: Callable[[], Any], raw_tree: Any, body: Any, text: str,
                       options: Any) -> tuple[Any, str]:
    """external.compare_extraction with the precision prune of the raw tree mirrored. jusText's input, the
    cleaned tree before tag conversion, is built only where jusText runs (a few pages in a hundred):
    `cleaned_tree()` makes it."""
    from lxml.etree import tostring
    from trafilatura import external as E
    from trafilatura.utils import trim

    len_text = len(text)
    if options.focus == "recall" and len_text > options.min_extracted_size * 10:
        return body, text
    if options.focus == "precision":
        first, second = matchers().overall_discard_both(raw_tree)
        raw_tree = prune_all(raw_tree, first + second)
    temppost_algo = E.try_readability(raw_tree)
    algo_text = trim(tostring(temppost_algo, method="text", encoding="utf-8").decode("utf-8"))
    len_algo = len(algo_text)
    use_readability = E._prefer_readability(body, temppost_algo, algo_text, len_text, len_algo, options)
    if use_readability:
        body, text, len_text = temppost_algo, algo_text, len_algo
    unclean = bool(body.xpath(E.SANITIZED_XPATH))
    if unclean or len_text < options.min_extracted_size:
        body2, text2 = E.justext_rescue(cleaned_tree(), options)
        len_text2 = len(text2)
        if unclean:
            accept = len_text <= E.JUSTEXT_OVERRIDE_RATIO * len_text2 and (
                len_text2 > len_text or not options.images or body.find(".//graphic") is None
            )
        else:
            accept = len_text < len_text2
        if text2 and accept:
            body, text, len_text = body2, text2, len_text2
            use_readability = False
    if use_readability:
        body, text = E.sanitize_tree(body, options)
    return body, text


# ------------------------------------------------------------------------------------------ runs


def supported(options: Any) -> bool:
    """Whether the mirror covers these settings (else trafilatura itself runs): the pinned version, txt
    output without metadata, formatting, links or images, precision focus (no baseline rescue, no recall
    escalation), no comments: what corpusforge's defaults ask for, and what its tests compare."""
    import trafilatura

    return (trafilatura.__version__ == MIRRORED_VERSION and options.format == "txt" and not options.with_metadata
            and not (options.formatting or options.links or options.images) and options.focus == "precision"
            and not options.comments and not options.lang)


@dataclass
class FastPass:
    """A page after the fast pass: its text, and what the comparison needs if it is to run after all."""

    text: str
    options: Any
    content: _Content | None = None
    raw_tree: Any = None  # the pruned raw tree (readability's input; cleaned, jusText's)


def _finish(body: Any, text: str, options: Any, keep_body: bool = False) -> str:
    """bare_extraction's checks after the cascade, then extract()'s txt output; "" where it returns None.
    With `keep_body`, `body` is left as it was (the txt output does not change it; the tree-size check may)."""
    from lxml.etree import Element, strip_tags
    from trafilatura.core import determine_returnstring
    from trafilatura.deduplication import duplicate_test
    from trafilatura.settings import Document

    if options.max_tree_size:
        if len(body) > options.max_tree_size:
            body = deepcopy(body) if keep_body else body
            strip_tags(body, "hi")
        if len(body) > options.max_tree_size:
            return ""
    if len(text) < options.min_output_size and 0 < options.min_output_comm_size:
        return ""
    if options.dedup and duplicate_test(body, options) is True:
        return ""
    document = Document()
    document.raw_text, document.commentsbody, document.body = text, Element("body"), body
    return determine_returnstring(document, options) or ""


def options_for(base: Any, url: str | None) -> Any:
    """`base` (an Extractor) for the page at `url`, as `trafilatura.extract(..., url=url)` sets it up."""
    options = copy(base)
    options.url = url
    options.source = url and url.encode("utf-8", "replace").decode("utf-8")
    return options


def run(tree: Any, options: Any, keep_for_fallback: bool = False) -> FastPass:
    """trafilatura_sequence + bare_extraction + extract() with `options` on `tree` (changed in place). In fast
    mode with `keep_for_fallback`, also the state from which `fallback` finishes the run without fast mode."""
    from trafilatura.core import _forum_thread_page
    from trafilatura.htmlprocessing import convert_tags, tree_cleaning

    m = matchers()
    url = options.url
    keep = keep_for_fallback and options.fast
    need_raw = keep or not options.fast  # the comparison reads the raw tree, and the cleaned one unconverted
    is_forum = _forum_thread_page(tree)
    tree = prune_all(tree, m.raw_and_comments(tree, not options.comments and (options.focus == "precision" or not is_forum)))
    cleaned = tree_cleaning(copy(tree) if need_raw else tree, options)
    cleaned = convert_tags(cleaned, options, url)
    if options.focus == "precision" and not is_forum:
        cleaned = prune(cleaned, m.remove_comments)
    content = extract_content(cleaned, options, keep_recovery_input=keep)
    if not options.fast:
        body, text = compare_extraction(_cleaner(tree, options), copy(tree), content.body, content.text, options)
        return FastPass(_finish(body, text, options), options)
    if not keep:
        return FastPass(_finish(content.body, content.text, options), options)
    return FastPass(_finish(content.body, content.text, options, keep_body=True), options, content, tree)


def _cleaner(raw_tree: Any, options: Any) -> Callable[[], Any]:
    """What trafilatura_sequence keeps as `cleaned_tree_backup`: tree_cleaning of a copy of the pruned raw
    tree (deterministic, so made again where needed rather than copied on every page)."""
    from trafilatura.htmlprocessing import tree_cleaning

    return lambda: tree_cleaning(copy(raw_tree), options)


def fallback(state: FastPass, slow_options: Any) -> str:
    """The page's text as trafilatura without fast mode gives it, from a fast pass kept for it."""
    body, text = _redo_recovery(state.content, slow_options)  # type: ignore[arg-type]
    body, text = compare_extraction(_cleaner(state.raw_tree, slow_options), copy(state.raw_tree), body, text,
                                    slow_options)
    return _finish(body, text, slow_options)
