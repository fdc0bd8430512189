"""Books: Project Gutenberg plain-text e-books, one document per ebook, header and license stripped.

Project Gutenberg publishes one ebook in several editions: `N.txt` (7-bit ASCII), `N-8.txt`
(ISO-8859-1), `N-0.txt` (UTF-8), and `.zip` files holding them. `plan` groups all editions of one
ebook number into ONE work unit; `extract` emits the best edition (UTF-8 first, then 8-bit, then
ASCII; .txt before .zip; legacy names last) and rejects the others as `books:duplicate-edition`.
Legacy releases with names that carry no number (`old/7tcng10.txt` beside `9198.txt`) are grouped
by the ebook number of their header (its first 64 KiB, read at plan time); files with no number at
all are one unit per name, or per name and content when several files share a name, so that every
document id is emitted once. A symlink whose target lies outside the input directory (or the fixed
part of an input glob) it was found under is refused as `books:symlink-escape`, its target never
read; a file with control characters or undecodable bytes (over 1% of its characters) is
`books:binary`. Encodings are detected
from the bytes (BOM, valid UTF-8, the header's declared charset, cp1252, ISO-8859-1), never assumed.
The PG boilerplate is stripped in its historical forms (`strip_boilerplate`), and
metadata comes from the catalog RDF (`pgN.rdf`) when present, else from the header.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.config import at_least
from pipeline.core.extractor import (
    Extractor,
    PlanContext,
    WorkUnit,
    expand_inputs,
    file_fingerprint,
    localize_inputs,
    to_remote,
    unit_key,
)
from pipeline.core.io import as_path, local_file
from pipeline.core.schema import Doc, Rejected

SOURCE = "books"
_EDITION = re.compile(r"^(?:pg)?(\d+)(?:-([08]))?\.(txt|zip)$", re.I)
_RDF_NAME = re.compile(r"^(?:pg)?(\d+)\.rdf$", re.I)
_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dcterms": "http://purl.org/dc/terms/",
    "pgterms": "http://www.gutenberg.org/2009/pgterms/",
}


@dataclass
class BooksConfig:
    """Limits and strictness of the Gutenberg reader."""

    max_file_bytes: int = 64 << 20  # larger files (or zip members) are rejected as books:too-large
    min_body_chars: int = 200  # shorter bodies after stripping are rejected as books:empty
    # Reject files where no PG header/footer marker is found (else they are kept whole, flagged in meta).
    require_markers: bool = False
    strip_credits: bool = True  # drop the "Produced by ..." paragraph that follows the start marker

    def __post_init__(self) -> None:
        at_least(self, 1, "max_file_bytes")
        at_least(self, 0, "min_body_chars")


def edition_rank(path: Path) -> tuple[int, int, str]:
    """Sort key of an edition: UTF-8 (-0) first, then 8-bit (-8), then ASCII; .txt before .zip."""
    m = _EDITION.match(path.name)
    if not m:
        return (3, 0, path.name)
    enc = {"0": 0, "8": 1, None: 2}[m.group(2)]
    return (enc, 0 if m.group(3).lower() == "txt" else 1, str(path))


class BooksExtractor(Extractor):
    name = "books"
    version = "2"  # 2: symlink escapes, binary files and legacy-named editions are counted
    config_class = BooksConfig
    stage_defaults = {
        # The catalogue's language (meta `language`) is the allowed one.
        "langid": {"language_from_meta": "language"},
        # The token minimum and the repetition rules, not the Gopher quality rules, which misfire on
        # long prose (a novel is often over 100,000 words).
        "quality": {"rules": ["min_tokens", "gopher_repetition"]},
    }

    def plan(self, inputs: list[str], ctx: PlanContext) -> list[WorkUnit]:
        """One work unit per ebook number (all its editions, legacy names included), or per name (and
        content, when names repeat) for files with no number in their name or header."""
        inputs, roots = localize_inputs(inputs)  # inputs on object storage are planned from a local copy
        files = expand_inputs(inputs)
        escapes = symlink_escapes(inputs, files)
        fps: dict[Path, str] = {}

        def fingerprint(p: Path) -> str:
            if p not in fps:
                if p in escapes:  # never read: the link itself is what is planned
                    fps[p] = "symlink:" + escapes[p]
                else:
                    fps[p] = ctx.fingerprints.of(p) if ctx.fingerprints is not None else file_fingerprint(p)
            return fps[p]

        rdfs: dict[str, Path] = {}
        for p in files:
            if p not in escapes and (m := _RDF_NAME.match(p.name)) is not None:
                rdfs.setdefault(m.group(1), p)
        groups: dict[str, list[Path]] = {}
        loose: list[Path] = []
        for p in files:
            if p.suffix.lower() not in (".txt", ".zip"):
                continue
            m = _EDITION.match(p.name)
            number = str(int(m.group(1))) if m else (None if p in escapes else self._header_number(p))
            if number:
                groups.setdefault(number, []).append(p)
            else:
                loose.append(p)
        stems = Counter(p.stem for p in loose)
        for p in loose:
            name = p.stem if stems[p.stem] == 1 else f"{p.stem}-{fingerprint(p).rpartition(':')[2][:12]}"
            groups.setdefault(f"file:{name}", []).append(p)
        units = []
        for key in sorted(groups):
            editions = sorted(groups[key], key=edition_rank)
            ebook = None if key.startswith("file:") else key
            rdf = rdfs.get(ebook) if ebook else None
            if ebook and rdf is None:
                rdf = next((c for c in _rdf_candidates(editions[0], ebook)
                            if c.is_file() and not c.is_symlink()), None)
            h = hashlib.sha256()
            for p in [*editions, *([rdf] if rdf else [])]:
                h.update(f"{p.name}\0{fingerprint(p)}\n".encode())
            payload = {"ebook": ebook, "files": [to_remote(p, roots) for p in editions],
                       "rdf": to_remote(rdf, roots) if rdf else None,
                       "name": None if ebook else key.removeprefix("file:"),
                       "refused": {to_remote(p, roots): f"books:symlink-escape|{p} -> {escapes[p]}"
                                   for p in editions if p in escapes}}
            name = f"pg{ebook}" if ebook else unit_key(editions[0])
            units.append(WorkUnit(key=name, payload=payload, fingerprint="sha256:" + h.hexdigest()))
        return units

    def _header_number(self, path: Path) -> str | None:
        """The ebook number in the header of a file whose name has none (legacy `7tcng10.txt`)."""
        head = self._read_bytes(path, head=_HEAD_BYTES)
        if isinstance(head, str):
            return None
        text, _ = decode_text(head[0])
        if _binary_reason(text) is not None:
            return None
        number = header_metadata(strip_boilerplate(text, strip_credits=False).header).get("ebook")
        return str(int(number)) if number else None

    def extract(self, unit: WorkUnit) -> Iterator[Doc | Rejected]:
        files = [as_path(p) for p in unit.payload.get("files") or [unit.payload["path"]]]
        files.sort(key=edition_rank)
        ebook = unit.payload.get("ebook")
        name = unit.payload.get("name")
        refused: dict[str, str] = unit.payload.get("refused") or {}
        rdf_path = unit.payload.get("rdf")
        rdf_meta, rdf_error = read_rdf(local_file(rdf_path)) if rdf_path else ({}, None)
        chosen: Doc | None = None
        for path in files:
            rejected_id = f"{SOURCE}/{ebook or name or path.stem}/{path.name}"
            if str(path) in refused:
                yield self._reject(rejected_id, path, refused[str(path)])
                continue
            if chosen is not None:
                yield Rejected(rejected_id, SOURCE, "books:duplicate-edition", chosen.url,
                               meta={"file": str(path), "kept": chosen.meta["edition"]})
                continue
            outcome = self._read_edition(path, ebook, rdf_meta, name)
            if isinstance(outcome, str):
                yield self._reject(rejected_id, path, outcome)
                continue
            if rdf_error:
                outcome.meta["rdf_error"] = rdf_error  # type: ignore[index]
            chosen = outcome
            yield outcome

    @staticmethod
    def _reject(doc_id: str, path: Path, outcome: str) -> Rejected:
        reason, _, error = outcome.partition("|")
        return Rejected(doc_id, SOURCE, reason, meta={"file": str(path), "error": error})

    def _read_edition(self, path: Path, ebook: str | None, rdf_meta: dict[str, Any],
                      name: str | None = None) -> Doc | str:
        """The document of one edition, or `reason|error` saying why it cannot be one. Its id is
        `books/<ebook>` for a unit with an ebook number, else `books/<name>` (the unit's name)."""
        data_or_error = self._read_bytes(path)
        if isinstance(data_or_error, str):
            return data_or_error
        data, member = data_or_error
        if not data.strip():
            return "books:empty|empty file"
        text, encoding = decode_text(data)
        if (binary := _binary_reason(text)) is not None:
            return f"books:binary|{binary} (decoded as {encoding})"
        stripped = strip_boilerplate(text, strip_credits=self.config.strip_credits)
        if not stripped.found_markers and self.config.require_markers:
            return "books:no-markers|no Project Gutenberg start/end marker found"
        body = stripped.body
        if len(body) < self.config.min_body_chars:
            return f"books:empty|body has {len(body)} characters after stripping"
        header = header_metadata(stripped.header)
        number = ebook or rdf_meta.get("ebook") or header.get("ebook")
        meta: dict[str, Any] = {
            "title": rdf_meta.get("title") or header.get("title"),
            "author": rdf_meta.get("author") or header.get("author"),
            "language": rdf_meta.get("language") or header.get("language"),
            "ebook": int(number) if number and str(number).isdigit() else None,
            "edition": path.name + (f"!{member}" if member else ""),
            "encoding": encoding,
            "metadata_from": "rdf" if rdf_meta else "header",
            "boilerplate": stripped.kind,
        }
        for key in ("subjects", "issued", "rights"):
            if rdf_meta.get(key):
                meta[key] = rdf_meta[key]
        # The id comes from the plan (the unit's ebook number or name), never from this file's header
        # alone: two units must not emit one id.
        doc_id = f"{SOURCE}/{ebook}" if ebook else f"{SOURCE}/{name or path.stem}"
        url = f"https://www.gutenberg.org/ebooks/{number}" if number else None
        return Doc(doc_id, SOURCE, body, url, meta)

    def _read_bytes(self, path: Path, head: int | None = None) -> tuple[bytes, str | None] | str:
        """The bytes of a .txt file or of the largest .txt member of a .zip (`reason|error` if none
        can be had); with `head`, at most its first `head` bytes (no size limit applies)."""
        path = local_file(path)  # a file on object storage is read from its cached copy
        limit = self.config.max_file_bytes if head is None else head
        if path.suffix.lower() != ".zip":
            try:
                size = path.stat().st_size
                if head is None and size > limit:
                    return f"books:too-large|{size} bytes > max_file_bytes {limit}"
                with open(path, "rb") as fh:
                    data = fh.read(limit + 1)  # the size may change under us
            except OSError as exc:
                return f"books:unreadable|{path}: {exc}"
            if len(data) > limit and head is None:
                return f"books:too-large|more than max_file_bytes {limit}"
            return data[:limit], None
        try:
            with zipfile.ZipFile(path) as zf:
                members = [i for i in zf.infolist() if i.filename.lower().endswith(".txt") and not i.is_dir()]
                if not members:
                    return "books:no-text-in-zip|no .txt member"
                best = max(members, key=lambda i: (i.file_size, i.filename))
                if head is None and best.file_size > limit:
                    return f"books:too-large|{best.filename}: {best.file_size} bytes > max_file_bytes {limit}"
                with zf.open(best) as f:
                    data = f.read(limit + 1)  # the declared size may lie (zip bombs)
                if head is not None:
                    return data[:limit], best.filename
                if len(data) > limit:
                    return f"books:too-large|{best.filename}: more than max_file_bytes {limit}"
                return data, best.filename
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            return f"books:unreadable|{path}: {exc}"


_HEAD_BYTES = 64 << 10  # what the plan reads of a legacy-named file to find its ebook number
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")  # not \t \n \f \r (\r\n is gone)
MAX_CONTROL_FRACTION = 0.01


def _binary_reason(text: str) -> str | None:
    """Why decoded text is binary data and not a book: control characters (C0 but tab, newline and
    form feed; DEL; C1, which no real text decoded as Latin-1 has) or replacement characters making
    up more than MAX_CONTROL_FRACTION of it. Random bytes have about 23%, a PG text none or a few."""
    if not text:
        return None
    n = sum(1 for _ in _CONTROL.finditer(text))
    if n > MAX_CONTROL_FRACTION * len(text):
        return f"{n} control characters in {len(text)} ({n / len(text):.1%} > {MAX_CONTROL_FRACTION:.0%})"
    return None


def symlink_escapes(inputs: list[str], files: list[Path]) -> dict[Path, str]:
    """The files (of `expand_inputs(inputs)`) that resolve outside the input they were found under,
    with their resolved target: an input directory, or the fixed directory part of an input glob. A
    file named by an input itself is the user's choice and never an escape."""
    roots: list[str] = []
    for spec in inputs:
        if glob.has_magic(spec):
            fixed = []
            for part in Path(spec).parts:
                if glob.has_magic(part):
                    break
                fixed.append(part)
            roots.append(os.path.abspath(os.path.join(*fixed)) if fixed else os.path.abspath("."))
        elif os.path.isdir(spec):
            roots.append(os.path.abspath(spec))
    out: dict[Path, str] = {}
    for f in files:
        absolute = os.path.abspath(f)
        root = next((r for r in roots if os.path.commonpath([r, absolute]) == r and absolute != r), None)
        if root is None:
            continue
        real_root, target = os.path.realpath(root), os.path.realpath(absolute)
        if os.path.commonpath([real_root, target]) != real_root:
            out[f] = target
    return out


def _rdf_candidates(text_path: Path, ebook: str) -> list[Path]:
    d = text_path.parent
    return [d / f"pg{ebook}.rdf", d / f"{ebook}.rdf", d.parent / "rdf" / f"pg{ebook}.rdf"]


def read_rdf(path: Path) -> tuple[dict[str, Any], str | None]:
    """Title, author(s), language, subjects, issued date and rights from a PG catalog RDF file."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        return {}, f"{path}: {exc}"
    ebook = root.find("pgterms:ebook", _NS)
    if ebook is None:
        return {}, f"{path}: no pgterms:ebook element"
    about = ebook.get(f"{{{_NS['rdf']}}}about", "")
    authors = [n.text.strip() for n in ebook.findall("dcterms:creator/pgterms:agent/pgterms:name", _NS) if n.text]
    languages = [v.text.strip() for v in ebook.findall("dcterms:language/rdf:Description/rdf:value", _NS) if v.text]
    subjects = sorted(
        v.text.strip() for v in ebook.findall("dcterms:subject/rdf:Description/rdf:value", _NS) if v.text
    )
    title = ebook.findtext("dcterms:title", default="", namespaces=_NS)
    meta: dict[str, Any] = {
        "ebook": about.rpartition("/")[2] if about.rpartition("/")[2].isdigit() else None,
        "title": " ".join(title.split()) or None,
        "author": "; ".join(authors) or None,
        "language": languages[0] if languages else None,
        "subjects": subjects,
        "issued": ebook.findtext("dcterms:issued", default=None, namespaces=_NS),
        "rights": ebook.findtext("dcterms:rights", default=None, namespaces=_NS),
    }
    if len(languages) > 1:
        meta["languages"] = languages
    return meta, None


# ----------------------------------------------------------------------------------- encodings

_DECLARED = re.compile(rb"Character set encoding:\s*([A-Za-z0-9_.:-]+)", re.I)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode PG bytes: BOM, then strict UTF-8 (ASCII when 7-bit), the declared charset, cp1252, latin-1.

    Returns the text with LF line ends and the encoding used.
    """
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return _lf(data.decode(enc)), enc
            except UnicodeDecodeError:
                break
    candidates = ["utf-8"]
    declared = _DECLARED.search(data[:8192])
    if declared:
        try:
            candidates.append(codecs.lookup(declared.group(1).decode("ascii").rstrip(".")).name)
        except LookupError:
            pass
    if re.search(rb"[\x80-\x9f]", data):
        candidates.append("cp1252")  # C1 bytes: Windows "smart quotes" mislabelled as ISO-8859-1
    candidates.append("iso8859-1")
    for enc in dict.fromkeys(candidates):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc == "utf-8" and data.isascii():
            enc = "ascii"
        return _lf(text), enc
    raise AssertionError("iso8859-1 decodes every byte string")  # pragma: no cover


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------------------------- boilerplate

_START = re.compile(
    r"^[ \t]*\*{2,}[ \t]*START[ \t]+OF[ \t]+(?:THE|THIS)[ \t]+PROJECT[ \t]+GUTENBERG.*$"
    r"|^[ \t]*\*{3}[ \t]*START[ \t]+OF[ \t]+THE[ \t]+COPYRIGHTED[ \t]+PROJECT[ \t]+GUTENBERG.*$",
    re.I | re.M,
)
# The pre-2000 header ends with the "small print" license, closed by a line such as
# "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*".
_SMALL_PRINT_END = re.compile(r"^[ \t]*\*+[ \t]*END\*?[ \t]*THE[ \t]+SMALL[ \t]+PRINT.*$", re.I | re.M)
_END = re.compile(
    r"^[ \t]*\*{2,}[ \t]*END[ \t]+OF[ \t]+(?:THE|THIS)[ \t]+PROJECT[ \t]+GUTENBERG"
    r"|^[ \t]*\*{3}[ \t]*END[ \t]+OF[ \t]+THE[ \t]+COPYRIGHTED[ \t]+PROJECT[ \t]+GUTENBERG"
    r"|^[ \t]*End[ \t]+of[ \t]+(?:the[ \t]+|this[ \t]+)?Project[ \t]+Gutenberg(?:'s)?\b"
    r"|^[ \t]*End[ \t]+of[ \t]+(?:the[ \t]+)?Project[ \t]+Gutenberg[ \t]+(?:E-?text|E-?book)"
    r"|^[ \t]*\**[ \t]*End[ \t]+of[ \t]+(?:the|this)[ \t]+(?:Project[ \t]+Gutenberg[ \t]+)?E-?text[ \t]+of\b",
    re.I | re.M,
)
# Lines of the oldest headers (no START marker, no small print): "**The Project Gutenberg Etext of ...**".
_OLD_HEADER_LINE = re.compile(
    r"project gutenberg|e-?text|e-?book|gutenberg\.(?:net|org)|^title:|^author:|^release date|"
    r"^character set|^language:|^\s*\*+.*\*+\s*$|copyright|file should be named|ibiblio|promo\.net",
    re.I,
)
_CREDITS = re.compile(
    r"^(?:Produced|Prepared|Transcribed|Scanned|Digitized|E-?text prepared|This e-?(?:text|book) was "
    r"(?:prepared|produced|created)|Proofread|Updated editions?)\b.*",
    re.I,
)


@dataclass
class Stripped:
    header: str
    body: str
    kind: str  # which boilerplate form was found: "start-end", "small-print", "heuristic", "none"
    found_markers: bool = field(default=True)


def strip_boilerplate(text: str, strip_credits: bool = True) -> Stripped:
    """Split a PG text into its header and its body, without the footer and license.

    The body starts after the last header marker in the first half of the text (a `*** START OF
    THE/THIS PROJECT GUTENBERG EBOOK ... ***` line, possibly wrapped, or the end of the old "small
    print" license) and stops at the first end marker after it (`*** END OF ...`, `End of the Project
    Gutenberg EBook of ...`, `End of Project Gutenberg's ...`, `End of this Etext of ...`).
    """
    start, kind = 0, "none"
    first_end = _END.search(text)
    # The small print sits in the header of old files but after the end marker in others.
    small_print_limit = first_end.start() if first_end else len(text)
    if (m := _START.search(text)) is not None:
        start, kind = m.end(), "start-end"
        if m.group().count("*") < 4:
            # a start marker wrapped over lines: "*** START OF THIS PROJECT GUTENBERG EBOOK\nTITLE ***"
            close = text.find("***", start, start + 300)
            start = text.find("\n", close) if close != -1 else start
    for m in _SMALL_PRINT_END.finditer(text, 0, small_print_limit):
        if m.end() > start:
            start, kind = m.end(), ("small-print" if kind == "none" else kind)
    if kind == "none":
        start = _heuristic_header_end(text, small_print_limit)
        kind = "heuristic" if start else "none"
    end_m = _END.search(text, start)
    stop = end_m.start() if end_m else len(text)
    if end_m and kind == "none":
        kind = "end-only"
    body = text[start:stop]
    if strip_credits:
        body = _strip_credits(body)
    return Stripped(header=text[:start], body=body.strip("\n").rstrip() + "\n" if body.strip() else "",
                    kind=kind, found_markers=kind != "none")


def _heuristic_header_end(text: str, limit: int) -> int:
    """End of a header without markers: the blank line after the last PG-looking line of the top block.

    The scan stops at `limit` (the first end marker) and once 12 lines of prose in a row follow.
    """
    head = text[: min(limit, 20000)]
    if "gutenberg" not in head[:3000].lower():
        return 0
    last, offset, last_offset, prose_run = -1, 0, 0, 0
    for i, line in enumerate(head.split("\n")):
        offset += len(line) + 1
        if _OLD_HEADER_LINE.search(line.strip()):
            last, last_offset, prose_run = i, offset, 0
        elif line.strip():
            prose_run += 1
            if prose_run >= 12:
                break
    if last < 0:
        return 0
    blank = text.find("\n\n", last_offset - 1, limit)
    return blank + 1 if blank != -1 else last_offset


def _strip_credits(body: str) -> str:
    """Drop the production credits paragraph ("Produced by ...") heading the body."""
    stripped = body.lstrip("\n")
    para, sep, rest = stripped.partition("\n\n")
    if _CREDITS.match(para.strip()) and para.count("\n") < 8:
        return rest
    return body


# ------------------------------------------------------------------------------------ header meta

_LANGUAGE_CODES = {
    "english": "en", "french": "fr", "german": "de", "dutch": "nl", "spanish": "es", "italian": "it",
    "portuguese": "pt", "finnish": "fi", "swedish": "sv", "danish": "da", "norwegian": "no", "latin": "la",
    "greek": "el", "russian": "ru", "polish": "pl", "hungarian": "hu", "czech": "cs", "chinese": "zh",
    "japanese": "ja", "esperanto": "eo", "catalan": "ca", "tagalog": "tl", "welsh": "cy", "irish": "ga",
}


def header_metadata(header: str) -> dict[str, Any]:
    """Title, author, language and ebook number from a PG header (used when no RDF is present)."""
    meta: dict[str, Any] = {}
    if m := re.search(r"^Title:[ \t]*(.+(?:\n[ \t]+\S.*)*)", header, re.M):
        meta["title"] = " ".join(m.group(1).split())
    if m := re.search(r"^Author:[ \t]*(.+)", header, re.M):
        meta["author"] = m.group(1).strip()
    if m := re.search(r"^Language:[ \t]*(.+)", header, re.M):
        name = m.group(1).strip()
        meta["language"] = _LANGUAGE_CODES.get(name.lower(), name)
    if m := re.search(r"\[E-?(?:Book|text)\s*#(\d+)\]|E-?Book\s*#(\d+)|Etext\s*#(\d+)", header, re.I):
        meta["ebook"] = next(g for g in m.groups() if g)
    if "title" not in meta or "author" not in meta:
        m = re.search(r"(?:The )?Project Gutenberg(?:'s)?(?: E-?(?:Book|text) of)?,?\s+(.+?),\s+by\s+(.+)",
                      header[:2000], re.I)
        if m:
            meta.setdefault("title", m.group(1).strip(" *"))
            meta.setdefault("author", m.group(2).strip(" *"))
    return meta
