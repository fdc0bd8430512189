"""Polite HTTP fetching: the fetch half of the OpenWebText recipe (sources/archive.py stores the results).

`Fetcher.fetch_many` fetches URLs with a bounded pool of threads (within one task) and, per URL:

* connect and read timeouts, plus a wall-clock budget per URL (`max_seconds_per_url`) that bounds the
  whole exchange (connect, headers, body, retries, redirects) whatever the server does: socket
  timeouts never exceed the budget left, the body is read in small reads checked against it, and a
  watchdog thread shuts the exchange's sockets down at the deadline, which ends even a server
  dripping one byte a second into its headers (`fetch:timeout`). The budget starts when the URL's
  host grants its first slot, so queueing behind the politeness limit is not counted (DNS lookups
  are not interruptible and not bounded by it);
* retries with exponential backoff on timeouts, connection errors, 429 and 5xx;
* a per-host politeness limit (at most `per_host_max_concurrent` exchanges in flight, bodies and
  retry backoffs included, and at least `per_host_interval_s` between them, per host, within the task); URLs are interleaved
  round-robin by host so threads do not queue up behind one big site;
* redirects followed by hand, at most `max_redirects`, a revisited URL being a redirect loop;
* a size cap enforced while streaming the body (an endless body stops at `max_bytes`), and a
  content-type check on the final response before its body is read;
* an SSRF guard: every connection (each redirect hop included) resolves the host itself, refuses
  it if any resolved address is loopback, private, link-local, multicast, reserved or unspecified,
  and connects to the vetted address, so DNS cannot change between check and connect.
  `allow_private_addresses` lifts the guard; `allowed_address_classes` lifts it per class (tests
  allow `loopback` for their local server and still see 10.x and 169.254.x refused). Environment
  proxies are not used: the guard must see the real destination.

Every outcome is a `FetchResult` whose `reason` is None or a `fetch:*` rejection reason;
`sources.archive.WarcArchive` records them.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as U3HTTPError
from urllib3.util import connection as u3_connection

ADDRESS_CLASSES = ("loopback", "private", "link-local", "multicast", "reserved", "unspecified")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_READ_SIZE = 1 << 14  # a body read returns what has arrived, up to this much
DEFAULT_USER_AGENT = (
    "corpusforge/0.1 (OpenWebText-style research corpus builder; fetches each URL once, honours "
    "per-host rate limits)"
)


@dataclass
class FetchConfig:
    """How pages are fetched. The defaults are polite for the open web; tests shrink the timeouts."""

    user_agent: str = DEFAULT_USER_AGENT  # User-Agent header sent with every request (and archived)
    concurrency: int = 16  # threads per task
    connect_timeout_s: float = 10.0  # seconds to wait for a TCP connection (capped by the URL's budget)
    read_timeout_s: float = 20.0  # seconds to wait for each read of headers or body (capped by the budget)
    max_seconds_per_url: float = 90.0  # all attempts and redirects of one URL
    retries: int = 2  # extra attempts after a timeout, connection error, 429 or 5xx
    backoff_s: float = 1.0  # wait before retry k is backoff_s * 2**k
    per_host_max_concurrent: int = 2  # requests in flight per host within a task (bodies, backoffs included)
    per_host_interval_s: float = 1.0  # minimum seconds between request starts to one host within a task
    max_bytes: int = 4 << 20  # largest (decoded) response body in bytes; bigger is `fetch:too-large`
    max_redirects: int = 5  # redirects followed per URL; more is `fetch:too-many-redirects`
    # accepted media types of the final response; others are `fetch:content-type` (no header passes)
    content_types: list[str] = field(default_factory=lambda: ["text/html", "application/xhtml+xml"])
    allow_private_addresses: bool = False  # true disables the SSRF guard for every address class
    allowed_address_classes: list[str] = field(default_factory=list)  # subset of ADDRESS_CLASSES

    def __post_init__(self) -> None:
        from pipeline.core.config import at_least, positive, require

        unknown = sorted(set(self.allowed_address_classes) - set(ADDRESS_CLASSES))
        require(not unknown, "allowed_address_classes", f"unknown {unknown}; known: {list(ADDRESS_CLASSES)}")
        at_least(self, 1, "concurrency", "per_host_max_concurrent", "max_bytes")
        positive(self, "connect_timeout_s", "read_timeout_s", "max_seconds_per_url")
        at_least(self, 0, "retries", "backoff_s", "per_host_interval_s", "max_redirects")


# ------------------------------------------------------------------------------------- SSRF guard


class BlockedAddress(Exception):
    """A connection the guard refused. Deliberately not an OSError: urllib3 must not retry or wrap it."""

    def __init__(self, host: str, address: str, cls: str) -> None:
        super().__init__(f"{host} resolves to {address} ({cls} address)")
        self.host, self.address, self.address_class = host, address, cls


def address_class(ip: str) -> str | None:
    """The guard's class of an IP address, or None for a public (global unicast) address."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return "loopback"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_reserved:
        return "reserved"
    if addr.is_private:
        return "private"
    if not addr.is_global:  # e.g. 100.64.0.0/10, shared address space
        return "reserved"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    allowed: frozenset[str]

    @classmethod
    def of(cls, config: FetchConfig) -> AddressPolicy:
        return cls(frozenset(ADDRESS_CLASSES) if config.allow_private_addresses
                   else frozenset(config.allowed_address_classes))

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """getaddrinfo results for host:port; BlockedAddress if any address is of a refused class."""
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        for info in infos:
            ip = info[4][0]
            cls = address_class(ip)
            if cls is not None and cls not in self.allowed:
                raise BlockedAddress(host, ip, cls)
        return infos


