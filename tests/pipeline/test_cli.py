"""The `corpus` subcommands that run one stage alone, on real shard directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.shards import read_json
from pipeline.outputs.reader import TokenDataset
from tests.conftest import data_path
from tests.pipeline.helpers import write_jsonl_inputs


@pytest.fixture
def extracted(tmp_path, ray_executor) -> Path:
    write_jsonl_inputs(tmp_path / "in", 2, 40)
    out = tmp_path / "extract"
    assert main(["extract", "--source", "jsonl", str(tmp_path / "in" / "part000.jsonl"),
                 str(tmp_path / "in" / "part001.jsonl"), "--out", str(out)]) == 0
    return out


def test_standalone_stages_chain_through_directories(extracted, tmp_path, capsys):
    assert main(["langid", "--in", str(extracted), "--out", str(tmp_path / "langid")]) == 0
    assert main(["quality", "--in", str(tmp_path / "langid"), "--out", str(tmp_path / "quality")]) == 0
    assert main(["dedup", "--in", str(tmp_path / "quality"), "--out", str(tmp_path / "dedup")]) == 0
    for stage in ("langid", "quality", "dedup"):
        s = read_json(tmp_path / stage / "_stage.json")
        assert s["totals"]["in_docs"] == s["totals"]["kept_docs"] + s["totals"]["rejected_docs"] > 0
    out = capsys.readouterr().out
    assert "dedup: 2 tasks (0 reused, 2 computed)" in out


def test_tokenize_and_train_tokenizer_commands(extracted, tmp_path):
    neox = data_path("tokenizers", "gpt-neox-20b.tokenizer.json")
    assert main(["tokenize", "--in", str(extracted), "--out", str(tmp_path / "tok"), "--tokenizer", str(neox)]) == 0
    data = TokenDataset(tmp_path / "tok")
    kept = read_json(extracted / "_stage.json")["totals"]["kept_docs"]
    assert data.num_docs == kept and data.num_tokens > data.num_docs
    assert main(["train-tokenizer", "--in", str(extracted), "--out", str(tmp_path / "t.json"),
                 "--vocab-size", "600"]) == 0
    assert (tmp_path / "t.json").stat().st_size > 1000


def test_bad_arguments_are_clear_errors(extracted, tmp_path, capsys):
    assert main(["decontam", "--in", str(extracted), "--out", str(tmp_path / "d"), "--eval", "no-equals-sign"]) == 2
    assert "no-equals-sign" in capsys.readouterr().err
    assert main(["extract", "--source", "nope", "x", "--out", str(tmp_path / "e")]) == 2
    assert "unknown source 'nope'" in capsys.readouterr().err
    assert main(["langid", "--in", str(tmp_path / "missing"), "--out", str(tmp_path / "l")]) == 2
    assert "missing: not a directory" in capsys.readouterr().err
