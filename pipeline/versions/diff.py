"""`corpus diff A B`: what changed between two corpus versions, and why.

Config changes key by key; inputs added, removed or changed; accounting deltas per stage, source and
reason; output shards changed; and, from the document ledgers, documents added, removed and changed
per source, each removal explained by the stage and reason that rejected it in B, next to the config
changes of that stage. Either version may be local or a URI (`s3://bucket/.../VERSION`).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from pipeline.core.io import AnyPath, read_table
from pipeline.core.schema import reason_key
from pipeline.core.shards import read_json
from pipeline.versions.verify import resolve_manifest


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _ledger(manifest_path: AnyPath, manifest: dict, key: str) -> dict[str, tuple] | None:
    entry = manifest.get(key)
    if not entry:
        return None
    path = manifest_path.parent / entry["path"]
    if not path.exists():
        return None
    t = read_table(path)
    if key == "ledger":
        return {i: (s, h) for i, s, h in zip(t["id"].to_pylist(), t["source"].to_pylist(),
                                             t["text_sha256"].to_pylist(), strict=True)}
    return {i: (s, st, r) for i, s, st, r in zip(t["id"].to_pylist(), t["source"].to_pylist(),
                                                 t["stage"].to_pylist(), t["reason"].to_pylist(), strict=True)}


def diff_manifests(a_path: str | os.PathLike, b_path: str | os.PathLike) -> dict[str, Any]:
    a_path, b_path = resolve_manifest(a_path), resolve_manifest(b_path)
    a, b = read_json(a_path), read_json(b_path)
    which = "effective" if "effective" in a["config"] and "effective" in b["config"] else "resolved"
    fa, fb = flatten(a["config"][which]), flatten(b["config"][which])
    config = [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]

    inputs = []
    for source in sorted(set(a.get("inputs", {})) | set(b.get("inputs", {}))):
        ua = {u["unit"]: u["fingerprint"] for u in a.get("inputs", {}).get(source, [])}
        ub = {u["unit"]: u["fingerprint"] for u in b.get("inputs", {}).get(source, [])}
        for unit in sorted(set(ua) | set(ub)):
            if ua.get(unit) != ub.get(unit):
                change = "added" if unit not in ua else "removed" if unit not in ub else "changed"
                inputs.append({"source": source, "input": unit, "change": change})

    def stage_counts(m: dict) -> dict[tuple, int]:
        out: dict[tuple, int] = {}
        for st in m["stages"]:
            for src, c in st["sources"].items():
                for field in ("in_docs", "kept_docs", "rejected_docs"):
                    out[(st["name"], src, field)] = c[field]
                for reason, n in c["reasons"].items():
                    out[(st["name"], src, f"reason:{reason}")] = n
        return out

    ca, cb = stage_counts(a), stage_counts(b)
    accounting = [{"stage": k[0], "source": k[1], "count": k[2], "a": ca.get(k, 0), "b": cb.get(k, 0),
                   "delta": cb.get(k, 0) - ca.get(k, 0)}
                  for k in sorted(set(ca) | set(cb)) if ca.get(k, 0) != cb.get(k, 0)]

    oa = {o["path"]: o["sha256"] for o in a["outputs"]}
    ob = {o["path"]: o["sha256"] for o in b["outputs"]}
    shards = [{"path": p, "change": "added" if p not in oa else "removed" if p not in ob else "changed"}
              for p in sorted(set(oa) | set(ob)) if oa.get(p) != ob.get(p)]

    documents: dict[str, Any] = {"available": False}
    la, lb = _ledger(a_path, a, "ledger"), _ledger(b_path, b, "ledger")
    if la is not None and lb is not None:
        rb = _ledger(b_path, b, "rejected_ledger") or {}
        sections = {st["name"]: st.get("config_section", "") for st in b["stages"]}
        sections.update({f"extract:{src}": f"sources.{src}" for src in b.get("sources", [])})
        added, removed, changed = Counter(), Counter(), Counter()
        removal_reasons: Counter = Counter()
        for doc_id, (src, h) in la.items():
            if doc_id not in lb:
                removed[src] += 1
                why = rb.get(doc_id)
                removal_reasons[(why[1], reason_key(why[2])) if why else ("", "not produced")] += 1
            elif lb[doc_id][1] != h:
                changed[src] += 1
        for doc_id, (src, _) in lb.items():
            if doc_id not in la:
                added[src] += 1
        documents = {
            "available": True,
            "added": dict(sorted(added.items())),
            "removed": dict(sorted(removed.items())),
            "changed": dict(sorted(changed.items())),
            "removed_by": [
                {"stage": st, "reason": r, "docs": n,
                 "config_changes": [c for c in config
                                    if sections.get(st) and c["key"].startswith(sections[st] + ".")]}
                for (st, r), n in sorted(removal_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
        }
    identical = not (config or inputs or accounting or shards) and a["ledger"]["sha256"] == b["ledger"]["sha256"]
    return {"a": str(a_path), "b": str(b_path), "a_version": a["version"], "b_version": b["version"],
            "identical": identical, "config": config, "inputs": inputs, "accounting": accounting,
            "shards": shards, "documents": documents}


def _v(x: Any) -> str:
    return "(absent)" if x is None else repr(x) if isinstance(x, str) else str(x)


def format_diff(d: dict[str, Any]) -> str:
    if d["identical"]:
        return f"{d['a_version']} and {d['b_version']} are identical"
    lines = [f"diff {d['a_version']} -> {d['b_version']}"]
    if d["config"]:
        lines.append("config:")
        lines += [f"  {c['key']}: {_v(c['a'])} -> {_v(c['b'])}" for c in d["config"]]
    if d["inputs"]:
        lines.append("inputs:")
        lines += [f"  {i['change']}: {i['source']} {i['input']}" for i in d["inputs"]]
    docs = d["documents"]
    if docs.get("available"):
        lines.append("documents:")
        for kind in ("added", "removed", "changed"):
            if docs[kind]:
                lines.append(f"  {kind}: " + ", ".join(f"{n:,} {s}" for s, n in docs[kind].items()))
        for r in docs["removed_by"]:
            where = f"{r['reason']} (stage {r['stage']})" if r["stage"] else r["reason"]
            why = "; ".join(f"config {c['key']} {_v(c['a'])} -> {_v(c['b'])}" for c in r["config_changes"])
            lines.append(f"  {r['docs']:,} docs removed by {where}" + (f"; {why}" if why else ""))
    if d["accounting"]:
        lines.append("accounting:")
        lines += [f"  {x['stage']} {x['source']} {x['count']}: {x['a']:,} -> {x['b']:,} ({x['delta']:+,})"
                  for x in d["accounting"]]
    if d["shards"]:
        lines.append(f"shards: {len(d['shards'])} changed")
        lines += [f"  {s['change']}: {s['path']}" for s in d["shards"][:20]]
        if len(d["shards"]) > 20:
            lines.append(f"  ... and {len(d['shards']) - 20} more")
    return "\n".join(lines)
