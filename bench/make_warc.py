"""Build the benchmark WARCs from the real pages of ../shared/data/extraction (see its SOURCES.md).

    .venv/bin/python -m bench.make_warc [--scale 1,4,16] [--out bench/_work/warc]

The pages: every HTML file of trafilatura's evaluation set (1,030 files; the URL is the one
`evaldata.json` gives the file, or `https://unreferenced.trafilatura-eval.invalid/<file>` for the
43 files it does not reference, or `https://labelled.trafilatura-eval.invalid/<key>` for the 37 keys that
are labels such as `hard::site-page.html`, not URLs) and of newspaper3k's full-text set (156 files, URL from `pairs.tsv`, or
`https://unlisted.newspaper-fulltext.invalid/<file>` for the 6 it gives none):
1,186 pages, mostly German and English news, blogs and shops. Each page is one gzipped WARC/1.0
`response` record (HTTP 200, `Content-Type: text/html`, `WARC-Identified-Payload-Type: text/html` as
Common Crawl writes it), written with warcio. Record ids are uuid5 of (copy, url, file) and dates count
seconds from 2024-01-01, so the same command writes the same bytes.

Scaling: `<out>/<s>x/` holds copies 0..s-1 of the page set, `PAGES_PER_FILE` pages per file (about a
Common Crawl segment's shape: many files, each a task). Copy 0 is the pages as they are. Copy k > 0
gives every URL a `cf_copy=k` query and replaces one in four whole ASCII words of the page's text
(outside tags, scripts and styles) with another word of the same page, drawn from a generator seeded
by (copy, page). That keeps language and page structure but changes most word 5-grams (a 5-gram
survives with probability (3/4)^5 = 0.24), so a copy's Jaccard similarity to the original is far
below the 0.5 near-dedup threshold and copies are kept as distinct documents, with two exceptions that
do get deduplicated: pages whose text has no ASCII words (Chinese, Japanese, Arabic, Thai) and pages
that extract to the same text anyway. Files of copy k are written once under `<out>/copies/` and
hard-linked into each scale's directory.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "extraction"
DEFAULT_OUT = REPO / "bench" / "_work" / "warc"
PAGES_PER_FILE = 300
MUTATE_RATE = 0.25
_NAMESPACE = uuid.UUID("3b0f8f2e-8f5e-4a55-9d3c-2f7e9c1a6b10")
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_SEGMENT_RE = re.compile(rb"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->|<[^>]*>)", re.S | re.I)
_WORD_RE = re.compile(rb"(?<![&#A-Za-z0-9\x80-\xff])[A-Za-z]{3,}(?![A-Za-z0-9;\x80-\xff])")


@dataclass(frozen=True)
class Page:
    url: str
    path: Path


def source_pages() -> list[Page]:
    """Every HTML page of both extraction sets, in a fixed order."""
    root = DATA / "trafilatura_eval"
    spec = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    url_of: dict[str, str] = {}
    for url, entry in sorted(spec.items()):
        url_of.setdefault(entry["file"], url)
    pages = []
    for folder in ("eval", "cache"):
        for path in sorted((root / "html" / folder).glob("*.gz")):
            name = path.name.removesuffix(".gz")
            url = url_of.pop(name, None) or f"https://unreferenced.trafilatura-eval.invalid/{folder}/{name}"
            if not url.startswith(("http://", "https://")):  # 37 keys are labels such as `hard::site-x.html`
                url = f"https://labelled.trafilatura-eval.invalid/{quote(url, safe='')}"
            pages.append(Page(url, path))
    news = DATA / "newspaper_fulltext"
    with open(news / "pairs.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            name = Path(row["html_file"]).name.removesuffix(".gz")
            url = row["url"] or f"https://unlisted.newspaper-fulltext.invalid/{name}"
            pages.append(Page(url, news / row["html_file"]))
    if not pages:
        raise SystemExit(f"no pages found under {DATA}")
    return pages


def copy_url(url: str, copy: int) -> str:
    if copy == 0:
        return url
    base, _, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}cf_copy={copy}" + (f"#{fragment}" if fragment else "")


def mutate_html(html: bytes, rng: random.Random, rate: float = MUTATE_RATE) -> bytes:
    """Replace `rate` of the whole ASCII words of the text (not tags, scripts, styles) by other words of it."""
    parts = _SEGMENT_RE.split(html)
    texts = parts[0::2]
    vocab = [w for t in texts for w in _WORD_RE.findall(t)]
    if not vocab:
        return html

    def swap(m: re.Match) -> bytes:
        return rng.choice(vocab) if rng.random() < rate else m.group(0)

    parts[0::2] = [_WORD_RE.sub(swap, t) for t in texts]
    return b"".join(parts)


def write_copy_files(pages: list[Page], copy: int, out_dir: Path) -> list[Path]:
    """The WARC files of one copy (written unless they exist); one record per page."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    n_files = max(1, -(-len(pages) // PAGES_PER_FILE))
    paths = [out_dir / f"bench-c{copy:02d}-{j:03d}.warc.gz" for j in range(n_files)]
    if all(p.exists() for p in paths):
        return paths
    out_dir.mkdir(parents=True, exist_ok=True)
    for j, path in enumerate(paths):
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            writer = WARCWriter(f, gzip=True, warc_version="1.0")
            for i in range(j, len(pages), n_files):  # interleaved: every file gets a mix of both sets
                page = pages[i]
                html = gzip.decompress(page.path.read_bytes())
                if copy:
                    html = mutate_html(html, random.Random(f"{copy}:{i}"))
                url = copy_url(page.url, copy)
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"),
                                                   ("Content-Length", str(len(html)))], protocol="HTTP/1.1")
                date = _EPOCH + timedelta(seconds=copy * len(pages) + i)
                record_id = uuid.uuid5(_NAMESPACE, "\t".join([str(copy), url, page.path.name]))
                headers = {
                    "WARC-Record-ID": f"<urn:uuid:{record_id}>",
                    "WARC-Date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "WARC-Identified-Payload-Type": "text/html",
                }
                record = writer.create_warc_record(url, "response", payload=BytesIO(html), length=len(html),
                                                   http_headers=http, warc_headers_dict=headers)
                writer.write_record(record)
        tmp.replace(path)
    return paths


def build(scales: list[int], out: Path) -> dict[int, Path]:
    """`<out>/<s>x/` for each scale, hard links to the copy files; returns scale -> directory."""
    pages = source_pages()
    dirs = {}
    for scale in scales:
        scale_dir = out / f"{scale}x"
        scale_dir.mkdir(parents=True, exist_ok=True)
        for copy in range(scale):
            for src in write_copy_files(pages, copy, out / "copies"):
                dst = scale_dir / src.name
                if not dst.exists():
                    dst.hardlink_to(src)
        dirs[scale] = scale_dir
    return dirs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="1", help="comma-separated copies of the page set, e.g. 1,4,16")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()
    pages = source_pages()
    for scale, d in build([int(s) for s in args.scale.split(",")], Path(args.out)).items():
        files = sorted(d.glob("*.warc.gz"))
        size = sum(f.stat().st_size for f in files)
        print(f"{scale}x: {len(pages) * scale} pages in {len(files)} files, {size / 1e6:.1f} MB: {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
