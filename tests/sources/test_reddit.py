"""The Reddit source: the OpenWebText recipe on the real Pushshift dumps, and end to end against a real
HTTP server on 127.0.0.1 (tests/sources/http_fixtures.py) through the Ray runner."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline.core.extractor import InputError, PlanContext
from pipeline.core.shards import REJECTED_DIR, read_table
from pipeline.running.executor import SerialExecutor
from pipeline.running.runner import run_extract
from sources.fetch import FetchConfig
from sources.pushshift import iter_dump
from sources.reddit import RedditConfig, RedditExtractor
from tests.conftest import data_path
from tests.sources.http_fixtures import PageServer


def plan(inputs: list[str], tmp_path: Path, **config) -> tuple[RedditExtractor, list]:
    ex = RedditExtractor(RedditConfig(**config))
    return ex, ex.plan(inputs, PlanContext(executor=SerialExecutor(progress=False), scratch=tmp_path / "scratch"))


def outcomes_without_fetching(ex: RedditExtractor, units) -> Counter[str]:
    """Every submission's fate: dump units are extracted; URL units are read from their group tables."""
    fates: Counter[str] = Counter()
    for u in units:
        if u.payload["kind"] == "dump":
            fates.update(r.reason for r in ex.extract(u))
        else:
            fates.update(pq.read_table(u.payload["table"]).column("role").to_pylist())
    return fates


def dump(name: str) -> str:
    return str(data_path("reddit", name))


def test_one_month_score_cut_matches_the_dump_description(tmp_path: Path):
    """SOURCES.md: 2005-06 has 103 link posts, 83 of them with score >= 3, all distinct URLs."""
    ex, units = plan([dump("RS_v2_2005-06.xz")], tmp_path, partitions=4)
    assert outcomes_without_fetching(ex, units) == {"doc": 83, "low-score": 20}
    assert units[0].key.startswith("dump-RS_v2_2005-06.xz-") and units[0].payload["kind"] == "dump"
    assert all(u.key.startswith("urls-p") and u.key.endswith("-of-00004") for u in units[1:])


def test_scores_are_summed_per_url_and_repeats_are_duplicates(tmp_path: Path):
    """The same month as .xz and .zst: every URL submitted twice, so every score doubles."""
    ex, units = plan([dump("RS_v2_2005-06.xz"), dump("RS_v2_2005-06.zst")], tmp_path, partitions=3)
    fates = outcomes_without_fetching(ex, units)
    assert fates["doc"] == fates["duplicate-url"] == 92  # 2 * score >= 3 <=> score >= 2
    assert fates["low-score"] == 22 and sum(fates.values()) == 206
    rows = [r for u in units if u.payload["kind"] == "urls" for r in pq.read_table(u.payload["table"]).to_pylist()]
    by_url: dict[str, list] = {}
    for r in rows:
        by_url.setdefault(r["normalized_url"], []).append(r)
    for group in by_url.values():
        assert len(group) == 2 and group[0]["group_score"] == 2 * group[0]["score"]
        assert {r["dump"] for r in group} == {"RS_v2_2005-06.xz", "RS_v2_2005-06.zst"}


def test_every_submission_of_every_dump_is_accounted_for(tmp_path: Path):
    inputs = [dump("RS_v2_2005-06.xz"), dump("RS_v2_2005-06.zst"), dump("RS_v2_2005-07.zst")]
    ex, units = plan(inputs, tmp_path, partitions=5)
    fates = outcomes_without_fetching(ex, units)
    assert sum(fates.values()) == 103 * 2 + 1079
    assert fates["reddit:blocked-domain"] == 2 and fates["reddit:blocked-extension"] == 6
    rejected = [r for u in units if u.payload["kind"] == "dump" for r in ex.extract(u)]
    wiki = next(r for r in rejected if r.reason == "reddit:blocked-domain" and "wikipedia" in r.url)
    assert wiki.meta["dump"] == "RS_v2_2005-07.zst" and wiki.meta["line"] > 0 and wiki.id.startswith("reddit/t3_")
    # Same inputs, another worker layout and a fresh scratch: the same fates and the same units.
    ex2, units2 = plan(list(reversed(inputs)), tmp_path / "again", partitions=5)
    assert outcomes_without_fetching(ex2, units2) == fates
    assert [(u.key, u.fingerprint) for u in units2] == [(u.key, u.fingerprint) for u in units]
    # Another partition count: the same fates, split differently.
    assert outcomes_without_fetching(*plan(inputs, tmp_path / "p2", partitions=2)) == fates