def _guarded_new_conn(self: HTTPConnection) -> socket.socket:
    """urllib3's `_new_conn`, connecting only to addresses the policy vetted."""
    try:
        infos = self._address_policy.resolve(self._dns_host, self.port)  # type: ignore[attr-defined]
    except socket.gaierror as exc:
        raise NameResolutionError(self.host, self, exc) from exc
    last: Exception | None = None
    exchange = _current_exchange(self)
    for info in infos:
        ip = info[4][0]
        timeout = self.timeout
        if exchange is not None:  # a connect never outlasts the URL's budget
            left = exchange.remaining()
            if left <= 0:
                raise ConnectTimeoutError(self, f"Connection to {self.host}: the per-URL budget is spent")
            timeout = min(timeout, left) if isinstance(timeout, int | float) else left
        try:
            sock = u3_connection.create_connection(
                (ip, self.port), timeout, source_address=self.source_address,
                socket_options=self.socket_options,
            )
            if exchange is not None:
                exchange.watch(sock)
            return sock
        except TimeoutError as exc:
            last = ConnectTimeoutError(self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})")
            last.__cause__ = exc
        except OSError as exc:
            last = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
    raise last if last is not None else NewConnectionError(self, f"no address for {self.host}")


def _current_exchange(conn: HTTPConnection) -> _Exchange | None:
    local = getattr(conn, "_fetch_local", None)
    return getattr(local, "exchange", None) if local is not None else None


def _watched_request(base: type[HTTPConnection]) -> Callable[..., Any]:
    """`request` of `base`, first putting a reused (pooled) connection's socket under the watchdog."""

    def request(self: HTTPConnection, *args: Any, **kwargs: Any) -> Any:
        exchange = _current_exchange(self)
        if exchange is not None and self.sock is not None:
            exchange.watch(self.sock)
        return base.request(self, *args, **kwargs)

    return request


