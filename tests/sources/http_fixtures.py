"""A real HTTP server on 127.0.0.1 for fetch tests: real pages, and paths that misbehave on purpose.

Pages are the real news pages of ../shared/data/extraction/newspaper_fulltext/html, served
decompressed. Routes:

    /page/<name>        the page <name>.html.gz as text/html (404 if there is no such page)
    /slow/<name>        waits `slow_seconds` before answering (longer than a test's read timeout)
    /flaky/<name>       HTTP 500 on the first request, the page afterwards
    /always-500/<x>     HTTP 500, always
    /redirect/<name>    301 to /page/<name>
    /loop/a, /loop/b    302 to each other
    /chain/<n>          302 to /chain/<n-1>; /chain/0 is a page
    /endless            200 text/html with a body that never ends
    /binary             200 image/png
    /to-private/10      302 to http://10.0.0.1/ ; /to-private/169 302 to the cloud metadata address
    /files/<name>       the file <name> of `files_dir` as application/octet-stream (dumps served by URL)
    /drip-headers       a status line, then one header byte every `drip_interval` seconds (headers never end)
    /drip-body          200 text/html, Content-Length 1 MB, then one body byte every `drip_interval` seconds
    /drip-body/close    the same without Content-Length (the body would end when the connection closes)
    /missing            404

A drip is shorter than any read timeout, so only a wall-clock budget ends it; it stops by itself after
`drip_max_seconds` (a backstop, so that a client without a budget fails a test instead of hanging it).

`drips` receives (path, "client hung up" | "backstop") as each drip ends. `hits` counts requests per path, so tests can see retries and that a rerun refetches nothing;
`max_in_flight[kind]` is the most requests to /<kind>/... handled at once, to check the per-host politeness limit.
"""

from __future__ import annotations

import gzip
import queue
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sources.fetch import FetchConfig

PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def quick_fetch_config(**overrides) -> FetchConfig:
    """Small timeouts; loopback allowed (the test server), every other private class still refused."""
    base = dict(connect_timeout_s=0.5, read_timeout_s=0.5, retries=1, backoff_s=0.05, per_host_interval_s=0.0,
                per_host_max_concurrent=8, concurrency=8, max_bytes=1 << 20, max_seconds_per_url=10.0,
                allowed_address_classes=["loopback"])
    base.update(overrides)
    return FetchConfig(**base)


class PageServer:
    def __init__(self, pages_dir: Path, slow_seconds: float = 3.0, files_dir: Path | None = None,
                 drip_interval: float = 0.1, drip_max_seconds: float = 20.0) -> None:
        self.pages_dir = Path(pages_dir)
        self.drip_interval = drip_interval
        self.drip_max_seconds = drip_max_seconds
        self.files_dir = Path(files_dir) if files_dir is not None else None
        self.slow_seconds = slow_seconds
        self.hits: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()  # by first path segment ("page", "slow", ...)
        self.max_in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.drips: queue.Queue[tuple[str, str]] = queue.Queue()  # (path, how each drip ended)
        self.httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="page-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def page_names(self) -> list[str]:
        return sorted(p.name[: -len(".html.gz")] for p in self.pages_dir.glob("*.html.gz"))

    def page_bytes(self, name: str) -> bytes | None:
        path = self.pages_dir / f"{name}.html.gz"
        if not path.is_file():
            return None
        return gzip.decompress(path.read_bytes())

    def enter(self, path: str, kind: str) -> None:
        with self._lock:
            self.hits[path] += 1
            self.in_flight[kind] += 1
            self.max_in_flight[kind] = max(self.max_in_flight[kind], self.in_flight[kind])

    def leave(self, kind: str) -> None:
        with self._lock:
            self.in_flight[kind] -= 1

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up mid-request (a timed-out fetch) is expected here, not worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(server: PageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence the test log
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            self._kind = path.strip("/").split("/")[0]
            server.enter(path, self._kind)
            self._counted = True
            try:
                self._route(path)
            except OSError:
                self.close_connection = True  # the client hung up (a timeout on its side): expected
            finally:
                self._done()

        def _done(self) -> None:
            """Leaves the in-flight count before the last bytes go out: the client cannot start its next
            request before it has them, so a sequential client never looks concurrent."""
            if self._counted:
                self._counted = False
                server.leave(self._kind)

        def _route(self, path: str) -> None:
            parts = path.strip("/").split("/")
            head, rest = parts[0], "/".join(parts[1:])
            if head == "page":
                self._page(rest)
            elif head == "slow":
                if not server.stopping.wait(server.slow_seconds):
                    self._page(rest)
            elif head == "flaky":
                if server.hits[path] == 1:
                    self._send(500, b"temporarily broken", "text/plain")
                else:
                    self._page(rest)
            elif head == "always-500":
                self._send(500, b"broken", "text/plain")
            elif head == "redirect":
                self._redirect(301, f"/page/{rest}")
            elif head == "loop":
                self._redirect(302, "/loop/b" if rest == "a" else "/loop/a")
            elif head == "chain" and rest.isdigit():
                n = int(rest)
                self._redirect(302, f"/chain/{n - 1}") if n > 0 else self._page("cnn_article")
            elif head == "endless":
                self._endless()
            elif head == "drip-headers":
                self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Drip: ", b"a")
            elif head == "drip-body":
                length = b"" if rest == "close" else b"Content-Length: 1000000\r\n"
                self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + length + b"\r\n<html><body>",
                           b"<p>slow</p>")
            elif head == "binary":
                self._send(200, PNG_HEAD, "image/png")
            elif head == "files" and server.files_dir is not None and (server.files_dir / rest).is_file():
                self._send(200, (server.files_dir / rest).read_bytes(), "application/octet-stream")
            elif head == "to-private":
                target = "http://10.0.0.1/admin" if rest == "10" else "http://169.254.169.254/latest/meta-data/"
                self._redirect(302, target)
            else:
                self._send(404, b"not found", "text/plain")

        def _page(self, name: str) -> None:
            body = server.page_bytes(name)
            if body is None:
                self._send(404, b"no such page", "text/plain")
            else:
                self._send(200, body, "text/html")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._done()
            self.wfile.write(body)

        def _redirect(self, status: int, location: str) -> None:
            self.send_response(status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self._done()
            self.end_headers()

        def _endless(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"<p>" + b"more " * 2000 + b"</p>\n"
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            try:
                sent = 0
                while not server.stopping.is_set() and sent < 1 << 30:  # 1 GiB: a backstop, not a limit
                    self.wfile.write(frame)
                    sent += len(chunk)
            except OSError:
                pass  # the client hung up, as it should
            self.close_connection = True

        def _drip(self, head: bytes, drip: bytes) -> None:
            """`head` at once, then `drip` one byte every `drip_interval` seconds, up to `drip_max_seconds`."""
            self._done()
            end = time.monotonic() + server.drip_max_seconds
            how = "backstop"  # the drip ran its whole course: the client never gave up
            try:
                self.wfile.write(head)
                i = 0
                while time.monotonic() < end and not server.stopping.wait(server.drip_interval):
                    self.wfile.write(drip[i % len(drip) : i % len(drip) + 1])
                    self.wfile.flush()
                    i += 1
            except OSError:
                how = "client hung up"  # as it should, once its budget is spent
            self.close_connection = True
            server.drips.put((self.path, how))

    return Handler