def test_bad_lines_and_cut_short_dumps_are_counted(tmp_path: Path):
    lines = [json.dumps(r.record) for r in iter_dump(dump("RS_v2_2005-06.xz"))]
    broken = tmp_path / "RS_broken.ndjson"
    broken.write_text("\n".join(lines[:5] + ["{not json", "[]"] + lines[5:10]) + "\n")
    cut = tmp_path / "RS_cut.zst"
    data = data_path("reddit", "RS_v2_2005-07.zst").read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    ex, units = plan([str(broken), str(cut)], tmp_path, partitions=2)
    rejected = [r for u in units if u.payload["kind"] == "dump" for r in ex.extract(u)]
    malformed = [r for r in rejected if r.reason == "reddit:malformed-record"]
    assert [(r.meta["dump"], r.meta["line"]) for r in malformed] == [("RS_broken.ndjson", 6), ("RS_broken.ndjson", 7)]
    assert malformed[0].id == "reddit/RS_broken.ndjson:6" and "invalid JSON" in malformed[0].meta["detail"]
    truncated = [r for r in rejected if r.reason == "reddit:truncated-dump"]
    assert len(truncated) == 1 and truncated[0].meta["dump"] == "RS_cut.zst"
    fates = outcomes_without_fetching(ex, units)
    assert fates["reddit:malformed-record"] == 2 and fates["reddit:truncated-dump"] == 1


def test_an_unreadable_dump_fails_its_unit_by_name_and_not_the_plan(tmp_path: Path):
    bad = tmp_path / "RS_2021-01.xz"
    bad.write_bytes(b"not xz" * 100)
    ex, units = plan([str(bad), dump("RS_v2_2005-06.xz")], tmp_path, partitions=2)
    failed = [u for u in units if "error" in u.payload]
    assert len(failed) == 1 and failed[0].payload["path"] == str(bad)
    with pytest.raises(InputError, match="RS_2021-01.xz"):
        list(ex.extract(failed[0]))
    assert outcomes_without_fetching(ex, [u for u in units if u not in failed])["doc"] == 83


def test_a_dump_given_by_url(tmp_path: Path):
    path = data_path("reddit", "RS_v2_2005-06.zst")
    with PageServer(tmp_path, files_dir=path.parent) as srv:
        ex, units = plan([srv.url(f"files/{path.name}")], tmp_path, partitions=2)
    local_ex, local_units = plan([str(path)], tmp_path / "local", partitions=2)
    assert outcomes_without_fetching(ex, units) == outcomes_without_fetching(local_ex, local_units)
    assert units[0].fingerprint == local_units[0].fingerprint  # the same bytes, hashed while streamed
    assert [u.fingerprint for u in units[1:]] == [u.fingerprint for u in local_units[1:]]


def test_config_from_toml_tables():
    from pipeline.core.config import ConfigError, from_mapping

    cfg = from_mapping(RedditConfig, {"min_score": 5, "fetch": {"allow_private_addresses": True, "retries": 0},
                                      "extraction": {"languages": []}}, "sources.reddit")
    assert cfg.min_score == 5 and cfg.fetch.allow_private_addresses and cfg.extraction.languages == []
    with pytest.raises(ConfigError, match="sources.reddit.fetch.nope"):
        from_mapping(RedditConfig, {"fetch": {"nope": 1}}, "sources.reddit")
    with pytest.raises(ConfigError, match="allowed_address_classes"):
        from_mapping(RedditConfig, {"fetch": {"allowed_address_classes": ["lan"]}}, "sources.reddit")


# ------------------------------------------------------------------------------------- end to end


PAGES = ["cnn_article", "gq.com1", "mashable.com1", "bhg.com1", "fool.com1", "arabic_article", "elle.com1"]


