"""Opening a source's input files: local paths, http(s) URLs, pyarrow filesystem URIs, paths listings.

`http(s)://` URLs are streamed, never read whole into memory, and resumed with a Range request after a
dropped connection; `s3://`, `gs://`, `file://` and other object-storage URIs (pipeline.core.io) name
one file, a glob or a directory of them, fingerprinted by content like local files; Common Crawl `*.paths.gz` listings name files by path under `paths_url_prefix`
(at most `max_files` of them). Anything that cannot be opened or listed is an `InputError` naming it.
"""

from __future__ import annotations

import gzip
import re
from typing import BinaryIO, Protocol

from pipeline.core.extractor import InputError, PlanContext, expand_inputs, file_fingerprint
from pipeline.core.io import as_path


class InputOptions(Protocol):
    """The settings input opening reads (a source's config dataclass has them, e.g. CommonCrawlConfig)."""

    paths_url_prefix: str  # relative paths of a listing are joined to this
    max_files: int  # at most this many files per listing (0 = all), taken in listing order
    http_timeout_seconds: float
    http_retries: int  # reconnects (with a Range request) after a dropped download


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def has_scheme(spec: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", spec))


def is_listing(spec: str) -> bool:
    return spec.endswith((".paths.gz", ".paths"))


class HttpStream:
    """A streamed HTTP body as a file-like `read`; reconnects with a Range request if it breaks."""

    def __init__(self, url: str, timeout: float, retries: int) -> None:
        import requests

        self.url, self.timeout, self.retries = url, timeout, retries
        self.session = requests.Session()
        self.pos = 0
        self.resp = self._open()

    def _open(self):
        import requests

        headers = {"Range": f"bytes={self.pos}-"} if self.pos else {}
        try:
            resp = self.session.get(self.url, stream=True, timeout=self.timeout, headers=headers)
        except requests.RequestException as exc:
            raise InputError(f"{self.url}: cannot download: {exc}") from exc
        if resp.status_code != (206 if self.pos else 200):
            resp.close()
            raise InputError(f"{self.url}: HTTP {resp.status_code}" + (" to a Range request" if self.pos else ""))
        return resp

    def read(self, n: int = -1) -> bytes:
        import requests
        import urllib3

        for attempt in range(self.retries + 1):
            try:
                data = self.resp.raw.read(n if n and n > 0 else None, decode_content=False)
                self.pos += len(data)
                return data
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError):
                if attempt == self.retries:
                    raise
                self.resp.close()
                self.resp = self._open()
        return b""  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        self.resp.close()
        self.session.close()


def open_input(spec: str, config: InputOptions) -> BinaryIO:
    """Open a local path, an http(s) URL or an object-storage URI (s3://, gs://, file://) for reading."""
    if is_url(spec):
        return HttpStream(spec, config.http_timeout_seconds, config.http_retries)  # type: ignore[return-value]
    try:
        return as_path(spec).open("rb")  # type: ignore[return-value]
    except OSError as exc:
        raise InputError(f"{spec}: cannot open: {exc}") from exc


def read_listing(spec: str, config: InputOptions) -> list[str]:
    """The file URLs of a Common Crawl `warc.paths.gz` (or `wet.paths.gz`) listing."""
    stream = open_input(spec, config)
    try:
        raw = stream.read()
    finally:
        stream.close()
    try:
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{spec}: not a paths listing: {exc}") from exc
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if config.max_files > 0:
        lines = lines[: config.max_files]
    prefix = config.paths_url_prefix
    return [ln if has_scheme(ln) else prefix.rstrip("/") + "/" + ln.lstrip("/") for ln in lines]


def input_files(inputs: list[str], config: InputOptions, ctx: PlanContext) -> list[tuple[str, str]]:
    """(path or URI, fingerprint) of every file the inputs name: listings and directories expanded."""
    specs: list[tuple[str, str]] = []
    files: list[str] = []
    for spec in inputs:
        if is_listing(spec):
            specs.extend((url, f"url:{url}") for url in read_listing(spec, config))
        elif is_url(spec):
            specs.append((spec, f"url:{spec}"))
        else:
            files.append(spec)  # local paths, globs, directories, object-storage URIs
    for path in expand_inputs(files) if files else []:
        fp = ctx.fingerprints.of(path) if ctx.fingerprints is not None else file_fingerprint(path)
        specs.append((str(path), fp))
    return specs
