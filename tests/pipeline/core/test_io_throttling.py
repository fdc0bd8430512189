"""Object storage that throttles: a real HTTP proxy on 127.0.0.1 in front of the S3 server (moto) that
answers some requests with S3's `503 SlowDown`. Writes and reads retry with backoff and succeed; a store
that never stops throttling ends in a one-line error naming the path."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pytest

from pipeline.core import io

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message><RequestId>0</RequestId></Error>")


@contextmanager
def throttling_proxy(upstream: str, always: bool) -> Iterator[tuple[str, dict[str, int]]]:
    """Forward to `upstream` (host:port), answering 503 SlowDown to the first request of every kind
    (method, path, query), every call included, or to all requests (`always`)."""
    host, port = upstream.rsplit(":", 1)
    seen = {"requests": 0, "throttled": 0}
    kinds: set[tuple[str, str]] = set()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._body()
            with lock:
                seen["requests"] += 1
                kind = (self.command, self.path)
                throttle = always or kind not in kinds
                kinds.add(kind)
                seen["throttled"] += throttle
            if throttle:
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOWDOWN)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has headers only
                    self.wfile.write(SLOWDOWN)
                return
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("connection", "transfer-encoding", "content-length", "expect")}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(k, v)
            # HEAD: the object's length as upstream gave it; otherwise the body's
            self.send_header("Content-Length", resp.getheader("Content-Length", "0") if self.command == "HEAD"
                             else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_throttled_requests_are_retried_until_they_succeed(s3_bucket, monkeypatch):
    upstream = __import__("os").environ["AWS_ENDPOINT_URL"].split("://", 1)[1]
    with throttling_proxy(upstream, always=False) as (endpoint, seen):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        table = pa.table({"id": [f"x/{i}" for i in range(100)], "text": ["t"] * 100})
        for i in range(5):
            io.write_table(table, f"{s3_bucket}/throttled/s{i}.parquet")
            io.write_json({"i": i}, f"{s3_bucket}/throttled/_tasks/s{i}.json")
        assert [p.name for p in io.as_path(f"{s3_bucket}/throttled").glob("*.parquet")] == [f"s{i}.parquet" for i in range(5)]
        assert all(io.read_table(f"{s3_bucket}/throttled/s{i}.parquet").equals(table) for i in range(5))
    assert seen["throttled"] >= 20, seen  # every kind of call was refused once, and all still succeeded


def test_a_store_that_never_stops_throttling_is_a_one_line_error(s3_bucket, monkeypatch):
    upstream = __import__("os").environ["AWS_ENDPOINT_URL"].split("://", 1)[1]
    with throttling_proxy(upstream, always=True) as (endpoint, seen):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("CORPUSFORGE_S3_RETRIES", "3")
        with pytest.raises(io.StorageError) as err:
            io.write_json({}, f"{s3_bucket}/work/_stage.json")
    msg = str(err.value)
    assert "\n" not in msg and f"{s3_bucket}/work/_stage.json" in msg and "AWS_ENDPOINT_URL" in msg
    assert seen["requests"] >= 3  # it did retry
