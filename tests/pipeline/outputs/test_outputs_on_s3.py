"""Training outputs written to object storage: a real S3 server on 127.0.0.1 (moto), real documents and
a real tokenizer. The same input shards give the same bytes, file for file, in a local directory and
under an `s3://` prefix, with the inputs (and the tokenizer) read from S3 too."""

from __future__ import annotations

from pipeline.core import io
from pipeline.core.config import from_mapping
from pipeline.outputs.reader import TokenDataset
from pipeline.outputs.textshards import read_text_shard
from pipeline.outputs.writer import OutputsConfig, write_outputs
from pipeline.running.executor import SerialExecutor
from tests.conftest import data_path
from tests.pipeline.corpus_text import book_docs, wikipedia_docs, write_doc_shards


def _inputs(tmp_path, s3_base: str):
    """The same doc shards, local and copied to S3."""
    docs = book_docs(paragraphs_per_doc=6, max_docs_per_book=12) + wikipedia_docs(max_pages=10, max_chars=3000)
    local = write_doc_shards(tmp_path / "docs", docs, 3)
    remote = [io.as_path(s3_base) / "docs" / p.name for p in local]
    for src, dst in zip(local, remote, strict=True):
        io.copy_file(src, dst)
    return local, remote


def _files(root) -> dict[str, bytes]:
    root = io.as_path(root)
    return {(rel if isinstance(rel := p.relative_to(root), str) else rel.as_posix()): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def _same_outputs(tmp_path, s3_bucket, cfg: dict, *, tokenizer: str | None = None):
    local_in, remote_in = _inputs(tmp_path, s3_bucket + "/in")
    executor = SerialExecutor(progress=False)  # in-process: the tasks see this process's AWS_* settings
    local_cfg = from_mapping(OutputsConfig, cfg, "test: outputs")
    remote_cfg = from_mapping(OutputsConfig, cfg, "test: outputs")
    if tokenizer:
        remote_tok = io.join(s3_bucket, "tokenizers", "gpt-neox-20b.tokenizer.json")
        io.copy_file(tokenizer, remote_tok)
        local_cfg.tokenize.tokenizer, remote_cfg.tokenize.tokenizer = tokenizer, remote_tok
    local_summary = write_outputs(local_in, tmp_path / "out", local_cfg, executor)
    remote_summary = write_outputs(remote_in, s3_bucket + "/out", remote_cfg, executor)
    assert remote_summary == local_summary

    local, remote = _files(tmp_path / "out"), _files(s3_bucket + "/out")
    assert sorted(remote) == sorted(local)
    for rel in local:
        assert remote[rel] == local[rel], f"{rel} differs between the local and the S3 output"
    # no temporary file of a write, and no scratch space, under a normal name
    assert not [rel for rel in local if any(part.startswith(".") or part == "_scratch" for part in rel.split("/"))]
    assert not [rel for rel in remote if "_scratch" in rel or ".tmp" in rel]
    return local_summary, remote


def test_trained_tokenizer_outputs_on_s3_are_byte_identical(tmp_path, s3_bucket):
    cfg = {
        "mix": {"seed": 3, "validation_fraction": 0.1, "test_fraction": 0.1, "epochs": {"wikipedia": 2.0},
                "shard_max_bytes": 60_000},
        "tokenize": {"frame_tokens": 2048, "shard_max_tokens": 15_000},
        "train_vocab_size": 500,
        "megatron": True,
    }
    summary, remote = _same_outputs(tmp_path, s3_bucket, cfg)
    assert summary["tokenizer_trained"] == "tokenizer.json" and "tokenizer.json" in remote
    assert len(summary["tokens"]["train"]["shards"]) > 1  # several shards per split, several mix partitions
    assert len(summary["mix"]["splits"]["train"]["shards"]) > 1
    for split in ("train", "validation", "test"):
        assert f"megatron/{split}_text_document.bin" in remote
        # the files on S3 read back as what the summary says
        index = summary["text"][split]
        shard = io.as_path(s3_bucket) / "out" / "text" / split / index["shards"][0]["path"]
        assert sum(1 for _ in read_text_shard(shard)) == index["shards"][0]["docs"]
        local_tokens = TokenDataset(tmp_path / "out" / "tokens" / split, verify=True)
        assert len(local_tokens) == summary["tokens"][split]["docs"] == summary["mix"]["splits"][split]["docs"]

    # a rerun on S3 reuses the finished mix and token shards and writes the same summary
    again = write_outputs([io.as_path(s3_bucket) / "in" / "docs" / p.name for p in sorted((tmp_path / "docs").iterdir())],
                          s3_bucket + "/out", from_mapping(OutputsConfig, cfg, "test"), SerialExecutor(progress=False))
    assert again == summary
    assert _files(s3_bucket + "/out") == remote


def test_outputs_with_a_tokenizer_on_s3_are_byte_identical(tmp_path, s3_bucket):
    neox = str(data_path("tokenizers", "gpt-neox-20b.tokenizer.json"))
    cfg = {"mix": {"seed": 5, "validation_fraction": 0.1, "test_fraction": 0.1},
           "tokenize": {"frame_tokens": 1000, "shard_max_tokens": 20_000}, "megatron": True}
    summary, remote = _same_outputs(tmp_path, s3_bucket, cfg, tokenizer=neox)
    assert "tokenizer.json" not in remote
    assert summary["tokens"]["train"]["tokenizer"] == "gpt-neox-20b.tokenizer.json"
    assert summary["tokens"]["train"]["tokens"] > 0