class _Exchange:
    """One URL's exchange: its deadline and the sockets it uses, which `expire` shuts down.

    Sockets are held as duplicates of their descriptors: shutting a duplicate down ends the connection for every
    reader of it (a thread blocked in `recv` wakes up with EOF), and the original may be detached by
    a TLS wrap. `finish` closes the duplicates; an exchange expires at most once, and never after it
    finished."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget
        self.expired = False
        self._finished = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def spent(self) -> bool:
        return self.expired or self.remaining() <= 0

    def watch(self, sock: socket.socket) -> None:
        try:  # not sock.dup(): an SSLSocket refuses it; a duplicate of its descriptor is what we need
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
        except (OSError, ValueError):
            return
        with self._lock:
            if not self._finished and not self.expired:
                self._socks.append(dup)
                return
        _shutdown(dup, close=True) if self.expired else dup.close()

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            socks, self._socks = self._socks, []
        for s in socks:
            _shutdown(s, close=True)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            socks, self._socks = self._socks, []
        for s in socks:
            s.close()


def _shutdown(sock: socket.socket, close: bool) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    if close:
        sock.close()


class _Watchdog:
    """Expires exchanges at their deadlines, from one thread that runs while any deadline is pending."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Exchange]] = []
        self._seq = itertools.count()
        self._running = False

    def add(self, exchange: _Exchange) -> None:
        with self._cond:
            heapq.heappush(self._heap, (exchange.deadline, next(self._seq), exchange))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="fetch-watchdog", daemon=True).start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._running = False
                        return
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        exchange = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            exchange.expire()


class _GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go through the address policy, and whose sockets the
    current thread's exchange (`fetch_local.exchange`, if any) watches."""

    def __init__(self, policy: AddressPolicy, fetch_local: threading.local | None = None) -> None:
        self._policy = policy
        self._fetch_local = fetch_local
        super().__init__(pool_connections=64, pool_maxsize=64, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        attrs = {"_address_policy": self._policy, "_fetch_local": self._fetch_local, "_new_conn": _guarded_new_conn}
        http_conn = type("GuardedHTTPConnection", (HTTPConnection,),
                         {**attrs, "request": _watched_request(HTTPConnection)})
        https_conn = type("GuardedHTTPSConnection", (HTTPSConnection,),
                          {**attrs, "request": _watched_request(HTTPSConnection)})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }


# ----------------------------------------------------------------------------------- politeness


class HostLimiter:
    """Per host: at most `max_concurrent` requests in flight, starts at least `interval_s` apart."""

    def __init__(self, max_concurrent: int, interval_s: float) -> None:
        self.max_concurrent = max_concurrent
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self._lock:
            sem = self._slots.setdefault(host, threading.Semaphore(self.max_concurrent))
        with sem:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next_start.get(host, now))
                self._next_start[host] = start + self.interval_s
            if start > now:
                time.sleep(start - now)
            yield


def interleave_by_host(urls: Iterable[str]) -> list[str]:
    """Round-robin over hosts (hosts in first-seen order), so consecutive fetches hit different sites."""
    queues: dict[str, deque[str]] = defaultdict(deque)
    for u in urls:
        queues[(urlsplit(u).hostname or "").lower()].append(u)
    out: list[str] = []
    while queues:
        for host in list(queues):
            out.append(queues[host].popleft())
            if not queues[host]:
                del queues[host]
    return out


# ---------------------------------------------------------------------------------------- fetching


@dataclass
class FetchResult:
    """The outcome for one requested URL. `body` is set only for a successful fetch (reason None)."""

    url: str
    reason: str | None = None
    detail: str = ""
    final_url: str | None = None
    status: int | None = None
    redirects: list[str] = field(default_factory=list)
    attempts: int = 0
    http_version: str = "HTTP/1.1"
    reason_phrase: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None


