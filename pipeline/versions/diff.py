"""`corpus diff A B`: what changed between two corpus versions, and why.

Config changes key by key; inputs added, removed or changed; accounting deltas per stage, source and
reason; output shards changed; and, from the document ledgers, documents added, removed and changed
per source, each removal explained by the stage and reason that rejected it in B, next to the config
changes of that stage. Either version may be local or a URI (`s3://bucket/.../VERSION`).

Time per step (task seconds, from the `run.json` beside each manifest) is shown for information: it
differs from run to run, so it never makes two versions differ.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from pipeline.core.io import AnyPath, read_table
from pipeline.core.schema import reason_key
from pipeline.core.shards import read_json
from pipeline.versions.manifest import format_seconds, read_run, step_seconds, wall_seconds
from pipeline.versions.verify import resolve_manifest

MAX_DECISIONS = 1000  # documents kept by one version and rejected by the other, listed with their reason
SHOWN_DECISIONS = 20


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


def step_order(a: dict, b: dict) -> list[str]:
    """The steps of two manifests in pipeline order (their `stages` lists): B's, with each step only
    A has placed after the step it follows in A."""
    order = [st["name"] for st in b["stages"]]
    at = -1
    for st in a["stages"]:
        if st["name"] in order:
            at = order.index(st["name"])
        else:
            at += 1
            order.insert(at, st["name"])
    return order


def _config_sections(a: dict, b: dict, steps: list[str]) -> list[str]:
    """The config tables in pipeline order: corpus, each step's table (sources, then stages), outputs."""
    section = {st["name"]: st.get("config_section", "") for m in (a, b) for st in m["stages"]}
    return ["corpus", *(section[s] for s in steps if section.get(s)), "outputs"]


def _section_rank(key: str, sections: list[str]) -> int:
    ranks = [i for i, s in enumerate(sections) if key == s or key.startswith(s + ".")]
    return max(ranks, key=lambda i: len(sections[i])) if ranks else len(sections)


COUNT_ORDER = ("in_docs", "kept_docs", "rejected_docs")


def diff_manifests(a_path: str | os.PathLike, b_path: str | os.PathLike) -> dict[str, Any]:
    """Everything that differs between two versions; steps, config tables and counts in pipeline order."""
    a_path, b_path = resolve_manifest(a_path), resolve_manifest(b_path)
    a, b = read_json(a_path), read_json(b_path)
    steps = step_order(a, b)
    rank = {name: i for i, name in enumerate(steps)}
    sections = _config_sections(a, b, steps)
    which = "effective" if "effective" in a["config"] and "effective" in b["config"] else "resolved"
    fa, fb = flatten(a["config"][which]), flatten(b["config"][which])
    config = [{"key": k, "a": fa.get(k), "b": fb.get(k)}
              for k in sorted(set(fa) | set(fb), key=lambda k: (_section_rank(k, sections), k))
              if fa.get(k) != fb.get(k)]

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

    def count_rank(k: tuple) -> tuple:  # pipeline order; per source in, kept, rejected, then reasons
        return (rank.get(k[0], len(rank)), k[1], COUNT_ORDER.index(k[2]) if k[2] in COUNT_ORDER else 3, k[2])

    ca, cb = stage_counts(a), stage_counts(b)
    accounting = [{"stage": k[0], "source": k[1], "count": k[2], "a": ca.get(k, 0), "b": cb.get(k, 0),
                   "delta": cb.get(k, 0) - ca.get(k, 0)}
                  for k in sorted(set(ca) | set(cb), key=count_rank) if ca.get(k, 0) != cb.get(k, 0)]

    oa = {o["path"]: o["sha256"] for o in a["outputs"]}
    ob = {o["path"]: o["sha256"] for o in b["outputs"]}
    shards = [{"path": p, "change": "added" if p not in oa else "removed" if p not in ob else "changed"}
              for p in sorted(set(oa) | set(ob)) if oa.get(p) != ob.get(p)]

    documents: dict[str, Any] = {"available": False}
    la, lb = _ledger(a_path, a, "ledger"), _ledger(b_path, b, "ledger")
    if la is not None and lb is not None:
        rb = _ledger(b_path, b, "rejected_ledger") or {}
        ra = _ledger(a_path, a, "rejected_ledger") or {}
        sections = {st["name"]: st.get("config_section", "") for st in b["stages"]}
        sections.update({f"extract:{src}": f"sources.{src}" for src in b.get("sources", [])})
        added, removed, changed = Counter(), Counter(), Counter()
        removal_reasons: Counter = Counter()
        decisions: list[dict[str, str]] = []  # documents one version kept and the other rejected
        for doc_id, (src, h) in la.items():
            if doc_id not in lb:
                removed[src] += 1
                why = rb.get(doc_id)
                removal_reasons[(why[1], reason_key(why[2])) if why else ("", "not produced")] += 1
                if why:
                    decisions.append({"id": doc_id, "source": src, "change": "removed", "stage": why[1],
                                      "reason": why[2]})
            elif lb[doc_id][1] != h:
                changed[src] += 1
        for doc_id, (src, _) in lb.items():
            if doc_id not in la:
                added[src] += 1
                if (was := ra.get(doc_id)) is not None:
                    decisions.append({"id": doc_id, "source": src, "change": "kept now", "stage": was[1],
                                      "reason": was[2]})
        # documents kept now first (what a removal elsewhere let through), then in pipeline order
        order = {name: i for i, name in enumerate(step_order(a, b))}
        decisions.sort(key=lambda x: (x["change"] != "kept now", order.get(x["stage"], len(order)), x["id"]))
        documents = {
            "available": True,
            "added": dict(sorted(added.items())),
            "removed": dict(sorted(removed.items())),
            "changed": dict(sorted(changed.items())),
            "decisions": decisions[:MAX_DECISIONS],
            "decisions_total": len(decisions),
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
            "shards": shards, "documents": documents,
            "time": diff_time(a, read_run(a_path), b, read_run(b_path))}


