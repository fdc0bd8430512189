"""Signatures and LSH parameters must equal datasketch's, which stays the reference."""

from __future__ import annotations

import hashlib
import re
import struct

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from dedup.minhash import (
    band_keys,
    optimal_lsh_params,
    poly64_hashfunc,
    poly64_hashfunc64,
    poly_hash32,
    poly_hash64,
    sha1_hash32,
    signatures,
)
from dedup.normalize import _normalize_regex, normalize_array, shingle_spans
from tests.conftest import data_path


def _real_docs() -> list[str]:
    text = data_path("gutenberg", "16595.txt").read_text(encoding="utf-8", errors="replace")
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    docs = ["\n\n".join(paras[i : i + 3]) for i in range(0, min(len(paras), 240), 3)]
    # the German/French/emoji edge cases and the degenerate lengths
    return docs + ["", "   ", "Ein Wort", "Straßenbahn-Haltestelle: «Ça va?» — ok 😀 1,5 km", "a b c d e"]


def test_sha1_hash32_matches_hashlib_for_one_and_many_blocks():
    docs = _real_docs()
    # 5-word shingles of real text fit one block; 20-word shingles need two or three 64-byte blocks
    for k in (5, 20):
        spans = shingle_spans(normalize_array(pa.array(docs)), k)
        got = sha1_hash32(spans.data, spans.starts, spans.ends)
        want = [struct.unpack("<I", hashlib.sha1(spans.shingle_bytes(i)).digest()[:4])[0]
                for i in range(len(spans.starts))]
        assert np.array_equal(got, np.array(want, np.uint32))
    assert (spans.ends - spans.starts).max() > 119


@pytest.mark.parametrize(
    ("num_perm", "seed", "k", "hash_function"),
    [(128, 1, 5, "sha1"), (64, 42, 3, "sha1"), (256, 7, 5, "sha1"), (128, 1, 5, "poly64"), (64, 42, 3, "poly64")],
)
def test_signatures_equal_datasketch_on_real_text(num_perm, seed, k, hash_function):
    docs = _real_docs()
    spans = shingle_spans(normalize_array(pa.array(docs)), k)
    sig = signatures(spans, num_perm=num_perm, seed=seed, hash_function=hash_function)
    assert sig.shape == (len(docs), num_perm)
    # sha1 is datasketch's own default; poly64 is ours, handed to datasketch as its hashfunc
    extra = {"hashfunc": poly64_hashfunc} if hash_function == "poly64" else {}
    for d in range(len(docs)):
        ref = MinHash(num_perm=num_perm, seed=seed, **extra)
        ref.update_batch(spans.of_doc(d))
        assert np.array_equal(ref.hashvalues, sig[d]), f"doc {d}"
    # an empty document has no shingle and datasketch's empty signature
    assert (sig[len(docs) - 5] == np.uint32(0xFFFFFFFF)).all()


def test_poly_hash_depends_only_on_the_shingle_bytes():
    spans = shingle_spans(normalize_array(pa.array(_real_docs() * 2)), 5)
    h = poly_hash32(spans.data, spans.starts, spans.ends)
    seen: dict[bytes, int] = {}
    for i in range(len(h)):
        assert seen.setdefault(spans.shingle_bytes(i), int(h[i])) == int(h[i])
    assert len(set(seen.values())) >= len(seen) - 2  # 32-bit: a rare collision at most


def test_poly_hash_of_long_shingles_matches_the_per_shingle_function():
    # 40-word shingles span hundreds of bytes: the prefix-sum powers must stay exact that far
    spans = shingle_spans(normalize_array(pa.array(_real_docs())), 40)
    h = poly_hash32(spans.data, spans.starts, spans.ends)
    assert (spans.ends - spans.starts).max() > 200
    assert [poly64_hashfunc(spans.shingle_bytes(i)) for i in range(len(h))] == h.tolist()


def test_poly_hash_of_any_spans_matches_the_per_shingle_function():
    # the compiled hash reuses prefix sums across spans: unsorted, overlapping, far apart, longer
    # than its 64 KiB window, empty; every one must still equal the plain per-shingle hash
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 300_000).astype(np.uint8)
    lengths = rng.integers(0, 3000, 400)
    lengths[:3] = [70_000, 90_000, 0]
    for starts in (rng.integers(0, 200_000, 400), np.sort(rng.integers(0, 200_000, 400))):
        ends = starts + lengths
        want = [poly64_hashfunc64(data[s:e].tobytes()) for s, e in zip(starts, ends, strict=True)]
        assert poly_hash64(data, starts, ends).tolist() == want


def test_compiled_normalization_equals_regex_path():
    text = data_path("gutenberg", "16215.txt").read_text(encoding="utf-8", errors="replace")
    paras = [p for p in re.split(r"\n\s*\n", text)][:400]
    news = data_path("extraction", "newspaper_fulltext", "text")
    paras += [f.read_text(encoding="utf-8") for f in sorted(news.glob("*.txt"))]  # Arabic, CJK, Thai, ...
    paras += ["", "!!", " a ", "..a..b..", "A\tB\n\nC", "", "?", "İstanbul ǅ ß ﬁ", "a\u0301b", "😀 hi 😀", "x"]
    arr = pa.array(paras).cast(pa.large_string())
    assert normalize_array(arr).to_pylist() == _normalize_regex(arr).to_pylist()
    assert normalize_array(pa.array(["Ünï — x", "A, b!"])).to_pylist() == ["ünï x", "a b"]


def test_shingles_are_word_kgrams_of_normalized_text():
    spans = shingle_spans(normalize_array(pa.array(["One, two;  THREE four\nfive six!", "Zwei Wörter", ""])), 5)
    assert spans.of_doc(0) == [b"one two three four five", b"two three four five six"]
    assert spans.of_doc(1) == ["zwei wörter".encode()]
    assert spans.of_doc(2) == []


@pytest.mark.parametrize("k", [1, 5, 13])
def test_shingles_of_real_text_equal_python_word_kgrams(k):
    docs = _real_docs()
    docs = docs[:10] + ["", "x"] + docs[10:20] + ["", ""] + docs[20:]  # empty documents in between
    normalized = normalize_array(pa.array(docs))
    spans = shingle_spans(normalized, k)
    for d, text in enumerate(normalized.to_pylist()):
        words = text.split(" ") if text else []
        want = [" ".join(words[i : i + k]) for i in range(len(words) - k + 1)] if len(words) >= k else (
            [" ".join(words)] if words else [])
        assert spans.of_doc(d) == [w.encode() for w in want], f"doc {d}"


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [32, 128, 256])
def test_lsh_params_equal_datasketch(threshold, num_perm):
    assert optimal_lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_lsh_params_with_weights_equal_datasketch():
    assert optimal_lsh_params(0.5, 128, 0.3, 0.7) == _optimal_param(0.5, 128, 0.3, 0.7)


def test_band_keys_equal_iff_band_values_equal():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, size=(50, 128), dtype=np.uint32)
    sig[1, :5] = sig[0, :5]  # band 0 shared, others differ
    keys = band_keys(sig, 25, 5)
    assert keys[0, 0] == keys[1, 0]
    assert (keys[0, 1:] != keys[1, 1:]).all()
    assert len(np.unique(keys[:, 3])) == 50