class _Failed(Exception):
    def __init__(self, reason: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.status = reason, detail, status


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class Fetcher:
    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self.policy = AddressPolicy.of(config)
        self.limiter = HostLimiter(config.per_host_max_concurrent, config.per_host_interval_s)
        self._local = threading.local()  # per thread: its session, and the exchange in progress
        self._watchdog = _Watchdog()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.trust_env = False  # no environment proxies: the guard must see the real destination
            s.headers.update({"User-Agent": self.config.user_agent, "Accept": "text/html,application/xhtml+xml"})
            adapter = _GuardedAdapter(self.policy, self._local)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self._local.session = s
        return s

    def fetch(self, url: str) -> FetchResult:
        """Fetch one URL, following redirects; never raises for a network or server problem."""
        result = FetchResult(url=url)
        exchange: _Exchange | None = None
        current = url
        seen = {url}
        try:
            while True:
                # The host's slot is held for the whole exchange, body included (and retry backoffs).
                with self.limiter.slot((urlsplit(current).hostname or "").lower()):
                    if exchange is None:  # the budget starts when the host first lets this URL in
                        exchange = self._start_exchange()
                    resp = self._get_with_retries(current, result, exchange)
                    if not resp.is_redirect:
                        self._read_final(resp, current, result, exchange)
                        return result
                if resp.is_redirect:
                    location = resp.headers.get("Location", "")
                    resp.close()
                    nxt = urljoin(current, location.strip())
                    if not location.strip() or urlsplit(nxt).scheme not in ("http", "https"):
                        raise _Failed("fetch:bad-redirect", f"{current} redirects to {location!r}", resp.status_code)
                    result.redirects.append(nxt)
                    if nxt in seen:
                        raise _Failed("fetch:redirect-loop", f"{nxt} visited twice", resp.status_code)
                    if len(result.redirects) > self.config.max_redirects:
                        raise _Failed("fetch:too-many-redirects", f"more than {self.config.max_redirects}",
                                      resp.status_code)
                    seen.add(nxt)
                    current = nxt
        except _Failed as failure:
            result.reason, result.detail = failure.reason, failure.detail
            result.status = failure.status if failure.status is not None else result.status
            result.final_url = result.final_url or current
            result.body = None
            return result
        finally:
            if exchange is not None:
                exchange.finish()
                self._local.exchange = None

    def _start_exchange(self) -> _Exchange:
        exchange = _Exchange(self.config.max_seconds_per_url)
        self._local.exchange = exchange
        self._watchdog.add(exchange)
        return exchange

    def _budget_spent(self, url: str) -> _Failed:
        return _Failed("fetch:timeout", f"{url}: not fetched within max_seconds_per_url="
                                        f"{self.config.max_seconds_per_url}s")

    def _get_with_retries(self, url: str, result: FetchResult, exchange: _Exchange) -> requests.Response:
        cfg = self.config
        attempt = 0
        while True:
            if exchange.spent():
                raise self._budget_spent(url)
            attempt += 1
            result.attempts += 1
            failure: _Failed
            left = exchange.remaining()
            try:
                resp = self._session().get(
                    url, stream=True, allow_redirects=False,
                    timeout=(min(cfg.connect_timeout_s, left), min(cfg.read_timeout_s, left)),
                )
                if resp.status_code not in RETRY_STATUSES:
                    return resp
                resp.close()
                failure = _Failed(f"fetch:http-{resp.status_code}", f"{url}: HTTP {resp.status_code}",
                                  resp.status_code)
            except BlockedAddress as exc:
                raise _Failed("fetch:private-address", f"{url}: {exc}") from None
            except requests.exceptions.InvalidURL as exc:
                raise _Failed("fetch:bad-url", f"{url}: {exc}") from None
            except requests.exceptions.SSLError as exc:
                raise _Failed("fetch:tls", f"{url}: {exc}") from None
            except requests.exceptions.Timeout as exc:
                failure = _Failed("fetch:timeout", f"{url}: {exc}")
            except requests.exceptions.ConnectionError as exc:
                if _is_name_error(exc):
                    raise _Failed("fetch:dns", f"{url}: cannot resolve host") from None
                failure = _Failed("fetch:connection", f"{url}: {exc}")
            except requests.exceptions.RequestException as exc:
                if exchange.spent():
                    raise self._budget_spent(url) from None
                raise _Failed("fetch:error", f"{url}: {type(exc).__name__}: {exc}") from None
            if exchange.spent():  # whatever the error looked like, the budget's watchdog ended it
                raise self._budget_spent(url)
            wait = cfg.backoff_s * 2 ** (attempt - 1)
            if attempt > cfg.retries or time.monotonic() + wait >= exchange.deadline:
                raise failure
            time.sleep(wait)

    def _read_final(self, resp: requests.Response, url: str, result: FetchResult, exchange: _Exchange) -> None:
        cfg = self.config
        result.final_url = url
        result.status = resp.status_code
        result.reason_phrase = resp.reason or ""
        result.http_version = "HTTP/1.0" if getattr(resp.raw, "version", 11) == 10 else "HTTP/1.1"
        result.headers = [(k, v) for k, v in resp.raw.headers.items()]
        try:
            if not 200 <= resp.status_code < 300:
                raise _Failed(f"fetch:http-{resp.status_code}", f"{url}: HTTP {resp.status_code}")
            media = _media_type(resp.headers.get("Content-Type"))
            if media and media not in cfg.content_types:
                raise _Failed("fetch:content-type", f"{url}: Content-Type {media}")
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cfg.max_bytes:
                raise _Failed("fetch:too-large", f"{url}: Content-Length {declared} > {cfg.max_bytes}")
            body = bytearray()
            try:
                # Small reads that return what has arrived (read1), each with a socket timeout of at
                # most the budget left; the watchdog ends a read that is still blocked at the deadline.
                while True:
                    if exchange.spent():
                        raise self._budget_spent(url)
                    _set_read_timeout(resp, min(cfg.read_timeout_s, exchange.remaining()))
                    chunk = resp.raw.read1(_READ_SIZE, decode_content=True)
                    if not chunk:
                        break
                    body += chunk
                    if len(body) > cfg.max_bytes:
                        raise _Failed("fetch:too-large", f"{url}: body exceeds {cfg.max_bytes} bytes")
            except _Failed:
                raise
            except Exception as exc:  # noqa: BLE001 - urllib3 and socket errors of a body read, sorted below
                if exchange.spent() or isinstance(exc, ReadTimeoutError | TimeoutError):
                    raise self._budget_spent(url) if exchange.spent() else _Failed(
                        "fetch:timeout", f"{url}: read timed out") from None
                if isinstance(exc, ProtocolError | OSError):
                    raise _Failed("fetch:connection", f"{url}: {exc}") from None
                if isinstance(exc, U3HTTPError):
                    raise _Failed("fetch:body", f"{url}: {type(exc).__name__}: {exc}") from None
                raise
            if exchange.expired:  # the watchdog cut the body short: what arrived is not the page
                raise self._budget_spent(url)
            result.body = bytes(body)
        finally:
            resp.close()

    def fetch_many(self, urls: Iterable[str], on_result: Callable[[FetchResult], None]) -> None:
        """Fetch `urls` concurrently; `on_result` is called in the calling thread, one result at a time."""
        order = interleave_by_host(urls)
        if not order:
            return
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(order))) as pool:
            futures = [pool.submit(self.fetch, u) for u in order]
            for fut in as_completed(futures):
                on_result(fut.result())


def _is_name_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NameResolutionError | socket.gaierror):
            return True
        stack.extend([getattr(e, "reason", None), e.__cause__, e.__context__,
                      *[a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]])
    return False


def _set_read_timeout(resp: requests.Response, seconds: float) -> None:
    """The socket timeout of the response's connection (the next read waits at most `seconds`)."""
    sock = getattr(getattr(resp.raw, "_connection", None), "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(seconds, 0.001))
        except OSError:
            pass