def write_dump(path: Path, srv: PageServer) -> dict[str, int]:
    """A small zstd dump whose URLs point at the local server; returns the expected fate counts."""
    subs = []

    def add(sid, path_or_url, score=5, **extra):
        url = path_or_url if "://" in path_or_url else srv.url(path_or_url)
        subs.append({"id": sid, "url": url, "score": score, "subreddit": extra.pop("subreddit", "test"),
                     "is_self": False, "over_18": False, "created_utc": 1000 + len(subs), "title": sid, **extra})

    for i, name in enumerate(PAGES[:5]):
        add(f"ok{i}", f"page/{name}")
    add("ar", "page/arabic_article")  # fetched, then the cc path's language prefilter rejects it
    add("dup", srv.url("page/cnn_article") + "?utm_source=reddit", score=1, subreddit="news")
    add("flaky", "flaky/elle.com1")
    add("redir", "redirect/elle.com2")
    add("slow", "slow/glamour.com1")
    add("e500", "always-500/a")
    add("loop", "loop/a")
    add("endless", "endless")
    add("bin", "binary")
    add("ssrf", "to-private/169")
    add("low", "page/gq.com2", score=2)
    add("self", "https://www.reddit.com/r/test/comments/x/", is_self=True)
    add("nsfw", "page/elle.com2", over_18=True)
    add("yt", "https://www.youtube.com/watch?v=abc")
    add("pdf", "page/report.pdf")
    lines = [json.dumps(s) for s in subs] + ["{broken"]
    path.write_bytes(zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode()))
    return {
        "kept": 7, "reddit:lang:ar": 1, "reddit:duplicate-url": 1, "fetch:timeout": 1, "fetch:http-500": 1,
        "fetch:redirect-loop": 1, "fetch:too-large": 1, "fetch:content-type": 1, "fetch:private-address": 1,
        "reddit:low-score": 1, "reddit:self-post": 1, "reddit:over-18": 1, "reddit:blocked-domain": 1,
        "reddit:blocked-extension": 1, "reddit:malformed-record": 1,
    }


def reddit_config(archive: Path) -> RedditConfig:
    return RedditConfig(
        partitions=3,
        archive_dir=str(archive),
        fetch=FetchConfig(connect_timeout_s=0.5, read_timeout_s=0.5, retries=1, backoff_s=0.05,
                          per_host_interval_s=0.0, per_host_max_concurrent=4, concurrency=4, max_bytes=1 << 20,
                          max_seconds_per_url=10.0, allowed_address_classes=["loopback"]),
    )


def test_end_to_end_with_ray_fetches_archives_extracts_and_accounts(ray_executor, tmp_path: Path):
    pages = data_path("extraction", "newspaper_fulltext", "html")
    with PageServer(pages, slow_seconds=2.0) as srv:
        dump_path = tmp_path / "RS_test.zst"
        expected = write_dump(dump_path, srv)
        ex = RedditExtractor(reddit_config(tmp_path / "archive"))
        ctx = PlanContext(executor=ray_executor, scratch=tmp_path / "scratch")
        units = ex.plan([str(dump_path)], ctx)
        report = run_extract(ex, units, tmp_path / "out", ray_executor)
        hits_after_first = Counter(srv.hits)

        # A rerun into a fresh output directory reads the archive: not one request more.
        units2 = RedditExtractor(reddit_config(tmp_path / "archive")).plan([str(dump_path)], ctx)
        run_extract(RedditExtractor(reddit_config(tmp_path / "archive")), units2, tmp_path / "out2", ray_executor)
        assert srv.hits == hits_after_first

    assert not report.failed
    counts = report.counts["reddit"]
    assert counts["in_docs"] == 21 == counts["kept_docs"] + counts["rejected_docs"]
    assert {"kept": counts["kept_docs"], **counts["reasons"]} == expected
    assert srv.hits["/flaky/elle.com1"] == 2 and srv.hits["/always-500/a"] == 2

    kept = read_table_dir(tmp_path / "out")
    by_url = {r["url"]: r for r in kept}
    cnn = by_url[srv.url("page/cnn_article")]
    assert cnn["id"] == "reddit/" + hashlib.sha1(cnn["url"].encode()).hexdigest()[:16]
    meta = json.loads(cnn["meta"])
    assert meta["score"] == 6 and meta["subreddits"] == ["news", "test"] and meta["submission_ids"] == ["dup", "ok0"]
    assert meta["warc_file"].startswith("p0000") and meta["warc_file"].endswith(".warc.gz")
    assert len(cnn["text"]) > 1000 and meta["submission_title"] == "ok0"
    redirected = json.loads(by_url[srv.url("redirect/elle.com2")]["meta"])
    assert redirected["final_url"] == srv.url("page/elle.com2")
    rejected = read_table_dir(tmp_path / "out" / REJECTED_DIR)
    ssrf = next(r for r in rejected if r["reason"] == "fetch:private-address")
    assert "169.254.169.254" in json.loads(ssrf["meta"])["fetch_detail"]
    # The rerun from the archive gives the same documents, byte for byte.
    assert read_table_dir(tmp_path / "out2") == kept
    assert read_table_dir(tmp_path / "out2" / REJECTED_DIR) == rejected


def read_table_dir(directory: Path) -> list[dict]:
    rows = [r for p in sorted(directory.glob("*.parquet")) for r in read_table(p).to_pylist()]
    return sorted(rows, key=lambda r: (r["id"], r.get("reason") or ""))
