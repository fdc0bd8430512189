"""Eval sets loaded from the real PIQA, GSM8K and HumanEval files, and the NAME=PATH[:fields] spec."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.evalsets import EvalSetError, load_eval_set, load_eval_sets, parse_eval_spec
from pipeline.core.config import ConfigError
from tests.conftest import data_path


def test_parse_eval_spec():
    assert parse_eval_spec("gsm8k=data/test.jsonl:question,answer") == ("gsm8k", "data/test.jsonl",
                                                                          ["question", "answer"])
    assert parse_eval_spec("lambada=/x/y.txt") == ("lambada", "/x/y.txt", [])
    assert parse_eval_spec("t=/x/y.txt:blocks") == ("t", "/x/y.txt", ["blocks"])
    # A ':' followed by a path is part of the path, not a field list.
    assert parse_eval_spec("t=C:/evals/t.jsonl") == ("t", "C:/evals/t.jsonl", [])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gsm8k", "expected NAME=PATH"),
        ("=x.jsonl", "the name ''"),
        ("bad name=x.jsonl", "the name 'bad name'"),
        ("g=x.jsonl:a,,b", "comma-separated"),
        ("g=:a", "the path is empty"),
    ],
)
def test_parse_eval_spec_errors_name_the_spec(spec, message):
    with pytest.raises(ConfigError) as exc:
        parse_eval_spec(spec)
    assert spec in str(exc.value) and message in str(exc.value)


def test_real_eval_sets_load_with_their_fields():
    sets = load_eval_sets({
        "piqa": f"{data_path('eval_sets', 'piqa', 'valid.jsonl')}:goal,sol1,sol2",
        "gsm8k": f"{data_path('eval_sets', 'gsm8k', 'test.jsonl')}:question,answer",
        "humaneval": f"{data_path('eval_sets', 'humaneval', 'HumanEval.jsonl.gz')}:prompt,canonical_solution",
    })
    by_name = {s.name: s for s in sets}
    assert [s.name for s in sets] == ["gsm8k", "humaneval", "piqa"]
    assert len(by_name["piqa"].items) == 1838
    assert len(by_name["gsm8k"].items) == 1319
    assert len(by_name["humaneval"].items) == 164
    first = by_name["gsm8k"].items[0]
    assert first.key == "line 1"
    assert first.text.startswith("Janet\u2019s ducks lay 16 eggs") and first.text.endswith("#### 18")
    assert "def has_close_elements" in by_name["humaneval"].items[0].text
    assert "for idx, elem in enumerate(numbers)" in by_name["humaneval"].items[0].text


def test_missing_field_names_file_line_and_fields():
    path = data_path("eval_sets", "gsm8k", "test.jsonl")
    with pytest.raises(EvalSetError) as exc:
        load_eval_set("gsm8k", path, ["question", "solution"])
    msg = str(exc.value)
    assert f"{path}:1" in msg and "'solution'" in msg and "answer, question" in msg


def test_jsonl_without_fields_lists_the_fields():
    with pytest.raises(EvalSetError, match="fields here: goal, sol1, sol2"):
        load_eval_set("piqa", data_path("eval_sets", "piqa", "valid.jsonl"), [])


def test_bad_json_line_is_named(tmp_path):
    lines = data_path("eval_sets", "gsm8k", "test.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    path = tmp_path / "cut.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(lines[0] + "\n" + lines[1][:40] + "\n" + lines[2] + "\n")
    with pytest.raises(EvalSetError, match=r"cut\.jsonl\.gz:2: invalid JSON"):
        load_eval_set("g", path, ["question"])


def test_parquet_eval_set(tmp_path):
    rows = [json.loads(line) for line in
            data_path("eval_sets", "gsm8k", "test.jsonl").read_text(encoding="utf-8").splitlines()[:20]]
    path = tmp_path / "gsm8k.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    s = load_eval_set("gsm8k", path, ["question", "answer"])
    assert [i.key for i in s.items[:2]] == ["row 0", "row 1"]
    assert s.items[3].text == rows[3]["question"] + "\n" + rows[3]["answer"]
    with pytest.raises(EvalSetError, match="no field 'goal'"):
        load_eval_set("gsm8k", path, ["goal"])


def test_plain_text_lines_and_blocks(tmp_path):
    rows = [json.loads(line) for line in
            data_path("eval_sets", "gsm8k", "test.jsonl").read_text(encoding="utf-8").splitlines()[:4]]
    lines = tmp_path / "questions.txt"
    lines.write_text("\n".join(r["question"] for r in rows) + "\n\n", encoding="utf-8")
    s = load_eval_set("q", lines, [])
    assert [i.text for i in s.items] == [r["question"] for r in rows]
    blocks = tmp_path / "answers.txt"
    blocks.write_text("\n\n".join(r["answer"] for r in rows), encoding="utf-8")
    s = load_eval_set("a", blocks, ["blocks"])
    assert [i.text for i in s.items] == [r["answer"] for r in rows]
    assert s.items[0].key == "block at line 1"
    with pytest.raises(EvalSetError, match="'lines' or 'blocks'"):
        load_eval_set("a", blocks, ["question"])


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(EvalSetError, match="eval set x: file not found"):
        load_eval_sets({"x": f"{tmp_path / 'nope.jsonl'}:question"})
