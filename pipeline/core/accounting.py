"""Per-source counts of documents and bytes in, kept and rejected (per reason), and the balance check.

Every task counts what it did for free; the runner sums task counts into a stage's `_stage.json`
and refuses to go on if, for any source, documents in != kept + rejected.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.schema import reason_key


class AccountingError(RuntimeError):
    pass


def _new() -> dict[str, Any]:
    return {
        "in_docs": 0,
        "in_bytes": 0,
        "kept_docs": 0,
        "kept_bytes": 0,
        "rejected_docs": 0,
        "rejected_bytes": 0,
        "reasons": {},
    }


def _text_bytes(table: pa.Table) -> pa.Array:
    return pc.binary_length(table.column("text").cast(pa.binary())) if table.num_rows else pa.array([], pa.int64())


def _sums(keys: list[Any], sizes: pa.Array) -> dict[Any, tuple[int, int]]:
    """Documents and text bytes per key, as a `group_by(...).aggregate([count, sum])` gives them (nulls
    not counted). A plain loop: `group_by` imports pyarrow.dataset and with it pandas (~0.15 s of CPU
    per process, a tenth of `corpus extract`'s work outside extraction), and a shard's rows are few."""
    groups: dict[Any, list[int]] = {}
    for key, b in zip(keys, sizes.to_pylist(), strict=True):
        g = groups.setdefault(key, [0, 0])
        if b is not None:
            g[0] += 1
            g[1] += b
    return {k: (n, b) for k, (n, b) in groups.items()}


def _per_source(table: pa.Table) -> dict[str, tuple[int, int]]:
    if table.num_rows == 0:
        return {}
    return _sums(table.column("source").to_pylist(), _text_bytes(table))


def _per_reason(rejected: pa.Table) -> list[tuple[str, str, int, int]]:
    """(source, reason key, documents, bytes) per group."""
    keys = list(zip(rejected.column("source").to_pylist(),
                    [reason_key(r) for r in rejected.column("reason").to_pylist()], strict=True))
    return [(s, r, n, b) for (s, r), (n, b) in _sums(keys, _text_bytes(rejected)).items()]


def count_shard(inp: pa.Table | None, kept: pa.Table, rejected: pa.Table) -> dict[str, dict[str, Any]]:
    """Counts for one task. `inp` None means the input is what was produced (extraction)."""
    out: dict[str, dict[str, Any]] = defaultdict(_new)
    for s, (n, b) in _per_source(kept).items():
        out[s]["kept_docs"] += n
        out[s]["kept_bytes"] += b
    if rejected.num_rows:
        for s, r, n, b in _per_reason(rejected):
            out[s]["rejected_docs"] += n
            out[s]["rejected_bytes"] += b
            out[s]["reasons"][r] = out[s]["reasons"].get(r, 0) + n
    if inp is None:
        for c in out.values():
            c["in_docs"] = c["kept_docs"] + c["rejected_docs"]
            c["in_bytes"] = c["kept_bytes"] + c["rejected_bytes"]
    else:
        for s, (n, b) in _per_source(inp).items():
            out[s]["in_docs"] += n
            out[s]["in_bytes"] += b
    return {s: dict(c) for s, c in sorted(out.items())}


def merge(into: dict[str, dict[str, Any]], counts: dict[str, dict[str, Any]]) -> None:
    for s, c in counts.items():
        dst = into.setdefault(s, _new())
        for k, v in c.items():
            if k == "reasons":
                for r, n in v.items():
                    dst["reasons"][r] = dst["reasons"].get(r, 0) + n
            else:
                dst[k] += v


def check_balance(counts: dict[str, dict[str, Any]], where: str) -> None:
    for s, c in counts.items():
        if c["in_docs"] != c["kept_docs"] + c["rejected_docs"]:
            raise AccountingError(
                f"{where}: source {s!r}: documents in ({c['in_docs']}) != kept ({c['kept_docs']})"
                f" + rejected ({c['rejected_docs']})"
            )
        if sum(c["reasons"].values()) != c["rejected_docs"]:
            raise AccountingError(f"{where}: source {s!r}: rejection reasons do not add up to rejected docs")


def totals(counts: dict[str, dict[str, Any]]) -> dict[str, int]:
    keys = ("in_docs", "in_bytes", "kept_docs", "kept_bytes", "rejected_docs", "rejected_bytes")
    return {k: sum(c[k] for c in counts.values()) for k in keys}


def check_unique_ids(table: pa.Table, where: str) -> None:
    """Raise AccountingError if a document id occurs more than once in `table` (a step's output: kept
    and rejected rows together), naming up to 5 of the repeated ids with how often each occurs."""
    if table.num_rows < 2:
        return
    ids = table.column("id")
    if pc.count_distinct(ids, mode="all").as_py() == table.num_rows:
        return
    g = pa.table({"id": ids}).group_by("id").aggregate([("id", "count", pc.CountOptions(mode="all"))])
    repeated = g.filter(pc.greater(g["id_count"], 1)).sort_by([("id_count", "descending"), ("id", "ascending")])
    shown = ", ".join(f"{i} ({n} times)" for i, n in zip(repeated["id"].to_pylist()[:5],
                                                         repeated["id_count"].to_pylist()[:5], strict=True))
    more = f" and {repeated.num_rows - 5} more" if repeated.num_rows > 5 else ""
    raise AccountingError(f"{where}: {repeated.num_rows} document ids occur more than once: {shown}{more}")
