"""A version's rejected ledger and samples, from one part per rejected shard, kept by the shard's content.

A part holds the shard's rows of the rejected ledger (REJECTED_COLUMNS, meta made portable) and, on
the rows that are sample candidates (per stage, reason key and source, the SAMPLES_PER_REASON whose
ids rank lowest in this shard), the sample's text, its length and the row's scores; null elsewhere.
The version's samples are the lowest-ranked candidates across all parts, the same rows as ranking
every rejected document at once. A grown corpus reads the part of every shard it has seen, never the
shard itself (whose text is most of its bytes).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.io import AnyPath
from pipeline.core.schema import reason_key
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import read_table
from pipeline.versions.lineage import (
    SAMPLE_SCHEMA,
    SAMPLE_TEXT_CHARS,
    SAMPLES_PER_REASON,
    id_rank,
    portable_meta,
    scores_json,
)

REJECTED_COLUMNS = ("id", "source", "stage", "reason", "url", "meta")
PART_FORMAT = "2"  # of a part kept in the shard cache (2: Arrow IPC)
PART_SCHEMA = pa.schema([*((c, pa.string()) for c in REJECTED_COLUMNS), ("sample_text", pa.string()),
                         ("text_chars", pa.int64()), ("scores", pa.string())])


def rejected_parts(shards: list[AnyPath], sha256: list[str], cache: ShardCache, threads: int = 8) -> list[pa.Table]:
    """Each rejected shard's part, from the cache when its content was seen before, a few at a time."""
    def part(i: int) -> pa.Table:
        return rejected_part(shards[i], sha256[i], cache)

    if len(shards) < 2:
        return [part(i) for i in range(len(shards))]
    with ThreadPoolExecutor(max_workers=min(threads, len(shards))) as pool:
        return list(pool.map(part, range(len(shards))))


def rejected_part(shard: AnyPath, sha256: str, cache: ShardCache) -> pa.Table:
    entry = cache.entry(sha256, kind="rejected", format=PART_FORMAT, per_reason=SAMPLES_PER_REASON,
                        text_chars=SAMPLE_TEXT_CHARS)
    return cache.table(entry, "part.arrow", lambda: _part_of(read_table(shard)))


def _part_of(t: pa.Table) -> pa.Table:
    ids = t.column("id").to_pylist()
    best: dict[tuple[str, str, str], list[tuple[int, str, int]]] = defaultdict(list)  # min-heaps of the kept
    for row, (doc_id, source, stage, reason) in enumerate(zip(
            ids, *(t.column(c).to_pylist() for c in ("source", "stage", "reason")), strict=True)):
        heap = best[(stage, reason_key(reason), source)]
        item = (-id_rank(doc_id), doc_id, row)
        if len(heap) < SAMPLES_PER_REASON:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    chosen = sorted(row for heap in best.values() for _, _, row in heap)
    n = t.num_rows
    sample_text: list[str | None] = [None] * n
    text_chars: list[int | None] = [None] * n
    scores: list[str | None] = [None] * n
    for row, r in zip(chosen, t.take(pa.array(chosen, pa.int64())).to_pylist(), strict=True):
        text = r.get("text") or ""
        sample_text[row], text_chars[row], scores[row] = text[:SAMPLE_TEXT_CHARS], len(text), scores_json(r)
    meta = t.column("meta").cast(pa.string())
    with_file = pc.fill_null(pc.match_substring(meta, '"file"'), False)
    if pc.any(with_file).as_py():  # only those rows are parsed
        meta = pa.array([portable_meta(m) if f else m for m, f in zip(
            meta.to_pylist(), with_file.to_pylist(), strict=True)], pa.string())
    columns = {c: t.column(c).cast(pa.string()) for c in REJECTED_COLUMNS if c != "meta"}
    return pa.table({**columns, "meta": meta, "sample_text": pa.array(sample_text, pa.string()),
                     "text_chars": pa.array(text_chars, pa.int64()), "scores": pa.array(scores, pa.string())},
                    schema=PART_SCHEMA)


def build_rejected_ledger(parts: list[pa.Table]) -> pa.Table:
    """Every rejected document of every step: id, source, stage, reason — what `corpus diff` explains
    with — and its url and meta, where it came from (WARC file and offset, dump, ebook), for `corpus trace`."""
    if not parts:
        return pa.schema([(c, pa.string()) for c in REJECTED_COLUMNS]).empty_table()
    return pa.concat_tables([p.select(list(REJECTED_COLUMNS)) for p in parts])


def build_samples(parts: list[pa.Table], per_reason: int = SAMPLES_PER_REASON) -> pa.Table:
    """Bottom-k samples by id hash of every step's rejected documents, per (stage, reason key, source)."""
    groups: dict[tuple[str, str, str], list[tuple[tuple[int, str, int, int], dict[str, Any]]]] = defaultdict(list)
    for n, part in enumerate(parts):
        candidates = part.filter(pc.is_valid(part.column("text_chars")))
        for row, r in enumerate(candidates.to_pylist()):
            order = (-id_rank(r["id"]), r["id"], n, row)
            groups[(r["stage"], reason_key(r["reason"]), r["source"])].append((order, r))
    rows = [{"id": r["id"], "source": r["source"], "stage": r["stage"], "reason": r["reason"], "url": r["url"],
             "meta": portable_meta(r["meta"]), "text": r["sample_text"], "text_chars": r["text_chars"],
             "scores": r["scores"]}
            for items in groups.values() for _, r in heapq.nlargest(per_reason, items, key=lambda item: item[0])]
    rows.sort(key=lambda r: (r["stage"], reason_key(r["reason"]), r["source"], id_rank(r["id"]), r["id"]))
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)
