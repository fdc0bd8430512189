"""`corpus show` on the demo: reasons with counts, and samples that a seed reproduces."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pipeline.cli import main


def _show(capsys, version, *args: str) -> dict:
    assert main(["show", str(version), *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_reason_alone_lists_reasons_with_counts_and_records_skipped_by_type_apart(demo_version, capsys):
    rows = _show(capsys, demo_version, "--reason")
    rejected = pq.read_table(demo_version / "rejected.parquet").to_pylist()
    assert sum(r["docs"] for r in rows) == len(rejected)
    by_reason = {(r["stage"], r["reason"]): r for r in rows}
    assert by_reason[("extract:cc", "cc:request")]["skipped_record"]
    assert not by_reason[("dedup", "near-dup")]["skipped_record"]
    assert by_reason[("dedup", "near-dup")]["docs"] == sum(r["reason"].startswith("near-dup:") for r in rejected)
    assert main(["show", str(demo_version), "--reason"]) == 0
    text = capsys.readouterr().out
    documents, skipped = text.split("records skipped by type")
    assert "near-dup" in documents and "cc:request" not in documents and "cc:request" in skipped


def test_samples_are_reproducible_with_the_same_seed(demo_version, capsys):
    reason = "near-dup"
    a = _show(capsys, demo_version, "--reason", reason, "--sample", "3", "--seed", "7")
    b = _show(capsys, demo_version, "--reason", reason, "--sample", "3", "--seed", "7")
    assert a == b and len(a["docs"]) == 3
    assert all(d["reason"].startswith("near-dup:") and d["text"] for d in a["docs"])
    everything = _show(capsys, demo_version, "--reason", reason, "--sample", "100", "--seed", "7")
    assert everything["matching"] == everything["sampled_from"] == len(everything["docs"])
    assert [d["id"] for d in everything["docs"][:3]] == [d["id"] for d in a["docs"]]
    other = _show(capsys, demo_version, "--reason", reason, "--sample", "100", "--seed", "8")
    assert sorted(d["id"] for d in other["docs"]) == sorted(d["id"] for d in everything["docs"])

    only_cc = _show(capsys, demo_version, "--reason", reason, "--source", "cc", "--sample", "100")
    assert only_cc["docs"] and all(d["source"] == "cc" for d in only_cc["docs"])

    kept = _show(capsys, demo_version, "--kept", "--source", "cc", "--reason", "quality:min_tokens", "--sample", "2",
                 "--seed", "3")
    assert kept == _show(capsys, demo_version, "--kept", "--source", "cc", "--reason", "quality:min_tokens",
                         "--sample", "2", "--seed", "3")
    assert len(kept["docs"]) == 2 and all("quality_words" in json.loads(d["scores"]) for d in kept["docs"])

    assert main(["show", str(demo_version), "--reason", reason, "--sample", "2", "--chars", "50"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"2 of {everything['matching']} documents rejected as near-dup")
    assert all(len(line) < 90 for line in text.splitlines() if line.startswith("    text"))


def test_an_unknown_reason_is_a_one_line_error(demo_version, capsys):
    assert main(["show", str(demo_version), "--reason", "quality:no_such_rule"]) == 2
    err = capsys.readouterr().err
    assert "no rejected document with reason 'quality:no_such_rule'" in err and err.count("\n") == 1


def test_only_warc_record_types_count_as_records_skipped_by_type():
    from pipeline.core.schema import is_skipped_record

    assert all(is_skipped_record(r) for r in ("cc:request", "cc:metadata", "cc:warcinfo", "reddit:revisit"))
    assert not any(is_skipped_record(r) for r in ("cc:lang:de", "cc:status-404", "request", "near-dup:cc/request",
                                                   "quality:gopher_min_words"))
