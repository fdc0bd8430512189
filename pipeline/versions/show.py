"""`corpus show VERSION --reason R --sample N`: look at what a rule removed (or kept) before trusting it.

Rejected documents come from the version's `samples.parquet` (up to SAMPLES_PER_REASON per stage,
reason and source, with their text cut to SAMPLE_TEXT_CHARS; pipeline/versions/lineage.py), kept ones
from docs/. A sample is the documents whose id ranks lowest for the seed, so the same seed shows the
same documents, in the same order, on any machine.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pyarrow.compute as pc

from pipeline.core.schema import is_skipped_record, reason_key
from pipeline.versions.lineage import SAMPLES_PER_REASON, id_rank
from pipeline.versions.store import TraceError, VersionStore, meta_dict, terminal_text, wrap_pairs


def reason_counts(store: VersionStore) -> list[dict[str, Any]]:
    """Every (stage, reason) with its documents per source, in pipeline order, largest first."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    t = store.rejected
    for stage, reason, source in zip(t.column("stage").to_pylist(), t.column("reason").to_pylist(),
                                     t.column("source").to_pylist(), strict=True):
        counts[(stage, reason_key(reason))][source] += 1
    order = {st["name"]: i for i, st in enumerate(store.manifest["stages"])}
    rows = [{"stage": st, "reason": r, "docs": sum(c.values()), "sources": dict(sorted(c.items())),
             "skipped_record": is_skipped_record(r)} for (st, r), c in counts.items()]
    return sorted(rows, key=lambda x: (order.get(x["stage"], len(order)), -x["docs"], x["reason"]))


def _matches(reason: str, wanted: str) -> bool:
    return reason == wanted or reason_key(reason) == wanted


def sample_rejected(store: VersionStore, reason: str, n: int, *, source: str | None, seed: int) -> dict[str, Any]:
    t = store.rejected
    reasons = t.column("reason").to_pylist()
    hit = [i for i, r in enumerate(reasons) if _matches(r, reason)]
    if source:
        sources = t.column("source").to_pylist()
        hit = [i for i in hit if sources[i] == source]
    if not hit:
        known = ", ".join(sorted({r["reason"] for r in reason_counts(store)})[:40])
        raise TraceError(f"no rejected document with reason {reason!r}" + (f" from source {source!r}" if source else "")
                         + f"; reasons: {known or 'none'} (list them with --reason alone)")
    candidates = []
    if store.samples is not None:
        s = store.samples
        rows = s.filter(pc.is_in(s.column("id"), value_set=t.column("id").take(hit))).to_pylist()
        candidates = [r for r in rows if _matches(r["reason"], reason) and (not source or r["source"] == source)]
    else:  # a version from before samples: ids and reasons only
        candidates = [{k: t.column(k)[i].as_py() for k in t.column_names} for i in hit]
    candidates.sort(key=lambda r: (id_rank(r["id"], seed), r["id"]))
    for r in candidates[:n]:  # the scores of the step that rejected it: what its rule looked at
        if r.get("scores"):
            r["scores"] = json.dumps({k: v for k, v in json.loads(r["scores"]).items()
                                      if store.column_stage(k) == r["stage"]}, sort_keys=True)
    return {"reason": reason, "source": source, "seed": seed, "matching": len(hit),
            "sampled_from": len(candidates), "docs": candidates[:n]}


