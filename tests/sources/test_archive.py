"""sources/archive.py: pages fetched from a real HTTP server on 127.0.0.1 into WARC segments and indexes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sources.archive import WarcArchive
from sources.fetch import Fetcher
from sources.warc import WarcRecord, iter_records
from tests.conftest import data_path
from tests.sources.http_fixtures import PageServer, quick_fetch_config


@pytest.fixture(scope="module")
def server():
    with PageServer(data_path("extraction", "newspaper_fulltext", "html"), slow_seconds=3.0) as srv:
        yield srv


def test_archive_records_every_outcome_and_is_reused(server, tmp_path: Path):
    paths = ["page/bhg.com1", "redirect/elle.com1", "binary", "always-500/y"]
    urls = [server.url(p) for p in paths]
    archive = WarcArchive(tmp_path / "p0")
    outcomes = archive.fetch_into(Fetcher(quick_fetch_config()), urls)
    assert set(outcomes) == set(urls)
    assert outcomes[urls[2]].reason == "fetch:content-type" and outcomes[urls[2]].warc is None
    assert outcomes[urls[3]].reason == "fetch:http-500"
    ok = outcomes[urls[1]]
    assert ok.reason is None and ok.final_url == server.url("page/elle.com1") and ok.redirects
    # The WARC holds the responses at the recorded offsets, readable by the cc source's reader.
    records = [r for r in iter_records(archive.record_path(ok), "seg") if r.rec_type == "response"]
    by_offset = {r.offset: r for r in records}
    assert len(records) == 2
    rec = by_offset[ok.offset]
    assert rec.uri == ok.final_url and rec.http_status == 200
    assert rec.payload == server.page_bytes("elle.com1")
    assert rec.warc_headers["warc-source-uri"] == urls[1]
    assert not list(tmp_path.rglob("*.tmp"))
    # A new archive object (a rerun) sees every outcome, failures included.
    again = WarcArchive(tmp_path / "p0").outcomes()
    assert {u: o.reason for u, o in again.items()} == {u: o.reason for u, o in outcomes.items()}
    second = archive.fetch_into(Fetcher(quick_fetch_config()), [server.url("page/gq.com2")])
    assert second[server.url("page/gq.com2")].warc == "seg-00001.warc.gz"
    assert len(WarcArchive(tmp_path / "p0").outcomes()) == 5


# ------------------------------------------------------------- a writer killed mid-fetch (issue 14, item 15)

_FETCH_IN_SUBPROCESS = """
import sys
from pathlib import Path
from sources.archive import WarcArchive
from sources.fetch import Fetcher
from tests.sources.http_fixtures import quick_fetch_config
cfg = quick_fetch_config(max_seconds_per_url=60.0, read_timeout_s=5.0)
WarcArchive(Path(sys.argv[1])).fetch_into(Fetcher(cfg), sys.argv[2:])
"""


def test_a_fetch_killed_midway_keeps_what_was_fetched_and_leaves_no_tmp(server, tmp_path: Path):
    """kill -9 of a task fetching 6 quick pages and 2 slow-drip ones, once the quick ones are done: the
    next reader of the archive has the 6 outcomes (not fetched again), and no .tmp file stays."""
    fast = [f"page/{n}" for n in server.page_names()[:6]]
    slow = ["drip-body", "drip-headers"]
    urls = [server.url(p) for p in fast + slow]
    seen = {p: server.hits["/" + p] for p in fast}
    directory = tmp_path / "p00000-of-00001"
    proc = subprocess.Popen([sys.executable, "-c", _FETCH_IN_SUBPROCESS, str(directory), *urls],
                            cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE)
    try:
        give_up = time.monotonic() + 30
        while any(server.hits["/" + p] == seen[p] for p in fast) and time.monotonic() < give_up:
            time.sleep(0.05)
        time.sleep(1.0)  # the quick pages are answered: let the task record them
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # still held by the drips
    finally:
        proc.kill()  # SIGKILL: no handler runs
        proc.wait()
    left = sorted(p.name for p in directory.iterdir())
    archive = WarcArchive(directory)
    outcomes = archive.outcomes()
    print(f"after the kill: {left}; a rerun finds {len(outcomes)} outcomes; then {sorted(os.listdir(directory))}")
    assert any(name.endswith(".tmp") for name in left)
    assert set(outcomes) == {server.url(p) for p in fast} and all(o.reason is None for o in outcomes.values())
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    # The published segment reads whole, each response where its outcome says.
    segment = archive.record_path(next(iter(outcomes.values())))
    records = list(iter_records(segment, segment.name))
    assert not [r for r in records if not isinstance(r, WarcRecord)]
    by_offset = {r.offset: r for r in records}
    for url, o in outcomes.items():
        assert by_offset[o.offset].uri == url and by_offset[o.offset].payload == server.page_bytes(url.rsplit("/")[-1])
    # The rerun fetches only the URLs without an outcome.
    todo = [u for u in urls if u not in outcomes]
    again = archive.fetch_into(Fetcher(quick_fetch_config(max_seconds_per_url=1.0)), todo)
    assert sorted(again) == sorted(todo) and {o.reason for o in again.values()} == {"fetch:timeout"}
    assert all(server.hits["/" + p] == seen[p] + 1 for p in fast)
    assert len(WarcArchive(directory).outcomes()) == 8
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]


def test_an_interrupted_fetch_publishes_what_it_fetched(server, tmp_path: Path):
    class Interrupted(Fetcher):
        def fetch_many(self, urls, on_result):
            super().fetch_many(list(urls)[:3], on_result)
            raise KeyboardInterrupt

    urls = [server.url(f"page/{n}") for n in server.page_names()[6:11]]
    archive = WarcArchive(tmp_path / "p0")
    with pytest.raises(KeyboardInterrupt):
        archive.fetch_into(Interrupted(quick_fetch_config()), urls)
    outcomes = WarcArchive(tmp_path / "p0").outcomes()
    assert len(outcomes) == 3 and all(o.reason is None and o.warc == "seg-00000.warc.gz" for o in outcomes.values())
    assert not [p for p in (tmp_path / "p0").iterdir() if p.name.startswith(".")]
