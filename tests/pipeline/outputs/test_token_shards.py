"""The token shard writer: frame layout, determinism, the index, and damage detection."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.outputs.reader import FOOTER, HEADER, MAGIC, TokenShard, TokenShardError
from pipeline.outputs.token_shards import TokenShardWriter, token_itemsize, write_index


def _docs(n: int, seed: int = 0, vocab: int = 50_000) -> list[np.ndarray]:
    """Token arrays of very different lengths (0 to ~3000), each ending in EOS id 0."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(rng.integers(0, 3000)) if i % 7 else 0
        out.append(np.append(rng.integers(1, vocab, size=length), 0))
    return out


def _write(path, docs, batch: int, frame_tokens: int = 1000, itemsize: int = 2) -> dict:
    w = TokenShardWriter(path, itemsize=itemsize, frame_tokens=frame_tokens, zstd_level=3,
                         meta={"eos_id": 0, "tokenizer": "test"})
    for start in range(0, len(docs), batch):
        part = docs[start:start + batch]
        w.add_documents([f"d/{start + k}" for k in range(len(part))], ["src"] * len(part),
                        np.concatenate(part), np.array([len(d) for d in part]))
    return w.close()


def test_layout_does_not_depend_on_how_documents_arrive(tmp_path):
    docs = _docs(60)
    one = _write(tmp_path / "one.tokens", docs, batch=1)
    all_ = _write(tmp_path / "all.tokens", docs, batch=60)
    odd = _write(tmp_path / "odd.tokens", docs, batch=13)
    assert (tmp_path / "one.tokens").read_bytes() == (tmp_path / "all.tokens").read_bytes()
    assert (tmp_path / "odd.tokens").read_bytes() == (tmp_path / "all.tokens").read_bytes()
    assert one["sha256"] == all_["sha256"] == odd["sha256"]
    assert one["tokens"] == sum(len(d) for d in docs) and one["docs"] == 60


def test_frames_are_bounded_and_documents_span_them(tmp_path):
    docs = _docs(40, seed=1)
    _write(tmp_path / "s.tokens", docs, batch=7, frame_tokens=1000)
    shard = TokenShard(tmp_path / "s.tokens", verify=True)
    sizes = np.diff(shard.frame_token_offsets)
    assert shard.num_frames == -(-shard.num_tokens // 1000)
    assert (sizes[:-1] == 1000).all() and 0 < sizes[-1] <= 1000
    assert shard.meta["dtype"] == "uint16" and shard.meta["frame_tokens"] == 1000
    spanning = 0
    for i, d in enumerate(docs):
        start, stop = shard.doc_offsets[i], shard.doc_offsets[i + 1]
        spanning += (start // 1000) != ((stop - 1) // 1000)
        assert np.array_equal(shard.document(i, with_eos=True), d)
        assert np.array_equal(shard.document(i), d[:-1])
        assert shard.doc_id(i) == f"d/{i}" and shard.doc_source(i) == "src"
    assert spanning > 5
    # the empty documents hold exactly their EOS
    assert shard.document(0).size == 0 and shard.document(0, with_eos=True).tolist() == [0]
    assert np.array_equal(shard.document(-1, with_eos=True), docs[-1])
    with pytest.raises(IndexError):
        shard.document(40)


def test_uint32_and_range_checks(tmp_path):
    assert token_itemsize(50_281) == 2 and token_itemsize(65_536) == 2 and token_itemsize(65_537) == 4
    big = [np.array([70_000, 5, 1 << 31, 0])]
    _write(tmp_path / "big.tokens", big, batch=1, itemsize=4)
    assert TokenShard(tmp_path / "big.tokens").document(0, with_eos=True).tolist() == big[0].tolist()
    w = TokenShardWriter(tmp_path / "small.tokens", itemsize=2, frame_tokens=10, zstd_level=3, meta={})
    with pytest.raises(ValueError, match="does not fit in uint16"):
        w.add_documents(["a"], ["s"], np.array([70_000, 0]), np.array([2]))
    w.abort()
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / "small.tokens").exists()


def test_damage_is_detected_and_named(tmp_path):
    _write(tmp_path / "s.tokens", _docs(20, seed=2), batch=5)
    data = (tmp_path / "s.tokens").read_bytes()
    assert data[:8] == MAGIC and data[-8:] == MAGIC
    (tmp_path / "cut.tokens").write_bytes(data[: len(data) // 2])
    with pytest.raises(TokenShardError, match="cut.tokens.*(truncated|damaged)"):
        TokenShard(tmp_path / "cut.tokens")
    flipped = bytearray(data)
    flipped[HEADER.size + 40] ^= 0xFF  # inside the first zstd frame
    (tmp_path / "flip.tokens").write_bytes(bytes(flipped))
    with pytest.raises(TokenShardError, match="flip.tokens: checksum mismatch"):
        TokenShard(tmp_path / "flip.tokens", verify=True)
    (tmp_path / "text.tokens").write_bytes(b"hello" * 40)
    with pytest.raises(TokenShardError, match="not a token shard"):
        TokenShard(tmp_path / "text.tokens")
    assert FOOTER.size == 104


def test_index_lists_shards_in_order_with_totals(tmp_path):
    a = _write(tmp_path / "a.tokens", _docs(5, seed=3), batch=2)
    b = _write(tmp_path / "b.tokens", _docs(7, seed=4), batch=3)
    index = write_index(tmp_path, [a, b], {"tokenizer": "test", "eos_id": 0})
    assert [s["path"] for s in index["shards"]] == ["a.tokens", "b.tokens"]
    assert index["docs"] == 12 and index["tokens"] == a["tokens"] + b["tokens"]
    assert (tmp_path / "index.json").read_text().count('"sha256"') == 2
