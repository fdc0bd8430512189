"""Word splitting for scripts without spaces, and shingle hash sets for exact-Jaccard verification."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from dedup.lsh import exact_jaccard
from dedup.minhash import poly64_hashfunc, poly64_hashfunc64, shingle_hash_sets, signatures
from dedup.normalize import normalize_array, normalize_text, shingle_spans
from tests.conftest import data_path

_CJK = "\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"


def _news(name: str) -> str:
    return data_path("extraction", "newspaper_fulltext", "text", f"{name}.txt").read_text(encoding="utf-8")


def _words(text: str) -> list[str]:
    return [w.decode() for w in shingle_spans(normalize_array(pa.array([text])), 1).of_doc(0)]


@pytest.mark.parametrize("name", ["chinese", "japanese", "japanese2"])
def test_chinese_and_japanese_get_a_word_per_character(name):
    text = _news(name)
    # reference: every Han/kana character (with a following voicing mark) alone, other runs up to a space
    want = re.findall(f"[{_CJK}][\u3099\u309a]?|[^ {_CJK}]+", normalize_text(text))
    got = _words(text)
    assert got == want
    assert sum(len(w) == 1 and re.match(f"[{_CJK}]", w) is not None for w in got) > 150
    spans = shingle_spans(normalize_array(pa.array([text])), 5)
    assert len(spans.starts) == len(got) - 4  # real 5-grams, not one shingle per sentence
    five = spans.of_doc(0)[20].decode()
    assert five.replace(" ", "") == "".join(got[20:25])


def test_thai_words_are_character_clusters():
    text = _news("thai")
    got = _words(text)
    thai = [w for w in got if "\u0e00" <= w[0] <= "\u0e7f"]
    assert len(thai) > 300
    # no cluster starts with a combining mark or a following vowel, none ends on a leading vowel
    for w in thai:
        assert unicodedata.category(w[0]) != "Mn" and w[0] not in "\u0e30\u0e32\u0e33", w
        assert w[-1] not in "\u0e40\u0e41\u0e42\u0e43\u0e44", w
    # clusters put back together are the normalized text, less its spaces
    assert "".join(got) == normalize_text(text).replace(" ", "")
    assert _words("ภาษาไทย ง่าย") == ["ภา", "ษา", "ไท", "ย", "ง่า", "ย"]
    assert _words("น้ำ") == ["น้ำ"]  # a consonant with its tone mark and following vowel


def test_scripts_with_spaces_and_mixed_text_split_as_before():
    assert _words("안녕하세요 세계") == ["안녕하세요", "세계"]  # Korean uses spaces
    assert _words("Straße, café") == ["straße", "café"]
    assert _words("ab中文cd 12月") == ["ab", "中", "文", "cd", "12", "月"]
    assert _words("") == []


def test_signatures_of_cjk_and_thai_equal_datasketch_with_the_same_hash():
    docs = [_news("chinese"), _news("japanese2"), _news("thai")]
    spans = shingle_spans(normalize_array(pa.array(docs)), 5)
    sig = signatures(spans, 128, 1, "poly64")
    for d in range(len(docs)):
        ref = MinHash(num_perm=128, seed=1, hashfunc=poly64_hashfunc)
        ref.update_batch(spans.of_doc(d))
        assert np.array_equal(ref.hashvalues, sig[d])


def _mixed_docs() -> list[str]:
    text = data_path("gutenberg", "16595.txt").read_text(encoding="utf-8", errors="replace")
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()][:60]
    return paras + ["", "one two", paras[3] + " " + paras[3], _news("chinese"), _news("thai"), "", paras[5]]


@pytest.mark.parametrize("k", [1, 5])
def test_shingle_hash_sets_equal_a_plain_python_reference(k):
    docs = _mixed_docs()
    spans = shingle_spans(normalize_array(pa.array(docs)), k)
    sets = shingle_hash_sets(spans)
    assert len(sets.offsets) == len(docs) + 1
    for d in range(len(docs)):
        want = sorted({poly64_hashfunc64(s) for s in spans.of_doc(d)})
        assert sets.of_doc(d).tolist() == want, f"doc {d}"
    # the same document gives the same set in another batch (no dependence on batch layout)
    alone = shingle_hash_sets(shingle_spans(normalize_array(pa.array([docs[-1]])), k))
    assert np.array_equal(alone.of_doc(0), sets.of_doc(len(docs) - 1))


def test_hash_set_jaccard_equals_exact_jaccard_of_shingle_bytes():
    docs = _mixed_docs()
    rng = np.random.default_rng(0)
    edited = []
    for text in docs:  # near copies: a share of words replaced, so Jaccard spreads over (0, 1]
        words = text.split()
        for i in rng.choice(len(words), size=len(words) // 8, replace=False) if words else []:
            words[i] = f"x{rng.integers(1 << 30)}"
        edited.append(" ".join(words))
    sa = shingle_spans(normalize_array(pa.array(docs)), 5)
    sb = shingle_spans(normalize_array(pa.array(edited)), 5)
    rows_a = np.arange(len(docs))
    rows_b = rng.permutation(len(docs))
    rows_b[: len(docs) // 2] = rows_a[: len(docs) // 2]  # half the pairs are a text and its edit
    got = shingle_hash_sets(sa).jaccard(rows_a, shingle_hash_sets(sb), rows_b)
    want = [exact_jaccard(set(sa.of_doc(int(i))), set(sb.of_doc(int(j)))) for i, j in zip(rows_a, rows_b, strict=True)]
    assert np.allclose(got, want, rtol=0, atol=1e-12)
    assert ((got > 0.2) & (got < 0.9)).sum() >= 10  # the edits put pairs all over the range


def test_unicode_class_tables_are_cached_and_equal_re2s(tmp_path, monkeypatch):
    """The letter/digit/mark table read from RE2 once is kept in the local cache; read back it is the
    same table, and an unreadable cache file is replaced by a fresh computation."""
    from dedup import normalize

    monkeypatch.setenv("CORPUSFORGE_CACHE", str(tmp_path))
    fresh = normalize._re2_members(r"\p{M}")
    (cached_file,) = (tmp_path / "re2-classes").iterdir()
    assert (normalize._re2_members(r"\p{M}") == fresh).all()
    assert fresh[0x0301] and fresh[0x093F] and not fresh[ord("a")] and not fresh[ord(" ")]  # combining acute, Devanagari i
    cached_file.write_bytes(b"\x00" * 10)  # truncated
    assert (normalize._re2_members(r"\p{M}") == fresh).all()
