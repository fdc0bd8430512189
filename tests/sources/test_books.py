"""The books extractor on real Project Gutenberg files, historical header forms, encodings, zips, Ray."""

from __future__ import annotations

import collections
import json
import random
import shutil
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.core.extractor import InputError, PlanContext
from pipeline.core.schema import Doc, Rejected
from pipeline.running.executor import SerialExecutor
from pipeline.running.runner import run_extract
from sources.books import BooksConfig, BooksExtractor, decode_text, strip_boilerplate
from tests.conftest import data_path

LICENSE_WORDS = ("PROJECT GUTENBERG EBOOK", "Project Gutenberg License", "Project Gutenberg-tm", "SMALL PRINT",
                 "gutenberg.org", "gutenberg.net", "START OF", "End of the Project", "End of Project")


def plan(inputs, tmp_path: Path, config: BooksConfig | None = None):
    ex = BooksExtractor(config)
    return ex, ex.plan([str(i) for i in inputs], PlanContext(SerialExecutor(progress=False), tmp_path))


def extract_all(inputs, tmp_path: Path, config: BooksConfig | None = None) -> list[Doc | Rejected]:
    ex, units = plan(inputs, tmp_path, config)
    return [item for u in units for item in ex.extract(u)]


@pytest.fixture(scope="module")
def real_items(tmp_path_factory):
    return extract_all([data_path("gutenberg")], tmp_path_factory.mktemp("plan"))


def test_real_books_one_doc_per_ebook(real_items):
    docs = [i for i in real_items if isinstance(i, Doc)]
    rejected = [i for i in real_items if isinstance(i, Rejected)]
    assert sorted(d.id for d in docs) == [f"books/{n}" for n in (14263, 15122, 16215, 16595, 24675, 44157)]
    assert collections.Counter(r.reason for r in rejected) == {"books:duplicate-edition": 5}
    editions = {d.id: d.meta["edition"] for d in docs}
    assert editions["books/44157"] == "44157-0.txt"  # the UTF-8 edition wins
    assert editions["books/14263"] == "14263-8.txt"  # 8-bit before 7-bit ASCII
    for d in docs:
        for word in LICENSE_WORDS:
            assert word not in d.text, (d.id, word)
        assert "\r" not in d.text and not d.text.startswith("Produced by")


def test_real_books_meta_from_rdf_and_encodings(real_items):
    docs = {i.id: i for i in real_items if isinstance(i, Doc)}
    fr = docs["books/44157"]
    assert fr.meta["language"] == "fr" and fr.meta["encoding"] == "utf-8-sig"
    assert fr.meta["title"].startswith("Entre Nous") and "Vos, Lucie" in fr.meta["author"]
    assert fr.url == "https://www.gutenberg.org/ebooks/44157" and fr.meta["ebook"] == 44157
    assert "l’original est indiqué" in fr.text and not fr.text.startswith("\ufeff")
    nl = docs["books/24675"]
    assert nl.meta["language"] == "nl" and nl.meta["encoding"] == "iso8859-1" and "GABRIËL" in nl.text
    katrine = docs["books/14263"]
    assert katrine.meta["metadata_from"] == "rdf" and katrine.meta["author"] == "Lane, Elinor Macartney"
    # the body is whole: from the frontispiece to THE END
    assert katrine.text.startswith('[Illustration: "I HAVE WAITED ALL THESE YEARS"]')
    assert katrine.text.rstrip().endswith("THE END")


def test_header_metadata_without_rdf_and_ascii_edition(tmp_path):
    shutil.copy(data_path("gutenberg", "14263.txt"), tmp_path / "14263.txt")
    [doc] = extract_all([tmp_path], tmp_path / "plan")
    assert doc.meta["metadata_from"] == "header" and doc.meta["encoding"] == "ascii"
    assert doc.meta == doc.meta | {"title": "Katrine", "author": "Elinor Macartney Lane", "language": "en",
                                   "ebook": 14263}


