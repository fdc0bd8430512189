"""Read one corpus version's records by document: the lookups `corpus trace` and `corpus show` share.

Everything comes from files the version holds (docs/, ledger.parquet, rejected.parquet,
samples.parquet, contamination.json, mix/_mix.json, tokens/); nothing is recomputed. Tables are read
lazily and once, filtered by id with pyarrow, so a lookup costs a scan of the ledgers, not of the text.
"""

from __future__ import annotations

import json
import os
import re
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.io import AnyPath, read_json, read_table
from pipeline.outputs.reader import TokenDataset
from pipeline.versions.lineage import SAMPLES_FILE
from pipeline.versions.verify import resolve_manifest


class TraceError(ValueError):
    """A question a version cannot answer (an unknown id, a token past the end): one line for the CLI."""

# Score columns of versions built before the manifest recorded each step's columns, by prefix.
COLUMN_PREFIXES = (("lang", "langid"), ("quality_", "quality"), ("dup_", "dedup"), ("decontam_", "decontam"))


class VersionStore:
    """One version directory (local; `corpus trace` reads token shards with the numpy reader)."""

    def __init__(self, version: str | os.PathLike) -> None:
        try:
            self.manifest_path = resolve_manifest(version)
        except FileNotFoundError as exc:
            raise TraceError(str(exc)) from None
        self.dir: AnyPath = self.manifest_path.parent
        self.manifest: dict[str, Any] = read_json(self.manifest_path)
        self._shards: dict[str, pa.Table] = {}

    # ---------------------------------------------------------------------------- tables
    @cached_property
    def ledger(self) -> pa.Table:
        return read_table(self.dir / self.manifest["ledger"]["path"])

    @cached_property
    def rejected(self) -> pa.Table:
        entry = self.manifest.get("rejected_ledger")
        if not entry or not (self.dir / entry["path"]).exists():
            return pa.table({c: pa.array([], pa.string()) for c in ("id", "source", "stage", "reason")})
        return read_table(self.dir / entry["path"])

    @cached_property
    def samples(self) -> pa.Table | None:
        path = self.dir / self.manifest.get("samples", {}).get("path", SAMPLES_FILE)
        return read_table(path) if path.exists() else None

    @cached_property
    def contamination(self) -> dict[str, Any] | None:
        entry = self.manifest.get("reports", {}).get("contamination")
        path = self.dir / entry["path"] if entry else None
        return read_json(path) if path is not None and path.exists() else None

    @cached_property
    def mix(self) -> dict[str, Any] | None:
        path = self.dir / "mix" / "_mix.json"
        return read_json(path) if path.exists() else None

    def splits(self) -> list[str]:
        return sorted(self.manifest.get("tokens", {}).get("splits", {}))

    def tokens(self, split: str) -> TokenDataset:
        if split not in self.splits():
            raise TraceError(f"{self.dir}: no split {split!r} (splits: {', '.join(self.splits()) or 'none'})")
        return TokenDataset(self.dir / "tokens" / split)

    # --------------------------------------------------------------------------- lookups
    def kept_row(self, doc_id: str) -> dict[str, Any] | None:
        """The kept document with this id, every column, from its docs/ shard (found by the ledger)."""
        hit = self.ledger.filter(pc.equal(self.ledger.column("id"), doc_id))
        if hit.num_rows == 0:
            return None
        shard = self._docs_shard(hit.column("shard")[0].as_py())
        rows = shard.filter(pc.equal(shard.column("id"), doc_id)).to_pylist()
        return {**rows[0], "_shard": hit.column("shard")[0].as_py()} if rows else None

    def _docs_shard(self, name: str) -> pa.Table:
        """A docs/ shard, the last few kept in memory: a training batch's documents share shards."""
        if name not in self._shards:
            if len(self._shards) >= 4:
                self._shards.pop(next(iter(self._shards)))
            self._shards[name] = read_table(self.dir / "docs" / name)
        return self._shards[name]

    def rejected_rows(self, doc_id: str) -> list[dict[str, Any]]:
        """Every rejection of this id (one per step at most), in pipeline order."""
        hit = self.rejected.filter(pc.equal(self.rejected.column("id"), doc_id)).to_pylist()
        order = {st["name"]: i for i, st in enumerate(self.manifest["stages"])}
        return sorted(hit, key=lambda r: order.get(r["stage"], len(order)))

    def sample_row(self, doc_id: str) -> dict[str, Any] | None:
        if self.samples is None:
            return None
        rows = self.samples.filter(pc.equal(self.samples.column("id"), doc_id)).to_pylist()
        return rows[0] if rows else None

    def cluster_members(self, survivor: str) -> list[dict[str, Any]]:
        """Documents dedup removed in favour of `survivor` (their reasons name it)."""
        reasons = self.rejected.column("reason")
        mask = pc.or_(pc.equal(reasons, f"near-dup:{survivor}"), pc.equal(reasons, f"exact-dup:{survivor}"))
        return self.rejected.filter(mask).select(["id", "source", "reason"]).to_pylist()

    def input_of(self, source: str, shard: str | None, meta: dict[str, Any]) -> dict[str, Any] | None:
        """The work unit (input file, dump, repository) a document was extracted from: a docs/ shard is
        named `<source>-<unit>-NNNNN.parquet` and the manifest lists each source's units; a rejected
        document has no shard, so its meta's file name (`warc_file`, `file`) is matched instead."""
        units = self.manifest.get("inputs", {}).get(f"extract:{source}", [])
        if shard:
            return next((u for u in units if shard.startswith(f"{source}-{u.get('unit')}-")), None)
        name = meta.get("warc_file") or meta.get("file")
        if not isinstance(name, str):
            return None
        return next((u for u in units if str(u.get("path", "")).rsplit("/", 1)[-1] == name), None)

    def stage_of_column(self) -> dict[str, str]:
        """{score column: the step that added it}, from the manifest's per-step columns (or by prefix)."""
        out: dict[str, str] = {}
        for st in self.manifest["stages"]:
            for c in st.get("columns", []):
                out.setdefault(c, st["name"])
        return out

    def column_stage(self, column: str) -> str:
        recorded = self.stage_of_column()
        if column in recorded:
            return recorded[column]
        return next((stage for prefix, stage in COLUMN_PREFIXES if column.startswith(prefix)), "other")

    def contamination_of(self, doc_id: str, items: list[str] | None = None) -> list[dict[str, Any]]:
        """The eval items a document held: `items` ("<set>/<key>", its `decontam_items` column) when the
        build recorded them, else the items whose report names the document among its examples."""
        if items is not None:
            sets = (self.contamination or {}).get("eval_sets", {})
            out = []
            for name in items:
                eval_set, _, key = name.partition("/")
                text = sets.get(eval_set, {}).get("found", {}).get(key, {}).get("text", "")
                out.append({"eval_set": eval_set, "item": key, "text": text})
            return out
        out = []
        for name, s in (self.contamination or {}).get("eval_sets", {}).items():
            for key, item in s.get("found", {}).items():
                if doc_id in item.get("examples", []):
                    out.append({"eval_set": name, "item": key, "text": item.get("text", "")})
        return out


def meta_dict(meta: Any) -> dict[str, Any]:
    if isinstance(meta, dict):
        return meta
    try:
        value = json.loads(meta or "{}")
    except ValueError:
        return {"meta": meta}
    return value if isinstance(value, dict) else {"meta": value}


def terminal_text(text: str, limit: int) -> str:
    """One paragraph of at most `limit` characters: whitespace runs folded, control characters shown
    escaped (a document's text must not move the terminal's cursor or change its colours)."""
    flat = re.sub(r"\s+", " ", text).strip()
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)] + "…"



def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | dict):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def wrap_pairs(d: dict[str, Any], indent: str, width: int = 110) -> list[str]:
    """`name value` pairs packed into lines of at most `width` characters, never split inside a pair."""
    lines: list[str] = []
    for pair in (terminal_text(f"{k} {fmt_value(v)}", 200) for k, v in d.items()):
        if lines and len(lines[-1]) + 2 + len(pair) <= width:
            lines[-1] += ", " + pair
        else:
            lines.append(indent + pair)
    return lines
