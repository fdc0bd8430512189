"""sources/inputs.py: Common Crawl files opened from a real HTTP server on 127.0.0.1 (a paths listing, a
dropped download resumed with a Range request) and from a pyarrow filesystem URI, read by the cc source."""

from __future__ import annotations

import gzip
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.extractor import InputError, PlanContext
from pipeline.core.schema import Doc, Rejected
from sources.cc import CommonCrawlConfig, CommonCrawlExtractor, extract_warc_file
from tests.conftest import data_path

RESILIPARSE = "resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"
DOLMA = "dolma_sample-0001.warc.gz"


def _docs(path: Path, config: CommonCrawlConfig) -> list[Doc]:
    """The documents of a local file, to compare with the same file read remotely."""
    return [i for i in extract_warc_file(path, path.name, config) if isinstance(i, Doc)]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory with Range support; with `drop_first`, the first full download of each
    file is cut off half way (a dropped connection)."""

    dropped: set[str] = set()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not rng and path.name.startswith("drop-") and path.name not in self.dropped:
            self.dropped.add(path.name)
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data[start:])


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **kw: _Handler(*a, directory=str(root), **kw)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _extract_units(ex: CommonCrawlExtractor, inputs: list[str], tmp_path: Path):
    units = ex.plan(inputs, PlanContext(executor=None, scratch=tmp_path))
    out = {}
    for u in units:
        out[u.payload["path"]] = list(ex.extract(u))
    return units, out


def test_http_inputs_listing_and_reconnect(http_dir, tmp_path: Path) -> None:
    base, root = http_dir
    crawl_dir = root / "crawl-data" / "CC-MAIN-2020-34"
    crawl_dir.mkdir(parents=True)
    for name in (RESILIPARSE, DOLMA):
        shutil.copy(data_path("warc", name), crawl_dir / name)
    shutil.copy(data_path("warc", RESILIPARSE), root / "drop-cc.warc.gz")
    listing = root / "warc.paths.gz"
    listing.write_bytes(gzip.compress(
        f"crawl-data/CC-MAIN-2020-34/{RESILIPARSE}\ncrawl-data/CC-MAIN-2020-34/{DOLMA}\n".encode()
    ))
    ex = CommonCrawlExtractor(CommonCrawlConfig(languages=[], paths_url_prefix=base + "/", max_files=1))
    local = [(d.id, d.text) for d in _docs(data_path("warc", RESILIPARSE), ex.config)]

    units, out = _extract_units(ex, [f"{base}/warc.paths.gz", f"{base}/drop-cc.warc.gz"], tmp_path)
    assert [u.payload["path"] for u in units] == [
        f"{base}/crawl-data/CC-MAIN-2020-34/{RESILIPARSE}", f"{base}/drop-cc.warc.gz"
    ]
    for items in out.values():  # the dropped download resumed with a Range request: same documents
        assert [(d.id, d.text) for d in items if isinstance(d, Doc)] == local
        assert not any(isinstance(r, Rejected) and r.reason == "cc:corrupt-record" for r in items)

    with pytest.raises(InputError, match="404"):
        _extract_units(ex, [f"{base}/missing.warc.gz"], tmp_path)


def test_pyarrow_filesystem_uri(tmp_path: Path) -> None:
    d = tmp_path / "bucket"
    d.mkdir()
    shutil.copy(data_path("warc", DOLMA), d / DOLMA)
    ex = CommonCrawlExtractor(CommonCrawlConfig(languages=[]))
    units, out = _extract_units(ex, [f"file://{d}"], tmp_path)
    assert [u.payload["path"] for u in units] == [str(d / DOLMA)]  # a file:// URI is a local path
    docs = [i for i in out[str(d / DOLMA)] if isinstance(i, Doc)]
    assert [x.id for x in docs] == [x.id for x in _docs(d / DOLMA, ex.config)]
