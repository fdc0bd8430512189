"""All training outputs from real doc shards, with a tokenizer trained on the training split."""

from __future__ import annotations

from pipeline.core.config import from_mapping
from pipeline.outputs.reader import TokenDataset
from pipeline.outputs.tokenize import load_tokenizer
from pipeline.outputs.writer import OutputsConfig, write_outputs
from tests.pipeline.corpus_text import book_docs, wikipedia_docs, write_doc_shards


def test_write_outputs_from_toml_config(tmp_path, ray_executor):
    docs = book_docs(paragraphs_per_doc=6, max_docs_per_book=25) + wikipedia_docs(max_pages=15, max_chars=4000)
    shards = write_doc_shards(tmp_path / "docs", docs, 3)
    config = from_mapping(OutputsConfig, {
        "mix": {"seed": 1, "validation_fraction": 0.05, "test_fraction": 0.05, "epochs": {"wikipedia": 2.0}},
        "tokenize": {"frame_tokens": 4096},
        "train_vocab_size": 600,
        "megatron": True,
    }, "test: outputs")
    summary = write_outputs(shards, tmp_path / "out", config, ray_executor)
    out = tmp_path / "out"
    assert summary["tokenizer_trained"] == "tokenizer.json"
    tok = load_tokenizer(out / "tokenizer.json", "<|endoftext|>").tokenizer
    for split in ("train", "validation", "test"):
        ds = TokenDataset(out / "tokens" / split, verify=True)
        assert len(ds) == summary["mix"]["splits"][split]["docs"] == summary["text"][split]["docs"] > 0
        assert summary["megatron"][split]["tokens"] == ds.num_tokens
        assert (out / "megatron" / f"{split}_text_document.idx").exists()
        assert tok.decode(ds.document(0).tolist())  # trained tokenizer decodes the split
    assert summary["tokens"]["train"]["vocab_size"] == 600
