"""Wikitext cleaning: markup removed, prose kept; and agreement with WikiExtractor on real viwiki pages."""

from __future__ import annotations

import collections
import re

from pipeline.core.extractor import WorkUnit
from sources.wikipedia import WikipediaExtractor
from sources.wikitext import WikitextCleaner, WikitextOptions, clean_with_mwparserfromhell
from tests.conftest import data_path

LEFTOVER_MARKUP = ("{{", "}}", "[[", "]]", "<ref", "'''", "==")

SAMPLE = """{{Infobox person
| name = Ada {{small|Lovelace}}
| image = Ada.jpg
}}
'''Augusta Ada King''' (10 December 1815 – 27 November 1852)<ref name="b">{{cite book|title=X}}</ref> was an
[[England|English]] [[mathematician]].<!-- hidden --> She wrote about the [[Analytical Engine]]s.<ref>Plain ref</ref>
[[File:Ada Lovelace portrait.jpg|thumb|Portrait by [[Alfred Edward Chalon|Chalon]]]]

== Early life ==
{| class="wikitable"
|-
! Year !! Event
|-
| 1815 || born {{nowrap|in London}}
|}
Her father was [[Lord Byron]], see [http://example.org the archive] and [http://example.org/bare].
__NOTOC__
* First item with ''italics''
# Second item
=== Empty subsection ===
{{main|Something}}

== References ==
{{reflist}}
* A citation that is only a list item

[[Category:1815 births]]
[[fr:Ada Lovelace]]
"""


def test_sample_markup_removed_and_text_kept():
    text = WikitextCleaner().clean(SAMPLE)
    for tok in LEFTOVER_MARKUP:
        assert tok not in text
    assert "Augusta Ada King (10 December 1815 – 27 November 1852) was an English mathematician." in text
    assert "She wrote about the Analytical Engines." in text
    assert "Early life" in text.splitlines()
    assert "First item with italics" in text.splitlines()
    assert "Second item" in text.splitlines()
    assert "Her father was Lord Byron, see the archive and." in text
    for gone in ("Infobox", "Portrait", "Chalon", "wikitable", "born", "hidden", "Plain ref", "cite book",
                 "NOTOC", "1815 births", "fr:", "Empty subsection", "References", "citation"):
        assert gone not in text, gone


def test_unclosed_template_does_not_swallow_the_page():
    text = WikitextCleaner().clean("Intro {{broken template\nstill broken\n\nSecond paragraph.\n\nThird.")
    assert text == "Intro\n\nSecond paragraph.\n\nThird."


def test_nowiki_and_math_are_protected():
    cleaner = WikitextCleaner(WikitextOptions(keep_math=True))
    text = cleaner.clean("Write <nowiki>[[not a link]]</nowiki>; area <math>\\pi r^{2}</math> here.")
    assert "[[not a link]]" in text and "$\\pi r^{2}$" in text
    assert WikitextCleaner().clean("area <math>\\pi r^{2}</math> here.") == "area here."


def test_localized_namespaces_dropped():
    cleaner = WikitextCleaner(WikitextOptions(file_namespaces=["Tập tin"], category_namespaces=["Thể loại"]))
    text = cleaner.clean("Xin [[Tập tin:A.jpg|nhỏ|Chú]] chào [[Hà Nội]].\n[[Thể loại:Việt Nam]]")
    assert text == "Xin chào Hà Nội."


def _tokens(text: str) -> collections.Counter[str]:
    return collections.Counter(re.findall(r"\w+", text.lower()))


def token_f1(ours: str, reference: str) -> float:
    a, b = _tokens(ours), _tokens(reference)
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def wikiextractor_docs(path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    docs = {}
    for m in re.finditer(r'<doc id="(\d+)" url="[^"]*" title="[^"]*">\n(.*?)</doc>', text, re.S):
        docs[m.group(1)] = m.group(2).partition("\n")[2]  # the first line is the title
    return docs


def test_agrees_with_wikiextractor_on_viwiki():
    xml = data_path("wikipedia", "wikiextractor_viwiki_test.xml")
    reference = wikiextractor_docs(data_path("wikipedia", "wikiextractor_viwiki_test.expected_output_wiki_00.txt"))
    docs = [d for d in WikipediaExtractor().extract(WorkUnit("vi", {"path": str(xml)}, "x")) if not hasattr(d, "reason")]
    assert len(docs) == 5
    scores = {d.meta["title"]: token_f1(d.text, reference[str(d.meta["page_id"])]) for d in docs}
    # Measured 0.95 on average (mwparserfromhell's strip_code: 0.90); lists are kept here, not by WikiExtractor.
    assert sum(scores.values()) / len(scores) > 0.9, scores
    assert min(scores.values()) > 0.8, scores


def test_fast_cleaner_beats_mwparserfromhell_reference_on_agreement():
    xml = data_path("wikipedia", "wikiextractor_viwiki_test.xml")
    reference = wikiextractor_docs(data_path("wikipedia", "wikiextractor_viwiki_test.expected_output_wiki_00.txt"))
    import xml.etree.ElementTree as ET

    ns = "{http://www.mediawiki.org/xml/export-0.10/}"
    ours, theirs = [], []
    cleaner = WikitextCleaner(WikitextOptions(file_namespaces=["Tập tin", "Hình"], category_namespaces=["Thể loại"]))
    try:
        for _, elem in ET.iterparse(xml):
            if elem.tag == ns + "page" and elem.find(ns + "id").text in ("4", "24"):
                raw = elem.find(f"{ns}revision/{ns}text").text
                ref = reference[elem.find(ns + "id").text]
                ours.append(token_f1(cleaner.clean(raw), ref))
                theirs.append(token_f1(clean_with_mwparserfromhell(raw, ["Tập tin", "Thể loại", "Hình"]), ref))
    except ET.ParseError:
        pass  # this export has no closing </mediawiki>
    assert len(ours) == 2
    assert sum(ours) >= sum(theirs)
