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


def test_tokens_computed_before_mixing_equal_tokenizing_the_mix_and_are_reused(tmp_path):
    """With a given tokenizer each input shard is tokenized once, kept by content, and the mix carries the
    tokens: the token shards are byte for byte those of tokenizing the mixed text, and a grown corpus
    tokenizes only its new shard."""
    import pyarrow.parquet as pq

    from pipeline.outputs.columns import TOKENS_COLUMN
    from pipeline.outputs.tokenize import TokenizeConfig, tokenize_shards
    from pipeline.running.executor import SerialExecutor
    from tests.conftest import data_path

    tokenizer = str(data_path("tokenizers", "gpt-neox-20b.tokenizer.json"))
    docs = book_docs(paragraphs_per_doc=4, max_docs_per_book=12) + wikipedia_docs(max_pages=10, max_chars=3000)
    shards = write_doc_shards(tmp_path / "docs", docs, 4)
    config = from_mapping(OutputsConfig, {"mix": {"seed": 3, "validation_fraction": 0.1, "test_fraction": 0.1},
                                          "tokenize": {"tokenizer": tokenizer, "frame_tokens": 1024}}, "test")
    cache = tmp_path / "token-cache"
    summary = write_outputs(shards[:3], tmp_path / "first", config, SerialExecutor(False), token_cache=cache)
    assert len(list(cache.glob("*/_done.json"))) == 3
    summary = write_outputs(shards, tmp_path / "out", config, SerialExecutor(False), token_cache=cache)
    assert len(list(cache.glob("*/_done.json"))) == 4  # only the new shard was tokenized
    out = tmp_path / "out"
    for split in ("train", "validation", "test"):
        mixed = sorted((out / "mix" / split).glob("*.parquet"))
        assert mixed and all(TOKENS_COLUMN in pq.read_schema(p).names for p in mixed)
        plain = tmp_path / "plain" / split
        plain.mkdir(parents=True)
        for p in mixed:  # the same mixed documents without their tokens: tokenized from the text
            pq.write_table(pq.read_table(p).drop_columns([TOKENS_COLUMN]), plain / p.name)
        direct = tokenize_shards(sorted(plain.glob("*.parquet")), tmp_path / "direct" / split,
                                 TokenizeConfig(tokenizer=tokenizer, frame_tokens=1024), SerialExecutor(False))
        assert [s["sha256"] for s in direct["shards"]] == [s["sha256"] for s in summary["tokens"][split]["shards"]]
        assert TokenDataset(out / "tokens" / split, verify=True).num_tokens == direct["tokens"] > 0


def test_without_text_shards_the_mix_leaves_texts_out_and_the_tokens_are_the_same(tmp_path):
    """With tokens carried and no text shards, nothing reads the mixed texts again: the mixed shards
    leave them out, and the token shards, the split counts and text bytes are those of a mix with texts."""
    import pyarrow.parquet as pq

    from pipeline.running.executor import SerialExecutor
    from tests.conftest import data_path

    tokenizer = str(data_path("tokenizers", "gpt-neox-20b.tokenizer.json"))
    docs = book_docs(paragraphs_per_doc=4, max_docs_per_book=12) + wikipedia_docs(max_pages=10, max_chars=3000)
    shards = write_doc_shards(tmp_path / "docs", docs, 4)
    summaries = {}
    for text_shards in (True, False):
        config = from_mapping(OutputsConfig, {"mix": {"seed": 3, "validation_fraction": 0.1, "test_fraction": 0.1,
                                                      "epochs": {"wikipedia": 1.5}},
                              "tokenize": {"tokenizer": tokenizer, "frame_tokens": 1024}, "text_shards": text_shards},
                              "test")
        summaries[text_shards] = write_outputs(shards, tmp_path / str(text_shards), config, SerialExecutor(False),
                                               token_cache=tmp_path / "token-cache")
    with_text, without = summaries[True], summaries[False]
    for split in ("train", "validation", "test"):
        assert [s["sha256"] for s in without["tokens"][split]["shards"]] == \
               [s["sha256"] for s in with_text["tokens"][split]["shards"]]
        mixed = sorted((tmp_path / "False" / "mix" / split).glob("*.parquet"))
        assert mixed and all("text" not in pq.read_schema(p).names for p in mixed)
        assert [pq.read_table(p, columns=["id"]) for p in mixed] == \
               [pq.read_table(p, columns=["id"]) for p in sorted((tmp_path / "True" / "mix" / split).glob("*.parquet"))]
        for key in ("docs", "sources"):
            assert without["mix"]["splits"][split][key] == with_text["mix"]["splits"][split][key]
    assert without["mix"]["rejected"] == with_text["mix"]["rejected"] and without["mix"]["epochs"] == {"books": 1.0, "wikipedia": 1.5}
    assert "text" not in without or not without["text"]
