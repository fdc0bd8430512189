"""Megatron/GPT-NeoX export, checked by a reader written here from the format's specification.

The spec (Megatron-LM megatron/core/datasets/indexed_dataset.py, _IndexWriter/_IndexReader; GPT-NeoX
megatron/data/indexed_dataset.py, MMapIndexedDataset.Index): `.idx` = b"MMIDIDX\\x00\\x00", u64 version 1,
u8 dtype code (uint16 = 8, int32 = 4), u64 sequence count, u64 document-index length, then int32 sizes,
int64 byte pointers, int64 document index; `.bin` = the sequences' tokens back to back.
"""

from __future__ import annotations

import struct
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.core.schema import DOC_SCHEMA
from pipeline.core.shards import write_table
from pipeline.outputs.megatron import export_megatron
from pipeline.outputs.reader import TokenDataset
from pipeline.outputs.token_shards import TokenShardWriter
from pipeline.outputs.tokenize import TokenizeConfig, load_tokenizer, tokenize_shards
from pipeline.running.executor import SerialExecutor
from pipeline.versions.manifest import sha256_file
from tests.conftest import data_path
from tests.pipeline.corpus_text import book_docs, shard_order, wikipedia_docs, write_doc_shards

CODES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


def read_mmidx(prefix: Path) -> tuple[np.dtype, list[np.ndarray], np.ndarray]:
    """Independent reader: (dtype, one token array per sequence, document index)."""
    idx = Path(str(prefix) + ".idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", idx, 9)
    assert version == 1
    (code,) = struct.unpack_from("<B", idx, 17)
    n_seq, n_doc_idx = struct.unpack_from("<QQ", idx, 18)
    off = 34
    sizes = np.frombuffer(idx, dtype="<i4", count=n_seq, offset=off)
    pointers = np.frombuffer(idx, dtype="<i8", count=n_seq, offset=off + 4 * n_seq)
    doc_idx = np.frombuffer(idx, dtype="<i8", count=n_doc_idx, offset=off + 12 * n_seq)
    assert len(idx) == off + 12 * n_seq + 8 * n_doc_idx  # nothing after the document index
    dtype = np.dtype(CODES[code]).newbyteorder("<")
    data = np.memmap(Path(str(prefix) + ".bin"), dtype=np.uint8, mode="r")
    seqs = [np.frombuffer(data, dtype=dtype, count=int(n), offset=int(p)) for n, p in zip(sizes, pointers, strict=True)]
    assert pointers[-1] + sizes[-1] * dtype.itemsize == data.size
    return dtype, seqs, doc_idx


def test_export_of_real_corpus_reads_back_with_spec_reader(tmp_path):
    neox = str(data_path("tokenizers", "gpt-neox-20b.tokenizer.json"))
    docs = book_docs(max_docs_per_book=6) + wikipedia_docs(max_pages=10)
    shards = write_doc_shards(tmp_path / "docs", docs, 2)
    tokenize_shards(shards, tmp_path / "tok", TokenizeConfig(tokenizer=neox, shard_max_tokens=20_000,
                                                              frame_tokens=3000), SerialExecutor(progress=False))
    info = export_megatron(tmp_path / "tok", tmp_path / "neox" / "corpus_text_document")
    prefix = tmp_path / "neox" / "corpus_text_document"
    assert info["bin"]["sha256"] == sha256_file(Path(str(prefix) + ".bin"))

    dtype, seqs, doc_idx = read_mmidx(prefix)
    assert dtype == np.uint16 and info["dtype"] == "uint16"
    assert len(seqs) == len(docs) == info["docs"]
    assert doc_idx.tolist() == list(range(len(docs) + 1))
    tok = load_tokenizer(neox, "<|endoftext|>").tokenizer
    ds = TokenDataset(tmp_path / "tok")
    for i, doc in enumerate(shard_order(docs, 2)):
        assert seqs[i][-1] == 0  # each document keeps its EOS, as --append-eod writes it
        assert np.array_equal(seqs[i], ds.document(i, with_eos=True))
        assert tok.decode(seqs[i][:-1].tolist()) == unicodedata.normalize("NFC", doc["text"])
    again = export_megatron(tmp_path / "tok", tmp_path / "again")
    assert again["idx"]["sha256"] == info["idx"]["sha256"] and again["bin"]["sha256"] == info["bin"]["sha256"]


def test_uint32_tokens_export_as_int32(tmp_path):
    d = tmp_path / "tok"
    w = TokenShardWriter(d / "a.tokens", itemsize=4, frame_tokens=4, zstd_level=3, meta={"eos_id": 0})
    docs = [np.array([70_000, 1, 0]), np.array([0]), np.array([5, 100_000, 3, 2, 9, 0])]
    w.add_documents(["a", "b", "c"], ["s"] * 3, np.concatenate(docs), np.array([3, 1, 6]))
    w.close()
    export_megatron([d / "a.tokens"], tmp_path / "out")
    dtype, seqs, doc_idx = read_mmidx(tmp_path / "out")
    assert dtype == np.int32 and doc_idx.tolist() == [0, 1, 2, 3]
    assert [s.tolist() for s in seqs] == [x.tolist() for x in docs]


def test_empty_docs_shard_exports(tmp_path):
    write_table(pa.Table.from_pylist([{"id": "e/1", "source": "e", "text": "", "url": None, "meta": "{}"}],
                                     schema=DOC_SCHEMA), tmp_path / "docs" / "e.parquet")
    neox = str(data_path("tokenizers", "gpt-neox-20b.tokenizer.json"))
    tokenize_shards([tmp_path / "docs" / "e.parquet"], tmp_path / "tok", TokenizeConfig(tokenizer=neox),
                    SerialExecutor(progress=False))
    export_megatron(tmp_path / "tok", tmp_path / "out")
    _, seqs, doc_idx = read_mmidx(tmp_path / "out")
    assert [s.tolist() for s in seqs] == [[0]] and doc_idx.tolist() == [0, 1]
