"""`corpus trace` on the demo: a kept web page back to its WARC record, tokens and training steps back to
documents (checked against the reader), a removed near-duplicate to its survivor."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.outputs.reader import TokenDataset


def _trace(capsys, *args: str) -> dict:
    assert main(["trace", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _stream(ds: TokenDataset) -> np.ndarray:
    """The split's token stream rebuilt document by document, independently of the trace."""
    return np.concatenate([ds.document(i, with_eos=True) for i in range(ds.num_docs)])


def test_trace_of_a_kept_web_page_names_its_warc_record_and_its_scores(demo_version, capsys):
    ledger = pq.read_table(demo_version / "ledger.parquet").to_pylist()
    doc_id = next(r["id"] for r in ledger if r["source"] == "cc")
    t = _trace(capsys, str(demo_version), "--doc", doc_id)
    assert t["status"] == "kept" and t["source"] == "cc"
    warc, offset = t["input"]["file"], t["input"]["warc_offset"]
    assert warc.endswith(t["input"]["warc_file"]) and warc.endswith(".warc.gz")
    with open(warc, "rb") as f:  # the offset is where the record's gzip member starts
        f.seek(offset)
        head = gzip.GzipFile(fileobj=f).read(4000).decode("utf-8", "replace")
    assert "WARC-Type: response" in head and doc_id.removeprefix("cc/") in head
    stages = {s["stage"]: s for s in t["stages"]}
    assert list(stages) == ["extract:cc", "langid", "quality", "dedup", "decontam"]
    assert all(s["decision"] == "kept" for s in stages.values())
    assert stages["langid"]["scores"]["lang"] == "en" and 0.5 <= stages["langid"]["scores"]["lang_score"] <= 1
    assert stages["quality"]["scores"]["quality_gopher_words"] > 0
    assert stages["dedup"]["scores"]["dup_cluster_size"] >= 1
    assert t["copies"] and all(c["split"] in ("train", "validation", "test") for c in t["copies"])

    assert main(["trace", str(demo_version), "--doc", doc_id]) == 0
    text = capsys.readouterr().out
    assert f"warc_offset {offset}" in text and "lang_score" in text and "quality_gopher_words" in text


def test_trace_by_token_position_agrees_with_the_reader(demo_version, capsys):
    ds = TokenDataset(demo_version / "tokens" / "train")
    stream = _stream(ds)
    ends = np.cumsum([ds.document(i, with_eos=True).size for i in range(ds.num_docs)])
    for position in (0, int(ends[0]) - 1, int(ends[0]), ds.num_tokens // 2, ds.num_tokens - 1):
        t = _trace(capsys, str(demo_version), "--split", "train", "--token", str(position))
        index = int(np.searchsorted(ends, position, side="right"))
        assert t["doc_index"] == index and t["id"] == ds.doc_id(index) == t["doc"]["id"]
        start, stop = t["tokens"]
        assert np.array_equal(stream[start:stop], ds.document(index, with_eos=True))
        assert start <= position < stop and t["is_eos"] == (position == stop - 1)
        assert any(c["doc_index"] == index for c in t["doc"]["copies"] if c["split"] == "train")


def test_trace_by_step_lists_every_document_of_the_reader_batch(demo_version, capsys):
    ds = TokenDataset(demo_version / "tokens" / "train")
    stream = _stream(ds)
    step, batch, seq_len = 3, 2, 256
    t = _trace(capsys, str(demo_version), "--step", str(step), "--batch-size", str(batch), "--seq-len", str(seq_len))
    first, stop = step * batch * seq_len, (step + 1) * batch * seq_len + 1
    assert t["tokens"] == [first, stop]
    batch_tokens = np.concatenate([ds.sequence(k, seq_len) for k in range(step * batch, (step + 1) * batch)])
    spans = [d["batch_tokens"] for d in t["documents"]]
    assert spans[0][0] == first and spans[-1][1] == stop
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # contiguous, no gap
    rebuilt = np.concatenate([stream[a:b] for a, b in spans])
    # the reader's sequences overlap by one token: sequence k+1 starts with sequence k's last token
    expected = np.concatenate([batch_tokens[:seq_len + 1]] + [ds.sequence(k, seq_len)[1:] for k in
                                                                 range(step * batch + 1, (step + 1) * batch)])
    assert np.array_equal(rebuilt, expected)
    for d in t["documents"]:
        assert d["id"] == ds.doc_id(d["doc_index"]) == d["doc"]["id"]
        a, b = d["doc_tokens"]
        assert np.array_equal(stream[a:b], ds.document(d["doc_index"], with_eos=True))


def test_trace_of_a_removed_near_duplicate_names_its_survivor(demo_version, capsys):
    rejected = pq.read_table(demo_version / "rejected.parquet").to_pylist()
    dup = next(r for r in rejected if r["reason"].startswith("near-dup:"))
    survivor = dup["reason"].removeprefix("near-dup:")
    t = _trace(capsys, str(demo_version), "--doc", dup["id"])
    assert t["status"] == "rejected" and t["copies"] == []
    assert t["stages"][-1] == {**t["stages"][-1], "stage": "dedup", "decision": "rejected", "reason": dup["reason"]}
    assert t["cluster"]["survivor"] == survivor and t["cluster"]["survivor_kept"]
    assert dup["id"] in [m["id"] for m in t["cluster"]["removed"]]
    assert t["url"] == dup["url"] and t["input"]  # where it came from, from the rejected ledger
    assert main(["trace", str(demo_version), "--doc", dup["id"]]) == 0
    assert f"survivor {survivor}" in capsys.readouterr().out
    back = _trace(capsys, str(demo_version), "--doc", survivor)
    assert back["status"] == "kept" and dup["id"] in [m["id"] for m in back["cluster"]["removed"]]


@pytest.mark.parametrize("args, message", [
    (["--doc", "cc/no-such-document"], "no document 'cc/no-such-document'"),
    (["--token", "99999999"], "outside split 'train'"),
    (["--token", "-1"], "outside split 'train'"),
    (["--split", "nosuch", "--token", "0"], "no split 'nosuch'"),
    (["--step", "0"], "--step needs --batch-size and --seq-len"),
    (["--step", "100000", "--batch-size", "8", "--seq-len", "2048"], "full sequences"),
])
def test_bad_questions_are_one_line_errors(demo_version, capsys, args, message):
    assert main(["trace", str(demo_version), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_version_is_a_one_line_error(tmp_path, capsys):
    assert main(["trace", str(tmp_path / "nope"), "--doc", "x"]) == 2
    assert main(["show", str(tmp_path / "nope"), "--reason"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("corpus: error: no manifest at") for line in err)


def test_trace_of_a_modified_document_names_its_eval_items(demo_version, capsys):
    """The demo plants eval questions in pages: decontamination records, per document, the items it
    found (`decontam_items`), and the trace names each with its text from the report."""
    docs = [r for f in sorted((demo_version / "docs").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    modified = [r for r in docs if r["decontam_spans_removed"]]
    assert modified and all(r["decontam_items"] for r in modified)
    assert all(not r["decontam_items"] for r in docs if not r["decontam_spans_removed"])
    row = modified[0]
    t = _trace(capsys, str(demo_version), "--doc", row["id"])
    names = [f"{m['eval_set']}/{m['item']}" for m in t["contamination"]["matches"]]
    assert names == row["decontam_items"] and all(m["text"] for m in t["contamination"]["matches"])
