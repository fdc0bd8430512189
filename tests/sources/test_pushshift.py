"""sources/pushshift.py on the real Pushshift dumps in ../shared/data/reddit (see its SOURCES.md)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
from collections import Counter
from pathlib import Path

import pytest

from sources.pushshift import (
    DEFAULT_BLOCKED_DOMAINS,
    DEFAULT_BLOCKED_EXTENSIONS,
    DumpReader,
    UrlRules,
    blocked_domain,
    classify,
    iter_dump,
    normalize_url,
    url_extension,
    url_partition,
)
from tests.conftest import data_path
from tests.sources.http_fixtures import PageServer

RULES = UrlRules.of(DEFAULT_BLOCKED_DOMAINS, DEFAULT_BLOCKED_EXTENSIONS)


def ndjson(month: str) -> bytes:
    return lzma.decompress(data_path("reddit", f"RS_v2_2005-{month}.xz").read_bytes())


def records(spec: str | Path) -> list[dict]:
    lines = list(iter_dump(str(spec)))
    assert all(line.error is None for line in lines), [line.error for line in lines if line.error]
    return [line.record for line in lines]


@pytest.mark.parametrize("month, count", [("06", 103), ("07", 1079)])
def test_xz_and_zst_dumps_read_the_same_records(month, count):
    xz = records(data_path("reddit", f"RS_v2_2005-{month}.xz"))
    zst = records(data_path("reddit", f"RS_v2_2005-{month}.zst"))
    assert len(xz) == count and xz == zst
    assert all(r["url"].startswith("http") and r["id"] for r in xz)


def test_bz2_gz_and_plain_dumps(tmp_path: Path):
    raw = ndjson("06")
    (tmp_path / "d.bz2").write_bytes(bz2.compress(raw))
    (tmp_path / "d.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "d.ndjson").write_bytes(raw)
    expected = [json.loads(line) for line in raw.splitlines()]
    for name in ("d.bz2", "d.gz", "d.ndjson"):
        assert records(tmp_path / name) == expected


@pytest.mark.parametrize("suffix", ["zst", "xz"])
def test_a_cut_short_dump_keeps_its_records_and_reports_the_truncation(tmp_path: Path, suffix):
    data = data_path("reddit", f"RS_v2_2005-07.{suffix}").read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    lines = list(iter_dump(str(cut)))
    good = [line for line in lines if line.record is not None]
    assert 100 < len(good) < 1079
    assert [r.record for r in good] == records(data_path("reddit", f"RS_v2_2005-07.{suffix}"))[: len(good)]
    assert lines[-1].truncated and "truncated" in lines[-1].error


def test_malformed_lines_are_numbered(tmp_path: Path):
    good = ndjson("06").splitlines()[:3]
    dump = tmp_path / "bad.ndjson"
    dump.write_bytes(b"\n".join([good[0], b'{"id": "x", "url": ', b"", good[1], b"[1, 2]", b"\xff\xfe", good[2]]) + b"\n")
    lines = list(iter_dump(str(dump)))
    assert [(line.line, line.error is None) for line in lines] == [
        (1, True), (2, False), (4, True), (5, False), (6, False), (7, True)]
    assert "invalid JSON" in lines[1].error and "JSON object" in lines[3].error


def test_a_dump_by_url_is_streamed_and_fingerprinted(tmp_path: Path):
    path = data_path("reddit", "RS_v2_2005-06.zst")
    with PageServer(tmp_path, files_dir=path.parent) as srv:
        reader = DumpReader(srv.url(f"files/{path.name}"))
        remote = [line.record for line in reader]
    assert remote == records(path)
    assert reader.sha256 == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_normalize_url():
    assert normalize_url("HTTP://WWW.Example.COM:80/a%7eb/%2f/c?utm_source=x&b=2&a=1&flag#frag") == (
        "http://www.example.com/a~b/%2F/c?a=1&b=2&flag")
    assert normalize_url("https://example.com") == "https://example.com/"
    assert normalize_url("https://example.com:8443/x") == "https://example.com:8443/x"
    assert normalize_url("https://bücher.de/x y/é") == "https://xn--bcher-kva.de/x%20y/%C3%A9"
    # Pushshift's 2005 records escape '&' as '&amp;'
    assert normalize_url("http://x.com/a?amp;ei=5&amp;en=2&amp;partner=rss") == "http://x.com/a?amp;ei=5&en=2&partner=rss"
    for bad in ("ftp://x.com/a", "javascript:alert(1)", "/r/news", "", "http://user:pw@x.com/", "http://x.com/\x00",
                "http:///path"):
        assert normalize_url(bad) is None, bad


def test_domain_and_extension_rules():
    blocked = RULES.blocked_domains
    assert blocked_domain("en.wikipedia.org", blocked) == "wikipedia.org"
    assert blocked_domain("i.imgur.com", blocked) == "imgur.com"
    assert blocked_domain("old.reddit.com", blocked) == "reddit.com"
    assert blocked_domain("notreddit.com", blocked) is None
    assert url_extension("http://a.com/img/Photo.JPG?x=1") == "jpg"
    assert url_extension("http://a.com/dir.pdf/") == ""
    assert url_extension("http://a.com/.htaccess") == ""
    assert url_partition("http://a.com/", 7) == url_partition("http://a.com/", 7) < 7


def test_classify_real_dumps():
    """The per-submission rules on the real 2005 dumps: every record a link post; a few blocked."""
    reasons: Counter[str | None] = Counter()
    blocked: list[tuple[str, str]] = []
    for month in ("06", "07"):
        for line in iter_dump(str(data_path("reddit", f"RS_v2_2005-{month}.xz"))):
            sub = classify(line.line, line.record, RULES)
            reasons[sub.reason] += 1
            if sub.reason:
                blocked.append((sub.reason, sub.detail))
    assert sum(reasons.values()) == 103 + 1079
    assert reasons["reddit:self-post"] == reasons["reddit:over-18"] == reasons["reddit:bad-url"] == 0
    assert ("reddit:blocked-domain", "wikipedia.org") in blocked
    assert ("reddit:blocked-extension", "pdf") in blocked
    assert ("reddit:blocked-extension", "jpg") in blocked
    assert 5 <= len(blocked) <= 20


def test_classify_order_and_fields():
    base = {"id": "abc", "url": "http://example.com/a", "score": "7", "subreddit": "news", "created_utc": 5.0}
    assert classify(1, base, RULES).reason is None and classify(1, base, RULES).score == 7
    assert classify(1, {**base, "is_self": True, "over_18": True}, RULES).reason == "reddit:self-post"
    assert classify(1, {**base, "domain": "self.news"}, RULES).reason == "reddit:self-post"
    assert classify(1, {**base, "over_18": True}, RULES).reason == "reddit:over-18"
    assert classify(1, {**base, "over_18": True}, UrlRules.of([], [], drop_over_18=False)).reason is None
    assert classify(1, {**base, "url": None}, RULES).reason == "reddit:bad-url"
    assert classify(1, {**base, "url": "https://youtu.be/x"}, RULES).reason == "reddit:blocked-domain"
    assert classify(1, {**base, "url": "https://a.com/f.tar.gz"}, RULES).reason == "reddit:blocked-extension"


def test_an_unreadable_dump_is_an_error_naming_it(tmp_path: Path):
    from pipeline.core.extractor import InputError

    bad = tmp_path / "RS_2020-01.zst"
    bad.write_bytes(b"this is not zstd at all" * 10)
    with pytest.raises(InputError, match="RS_2020-01.zst"):
        list(iter_dump(str(bad)))
