"""`corpus trace VERSION`: from a document id, a training token or a training step back to the source.

A training team asks which document a token came from and why it survived every filter; this answers
from what the build recorded (pipeline/versions/store.py): where each document came from (input file
and record), every step it passed with the scores that step computed, its near-duplicate cluster, the
eval items found in it and its copies in the mix, located in the token shards the way
pipeline/outputs/reader.py reads them (docs/reader.md).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pipeline.outputs.reader import TokenDataset
from pipeline.versions.store import TraceError, VersionStore, fmt_value, meta_dict, terminal_text, wrap_pairs

# meta keys that say where in its input a document was found, shown first as its record
LOCATION_KEYS = ("warc_file", "warc_offset", "warc_inner_offset", "line", "offset", "dump", "submission_ids",
                 "subreddits", "ebook", "edition", "repo", "path", "page_id", "revision_id", "final_url")
UNIT_KEYS = {"path": "file", "dump": "dump", "archive": "archive", "kind": "kind"}  # work unit key: shown as


def trace_doc(store: VersionStore, doc_id: str, *, with_copies: bool = True) -> dict[str, Any]:
    """Everything the version knows about one document, kept or rejected."""
    kept = store.kept_row(doc_id)
    rejections = store.rejected_rows(doc_id)
    if kept is None and not rejections:
        raise TraceError(f"{store.dir}: no document {doc_id!r} (neither kept nor rejected by any step)")
    sample = store.sample_row(doc_id)
    row = kept or {**rejections[-1], **(sample or {})}
    meta = meta_dict(row.get("meta"))
    scores = _scores(kept) if kept is not None else json.loads((sample or {}).get("scores") or "{}")
    source = row["source"]
    unit = store.input_of(source, kept.get("_shard") if kept else None, meta)
    out: dict[str, Any] = {
        "id": doc_id, "source": source, "status": "kept" if kept is not None else "rejected",
        "url": row.get("url"),
        "input": {**({shown: unit[k] for k, shown in UNIT_KEYS.items() if k in unit} if unit else {}),
                  **({"unit": unit["unit"]} if unit else {}),
                  **{k: meta[k] for k in LOCATION_KEYS if k in meta}},
        "meta": {k: v for k, v in sorted(meta.items()) if k not in LOCATION_KEYS},
        "stages": _stages(store, source, rejections, scores),
        "cluster": _cluster(store, doc_id, kept, rejections),
        "contamination": {"spans_removed": (kept or {}).get("decontam_spans_removed"),
                          "matches": store.contamination_of(doc_id, (kept or {}).get("decontam_items"))},
    }
    if kept is not None:
        out["text_preview"] = kept.get("text", "")[:400]
    elif sample is not None:
        out["text_preview"] = sample.get("text", "")[:400]
    if with_copies:
        out["copies"] = copies_in_mix(store, doc_id) if kept is not None else []
    return out


def _scores(row: dict[str, Any]) -> dict[str, Any]:
    skip = {"id", "source", "text", "url", "meta", "_shard"}
    return {k: v for k, v in row.items() if k not in skip and v is not None}


def _stages(store: VersionStore, source: str, rejections: list[dict], scores: dict[str, Any]) -> list[dict]:
    """Each step the document went through, in pipeline order, with the scores that step computed and
    its decision; steps after the one that rejected it are left out."""
    rejected_at = {r["stage"]: r["reason"] for r in rejections}
    out = []
    for st in store.manifest["stages"]:
        name = st["name"]
        if name.startswith("extract:") and name != f"extract:{source}":
            continue
        step_scores = {k: v for k, v in scores.items() if store.column_stage(k) == name}
        entry = {"stage": name, "decision": "rejected" if name in rejected_at else "kept", "scores": step_scores}
        if name in rejected_at:
            entry["reason"] = rejected_at[name]
        out.append(entry)
        if name in rejected_at:
            break
    return out


def _cluster(store: VersionStore, doc_id: str, kept: dict | None, rejections: list[dict]) -> dict[str, Any] | None:
    """Its near-duplicate cluster: the survivor (the kept member) and the members dedup removed."""
    survivor = None
    for r in rejections:
        head, _, tail = r["reason"].partition(":")
        if head in ("near-dup", "exact-dup"):
            survivor = tail
    if kept is not None and kept.get("dup_cluster"):
        survivor = kept["dup_cluster"]
    if survivor is None:
        return None
    members = store.cluster_members(survivor)
    survivor_row = store.kept_row(survivor) if survivor != doc_id else kept
    return {"survivor": survivor, "survivor_kept": survivor_row is not None,
            "size": (survivor_row or {}).get("dup_cluster_size") or len(members) + 1,
            # the highest Jaccard of its verified duplicate edges (recorded for kept documents)
            "similarity": (kept or {}).get("dup_similarity"),
            "removed": [{"id": m["id"], "source": m["source"], "kind": m["reason"].partition(":")[0]}
                        for m in members]}


def copies_in_mix(store: VersionStore, doc_id: str) -> list[dict[str, Any]]:
    """Where the document's copies sit in each split's token stream: document index and token span."""
    out = []
    for split in store.splits():
        ds = store.tokens(split)
        for k, shard in enumerate(ds.shards):
            for i in (i for i, x in enumerate(shard.doc_ids()) if x == doc_id):
                    base = int(ds.token_starts[k])
                    out.append({"split": split, "doc_index": int(ds.doc_starts[k]) + i,
                                "tokens": [base + int(shard.doc_offsets[i]), base + int(shard.doc_offsets[i + 1])]})
    return out


def locate_token(ds: TokenDataset, split: str, position: int) -> dict[str, Any]:
    """The document holding token `position` of a split's stream, its index and token span."""
    if not 0 <= position < ds.num_tokens:
        raise TraceError(f"token {position:,} is outside split {split!r}, which has {ds.num_tokens:,} tokens")
    k = int(np.searchsorted(ds.token_starts, position, side="right")) - 1
    shard, local = ds.shards[k], position - int(ds.token_starts[k])
    i = int(np.searchsorted(shard.doc_offsets, local, side="right")) - 1
    base = int(ds.token_starts[k])
    start, stop = base + int(shard.doc_offsets[i]), base + int(shard.doc_offsets[i + 1])
    return {"doc_index": int(ds.doc_starts[k]) + i, "id": shard.doc_id(i), "tokens": [start, stop],
            "offset_in_doc": position - start, "is_eos": shard.eos_id is not None and position == stop - 1}


