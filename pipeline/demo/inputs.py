"""The embedded demo: small inputs in each source's real format, generated deterministically.

`make corpus` builds from these: a Common Crawl style .warc.gz, a MediaWiki XML .bz2 dump, a Pushshift
.zst dump whose links point at pages this module serves on 127.0.0.1, Gutenberg-style .txt books with
their header and license, and a small git repository of code. The content exercises every filter:
pages in other languages, spam, near-duplicates and passages from the demo eval set.
"""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import html
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import zstandard

from pipeline.demo.content import EVAL_ITEMS, FOREIGN, articles, near_duplicate, spam_text

DEMO_PORT = 18765
DEMO_DATE = "2024-03-01T12:00:00Z"
DEMO_EPOCH = 1709294400


def _write(path: Path, data: bytes) -> None:
    """Write only when the content changed, so regenerating the demo keeps files (and reuse) intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return
    path.write_bytes(data)


def _page(title: str, paragraphs: list[str], lang: str = "en") -> bytes:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a> | <a href="/contact">Contact</a></nav>
<article><h1>{html.escape(title)}</h1>
{body}
</article>
<footer>Copyright 2024 Demo Publishing. All rights reserved. <a href="/privacy">Privacy</a></footer>
</body></html>
""".encode()


def _eval_passage(i: int) -> str:
    item = EVAL_ITEMS[i]
    return f"{item.question} {item.answer}"


def web_pages() -> dict[str, tuple[str, bytes]]:
    """path -> (kind, html) for the pages of the demo's web: Common Crawl's and Reddit's links."""
    arts = articles()
    pages: dict[str, tuple[str, bytes]] = {}
    for i, (title, paras) in enumerate(arts[:40]):
        if i == 5:
            paras = paras[:2] + [_eval_passage(0)] + paras[2:]
        pages[f"cc/article-{i:03d}.html"] = ("article", _page(title, paras))
    pages["cc/article-003-copy.html"] = ("near-dup", _page(arts[3][0], near_duplicate(arts[3][1])))
    pages["cc/article-007-mirror.html"] = ("exact-dup", _page(arts[7][0] + " | Mirror", arts[7][1]))
    for lang, paras in FOREIGN.items():
        pages[f"cc/{lang}-news.html"] = ("foreign", _page(f"News ({lang})", paras, lang))
    pages["cc/spam.html"] = ("spam", _page("Deals", spam_text(60).split("\n")))
    pages["cc/stub.html"] = ("short", _page("Stub", ["Coming soon."]))
    for i, (title, paras) in enumerate(arts[40:65]):
        pages[f"news/story-{i:03d}.html"] = ("article", _page(title, paras))
    pages["news/de-story.html"] = ("foreign", _page("Bibliothek", FOREIGN["de"], "de"))
    pages["news/story-002-syndicated.html"] = ("near-dup", _page(arts[42][0], near_duplicate(arts[42][1])))
    return pages


def _warc_gz(pages: dict[str, tuple[str, bytes]], base_url: str) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)

    def headers(uri: str, kind: str) -> dict[str, str]:
        rid = uuid.UUID(hashlib.md5(f"{kind}:{uri}".encode()).hexdigest())
        return {"WARC-Record-ID": f"<urn:uuid:{rid}>", "WARC-Date": DEMO_DATE}

    for path, (_, body) in sorted(pages.items()):
        uri = f"{base_url}/{path}"
        req = StatusAndHeaders(f"GET /{path} HTTP/1.1", [("Host", base_url.split("//")[1])], is_http_request=True)
        writer.write_record(writer.create_warc_record(uri, "request", http_headers=req,
                                                      warc_headers_dict=headers(uri, "request")))
        http_headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                   ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body),
                                                      http_headers=http_headers,
                                                      warc_headers_dict=headers(uri, "response")))
    # Records the extractor must skip, each with its own counted reason.
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    uri = f"{base_url}/logo.png"
    writer.write_record(writer.create_warc_record(
        uri, "response", payload=io.BytesIO(png),
        http_headers=StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1"),
        warc_headers_dict=headers(uri, "response")))
    uri = f"{base_url}/missing.html"
    writer.write_record(writer.create_warc_record(
        uri, "response", payload=io.BytesIO(b"<html><body>Not found</body></html>"),
        http_headers=StatusAndHeaders("404 Not Found", [("Content-Type", "text/html")], protocol="HTTP/1.1"),
        warc_headers_dict=headers(uri, "response")))
    return buf.getvalue()


