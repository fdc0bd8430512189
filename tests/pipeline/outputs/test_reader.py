"""The reader: documents by index across shards, packed sequences, resuming, rank splitting, no heavy deps."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.outputs.reader import TokenDataset
from pipeline.outputs.token_shards import TokenShardWriter, write_index

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """Three shards of documents of varied length (0 to ~2500 tokens plus EOS 0), frames of 777 tokens."""
    d = tmp_path_factory.mktemp("tokens")
    rng = np.random.default_rng(11)
    docs = [np.append(rng.integers(1, 50_000, size=int(rng.integers(0, 2500))), 0) for _ in range(45)]
    entries = []
    for s, part in enumerate((docs[:10], docs[10:30], docs[30:])):
        w = TokenShardWriter(d / f"z{2 - s}.tokens", itemsize=2, frame_tokens=777, zstd_level=3, meta={"eos_id": 0})
        w.add_documents([f"doc/{10 * s + k}" for k in range(len(part))], ["s"] * len(part), np.concatenate(part),
                        np.array([len(x) for x in part]))
        entries.append(w.close())
    write_index(d, entries, {"eos_id": 0})  # reading order from the index, not from the (reversed) names
    return d, docs


def test_documents_by_index_across_shards(token_dir):
    d, docs = token_dir
    ds = TokenDataset(d, verify=True)
    assert len(ds) == 45 and ds.num_tokens == sum(len(x) for x in docs)
    for i in (0, 9, 10, 29, 30, 44, -1):
        assert np.array_equal(ds.document(i, with_eos=True), docs[i])
        assert np.array_equal(ds[i], docs[i][:-1])
    assert [x.size for x in ds.iter_documents(start=40)] == [len(x) - 1 for x in docs[40:]]
    with pytest.raises(IndexError):
        ds.document(45)


def test_sequences_pack_across_documents_and_resume(token_dir):
    d, docs = token_dir
    stream = np.concatenate(docs)
    ds = TokenDataset(d)
    seq_len = 512
    seqs = list(ds.sequences(seq_len))
    assert len(seqs) == (stream.size - 1) // seq_len == ds.num_sequences(seq_len)
    for k, s in enumerate(seqs):
        assert s.size == seq_len + 1
        assert np.array_equal(s, stream[k * seq_len: (k + 1) * seq_len + 1])
    assert sum((s[:-1] == 0).sum() for s in seqs) >= 40  # document boundaries (EOS) inside sequences
    resumed = list(TokenDataset(d).sequences(seq_len, start=17))
    assert len(resumed) == len(seqs) - 17
    assert all(np.array_equal(a, b) for a, b in zip(resumed, seqs[17:], strict=True))


def test_ranks_split_the_sequences_and_the_dataset_pickles(token_dir):
    d, _ = token_dir
    ds = TokenDataset(d)
    full = [s.tobytes() for s in ds.sequences(300)]
    parts = [[s.tobytes() for s in ds.sequences(300, start=5, rank=r, world_size=3)] for r in range(3)]
    assert sorted(b for p in parts for b in p) == sorted(full[5:])
    assert parts[2][0] == full[5]  # sequence 5 belongs to rank 5 % 3
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone.document(20), ds.document(20))
    with pytest.raises(ValueError):
        next(ds.sequences(300, rank=3, world_size=3))


def test_reader_needs_only_numpy_and_zstandard(token_dir):
    """Load reader.py as a standalone file in a Python where pyarrow, tokenizers, ray and the package fail."""
    d, docs = token_dir
    script = f"""
import importlib.abc, importlib.util, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyarrow", "tokenizers", "ray", "pipeline", "torch", "pandas"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location("cf_reader", {str(REPO / "pipeline" / "outputs" / "reader.py")!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ds = mod.TokenDataset({str(d)!r})
print(len(ds), ds.document(44, with_eos=True).size, sum(1 for _ in ds.sequences(1000)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/", check=True)
    total = sum(len(x) for x in docs)
    assert out.stdout.split() == ["45", str(len(docs[44])), str((total - 1) // 1000)]