def sample_kept(store: VersionStore, n: int, *, source: str | None, seed: int, reason: str | None) -> dict[str, Any]:
    led = store.ledger
    if source:
        led = led.filter(pc.equal(led.column("source"), source))
    ids = led.column("id").to_pylist()
    if not ids:
        raise TraceError("no kept document" + (f" from source {source!r}" if source else ""))
    chosen = sorted(ids, key=lambda i: (id_rank(i, seed), i))[:n]
    stage = None
    if reason:  # show the scores of the stage that applies this rule
        stage = next((r["stage"] for r in reason_counts(store) if _matches(r["reason"], reason)), None)
        stage = stage or reason.split(":")[0]
    docs = []
    for doc_id in chosen:
        row = store.kept_row(doc_id) or {}
        scores = {k: v for k, v in row.items() if v is not None and k not in ("id", "source", "text", "url", "meta",
                                                                              "_shard")
                  and (stage is None or store.column_stage(k) == stage)}
        docs.append({"id": doc_id, "source": row.get("source"), "url": row.get("url"), "meta": row.get("meta"),
                     "text": row.get("text", ""), "text_chars": len(row.get("text", "")),
                     "scores": json.dumps(scores, sort_keys=True, default=str)})
    return {"kept": True, "reason": reason, "source": source, "seed": seed, "matching": len(ids),
            "sampled_from": len(ids), "docs": docs}


def format_samples(result: dict[str, Any], chars: int) -> str:
    what = "kept documents" if result.get("kept") else f"documents rejected as {result['reason']}"
    head = f"{len(result['docs'])} of {result['matching']:,} {what}"
    if result.get("source"):
        head += f" from {result['source']}"
    head += f" (seed {result['seed']})"
    if result["docs"] and "text" not in result["docs"][0]:
        head += "; this version predates samples.parquet: ids and reasons only"
    elif result["sampled_from"] < result["matching"]:
        head += (f"; drawn from the {result['sampled_from']:,} the version keeps as samples (up to "
                 f"{SAMPLES_PER_REASON} per stage, reason and source)")
    lines = [head]
    for i, d in enumerate(result["docs"], 1):
        lines.append("")
        reason = f"  {d['stage']} {d['reason']}" if d.get("reason") else ""
        lines.append(f"[{i}] {d['id']}  ({d['source']}){reason}")
        if d.get("url"):
            lines.append(f"    url     {d['url']}")
        meta = meta_dict(d.get("meta"))
        if meta:
            lines.append(f"    meta    {terminal_text(json.dumps(meta, ensure_ascii=False, default=str), 200)}")
        scores = json.loads(d.get("scores") or "{}")
        if scores:
            wrapped = wrap_pairs(scores, " " * 12, width=120)
            lines += ["    scores  " + wrapped[0].lstrip(), *wrapped[1:]]
        if "text" in d:
            size = f"{d.get('text_chars', len(d['text'])):,} chars"
            lines.append(f"    text    ({size}) {terminal_text(d['text'], chars) or '(empty)'}")
    return "\n".join(lines)


def format_reasons(rows: list[dict[str, Any]]) -> str:
    docs = [r for r in rows if not r["skipped_record"]]
    skipped = [r for r in rows if r["skipped_record"]]
    width = max((len(r["reason"]) for r in rows), default=6)
    stage_w = max((len(r["stage"]) for r in rows), default=5)
    line = lambda r: (f"  {r['stage']:<{stage_w}}  {r['reason']:<{width}}  {r['docs']:>8,}  "  # noqa: E731
                      + ", ".join(f"{s} {n:,}" for s, n in r["sources"].items()))
    out = [f"rejected documents: {sum(r['docs'] for r in docs):,}", *map(line, docs)]
    if skipped:
        out += ["", f"records skipped by type (never documents): {sum(r['docs'] for r in skipped):,}",
                *map(line, skipped)]
    return "\n".join(out)


def run_show(version: str, *, reason: str | None, sample: int, source: str | None, kept: bool, seed: int,
             chars: int, as_json: bool) -> str:
    """What `corpus show` prints."""
    store = VersionStore(version)
    if kept:
        result: Any = sample_kept(store, sample, source=source, seed=seed, reason=reason or None)
    elif not reason:
        rows = reason_counts(store)
        if source:
            rows = [r for r in rows if source in r["sources"]]
        return json.dumps(rows, indent=2, sort_keys=True) if as_json else format_reasons(rows)
    else:
        result = sample_rejected(store, reason, sample, source=source, seed=seed)
    if as_json:
        return json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_samples(result, chars)