def test_zip_edition_and_duplicate(tmp_path):
    src = data_path("gutenberg", "15122-8.txt")
    with zipfile.ZipFile(tmp_path / "15122-8.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(src, "15122-8.txt")
    shutil.copy(data_path("gutenberg", "15122.txt"), tmp_path / "15122.txt")
    items = extract_all([tmp_path / "*.zip", tmp_path / "*.txt"], tmp_path / "plan")
    assert [type(i).__name__ for i in items] == ["Doc", "Rejected"]
    assert items[0].meta["edition"] == "15122-8.zip!15122-8.txt" and items[0].meta["encoding"] == "iso8859-1"
    assert items[1].reason == "books:duplicate-edition"


OLD_HEADER = """**The Project Gutenberg Etext of The Example Voyage, by A. Writer**
*****This file should be named exvoy10.txt or exvoy10.zip*****

Copyright laws are changing all over the world, be sure to check
the copyright laws for your country before posting these files!!

Please take a look at the important information in this header.

**Welcome To The World of Free Plain Vanilla Electronic Texts**

**Etexts Readable By Both Humans and By Computers, Since 1971**

*****These Etexts Were Prepared By Thousands of Volunteers!*****

Title: The Example Voyage

Author: A. Writer

March, 1996  [Etext #512]

**The Legal Small Print**

(Three Pages)

***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here? You know: lawyers.
They tell us you might sue us if there is something wrong with
your copy of this etext.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

"""
BODY = "CHAPTER I\n\nIt was a dark night on the ship, and the sea rolled heavily.\n" * 8


def test_historical_forms_are_stripped():
    old = strip_boilerplate(OLD_HEADER + BODY + "\nEnd of Project Gutenberg Etext of The Example Voyage\n")
    assert old.kind == "small-print" and old.body.strip() == BODY.strip()
    wrapped = strip_boilerplate(
        "The Project Gutenberg EBook of X\n\n*** START OF THIS PROJECT GUTENBERG EBOOK THE VERY LONG\n"
        "TITLE OF A BOOK ***\n\nProduced by Someone and the Online\nDistributed Proofreading Team\n\n\n"
        + BODY + "\n\n\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n\nUpdated editions will replace...\n"
    )
    assert wrapped.kind == "start-end" and wrapped.body.strip() == BODY.strip()
    no_end_markers = strip_boilerplate(
        "**The Project Gutenberg Etext of Y**\n*Please do not remove this*\nTitle: Y\n\n" + BODY
        + "\nEnd of this Etext of Y\n\nSome trailing notice\n"
    )
    assert no_end_markers.kind == "heuristic" and no_end_markers.body.strip() == BODY.strip()
    plain = strip_boilerplate(BODY)
    assert plain.kind == "none" and plain.body.strip() == BODY.strip()


def test_old_header_file_meta_and_require_markers(tmp_path):
    (tmp_path / "exvoy10.txt").write_text(OLD_HEADER + BODY, encoding="ascii")
    (tmp_path / "notes.txt").write_text(BODY, encoding="ascii")
    items = extract_all([tmp_path], tmp_path / "plan")
    old = next(i for i in items if i.meta.get("ebook") == 512)
    assert old.id == "books/512" and old.meta["title"] == "The Example Voyage" and old.meta["author"] == "A. Writer"
    strict = extract_all([tmp_path], tmp_path / "plan", BooksConfig(require_markers=True))
    assert sorted(getattr(i, "reason", "kept") for i in strict) == ["books:no-markers", "kept"]


def test_encodings_detected():
    text = "Ça coûte 5 € — “quoted”"
    assert decode_text(text.encode("utf-8")) == (text, "utf-8")
    assert decode_text(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_text("Ça coûte".encode("latin-1")) == ("Ça coûte", "iso8859-1")
    assert decode_text("“smart” quotes".encode("cp1252")) == ("“smart” quotes", "cp1252")
    assert decode_text(b"plain\r\nascii\r\n") == ("plain\nascii\n", "ascii")
    declared = b"Character set encoding: ISO-8859-2\n\n" + "Łódź".encode("iso8859-2")
    assert decode_text(declared)[1] == "iso8859-2" and decode_text(declared)[0].endswith("Łódź")


def test_bad_inputs_are_counted(tmp_path):
    (tmp_path / "100.txt").write_bytes(b"")
    (tmp_path / "101.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with zipfile.ZipFile(tmp_path / "102.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("102.txt", b"A" * (2 << 20))  # 2 MB of one byte: compresses to a few KB
    shutil.copy(data_path("gutenberg", "16595.txt"), tmp_path / "103.txt")
    cut = data_path("gutenberg", "16595-8.txt").read_bytes()
    (tmp_path / "104-8.txt").write_bytes(cut[: len(cut) // 3])  # cut short: no footer, still a body
    items = extract_all([tmp_path], tmp_path / "plan", BooksConfig(max_file_bytes=1 << 20))
    reasons = {i.id: getattr(i, "reason", "kept") for i in items}
    assert reasons == {"books/100/100.txt": "books:empty", "books/101/101.zip": "books:unreadable",
                       "books/102/102.zip": "books:too-large", "books/103": "kept", "books/104": "kept"}
    bad = next(i for i in items if i.id == "books/101/101.zip")
    assert str(tmp_path / "101.zip") in bad.meta["error"]
    with pytest.raises(InputError, match="nothing-here"):
        plan([tmp_path / "nothing-here"], tmp_path / "plan")


def test_run_extract_with_ray(tmp_path, ray_executor):
    ex, units = plan([data_path("gutenberg")], tmp_path / "plan")
    assert len(units) == 6
    report = run_extract(ex, units, tmp_path / "out", ray_executor)
    assert not report.failed
    totals = json.loads((tmp_path / "out" / "_stage.json").read_text())["totals"]
    assert (totals["in_docs"], totals["kept_docs"], totals["rejected_docs"]) == (11, 6, 5)
    kept = pq.read_table(sorted((tmp_path / "out").glob("*.parquet"))).to_pylist()
    assert json.loads(next(r for r in kept if r["id"] == "books/24675")["meta"])["language"] == "nl"


# ---------------------------------------------------------------- hostile inputs (issue 14, items 5-7)


def _fates(items) -> dict[str, str]:
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids)), collections.Counter(ids).most_common(3)  # every id once
    return {i.id: getattr(i, "reason", "kept") for i in items}


def test_a_symlink_out_of_the_input_is_a_counted_refusal(tmp_path):
    """A link named like an ebook pointing outside the input directory (at /etc/passwd, say) is refused
    as the code source refuses it, its target never read; a link inside the input is followed."""
    books = tmp_path / "books"
    books.mkdir()
    shutil.copy(data_path("gutenberg", "15122.txt"), books / "15122.txt")
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n" * 50, encoding="ascii")
    (books / "55555.txt").symlink_to(secret)
    (books / "sub").mkdir()
    (books / "sub" / "55556.txt").symlink_to("../../passwd")  # relative, through ..
    (books / "16595.txt").symlink_to(data_path("gutenberg", "16595.txt"))  # outside too: refused
    inside = books / "copies"
    inside.mkdir()
    shutil.copy(data_path("gutenberg", "14263.txt"), inside / "14263.txt")
    (books / "14263.txt").symlink_to("copies/14263.txt")  # stays inside the input: followed
    for spec in (books, f"{books}/**/*.txt"):
        items = extract_all([spec], tmp_path / "plan")
        print(spec, _fates(items))
        assert _fates(items) == {
            "books/15122": "kept", "books/14263": "kept", "books/14263/14263.txt": "books:duplicate-edition",
            "books/55555/55555.txt": "books:symlink-escape", "books/55556/55556.txt": "books:symlink-escape",
            "books/16595/16595.txt": "books:symlink-escape",
        }
        assert not any("root:x:0:0" in getattr(i, "text", "") for i in items)
        refused = next(i for i in items if i.id == "books/55555/55555.txt")
        assert refused.meta["file"] == str(books / "55555.txt") and str(secret) in refused.meta["error"]


def test_binary_files_are_rejected_at_extraction(tmp_path):
    """200 KB of random bytes named 88888.txt went through as a book (decoded as Latin-1)."""
    rng = random.Random(14)
    (tmp_path / "88888.txt").write_bytes(rng.randbytes(200_000))
    png = b"\x89PNG\r\n\x1a\n" + rng.randbytes(50_000)
    with zipfile.ZipFile(tmp_path / "77777.zip", "w") as zf:
        zf.writestr("77777.txt", png)
    text = data_path("gutenberg", "16595.txt").read_text(encoding="ascii")
    (tmp_path / "66666-0.txt").write_bytes(text.replace("16595", "66666").encode("utf-16"))  # text, with a BOM
    mixed = data_path("gutenberg", "15122.txt").read_bytes()
    (tmp_path / "15122.txt").write_bytes(mixed[: len(mixed) // 2] + rng.randbytes(40_000) + mixed[len(mixed) // 2 :])
    items = extract_all([tmp_path], tmp_path / "plan")
    print(_fates(items))
    assert _fates(items) == {"books/88888/88888.txt": "books:binary", "books/77777/77777.zip": "books:binary",
                             "books/66666": "kept", "books/15122/15122.txt": "books:binary"}
    assert "control characters" in next(i for i in items if i.id == "books/88888/88888.txt").meta["error"]


def test_legacy_releases_of_an_ebook_are_editions_not_duplicate_ids(tmp_path):
    """Gutenberg's legacy file names (old/7tcng10.txt beside 9198.txt) carry the ebook number in their
    header only: they are editions of that ebook, and no id is emitted twice."""
    shutil.copy(data_path("gutenberg", "16595.txt"), tmp_path / "16595.txt")
    (tmp_path / "old").mkdir()
    shutil.copy(data_path("gutenberg", "16595-8.txt"), tmp_path / "old" / "7dckm10.txt")
    shutil.copy(data_path("gutenberg", "16215.txt"), tmp_path / "old" / "8shep10.txt")  # no modern edition
    shutil.copy(data_path("gutenberg", "16215-8.txt"), tmp_path / "old" / "8shep11.txt")
    # Files with no ebook number anywhere and the same name: distinct books keep distinct ids,
    # byte-identical copies are one document.
    for d, body in (("a", BODY), ("b", BODY.replace("night", "day")), ("c", BODY)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "notes.txt").write_text(body, encoding="ascii")
    items = extract_all([tmp_path], tmp_path / "plan")
    fates = _fates(items)
    print(fates)
    assert collections.Counter(fates.values()) == {"kept": 4, "books:duplicate-edition": 3}
    assert fates["books/16595"] == fates["books/16215"] == "kept"
    assert fates["books/16595/7dckm10.txt"] == "books:duplicate-edition"
    kept = {i.id: i for i in items if isinstance(i, Doc)}
    assert kept["books/16595"].meta["edition"] == "16595.txt"
    assert kept["books/16215"].meta["edition"] in ("8shep10.txt", "8shep11.txt")
    notes = sorted(i for i in fates if i.startswith("books/notes"))
    assert len(notes) == 3 and sorted(fates[i] for i in notes) == ["books:duplicate-edition", "kept", "kept"]
