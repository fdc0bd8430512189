"""sources/cc.py: Common Crawl files to documents, on the real files in ../shared/data/warc."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipeline.core.config import ConfigError, from_mapping
from pipeline.core.extractor import PlanContext
from pipeline.core.schema import Doc, Rejected
from pipeline.running.registry import extractor_class
from sources.cc import (
    CommonCrawlConfig,
    CommonCrawlExtractor,
    extract_warc_file,
    guess_languages,
    load_lang_model,
)
from sources.warc import WarcError, iter_records
from tests.conftest import data_path

RESILIPARSE = "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"
DOLMA = "dolma_sample-0001.warc.gz"
WHIRLWIND = "commoncrawl-whirlwind_whirlwind.warc.gz"
WET = "commoncrawl-whirlwind_whirlwind.warc.wet.gz"
AUT_WARC = "aut_IAH-20080430204825-00000-blackbook.warc.gz"
AUT_ARC = "aut_IAH-20080430204825-00000-blackbook.arc.gz"
FAST_FILES = [RESILIPARSE, DOLMA, WHIRLWIND, WET, "commoncrawl-whirlwind_whirlwind.warc.wat.gz"]


def _extract(path, config: CommonCrawlConfig | None = None, name: str | None = None, source: str = "cc"):
    docs: list[Doc] = []
    rejected: list[Rejected] = []
    for item in extract_warc_file(path, name or Path(path).name, config or CommonCrawlConfig(), source):
        (rejected if isinstance(item, Rejected) else docs).append(item)
    return docs, rejected


def _n_records(path: Path) -> int:
    return sum(1 for _ in iter_records(path, path.name))


@pytest.mark.parametrize("name", FAST_FILES)
def test_every_record_becomes_a_doc_or_a_counted_rejection(name: str) -> None:
    path = data_path("warc", name)
    docs, rejected = _extract(path, CommonCrawlConfig(languages=[]))
    assert len(docs) + len(rejected) == _n_records(path)
    ids = [d.id for d in docs] + [r.id for r in rejected]
    assert len(set(ids)) == len(ids)
    assert all(r.reason.startswith("cc:") for r in rejected)


def test_common_crawl_warc_reasons_ids_and_meta() -> None:
    docs, rejected = _extract(data_path("warc", RESILIPARSE), CommonCrawlConfig(languages=[]))
    reasons = Counter(r.reason for r in rejected)
    assert reasons["cc:request"] == 17 and reasons["cc:metadata"] == 16 and reasons["cc:warcinfo"] == 1
    assert len(docs) + sum(n for r, n in reasons.items() if r.startswith("cc:extract")) == 16
    assert len(docs) >= 12
    for d in docs:
        assert d.id.startswith("cc/") and len(d.id) == 3 + 36
        assert d.source == "cc" and d.url and d.text.strip()
        assert d.meta["crawl"] == "CC-MAIN-2020-34"
        assert d.meta["warc_file"] == RESILIPARSE and isinstance(d.meta["warc_offset"], int)
        assert d.meta["date"].startswith("2020-08-08")


def test_language_prefilter_skips_pages_clearly_in_other_languages() -> None:
    path = data_path("warc", RESILIPARSE)
    all_docs, _ = _extract(path, CommonCrawlConfig(languages=[]))
    en_docs, rejected = _extract(path, CommonCrawlConfig(languages=["en"]))
    by_lang = Counter(r.reason for r in rejected if r.reason.startswith("cc:lang:"))
    assert by_lang["cc:lang:zh"] >= 5 and by_lang["cc:lang:de"] >= 1
    en_ids, all_ids = {d.id for d in en_docs}, {d.id for d in all_docs}
    assert en_ids < all_ids and len(all_ids - en_ids) >= 5
    assert all(d.meta["prefilter_lang"] == "en" or d.meta["prefilter_lang_score"] < 0.5 for d in en_docs)
    zh_docs, _ = _extract(path, CommonCrawlConfig(languages=["zh"]))
    assert len(zh_docs) >= 5


def test_fasttext_predicts_under_numpy_2() -> None:
    model = load_lang_model()
    top = guess_languages(model, "The quick brown fox jumps over the lazy dog near the river bank.")
    assert top[0][0] == "en" and 0.5 < top[0][1] <= 1.0001
    assert guess_languages(model, "Der schnelle braune Fuchs springt über den faulen Hund.")[0][0] == "de"


def test_arc_and_warc_of_one_crawl_give_the_same_documents() -> None:
    cfg = CommonCrawlConfig(languages=[], blocked_extensions=[])
    cfg.html.max_html_bytes = 150_000  # skip the few huge forum pages: they take seconds each
    arc_docs, arc_rej = _extract(data_path("warc", AUT_ARC), cfg)
    warc_docs, _ = _extract(data_path("warc", AUT_WARC), cfg)
    assert len(arc_docs) > 50
    assert sorted((d.url, d.text) for d in arc_docs) == sorted((d.url, d.text) for d in warc_docs)
    reasons = Counter(r.reason for r in arc_rej)
    assert reasons["cc:status-404"] == 40 and reasons["cc:non-html"] >= 100 and reasons["cc:status-none"] == 38
    # ARC records have no id: theirs are derived from the file and offset, stable across runs
    again, _ = _extract(data_path("warc", AUT_ARC), cfg)
    assert [d.id for d in again] == [d.id for d in arc_docs]
    assert len({d.id for d in arc_docs}) == len(arc_docs)


def test_wet_text_has_the_id_of_the_warc_response() -> None:
    cfg = CommonCrawlConfig(languages=["es", "an"])
    (wet_doc,), _ = _extract(data_path("warc", WET), cfg)
    (warc_doc,), _ = _extract(data_path("warc", WHIRLWIND), cfg)
    assert wet_doc.id == warc_doc.id and wet_doc.url == warc_doc.url
    assert wet_doc.meta["crawl"] == "CC-MAIN-2024-22" and wet_doc.meta["cc_languages"] == "spa"
    assert "Escopete" in wet_doc.text and "Escopete" in warc_doc.text


def test_blocklists_and_size_cap() -> None:
    path = data_path("warc", DOLMA)
    docs, rejected = _extract(path, CommonCrawlConfig(languages=[], blocked_domains=["creativecommons.org"]))
    blocked = [r for r in rejected if r.reason == "cc:blocked-domain"]
    assert blocked and all("creativecommons.org" in r.url for r in blocked)
    assert not any("creativecommons.org" in d.url for d in docs)
    cfg = CommonCrawlConfig(languages=[])
    cfg.html.max_html_bytes = 20_000
    _, rejected = _extract(path, cfg)
    assert any(r.reason == "cc:html-too-large" for r in rejected)


def test_truncated_file_counts_the_corrupt_record_and_keeps_the_rest(tmp_path: Path) -> None:
    src = data_path("warc", RESILIPARSE)
    data = src.read_bytes()
    p = tmp_path / "cut.warc.gz"
    p.write_bytes(data[: len(data) * 3 // 4])
    errors = [i for i in iter_records(p, p.name) if isinstance(i, WarcError)]
    docs, rejected = _extract(p, CommonCrawlConfig(languages=[]))
    corrupt = [r for r in rejected if r.reason == "cc:corrupt-record"]
    assert len(corrupt) == 1 and corrupt[0].id == f"cc/cut.warc.gz@{errors[0].offset}"
    assert corrupt[0].meta["warc_offset"] == errors[0].offset and corrupt[0].meta["error"]
    full_docs, _ = _extract(src, CommonCrawlConfig(languages=[]))
    assert [d.text for d in docs] == [d.text for d in full_docs[: len(docs)]] and len(docs) >= 5


def test_source_name_is_settable_for_other_sources() -> None:
    docs, rejected = _extract(data_path("warc", DOLMA), CommonCrawlConfig(languages=[]), source="reddit")
    assert docs and all(d.source == "reddit" and d.id.startswith("reddit/") for d in docs)
    assert all(r.reason.startswith("reddit:") for r in rejected)


def test_config_from_toml_mapping() -> None:
    cfg = from_mapping(
        CommonCrawlConfig, {"languages": ["en", "de"], "max_files": 3, "html": {"favor_precision": False}}, "cc"
    )
    assert cfg.languages == ["en", "de"] and cfg.html.favor_precision is False
    with pytest.raises(ConfigError, match="cc.html.nope"):
        from_mapping(CommonCrawlConfig, {"html": {"nope": 1}}, "cc")
    assert extractor_class("cc") is CommonCrawlExtractor


# ------------------------------------------------------------------------------------------- runner


def test_run_extract_on_ray_counts_everything(ray_executor, tmp_path: Path) -> None:
    from pipeline.running.runner import run_extract

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in (DOLMA, WET):
        shutil.copy(data_path("warc", name), inputs / name)
    data = data_path("warc", RESILIPARSE).read_bytes()  # only its first half: ids stay unique
    (inputs / "cut.warc.gz").write_bytes(data[: len(data) // 2])
    (inputs / "junk.warc.gz").write_bytes(b"not a warc file at all")
    ex = CommonCrawlExtractor(CommonCrawlConfig(languages=["en"]))
    units = ex.plan([str(inputs)], PlanContext(executor=ray_executor, scratch=tmp_path / "scratch"))
    report = run_extract(ex, units, tmp_path / "out", ray_executor)

    assert [Path(f["task"]).name for f in report.failed] == ["junk.warc.gz"]
    assert "junk.warc.gz" in report.failed[0]["error"]
    counts = report.counts["cc"]
    n_records = sum(_n_records(inputs / n) for n in (DOLMA, WET, "cut.warc.gz"))
    assert counts["in_docs"] == n_records == counts["kept_docs"] + counts["rejected_docs"]
    reasons = counts["reasons"]
    assert reasons["cc:corrupt-record"] == 1 and reasons["cc:lang:zh"] >= 3 and reasons["cc:request"] > 20
    assert counts["kept_docs"] >= 15
    assert (tmp_path / "out" / "_stage.json").exists()


def test_the_same_record_in_two_inputs_fails_the_step_naming_the_id(tmp_path: Path) -> None:
    """Ids are unique in every step's output: two inputs holding one WARC record are an error that
    names the id (the same file twice, here), not two documents with one id."""
    from pipeline.core.accounting import AccountingError
    from pipeline.running.executor import SerialExecutor
    from pipeline.running.runner import run_extract

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(data_path("warc", DOLMA), tmp_path / d / DOLMA)
    ex = CommonCrawlExtractor(CommonCrawlConfig(languages=[]))
    executor = SerialExecutor(progress=False)
    units = ex.plan([str(tmp_path / "a"), str(tmp_path / "b" / DOLMA)], PlanContext(executor=executor, scratch=tmp_path / "s"))
    assert len(units) == 2
    with pytest.raises(AccountingError, match=r"extract:cc: \d+ document ids occur more than once: cc/"):
        run_extract(ex, units, tmp_path / "out", executor)
    assert not (tmp_path / "out" / "_stage.json").exists()


def test_a_record_without_target_uri_is_a_counted_rejection_and_the_file_goes_on(tmp_path: Path) -> None:
    """Issue 14, item 4: one response without WARC-Target-URI failed the whole file (AttributeError)."""
    import gzip

    src = data_path("warc", RESILIPARSE)
    raw = src.read_bytes()
    records = [r for r in iter_records(src, src.name)]
    starts = [r.offset for r in records] + [len(raw)]
    victim = next(i for i, r in enumerate(records) if r.rec_type == "response" and i > 5)
    member = gzip.decompress(raw[starts[victim] : starts[victim + 1]])
    head, sep, rest = member.partition(b"\r\n\r\n")
    head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.startswith(b"WARC-Target-URI:"))
    p = tmp_path / "no-uri.warc.gz"
    p.write_bytes(raw[: starts[victim]] + gzip.compress(head + sep + rest) + raw[starts[victim + 1] :])
    cfg = CommonCrawlConfig(languages=[])
    docs, rejected = _extract(p, cfg)
    full_docs, full_rejected = _extract(src, cfg)
    corrupt = [r for r in rejected if r.reason == "cc:corrupt-record"]
    assert [(r.id, r.meta["warc_offset"]) for r in corrupt] == [(f"cc/no-uri.warc.gz@{starts[victim]}", starts[victim])]
    assert "WARC-Target-URI" in corrupt[0].meta["error"]
    # Every other record comes through as before; the victim is one counted row instead of its own.
    lost = [x.id for x in full_docs + full_rejected if x.meta.get("warc_offset") == starts[victim]]
    assert len(lost) == 1
    assert sorted(d.id for d in docs) == sorted(d.id for d in full_docs if d.id not in lost)
    assert len(docs) + len(rejected) == len(records)


def test_fewer_collections_restores_the_thresholds() -> None:
    import gc

    from sources.cc import fewer_collections

    before = gc.get_threshold()
    with fewer_collections(12_345):
        assert gc.get_threshold() == (max(12_345, before[0]), *before[1:])
    assert gc.get_threshold() == before