def diff_time(a: dict, run_a: dict | None, b: dict, run_b: dict | None) -> dict[str, Any]:
    """Task seconds per step of two versions (informational: no part of `identical`)."""
    sa, sb = step_seconds(run_a), step_seconds(run_b)
    out: dict[str, Any] = {"a": sa is not None, "b": sb is not None, "steps": []}
    if sa is None or sb is None:
        return out
    names = list(dict.fromkeys(step_order(a, b) + list(sa) + list(sb)))
    for name in names:
        x, y = sa.get(name), sb.get(name)
        out["steps"].append({"step": name, "a": x, "b": y,
                             "delta": round(y - x, 3) if x is not None and y is not None else None})
    out["total"] = {"a": round(sum(sa.values()), 3), "b": round(sum(sb.values()), 3)}
    out["wall"] = {"a": wall_seconds(run_a), "b": wall_seconds(run_b)}
    return out


def _v(x: Any) -> str:
    return "(absent)" if x is None else repr(x) if isinstance(x, str) else str(x)


def format_diff(d: dict[str, Any]) -> str:
    if d["identical"]:
        return "\n".join([f"{d['a_version']} and {d['b_version']} are identical", *_format_time(d)])
    lines = [f"diff {d['a_version']} -> {d['b_version']}"]
    if d["config"]:
        lines.append("config:")
        lines += [f"  {c['key']}: {_v(c['a'])} -> {_v(c['b'])}" for c in d["config"]]
    if d["inputs"]:
        lines.append("inputs:")
        lines += [f"  {i['change']}: {i['source']} {i['input']}" for i in d["inputs"]]
    docs = d["documents"]
    if docs.get("available") and any(docs[kind] for kind in ("added", "removed", "changed", "removed_by")):
        lines.append("documents:")
        for kind in ("added", "removed", "changed"):
            if docs[kind]:
                lines.append(f"  {kind}: " + ", ".join(f"{n:,} {s}" for s, n in docs[kind].items()))
        for r in docs["removed_by"]:
            where = f"{r['reason']} (stage {r['stage']})" if r["stage"] else r["reason"]
            why = "; ".join(f"config {c['key']} {_v(c['a'])} -> {_v(c['b'])}" for c in r["config_changes"])
            lines.append(f"  {r['docs']:,} docs removed by {where}" + (f"; {why}" if why else ""))
        for x in docs.get("decisions", [])[:SHOWN_DECISIONS]:
            verb = "removed by" if x["change"] == "removed" else "kept now, was rejected by"
            lines.append(f"  {x['id']} ({x['source']}): {verb} {x['stage']} {x['reason']}")
        if docs.get("decisions_total", 0) > SHOWN_DECISIONS:
            lines.append(f"  ... and {docs['decisions_total'] - SHOWN_DECISIONS:,} more documents kept by one "
                         f"version and rejected by the other (--json lists up to {MAX_DECISIONS:,})")
    if d["accounting"]:
        lines.append("accounting:")
        lines += [f"  {x['stage']} {x['source']} {x['count']}: {x['a']:,} -> {x['b']:,} ({x['delta']:+,})"
                  for x in d["accounting"]]
    if d["shards"]:
        lines.append(f"shards: {len(d['shards'])} changed")
        lines += [f"  {s['change']}: {s['path']}" for s in d["shards"][:20]]
        if len(d["shards"]) > 20:
            lines.append(f"  ... and {len(d['shards']) - 20} more")
    lines += _format_time(d)
    return "\n".join(lines)


def _format_time(d: dict[str, Any]) -> list[str]:
    t = d.get("time") or {}
    if not t.get("a") and not t.get("b"):
        return []
    if not (t["a"] and t["b"]):
        return [f"time: recorded for {'A' if t['a'] else 'B'} only (no run.json with seconds beside the other)"]
    rows = [(s["step"], s["a"], s["b"]) for s in t["steps"]]
    rows.append(("total", t["total"]["a"], t["total"]["b"]))
    if t["wall"]["a"] is not None and t["wall"]["b"] is not None:
        rows.append(("wall", t["wall"]["a"], t["wall"]["b"]))
    if d["identical"] and all(x == y for _, x, y in rows):
        return []  # the same run: nothing to compare
    width = max(len(name) for name, _, _ in rows)
    lines = ["time: task seconds per step (informational; not part of the comparison)"]
    for name, x, y in rows:
        text = f"  {name:<{width}}  {_s(x)} -> {_s(y)}"
        if x is not None and y is not None:
            text += f" ({y - x:+.2f}s" + (f", {(y - x) / x:+.0%})" if x > 0 else ")")
        lines.append(text)
    return lines


def _s(seconds: float | None) -> str:
    return "(absent)" if seconds is None else format_seconds(seconds)