def _wikitext(title: str, paras: list[str], i: int) -> str:
    first = paras[0]
    words = first.split()
    linked = " ".join(f"[[{w.strip('.,;:')}|{w}]]" if j % 17 == 3 and w.isalpha() else w for j, w in enumerate(words))
    rest = "\n\n".join(paras[1:])
    return (
        "{{Infobox topic\n| name = " + title + "\n| field = programming languages\n}}\n"
        f"'''{title}''' — {linked}<ref>{{{{cite web |url=http://example.org/{i} |title=Source}}}}</ref>\n\n"
        f"== Overview ==\n{rest}\n\n"
        "== See also ==\n* [[Python (programming language)]]\n* [[Grammar]]\n\n"
        "<!-- maintenance: check references -->\n"
        f"[[Category:Demo articles]]\n[[de:{title}]]\n"
    )


def _mediawiki_dump() -> bytes:
    arts = articles()[65:90]
    pages = []

    def page(pid: int, ns: int, title: str, text: str, redirect: str | None = None) -> str:
        red = f'<redirect title="{html.escape(redirect)}" />' if redirect else ""
        return (
            f"  <page>\n    <title>{html.escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{pid}</id>\n{red}"
            f"    <revision>\n      <id>{pid * 10}</id>\n      <timestamp>{DEMO_DATE}</timestamp>\n"
            f"      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f'      <text xml:space="preserve">{html.escape(text)}</text>\n    </revision>\n  </page>\n'
        )

    for i, (title, paras) in enumerate(arts):
        if i == 4:
            paras = paras[:1] + [_eval_passage(2)] + paras[1:]
        pages.append(page(100 + i, 0, title, _wikitext(title, paras, i)))
    # An article left in German in the English dump: language ID, not the extractor, must catch it.
    pages.append(page(150, 0, "Stadtbibliothek", "'''Die Stadtbibliothek''' " + "\n\n".join(FOREIGN["de"])))
    pages.append(page(200, 0, "Assign", "#REDIRECT [[Assignment]]", redirect="Assignment"))
    pages.append(page(201, 1, "Talk:Assignment", "Is this article accurate? ~~~~"))
    pages.append(page(202, 0, "Mercury (disambiguation)",
                      "'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n* [[Mercury (element)]]\n"
                      "{{disambiguation}}"))
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n'
        "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <dbname>enwiki</dbname>\n"
        "    <base>https://en.wikipedia.org/wiki/Main_Page</base>\n    <generator>MediaWiki 1.41</generator>\n"
        '    <case>first-letter</case>\n    <namespaces>\n      <namespace key="0" case="first-letter" />\n'
        '      <namespace key="1" case="first-letter">Talk</namespace>\n    </namespaces>\n  </siteinfo>\n'
        + "".join(pages)
        + "</mediawiki>\n"
    )
    return bz2.compress(xml.encode(), 9)


def _pushshift_dump(base_url: str) -> bytes:
    """Submissions in Pushshift's ndjson layout, zstd-compressed with a long window as the real dumps are."""
    subs = []
    stories = sorted(p for p in web_pages() if p.startswith("news/"))
    for i, path in enumerate(stories):
        url = f"{base_url}/{path}"
        score = 1 if i == len(stories) - 1 else 2 + (i % 4)  # the last story is not upvoted enough
        subs.append({"id": f"d{i:03d}", "url": url, "score": score, "subreddit": "demo",
                     "over_18": False, "is_self": False, "domain": "127.0.0.1", "created_utc": DEMO_EPOCH + i})
        if i % 4 == 0:  # the same link posted again elsewhere: its scores add up
            subs.append({"id": f"e{i:03d}", "url": url + "?utm_source=reddit", "score": 1, "subreddit": "news",
                         "over_18": False, "is_self": False, "domain": "127.0.0.1", "created_utc": DEMO_EPOCH + 500 + i})
    subs.append({"id": "s001", "url": "https://www.reddit.com/r/demo/comments/s001/", "score": 50, "is_self": True,
                 "selftext": "What do you think?", "subreddit": "demo", "over_18": False, "created_utc": DEMO_EPOCH})
    subs.append({"id": "n001", "url": f"{base_url}/news/story-001.html#nsfw", "score": 40, "over_18": True,
                 "is_self": False, "subreddit": "nsfw", "created_utc": DEMO_EPOCH})
    subs.append({"id": "i001", "url": "https://i.imgur.com/abc.jpg", "score": 90, "over_18": False,
                 "is_self": False, "subreddit": "pics", "created_utc": DEMO_EPOCH})
    subs.append({"id": "m001", "url": f"{base_url}/news/missing.html", "score": 9, "over_18": False,
                 "is_self": False, "subreddit": "demo", "created_utc": DEMO_EPOCH})
    data = "".join(json.dumps(s, sort_keys=True) + "\n" for s in subs).encode()
    return zstandard.ZstdCompressor(level=19, write_content_size=True).compress(data)


