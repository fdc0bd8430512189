"""Decontamination on real data: PIQA, GSM8K and HumanEval items planted in Project Gutenberg paragraphs
and Vietnamese Wikipedia text, found and removed in every disguise; everything else untouched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from filters.decontam import (
    ITEMS_COLUMN,
    REPORT_FILE,
    SPANS_COLUMN,
    DecontamConfig,
    DecontamStage,
    ScanParams,
    build_index,
    decontaminate_texts,
    find_matches,
    summarize_contamination,
)
from filters.evalsets import load_eval_sets
from filters.ngrams import word_spans, words
from pipeline.core.config import ConfigError
from pipeline.core.schema import Doc, docs_to_table
from pipeline.core.shards import read_table, write_table
from pipeline.running.executor import SerialExecutor
from pipeline.running.runner import run_global_stage
from tests.conftest import data_path


@pytest.fixture(scope="module")
def evals() -> dict[str, str]:
    return {
        "gsm8k": f"{data_path('eval_sets', 'gsm8k', 'test.jsonl')}:question,answer",
        "piqa": f"{data_path('eval_sets', 'piqa', 'valid.jsonl')}:goal,sol1,sol2",
        "humaneval": f"{data_path('eval_sets', 'humaneval', 'HumanEval.jsonl.gz')}:prompt,canonical_solution",
    }


@pytest.fixture(scope="module")
def loaded(evals):
    config = DecontamConfig(evals=evals)
    sets = load_eval_sets(evals)
    index, used = build_index(sets, config)
    return {s.name: s for s in sets}, index, used, ScanParams.of(config)


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    """Long paragraphs of a real novel (Jack Sheppard), as they are in the file (CRLF lines)."""
    raw = data_path("gutenberg", "16215.txt").read_bytes().decode("ascii")
    body = raw[raw.index("*** START"): raw.index("*** END")]
    return [p for p in body.split("\r\n\r\n") if len(p) > 700][:120]


@pytest.fixture(scope="module")
def wiki_docs() -> list[str]:
    text = data_path("wikipedia", "wikiextractor_viwiki_test.expected_output_wiki_00.txt").read_text("utf-8")
    return [d.strip() for d in re.findall(r"<doc [^>]*>(.*?)</doc>", text, re.S) if len(d.strip()) > 300]


def _disguise(text: str) -> str:
    """Changed case and punctuation: upper case, other punctuation, typographic apostrophes."""
    return (text.upper().replace(".", "!").replace(",", ";").replace("?", " ...").replace("'", "\u2019")
            .replace("(", "[ ").replace(")", " ]").replace(":", " --"))


def _split_lines(text: str, every: int = 5) -> str:
    """Split across lines: re-wrapped every few words, with indentation and CRLF line ends."""
    w = text.split()
    return "\r\n".join("    " + " ".join(w[i:i + every]) for i in range(0, len(w), every))


VARIANTS = {"verbatim": lambda t: t, "case+punctuation": _disguise, "split-lines": _split_lines}
PLANTED = [("gsm8k", 0), ("gsm8k", 500), ("piqa", 0), ("piqa", 1000), ("humaneval", 0), ("humaneval", 100)]


def test_words_ignore_case_punctuation_and_line_breaks(loaded):
    sets, *_ = loaded
    item = sets["gsm8k"].items[0].text
    assert words(item) == words(_disguise(item)) == words(_split_lines(item))
    assert words("Janet\u2019s ducks: 16-3-4=9")[:2] == ["janets", "ducks"]
    text = "İstanbul, it's DONE."
    assert [text[a:b] for a, b in word_spans(text)] == ["İ", "stanbul", "it's", "DONE"]
    assert len(word_spans(text)) == len(words(text))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_planted_items_are_found_and_removed(loaded, paragraphs, variant):
    sets, index, _, params = loaded
    owners = [(s.name, i) for s in sets.values() for i in range(len(s.items))]
    texts, planted = [], []
    for k, (name, i) in enumerate(PLANTED):
        item = VARIANTS[variant](sets[name].items[i].text)
        before, after = paragraphs[2 * k], paragraphs[2 * k + 1]
        texts.append(before + "\r\n\r\n" + item + "\r\n\r\n" + after)
        planted.append((before, item, after, owners.index((name, i))))
    outcomes = decontaminate_texts(texts, index, params)
    assert sorted(outcomes) == list(range(len(PLANTED)))
    for d, (before, item, after, owner) in enumerate(planted):
        out = outcomes[d]
        assert owner in out.items
        assert out.text is not None and out.spans_removed == 1
        # The item (from its first to its last word) and the window around it are gone; the
        # paragraphs' far ends are still there.
        assert out.chars_removed >= len(item) + 2 * params.window_chars - 8
        assert out.text.startswith(before[: len(before) - params.window_chars - 4])
        assert out.text.endswith(after[params.window_chars + 4:])
        assert before[-params.window_chars + 10:] not in out.text
        assert find_matches([out.text], index) == {}


def test_unmatched_real_documents_are_untouched(loaded, paragraphs, wiki_docs):
    _, index, _, params = loaded
    assert decontaminate_texts(paragraphs + wiki_docs, index, params) == {}


def test_more_than_max_spans_drops_the_document(loaded, paragraphs):
    sets, index, _, params = loaded
    questions = [sets["gsm8k"].items[i].text for i in range(0, 220, 20)]  # 11 items
    ten = "\n\n".join(p + "\n\n" + q for p, q in zip(paragraphs, questions[:10], strict=False)) + "\n\n" + paragraphs[50]
    eleven = ten + "\n\n" + questions[10] + "\n\n" + paragraphs[51]
    outcomes = decontaminate_texts([ten, eleven], index, params)
    assert outcomes[0].spans_removed == 10 and outcomes[0].text is not None
    assert outcomes[1].spans_removed == 11 and outcomes[1].text is None
    assert sets and index.set_names[outcomes[1].reason_set] == "gsm8k"


def test_short_fragments_are_dropped_and_nothing_left_drops(loaded, paragraphs):
    sets, index, _, params = loaded
    item = sets["piqa"].items[0].text
    near_start = paragraphs[0][:300] + " " + item + " " + paragraphs[1]
    only_item = "Question. " + item
    outcomes = decontaminate_texts([near_start, only_item], index, params)
    # 300 chars before the item minus the 200-char window leaves < 200: that fragment goes too;
    # after the item's last word ("dish") the next 200 characters go.
    assert item.endswith("dish.")
    assert outcomes[0].text == (". " + paragraphs[1])[params.window_chars:]
    assert outcomes[1].text is None and outcomes[1].spans_removed == 1


def test_short_items_use_the_short_ngram(loaded, paragraphs):
    sets, index, used, params = loaded
    first_piqa = sum(len(s.items) for name, s in sets.items() if name < "piqa")
    short = [i for i, n in enumerate(used[first_piqa:first_piqa + len(sets["piqa"].items)]) if n == 8]
    assert short, "PIQA has items shorter than 13 words"
    item = sets["piqa"].items[short[0]]
    assert 8 <= len(words(item.text)) < 13
    out = decontaminate_texts([paragraphs[3] + "\n" + item.text + "\n" + paragraphs[4]], index, params)
    assert out[0].items == [first_piqa + short[0]]


# ------------------------------------------------------------------------------------ the stage


def _docs(paragraphs: list[str], wiki_docs: list[str], sets) -> tuple[list[Doc], dict[str, str]]:
    """Books and wikipedia documents; some carry eval items. Returns docs and id -> what was planted."""
    docs, planted = [], {}
    for i, p in enumerate(paragraphs[:40]):
        text = p
        if i in (3, 17):
            text = p + "\r\n\r\n" + _disguise(sets["gsm8k"].items[i].text) + "\r\n\r\n" + paragraphs[60 + i]
            planted[f"books/{i}"] = "modified"
        docs.append(Doc(f"books/{i}", "books", text, None, {"n": i}))
    for i, w in enumerate(wiki_docs[:5]):
        text = w
        if i == 2:
            text = w + "\n" + _split_lines(sets["humaneval"].items[5].text) + "\n" + paragraphs[80]
            planted[f"wikipedia/{i}"] = "modified"
        docs.append(Doc(f"wikipedia/{i}", "wikipedia", text, f"https://vi.wikipedia.org/{i}", {}))
    dirty = "\n".join(paragraphs[k - 10] + "\n" + sets["gsm8k"].items[k].text for k in range(100, 112))
    docs.append(Doc("books/dirty", "books", dirty, None, {}))
    planted["books/dirty"] = "dropped"
    return docs, planted


def _write_shards(docs: list[Doc], directory: Path) -> list[Path]:
    paths = []
    for k in range(3):
        path = directory / f"part-{k}.parquet"
        write_table(docs_to_table(docs[k::3]), path)
        paths.append(path)
    return paths


def test_stage_on_ray_accounting_report_and_untouched_bytes(tmp_path, ray_executor, loaded, evals, paragraphs,
                                                            wiki_docs):
    sets, *_ = loaded
    docs, planted = _docs(paragraphs, wiki_docs, sets)
    shards = _write_shards(docs, tmp_path / "in")
    stage = DecontamStage(DecontamConfig(evals=evals))
    out = tmp_path / "out"
    report = run_global_stage(stage, shards, out, tmp_path / "scratch", ray_executor)

    books, wiki = report.counts["books"], report.counts["wikipedia"]
    assert books["in_docs"] == 41 and books["kept_docs"] == 40 and books["reasons"] == {"decontam:gsm8k": 1}
    assert wiki["in_docs"] == 5 and wiki["kept_docs"] == 5 and wiki["rejected_docs"] == 0

    inputs = {r["id"]: r for s in shards for r in read_table(s).to_pylist()}
    kept = {r["id"]: r for s in shards for r in read_table(out / s.name).to_pylist()}
    rejected = [r for s in shards for r in read_table(out / "rejected" / s.name).to_pylist()]
    assert [(r["id"], r["reason"], r["stage"]) for r in rejected] == [("books/dirty", "decontam:gsm8k", "decontam")]
    assert rejected[0]["text"] == inputs["books/dirty"]["text"] and rejected[0][SPANS_COLUMN] == 12
    assert rejected[0][ITEMS_COLUMN] and {i.split("/")[0] for i in rejected[0][ITEMS_COLUMN]} == {"gsm8k"}
    for doc_id, row in kept.items():
        original = inputs[doc_id]
        if doc_id in planted:
            assert row[SPANS_COLUMN] == 1 and len(row["text"]) < len(original["text"])
            assert row[ITEMS_COLUMN] and all(i.split("/")[0] in ("gsm8k", "humaneval", "piqa") for i in row[ITEMS_COLUMN])
            assert {k: v for k, v in row.items() if k not in ("text", SPANS_COLUMN, ITEMS_COLUMN)} == \
                {k: v for k, v in original.items() if k != "text"}
        else:
            assert row == {**original, SPANS_COLUMN: 0, ITEMS_COLUMN: []}
            assert row["text"].encode() == original["text"].encode()

    contamination = json.loads((out / REPORT_FILE).read_text())
    assert contamination["totals"]["docs_scanned"] == 46
    assert contamination["totals"]["docs_matched"] == 4
    assert contamination["totals"]["docs_dropped"] == 1 and contamination["totals"]["docs_modified"] == 3
    g, h, p = (contamination["eval_sets"][n] for n in ("gsm8k", "humaneval", "piqa"))
    assert g["items"] == 1319 and g["docs_matched"] == 3 and g["sources"] == {"books": 3}
    assert set(g["found"]) == {"line 4", "line 18", *(f"line {k + 1}" for k in range(100, 112))}
    assert g["found"]["line 4"] == {"docs": 1, "sources": {"books": 1}, "examples": ["books/3"],
                                    "text": g["found"]["line 4"]["text"]}
    assert g["found"]["line 4"]["text"].startswith(sets["gsm8k"].items[3].text[:40])
    assert h["found"].keys() == {"line 6"} and h["sources"] == {"wikipedia": 1} and h["docs_modified"] == 1
    assert p["items_found"] == 0 and p["items_too_short"] == 35 and p["ngrams"]["8"] > 0
    summary = summarize_contamination(contamination)
    assert "gsm8k: 14 of 1,319 items found in 3 docs (sources: books 3); 2 modified, 1 dropped" in summary
    assert "humaneval: 1 of 164 items found in 1 docs (sources: wikipedia 1)" in summary

    # Same inputs and config, one worker in-process: identical bytes.
    serial_out = tmp_path / "serial"
    run_global_stage(DecontamStage(DecontamConfig(evals=evals)), shards, serial_out, tmp_path / "scratch2",
                     SerialExecutor(progress=False))
    for s in shards:
        assert (serial_out / s.name).read_bytes() == (out / s.name).read_bytes()
        assert (serial_out / "rejected" / s.name).read_bytes() == (out / "rejected" / s.name).read_bytes()
    assert (serial_out / REPORT_FILE).read_bytes() == (out / REPORT_FILE).read_bytes()


def test_frequent_ngrams_mode_ignores_boilerplate(tmp_path, loaded, paragraphs):
    """Every Gutenberg book carries the same licence header: as an 'eval item' it is boilerplate."""
    sets, *_ = loaded
    headers = []
    for name in ("14263.txt", "15122.txt", "16215.txt", "16595.txt"):
        raw = data_path("gutenberg", name).read_bytes().decode("latin-1")
        headers.append(raw[: raw.index("*** START")])
    licence = "This eBook is for the use of anyone anywhere at no cost and with almost no restrictions whatsoever."
    assert all(words(licence)[:13] == words(h)[words(h).index("this"):][:13] for h in headers)
    question = sets["gsm8k"].items[7].text
    eval_file = tmp_path / "evals.txt"
    eval_file.write_text(licence + "\n" + question.replace("\n", " ") + "\n", encoding="utf-8")
    docs = [Doc(f"books/h{i}", "books", h) for i, h in enumerate(headers)]
    docs += [Doc("books/q", "books", paragraphs[0] + "\n\n" + question + "\n\n" + paragraphs[1])]
    shards = _write_shards(docs, tmp_path / "in")

    def run(ignore: bool) -> dict:
        config = DecontamConfig(evals={"mixed": str(eval_file)}, ignore_frequent_ngrams=ignore,
                                frequent_ngram_min_docs=3)
        out = tmp_path / f"out-{ignore}"
        run_global_stage(DecontamStage(config), shards, out, tmp_path / f"scratch-{ignore}", SerialExecutor(False))
        return json.loads((out / REPORT_FILE).read_text())

    plain, filtered = run(False), run(True)
    assert plain["eval_sets"]["mixed"]["found"]["line 1"]["docs"] == 4
    assert plain["totals"]["docs_matched"] == 5
    assert "line 1" not in filtered["eval_sets"]["mixed"]["found"]
    assert filtered["eval_sets"]["mixed"]["found"]["line 2"]["examples"] == ["books/q"]
    assert filtered["eval_sets"]["mixed"]["ngrams_ignored_frequent"] == len(words(licence)) - 12
    assert filtered["totals"]["docs_matched"] == 1


def test_eval_fingerprint_follows_file_content(tmp_path):
    lines = data_path("eval_sets", "gsm8k", "test.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(lines[:5]) + "\n", encoding="utf-8")
    stage = DecontamStage(DecontamConfig(evals={"g": f"{path}:question"}))
    before = stage.eval_fingerprint()
    path.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    assert stage.eval_fingerprint()["g"] != before["g"]


def test_empty_shard(tmp_path, evals):
    shard = tmp_path / "in" / "empty.parquet"
    write_table(docs_to_table([]), shard)
    report = run_global_stage(DecontamStage(DecontamConfig(evals=evals)), [shard], tmp_path / "out",
                              tmp_path / "s", SerialExecutor(False))
    assert report.counts == {}
    assert read_table(tmp_path / "out" / "empty.parquet").num_rows == 0
    assert json.loads((tmp_path / "out" / REPORT_FILE).read_text())["totals"]["docs_scanned"] == 0


def test_no_eval_sets_is_a_config_error(tmp_path):
    shard = tmp_path / "in" / "p.parquet"
    write_table(docs_to_table([Doc("books/1", "books", "text")]), shard)
    with pytest.raises(ConfigError, match="stages.decontam.evals"):
        DecontamStage(DecontamConfig()).run([shard], tmp_path / "out", tmp_path / "s", SerialExecutor(False))


def test_table_schema_is_kept(tmp_path, evals, paragraphs, loaded):
    """Columns added by earlier stages survive, in order, and the text column keeps its place."""
    sets, *_ = loaded
    table = docs_to_table([Doc("books/a", "books", paragraphs[0] + "\n" + sets["piqa"].items[9].text + "\n"
                               + paragraphs[1]), Doc("books/b", "books", paragraphs[2])])
    table = table.append_column("lang", pa.array(["en", "en"]))
    write_table(table, tmp_path / "in" / "p.parquet")
    run_global_stage(DecontamStage(DecontamConfig(evals=evals)), [tmp_path / "in" / "p.parquet"],
                     tmp_path / "out", tmp_path / "s", SerialExecutor(False))
    kept = read_table(tmp_path / "out" / "p.parquet")
    assert kept.column_names == ["id", "source", "text", "url", "meta", "lang", SPANS_COLUMN, ITEMS_COLUMN]
    assert kept.column(SPANS_COLUMN).to_pylist() == [1, 0]
    assert kept.column(ITEMS_COLUMN).to_pylist() == [[f"piqa/{sets['piqa'].items[9].key}"], []]
