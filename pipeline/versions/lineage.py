"""What a build records so that `corpus trace`, `corpus show` and `corpus report` never recompute.

The kept documents, the ledger and the rejected ledger already say where every document went; this
module adds the two things they lack, both bounded and cheap to gather while the version is written:

- `samples.parquet`: for each (stage, reason, source), the rejected documents whose id hashes lowest
  (at most `SAMPLES_PER_REASON`), with their url, meta, scores and text cut to `SAMPLE_TEXT_CHARS`.
  Lowest hash is a uniform sample that does not depend on shard order or worker count, and it bounds
  the file by the number of reasons, not the number of documents.
- per step, the score columns its documents carry (`stages[i].columns` in the manifest), so a trace
  can say which stage computed which score.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa

from pipeline.core.io import AnyPath, parquet_schema
from pipeline.core.schema import DOC_COLUMNS, reason_key
from pipeline.core.shards import list_rejected, list_shards, read_tables

SAMPLES_FILE = "samples.parquet"
SAMPLES_PER_REASON = 32  # per (stage, reason, source)
SAMPLE_TEXT_CHARS = 2000
SAMPLE_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
    ("url", pa.string()), ("meta", pa.string()), ("text", pa.string()), ("text_chars", pa.int64()),
    ("scores", pa.string()),
])
NOT_SCORES = frozenset((*DOC_COLUMNS, "stage", "reason"))


def id_rank(doc_id: str, seed: int = 0) -> int:
    """A stable 64-bit rank of a document id: the order samples are drawn in, for a given seed."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest(), "big")


def step_columns(out_dir: AnyPath) -> list[str]:
    """The columns beyond the document schema that a step's documents carry (from one shard's footer)."""
    shards = list_shards(out_dir) or list_rejected(out_dir)
    if not shards:
        return []
    return [n for n in parquet_schema(shards[0]).names if n not in NOT_SCORES]


def scores_json(row: dict[str, Any]) -> str:
    """A row's score columns (everything a stage added), nulls left out, as sorted JSON."""
    return json.dumps({k: v for k, v in sorted(row.items()) if k not in NOT_SCORES and v is not None},
                      sort_keys=True, default=str)


def portable_meta(meta: str | None) -> str:
    """A rejected document's meta as the version keeps it: an input path (`file`, which extractors
    give in full for rejections, for debugging in the work directory) cut to its file name, as kept
    documents' meta has it, so that where the inputs sit changes no version."""
    if not meta or '"file"' not in meta:
        return meta or "{}"
    try:
        value = json.loads(meta)
    except ValueError:
        return meta
    if isinstance(value, dict) and isinstance(value.get("file"), str):
        value["file"] = PurePosixPath(value["file"].replace("\\", "/")).name
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def build_samples(shards: list[AnyPath], rejected: list[pa.Table], per_reason: int = SAMPLES_PER_REASON) -> pa.Table:
    """Bottom-k samples by id hash of every step's rejected documents, per (stage, reason key, source).

    `rejected`: each shard's id, source, stage and reason columns, as the rejected ledger reads them;
    then only the shards holding a chosen row are read again, for those rows.
    """
    best: dict[tuple[str, str, str], list[tuple[int, str, int, int]]] = defaultdict(list)  # max-heaps by -rank
    for n, t in enumerate(rejected):
        for row, (doc_id, source, stage, reason) in enumerate(zip(
                *(t.column(c).to_pylist() for c in ("id", "source", "stage", "reason")), strict=True)):
            heap = best[(stage, reason_key(reason), source)]
            item = (-id_rank(doc_id), doc_id, n, row)
            if len(heap) < per_reason:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    wanted: dict[int, list[int]] = defaultdict(list)
    for heap in best.values():
        for _, _, n, row in heap:
            wanted[n].append(row)
    rows: list[dict[str, Any]] = []
    chosen = sorted(wanted)
    for n, t in zip(chosen, read_tables([shards[n] for n in chosen]), strict=True):
        t = t.take(pa.array(sorted(wanted[n]), pa.int64()))
        for r in t.to_pylist():
            text = r.get("text") or ""
            rows.append({"id": r["id"], "source": r["source"], "stage": r["stage"], "reason": r["reason"],
                         "url": r.get("url"), "meta": portable_meta(r.get("meta")), "text": text[:SAMPLE_TEXT_CHARS],
                         "text_chars": len(text), "scores": scores_json(r)})
    rows.sort(key=lambda r: (r["stage"], reason_key(r["reason"]), r["source"], id_rank(r["id"]), r["id"]))
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)