PG_LICENSE = """End of the Project Gutenberg EBook of {title}, by {author}

*** END OF THIS PROJECT GUTENBERG EBOOK {upper} ***

***** This file should be named {n}.txt or {n}.zip *****

Updated editions will replace the previous one--the old editions will be renamed.

Creating the works from public domain print editions means that no one owns a United States copyright in
these works, so the Foundation (and you!) can copy and distribute it in the United States without permission
and without paying copyright royalties. Special rules, set forth in the General Terms of Use part of this
license, apply to copying and distributing Project Gutenberg-tm electronic works.
"""


def _gutenberg_books() -> dict[str, bytes]:
    arts = articles()[90:]
    books: dict[str, bytes] = {}
    groups = [(90001, "Notes on the Python Language", "A. Demo Author", arts[0:4]),
              (90002, "Further Notes on Expressions", "B. Demo Author", arts[4:8]),
              (90003, "Last Notes", "C. Demo Author", arts[8:])]
    for n, title, author, parts in groups:
        chapters = "\n\n\n".join(f"CHAPTER {k + 1}. {t.upper()}\n\n" + "\n\n".join(p) for k, (t, p) in enumerate(parts))
        header = (
            f"The Project Gutenberg EBook of {title}, by {author}\n\n"
            "This eBook is for the use of anyone anywhere at no cost and with almost no restrictions whatsoever. "
            "You may copy it, give it away or re-use it under the terms of the Project Gutenberg License included "
            "with this eBook or online at www.gutenberg.org\n\n\n"
            f"Title: {title}\n\nAuthor: {author}\n\nRelease Date: March 1, 2024 [EBook #{n}]\n\n"
            "Language: English\n\nCharacter set encoding: UTF-8\n\n"
            f"*** START OF THIS PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n\n\n"
        )
        text = header + chapters + "\n\n\n\n" + PG_LICENSE.format(title=title, author=author, upper=title.upper(), n=n)
        books[f"{n}-0.txt"] = text.encode("utf-8")
        if n == 90001:  # an older Latin-1 edition of the same ebook: one document, the other counted
            books[f"{n}-8.txt"] = text.replace("UTF-8", "ISO-8859-1").encode("latin-1", errors="replace")
    return books


