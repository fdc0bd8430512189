"""sources/fetch.py against a real HTTP server on 127.0.0.1 serving real pages and misbehaving paths."""

from __future__ import annotations

import gzip

import pytest

from sources.fetch import (
    FetchConfig,
    Fetcher,
    address_class,
    interleave_by_host,
)
from tests.conftest import data_path
from tests.sources.http_fixtures import PageServer, quick_fetch_config


@pytest.fixture(scope="module")
def server():
    with PageServer(data_path("extraction", "newspaper_fulltext", "html"), slow_seconds=3.0) as srv:
        yield srv


def test_fetches_a_real_page_byte_for_byte(server):
    r = Fetcher(quick_fetch_config()).fetch(server.url("page/cnn_article"))
    assert r.reason is None and r.status == 200
    assert r.body == gzip.decompress(data_path("extraction", "newspaper_fulltext", "html", "cnn_article.html.gz")
                                     .read_bytes())


@pytest.mark.parametrize(
    "path, reason",
    [
        ("slow/cnn_article", "fetch:timeout"),
        ("always-500/x", "fetch:http-500"),
        ("loop/a", "fetch:redirect-loop"),
        ("chain/9", "fetch:too-many-redirects"),
        ("endless", "fetch:too-large"),
        ("binary", "fetch:content-type"),
        ("to-private/10", "fetch:private-address"),
        ("to-private/169", "fetch:private-address"),
        ("missing", "fetch:http-404"),
    ],
)
def test_misbehaving_server_gives_a_counted_reason(server, path, reason):
    r = Fetcher(quick_fetch_config()).fetch(server.url(path))
    assert r.reason == reason, r.detail
    assert r.body is None


def test_timeouts_and_5xx_are_retried_then_a_retry_succeeds(server):
    before = server.hits["/slow/gq.com1"]
    assert Fetcher(quick_fetch_config(retries=2)).fetch(server.url("slow/gq.com1")).reason == "fetch:timeout"
    assert server.hits["/slow/gq.com1"] - before == 3  # first attempt + 2 retries
    r = Fetcher(quick_fetch_config()).fetch(server.url("flaky/fool.com1"))
    assert r.reason is None and r.attempts == 2 and server.hits["/flaky/fool.com1"] == 2


def test_redirects_are_followed_within_the_limit(server):
    r = Fetcher(quick_fetch_config(max_redirects=3)).fetch(server.url("chain/3"))
    assert r.reason is None and r.final_url == server.url("chain/0")
    assert r.redirects == [server.url(f"chain/{i}") for i in (2, 1, 0)]
    limited = Fetcher(quick_fetch_config(max_redirects=2))
    assert limited.fetch(server.url("chain/3")).reason == "fetch:too-many-redirects"


def test_ssrf_guard_blocks_loopback_by_default_and_can_be_lifted(server):
    url = server.url("page/al.com1")
    blocked = Fetcher(FetchConfig(connect_timeout_s=0.5, read_timeout_s=0.5)).fetch(url)
    assert blocked.reason == "fetch:private-address" and "loopback" in blocked.detail
    assert server.hits["/page/al.com1"] == 0  # refused before connecting
    lifted = quick_fetch_config(allowed_address_classes=[], allow_private_addresses=True)
    assert Fetcher(lifted).fetch(url).reason is None
    # A redirect to a private address is refused before any connection to it (no 10.x host exists here).
    r = Fetcher(quick_fetch_config(allow_private_addresses=False)).fetch(server.url("to-private/10"))
    assert r.reason == "fetch:private-address" and "10.0.0.1" in r.detail


def test_address_classes():
    assert address_class("127.0.0.1") == "loopback"
    assert address_class("::1") == "loopback"
    assert address_class("10.1.2.3") == "private"
    assert address_class("192.168.0.1") == "private"
    assert address_class("169.254.169.254") == "link-local"
    assert address_class("fe80::1") == "link-local"
    assert address_class("224.0.0.1") == "multicast"
    assert address_class("0.0.0.0") == "unspecified"
    assert address_class("240.0.0.1") == "reserved"
    assert address_class("::ffff:10.0.0.1") == "private"
    assert address_class("93.184.216.34") is None
    with pytest.raises(ValueError, match="unknown"):  # a ConfigError
        FetchConfig(allowed_address_classes=["intranet"])


def test_per_host_limit_bounds_concurrent_requests(server):
    urls = [server.url(f"page/{n}") for n in server.page_names()[:12]]
    server.max_in_flight["page"] = 0
    results: list = []
    Fetcher(quick_fetch_config(concurrency=6, per_host_max_concurrent=1)).fetch_many(urls, results.append)
    assert sorted(r.url for r in results) == sorted(urls)
    assert all(r.reason is None for r in results)
    assert server.max_in_flight["page"] == 1


def test_interleave_by_host():
    urls = ["http://a/1", "http://a/2", "http://a/3", "http://b/1", "http://c/1", "http://b/2"]
    assert interleave_by_host(urls) == ["http://a/1", "http://b/1", "http://c/1", "http://a/2", "http://b/2",
                                        "http://a/3"]


@pytest.mark.parametrize("path", ["drip-headers", "drip-body", "drip-body/close"])
def test_slow_drip_server_ends_as_a_timeout_within_the_per_url_budget(server, path):
    """One byte every 0.1 s never trips the 0.5 s read timeout; the 2 s per-URL budget must end the
    exchange anyway, whether the drip is in the headers or in the body (issue 14, item 2)."""
    cfg = quick_fetch_config(max_seconds_per_url=2.0, retries=2)
    r = Fetcher(cfg).fetch(server.url(path))
    assert r.reason == "fetch:timeout", r.detail
    assert r.body is None and r.attempts == 1
    # the budget ended the exchange, not the server's 20 s backstop (without a budget it runs its course)
    assert server.drips.get(timeout=30) == ("/" + path, "client hung up")


def test_budget_ends_a_drip_among_good_pages_and_the_fetcher_stays_usable(server):
    fetcher = Fetcher(quick_fetch_config(max_seconds_per_url=1.5))
    urls = [server.url("drip-body"), server.url("page/cnn_article"), server.url("drip-headers")]
    results: dict[str, object] = {}
    fetcher.fetch_many(urls, lambda r: results.__setitem__(r.url, r))
    ended = sorted(server.drips.get(timeout=30) for _ in range(2))
    assert ended == [("/drip-body", "client hung up"), ("/drip-headers", "client hung up")]
    assert {u: results[u].reason for u in urls} == {urls[0]: "fetch:timeout", urls[1]: None,
                                                    urls[2]: "fetch:timeout"}
    # Pooled connections were not harmed by the budget's watchdog: the same fetcher fetches again.
    assert fetcher.fetch(server.url("page/cnn_article")).reason is None