def trace_token(store: VersionStore, split: str, position: int) -> dict[str, Any]:
    where = locate_token(store.tokens(split), split, position)
    return {"split": split, "token": position, **where, "doc": trace_doc(store, where["id"])}


def trace_step(store: VersionStore, split: str, step: int, batch_size: int, seq_len: int) -> dict[str, Any]:
    """Every document in training step `step`'s batch: sequences [step·B, (step+1)·B) of the reader's
    packed order, sequence k being tokens [k·L, (k+1)·L + 1)."""
    if step < 0 or batch_size < 1 or seq_len < 1:
        raise TraceError("--step must be >= 0, --batch-size and --seq-len >= 1")
    ds = store.tokens(split)
    total = ds.num_sequences(seq_len)
    first = step * batch_size
    if first >= total:
        raise TraceError(f"step {step:,} starts at sequence {first:,}; split {split!r} holds {total:,} full "
                         f"sequences of {seq_len} tokens ({total // batch_size:,} full batches of {batch_size})")
    last = min(first + batch_size, total)  # exclusive; a last partial batch is what a loader without drop_last gives
    start, stop = first * seq_len, last * seq_len + 1
    docs, position = [], start
    while position < stop:
        where = locate_token(ds, split, position)
        lo, hi = max(where["tokens"][0], start), min(where["tokens"][1], stop)
        docs.append({"doc_index": where["doc_index"], "id": where["id"], "doc_tokens": where["tokens"],
                     "batch_tokens": [lo, hi],
                     "sequences": [min(lo // seq_len, last - 1), min((hi - 1) // seq_len, last - 1)],
                     "doc": trace_doc(store, where["id"], with_copies=False)})
        position = where["tokens"][1]
    return {"split": split, "step": step, "batch_size": batch_size, "seq_len": seq_len,
            "sequences": [first, last], "tokens": [start, stop], "documents": docs}


# ------------------------------------------------------------------------------------- text


def _pairs(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {fmt_value(v)}" for k, v in d.items())


def format_doc(t: dict[str, Any], indent: str = "") -> list[str]:
    lines = [f"{indent}{t['id']}  ({t['source']}, {t['status']})"]
    add = lambda label, text: lines.append(f"{indent}  {label:<14}{text}")  # noqa: E731
    if t.get("url"):
        add("url", t["url"])
    add("input", _pairs(t["input"]) or "not recorded")
    if t["meta"]:
        add("meta", terminal_text(_pairs(t["meta"]), 300))
    lines.append(f"{indent}  stages")
    for st in t["stages"]:
        decision = st["decision"] + (f" ({st['reason']})" if st.get("reason") else "")
        lines.append(f"{indent}    {st['stage']:<18}{decision}")
        if st["scores"]:
            lines += wrap_pairs(st["scores"], f"{indent}      ")
    c = t["cluster"]
    if c is None or (c["size"] == 1 and not c["removed"]):
        add("near-dups", "none")
    else:
        removed = ", ".join(f"{m['id']} ({m['kind']})" for m in c["removed"][:10])
        more = f" and {len(c['removed']) - 10} more" if len(c["removed"]) > 10 else ""
        survivor = c["survivor"] + ("" if c["survivor_kept"] else " (later removed)")
        sim = f"; its highest similarity {c['similarity']:.3f}" if c.get("similarity") is not None else ""
        add("near-dups", f"cluster of {c['size']}: survivor {survivor}{sim}"
            + (f"; removed {removed}{more}" if removed else ""))
    con = t["contamination"]
    matches = "; ".join(f"{m['eval_set']} {m['item']}: {terminal_text(m['text'], 80)}" for m in con["matches"])
    spans = con.get("spans_removed")
    reached = any(st["stage"] == "decontam" for st in t["stages"])
    add("contamination", matches or ("not scanned (rejected before)" if not reached and t["status"] == "rejected"
                                     else "none" if not spans else f"{spans} span(s) removed"))
    if t["status"] == "rejected":
        if not any(st["scores"] for st in t["stages"]):
            add("scores", "not kept for this document (the version keeps those of sampled rejections only)")
        add("in the mix", f"no: rejected at {t['stages'][-1]['stage']}")
    elif "copies" in t:
        copies = "; ".join(f"{c['split']} doc #{c['doc_index']} tokens [{c['tokens'][0]:,}, {c['tokens'][1]:,})"
                           for c in t["copies"])
        add("in the mix", f"{len(t['copies'])} cop{'y' if len(t['copies']) == 1 else 'ies'}" +
            (f": {copies}" if copies else " (not in any split, or rejected by the mix)"))
    if t.get("text_preview"):
        add("text", terminal_text(t["text_preview"], 160))
    return lines


def format_trace(result: dict[str, Any]) -> str:
    if "documents" in result:
        r = result
        lines = [f"step {r['step']:,} of {r['split']} (batch {r['batch_size']} x seq_len {r['seq_len']}): sequences "
                 f"[{r['sequences'][0]:,}, {r['sequences'][1]:,}), tokens [{r['tokens'][0]:,}, {r['tokens'][1]:,}); "
                 f"{len(r['documents'])} document(s)"]
        for d in r["documents"]:
            lines.append("")
            lines.append(f"doc #{d['doc_index']}: tokens [{d['batch_tokens'][0]:,}, {d['batch_tokens'][1]:,}) of "
                         f"this batch, of its [{d['doc_tokens'][0]:,}, {d['doc_tokens'][1]:,})")
            lines += format_doc(d["doc"], "  ")
        return "\n".join(lines)
    if "token" in result:
        r = result
        what = "the end-of-text token after" if r["is_eos"] else f"token {r['offset_in_doc']:,} of"
        head = (f"token {r['token']:,} of {r['split']} is {what} doc #{r['doc_index']} "
                f"(tokens [{r['tokens'][0]:,}, {r['tokens'][1]:,}))")
        return "\n".join([head, *format_doc(r["doc"])])
    return "\n".join(format_doc(result))


def run_trace(version: str, *, doc: str | None, split: str, token: int | None, step: int | None,
              batch_size: int | None, seq_len: int | None, as_json: bool) -> str:
    """What `corpus trace` prints."""
    store = VersionStore(version)
    if doc is not None:
        result = trace_doc(store, doc)
    elif token is not None:
        result = trace_token(store, split, token)
    elif step is not None:
        if batch_size is None or seq_len is None:
            raise TraceError("--step needs --batch-size and --seq-len")
        result = trace_step(store, split, step, batch_size, seq_len)
    else:
        raise TraceError("give --doc ID, --token N or --step S --batch-size B --seq-len L")
    return json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False, default=str) if as_json \
        else format_trace(result)