CODE_FILES = {
    "LICENSE": "MIT License\n\nCopyright (c) 2024 Demo\n\nPermission is hereby granted, free of charge, to any person "
               "obtaining a copy of this software and associated documentation files (the \"Software\"), to deal in "
               "the Software without restriction, including without limitation the rights to use, copy, modify, "
               "merge, publish, distribute, sublicense, and/or sell copies of the Software.\n\nTHE SOFTWARE IS "
               "PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND.\n",
    "README.md": "# wordcount\n\nCount words in text files, the way `wc -w` does, in Python.\n",
    "wordcount/__init__.py": '"""Count words in text files."""\n\nfrom wordcount.core import count_words\n\n'
                             '__all__ = ["count_words"]\n',
    "wordcount/core.py": '"""The word counting itself."""\n\nimport re\n\nWORD = re.compile(r"\\S+")\n\n\n'
                         "def count_words(text: str) -> int:\n"
                         '    """Number of whitespace-separated words in text."""\n'
                         "    return len(WORD.findall(text))\n\n\n"
                         "def count_file(path: str, encoding: str = \"utf-8\") -> int:\n"
                         "    with open(path, encoding=encoding) as f:\n"
                         "        return sum(count_words(line) for line in f)\n",
    "wordcount/cli.py": '"""Command line entry point."""\n\nimport sys\n\nfrom wordcount.core import count_file\n\n\n'
                        "def main(argv: list[str]) -> int:\n"
                        "    total = 0\n"
                        "    for path in argv:\n"
                        "        n = count_file(path)\n"
                        '        print(f"{n:8d} {path}")\n'
                        "        total += n\n"
                        '    print(f"{total:8d} total")\n'
                        "    return 0\n\n\n"
                        'if __name__ == "__main__":\n    raise SystemExit(main(sys.argv[1:]))\n',
    "web/app.js": "// Show the word count of the text area as the user types.\n"
                  "function countWords(text) {\n  return text.split(/\\s+/).filter(Boolean).length;\n}\n\n"
                  "document.addEventListener('input', (event) => {\n"
                  "  const out = document.getElementById('count');\n"
                  "  out.textContent = String(countWords(event.target.value));\n});\n",
    "web/vendor.min.js": "!function(){" + ";".join(f"var a{i}=function(b){{return b+{i}}}" for i in range(400)) + "}();\n",
    "node_modules/leftpad/index.js": "module.exports = function (s, n) { return s.padStart(n); };\n",
    "package-lock.json": json.dumps({"name": "wordcount", "lockfileVersion": 3, "packages": {}}, indent=2) + "\n",
}


def _git_repo(path: Path) -> None:
    """A small real git repository with a fixed author and date, so its commit id is stable."""
    if path.exists() and (path / ".git").exists():
        head = subprocess.run(["git", "-C", str(path), "log", "-1", "--format=%s"], capture_output=True, text=True)
        if head.returncode == 0 and head.stdout.strip() == "wordcount demo":
            return
    shutil.rmtree(path, ignore_errors=True)
    for rel, content in CODE_FILES.items():
        _write(path / rel, content.encode())
    env = {**os.environ, "GIT_AUTHOR_NAME": "Demo", "GIT_AUTHOR_EMAIL": "demo@example.org",
           "GIT_COMMITTER_NAME": "Demo", "GIT_COMMITTER_EMAIL": "demo@example.org",
           "GIT_AUTHOR_DATE": DEMO_DATE, "GIT_COMMITTER_DATE": DEMO_DATE}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "wordcount demo"]):
        subprocess.run(["git", "-C", str(path), *cmd], check=True, env=env, capture_output=True)


def generate(root: Path, port: int = DEMO_PORT) -> Path:
    """Write every demo input under `root` (idempotent: unchanged files are left alone)."""
    base_url = f"http://127.0.0.1:{port}"
    pages = web_pages()
    for path, (_, body) in pages.items():
        _write(root / "web" / path, body)
    _write(root / "cc" / "CC-DEMO-2024-10-00000.warc.gz",
           _warc_gz({p: v for p, v in pages.items() if p.startswith("cc/")}, "http://demo-site.example"))
    _write(root / "wikipedia" / "enwiki-demo-pages-articles.xml.bz2", _mediawiki_dump())
    _write(root / "reddit" / "RS_2024-03.zst", _pushshift_dump(base_url))
    for name, data in _gutenberg_books().items():
        _write(root / "books" / name, data)
    _git_repo(root / "code" / "wordcount")
    evals = "".join(json.dumps({"question": e.question, "answer": e.answer}) + "\n" for e in EVAL_ITEMS)
    _write(root / "evals" / "demo_qa.jsonl", evals.encode())
    return root


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_pages(directory: Path, port: int = DEMO_PORT) -> Iterator[str]:
    """Serve the demo's web pages on 127.0.0.1 while the block runs; yields the base URL."""
    handler = lambda *a, **kw: _PageHandler(*a, directory=str(directory), **kw)  # noqa: E731
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise RuntimeError(f"demo: cannot serve pages on 127.0.0.1:{port} ({exc}); set corpus.demo_port") from exc
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
