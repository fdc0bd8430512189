"""Documents from JSON Lines files (plain, .gz or .zst), such as the Pile's lm_dataformat shards.

The way to bring an existing dataset into a build: one document per line, `text` from a field,
the rest of the record (or its `meta` object) kept as meta. A malformed line is a counted rejection
naming the file and line, never the end of the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from pipeline.core.extractor import Extractor, InputError, WorkUnit
from pipeline.core.io import as_path
from pipeline.core.schema import Doc, Rejected
from sources.compression import open_text


@dataclass
class JsonlConfig:
    source_name: str = "jsonl"  # the `source` column of the documents
    text_field: str = "text"  # the field holding the text; a line without it is rejected as `jsonl:no-text`
    id_field: str = ""  # empty: `<file stem>/<line number>`
    url_field: str = "url"  # the field holding the URL, if any
    # Take `source` from this meta key when present (the Pile's `pile_set_name`); empty: always source_name.
    source_from_meta: str = ""


class JsonlExtractor(Extractor):
    name = "jsonl"
    version = "1"
    config_class = JsonlConfig

    def extract(self, unit: WorkUnit) -> Iterator[Doc | Rejected]:
        cfg: JsonlConfig = self.config
        path = as_path(unit.payload["path"])
        stem = path.name.split(".")[0]
        try:
            f = open_text(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc}") from exc
        with f:
            lineno = 0
            try:
                for lineno, line in enumerate(f, start=1):  # noqa: B007 - used after the loop on error
                    if not line.strip():
                        continue
                    yield self._record(path, stem, lineno, line)
            except (OSError, EOFError, zstandard.ZstdError) as exc:  # lzma/bz2/gzip/zstd truncation
                yield Rejected(
                    id=f"{cfg.source_name}/{stem}@line{lineno + 1}",
                    source=cfg.source_name,
                    reason="jsonl:truncated-file",
                    meta={"file": str(path), "line": lineno + 1, "error": str(exc)},
                )

    def _record(self, path: Path, stem: str, lineno: int, line: str) -> Doc | Rejected:
        cfg: JsonlConfig = self.config
        fallback_id = f"{cfg.source_name}/{stem}/{lineno}"
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            return Rejected(fallback_id, cfg.source_name, "jsonl:malformed",
                            meta={"file": str(path), "line": lineno, "error": str(exc)})
        text = rec.pop(cfg.text_field, None)
        if not isinstance(text, str):
            return Rejected(fallback_id, cfg.source_name, "jsonl:no-text",
                            meta={"file": str(path), "line": lineno, "field": cfg.text_field})
        meta = rec.pop("meta", None)
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta.update(rec)
        source = cfg.source_name
        if cfg.source_from_meta and isinstance(meta.get(cfg.source_from_meta), str):
            source = meta[cfg.source_from_meta]
        native = rec.get(cfg.id_field) if cfg.id_field else None
        doc_id = f"{source}/{native}" if native is not None else f"{source}/{stem}/{lineno}"
        url = rec.get(cfg.url_field) if isinstance(rec.get(cfg.url_field), str) else None
        meta.update({"file": path.name, "line": lineno})
        return Doc(doc_id, source, text, url, meta)


