"""`corpus report MANIFEST --out report.html`: one self-contained HTML file explaining a version.

Made for people who look rather than read: a funnel per source across the steps, rejection reasons
grouped by step, the time each step took, tokens per split and source, document lengths per source,
near-duplicate clusters with examples, contamination per eval set and item, and a few sample
documents per rejection reason (escaped, collapsed). Each source has one colour throughout. Plots are
inline SVG (pipeline/versions/charts.py): no JavaScript, no network, so the file opens anywhere and
can be archived next to the manifest. Its size is bounded whatever the corpus: at most
`TOP_REASONS` reasons per step, `SAMPLES_SHOWN` samples of `SAMPLE_CHARS` characters per reason.

Records a WARC holds that were never documents (request, metadata, warcinfo records; reasons such as
`cc:request`) are shown apart, as records skipped by type; they still count as rejected in the
manifest's accounting, so documents in = kept + rejected holds everywhere.
The manifest and `--out` may each be local or a URI (`s3://...`).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Any

import pyarrow.parquet as pq

from pipeline.core.io import AnyPath, as_path, read_table, write_bytes_atomic
from pipeline.core.schema import is_skipped_record, reason_key
from pipeline.core.shards import read_json
from pipeline.versions.charts import (
    bars,
    bin_counts,
    column_histogram,
    empty,
    esc,
    legend,
    log2_bins,
    source_colours,
    stacked_bars,
)
from pipeline.versions.manifest import format_seconds, read_run, step_seconds, wall_seconds
from pipeline.versions.verify import resolve_manifest

TOP_REASONS = 25  # per step
SAMPLES_SHOWN = 3  # per (step, reason)
SAMPLE_CHARS = 600
CLUSTER_EXAMPLES = 5


def section(chart_id: str, title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{esc(note)}</p>' if note else ""
    return f'<section id="{chart_id}"><h2>{esc(title)}</h2>{note_html}{body}</section>'


def funnel(m: dict, colours: dict[str, str]) -> str:
    """Per source: records read, documents, then what each step kept, in that source's colour."""
    parts = []
    for src, colour in colours.items():
        rows: list[tuple[str, dict[str, float]]] = []
        prev = None
        for st in m["stages"]:
            c = st["sources"].get(src)
            if c is None:
                continue
            if st["name"].startswith("extract:"):
                skipped = sum(n for r, n in c["reasons"].items() if is_skipped_record(r))
                if skipped:
                    rows.append((f"records read ({skipped:,} skipped by type)", {src: c["in_docs"]}))
                rows.append(("documents", {src: c["in_docs"] - skipped}))
                prev = c["in_docs"] - skipped
            dropped = (prev or 0) - c["kept_docs"]
            rows.append((f"{st['name']} kept" + (f" (−{dropped:,})" if dropped > 0 else ""), {src: c["kept_docs"]}))
            prev = c["kept_docs"]
        parts.append(f'<h3><i class="swatch" style="background:{colour}"></i>{esc(src)}</h3>'
                     + stacked_bars(rows, {src: colour}))
    return section("funnel", "Funnel per source", "".join(parts) or empty(),
                   "Documents of each source left after each step.")


def reasons_by_stage(m: dict, colours: dict[str, str]) -> tuple[str, str]:
    """The rejection reasons of each step (stacked by source), and the records skipped by type."""
    parts, skipped = [], []
    for st in m["stages"]:
        per_reason: dict[str, dict[str, float]] = defaultdict(dict)
        for src, c in sorted(st["sources"].items()):
            for r, n in c["reasons"].items():
                if is_skipped_record(r):
                    skipped.append(f"<tr><td>{esc(st['name'])}</td><td>{esc(src)}</td><td>{esc(r)}</td>"
                                   f"<td class='n'>{n:,}</td></tr>")
                else:
                    per_reason[r][src] = per_reason[r].get(src, 0) + n
        if not per_reason:
            continue
        ranked = sorted(per_reason.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        total = sum(sum(v.values()) for _, v in ranked)
        more = f" ({len(ranked) - TOP_REASONS} more reasons not drawn)" if len(ranked) > TOP_REASONS else ""
        parts.append(f"<h3>{esc(st['name'])}: {total:,} documents rejected{more}</h3>"
                     + stacked_bars(ranked[:TOP_REASONS], colours))
    reasons = section("reasons", "Rejection reasons by step", "".join(parts) or empty("no document was rejected"))
    table = ("<table><tr><th>step</th><th>source</th><th>record type</th><th>records</th></tr>" + "".join(skipped)
             + "</table>") if skipped else empty("no record was skipped by type")
    return reasons, section("skipped", "Records skipped by type", table,
                            "WARC request, metadata and warcinfo records are not documents: they are counted "
                            "here, apart from the rejections above (the accounting still counts them as rejected).")


def time_table(manifest: dict, run: dict | None) -> str:
    """Task seconds per step (computed tasks only; a reused step shows the seconds it took when it was
    computed), with tasks computed and reused in this build, and the build's wall time."""
    seconds = step_seconds(run)
    if seconds is None:
        why = "no run.json beside the manifest" if run is None else "this version's run.json records no seconds"
        return f'<section id="time"><h2>Time per step</h2><p class="empty">{esc(why)}</p></section>'
    total = sum(seconds.values())
    tasks = {st["name"]: st.get("tasks", 0) for st in manifest["stages"]}
    computed, reused = (run or {}).get("computed", {}), (run or {}).get("reused", {})
    rows = []
    for name in dict.fromkeys([*tasks, *seconds]):
        sec = seconds.get(name)
        share = f"{sec / total:.0%}" if sec is not None and total > 0 else ""
        rows.append(f"<tr><td>{esc(name)}</td><td>{tasks.get(name, '')}</td><td>{computed.get(name, '')}</td>"
                    f"<td>{reused.get(name, '')}</td><td>{'' if sec is None else esc(format_seconds(sec))}</td>"
                    f"<td>{share}</td></tr>")
    rows.append(f"<tr><th>total</th><td></td><td></td><td></td><th>{esc(format_seconds(total))}</th><td></td></tr>")
    wall = wall_seconds(run)
    note = f"<p>Build wall time {esc(format_seconds(wall))}. " if wall is not None else "<p>"
    note += ("Task seconds are summed over a step's tasks, so they exceed the wall time when tasks run in "
             "parallel; a reused step shows the seconds it took when it was computed.</p>")
    chart = bars([(name, seconds[name]) for name in dict.fromkeys([*tasks, *seconds]) if name in seconds], "#8c8c8c",
                 unit="task seconds", fmt=format_seconds)
    return ('<section id="time"><h2>Time per step</h2>' + chart + '<table><tr><th>step</th><th>tasks</th>'
            "<th>computed</th><th>reused</th><th>task seconds</th><th>share</th></tr>" + "".join(rows) + "</table>"
            + note + "</section>")


def tokens_section(vdir: AnyPath, m: dict, colours: dict[str, str]) -> str:
    rows = []
    for split in sorted(m.get("tokens", {}).get("splits", {})):
        index = vdir / "tokens" / split / "index.json"
        if index.exists():
            per_source = read_json(index).get("sources", {})
            rows.append((split, {s: c.get("tokens", 0) for s, c in sorted(per_source.items())}))
    return section("tokens", "Tokens per split and source", stacked_bars(rows, colours, unit="tokens"),
                   "Copies of a document the mix repeats (epochs > 1) are counted each time.")


def _doc_columns(vdir: AnyPath, m: dict) -> dict[str, list]:
    cols: dict[str, list] = {"lang": [], "dup_cluster_size": [], "source": []}
    for out in m["outputs"]:
        path = vdir / out["path"]
        if path.suffix != ".parquet" or not out["path"].startswith("docs/") or not path.exists():
            continue
        with path.open("rb") as f:  # on object storage: ranged reads of the footer and the columns
            pf = pq.ParquetFile(f)
            wanted = [c for c in cols if c in pf.schema_arrow.names]
            t = pf.read(columns=wanted)
        for c in cols:
            cols[c].extend(t.column(c).to_pylist() if c in wanted else [None] * t.num_rows)
    return cols


def lengths_section(vdir: AnyPath, m: dict, colours: dict[str, str]) -> tuple[str, str]:
    ledger = read_table(vdir / m["ledger"]["path"], columns=["source", "text_bytes"])
    by_source: dict[str, list[int]] = defaultdict(list)
    for s, b in zip(ledger.column("source").to_pylist(), ledger.column("text_bytes").to_pylist(), strict=True):
        by_source[s].append(b)
    bins = log2_bins([b for v in by_source.values() for b in v])
    counts = {s: bin_counts(v, bins) for s, v in sorted(by_source.items())}
    used = [i for i in range(len(bins)) if any(c[i] for c in counts.values())] or [0]
    lo, hi = used[0], used[-1] + 1  # the same bins for every source, without empty ones at either end
    labels = [f"{a:,}–{b - 1:,} B" for a, b in bins[lo:hi]]
    charts = "".join(column_histogram(c[lo:hi], labels, colours.get(s, "#999"), f"{s}: {len(by_source[s]):,} docs")
                     for s, c in counts.items())
    docs = [(s, {s: len(v)}) for s, v in sorted(by_source.items())]
    return (section("lengths", "Document length per source (bytes, log bins)", charts or empty()),
            section("sources", "Documents per source in this version", stacked_bars(docs, colours)))


def clusters_section(cols: dict[str, list], rejected: list[dict[str, Any]]) -> str:
    sizes = Counter(s for s in cols["dup_cluster_size"] if s)
    chart = bars([(f"size {k}" + (" (no duplicate)" if k == 1 else ""), v) for k, v in sorted(sizes.items())],
                 "#59a14f", unit="clusters")
    members: dict[str, list[str]] = defaultdict(list)
    for r in rejected:
        head, _, survivor = r["reason"].partition(":")
        if head in ("near-dup", "exact-dup"):
            members[survivor].append(f"{r['id']} ({head})")
    biggest = sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:CLUSTER_EXAMPLES]
    rows = "".join(f"<tr><td>{esc(s)}</td><td class='n'>{len(ms) + 1}</td><td>{esc(', '.join(ms[:8]))}"
                   f"{' …' if len(ms) > 8 else ''}</td></tr>" for s, ms in biggest)
    table = ("<h3>Largest clusters</h3><table><tr><th>survivor (kept)</th><th>size</th><th>removed</th></tr>"
             + rows + "</table>") if rows else ""
    return section("clusters", "Near-duplicate clusters (sizes of the kept survivors' clusters)", chart + table)


def contamination_section(vdir: AnyPath, m: dict) -> str:
    entry = m.get("reports", {}).get("contamination")
    if not entry or not (vdir / entry["path"]).exists():
        return section("contamination", "Contamination", empty("no decontamination stage in this build"))
    rep = read_json(vdir / entry["path"])
    parts = []
    for name, s in rep["eval_sets"].items():
        parts.append(
            f"<h3>{esc(name)}: {s['items_found']:,} of {s['items']:,} items found in {s['docs_matched']:,} docs "
            f"({s['docs_modified']:,} modified, {s['docs_dropped']:,} dropped)</h3>")
        items = sorted(s.get("found", {}).items(), key=lambda kv: (-kv[1]["docs"], kv[0]))
        rows = "".join(
            f"<tr><td>{esc(k)}</td><td class='n'>{it['docs']:,}</td>"
            f"<td>{esc(', '.join(f'{src} {n}' for src, n in sorted(it['sources'].items())))}</td>"
            f"<td>{esc(it.get('text', ''))}</td><td>{esc(', '.join(it.get('examples', [])))}</td></tr>"
            for k, it in items[:50])
        parts.append("<table><tr><th>item</th><th>docs</th><th>sources</th><th>item text</th><th>documents</th></tr>"
                     + rows + "</table>" if rows else empty("no item found"))
    return section("contamination", "Contamination per eval set and item", "".join(parts) or empty())


def samples_section(vdir: AnyPath, m: dict, order: dict[str, int]) -> str:
    entry = m.get("samples")
    if not entry or not (vdir / entry["path"]).exists():
        return section("samples", "Sample rejected documents", empty("this version keeps no samples"))
    t = read_table(vdir / entry["path"], columns=["id", "source", "stage", "reason", "url", "text", "text_chars"])
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in t.to_pylist():
        if not is_skipped_record(r["reason"]):
            groups[(r["stage"], reason_key(r["reason"]))].append(r)
    parts = []
    for (stage, reason), rows in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        docs = "".join(
            f"<details><summary>{esc(r['id'])} · {esc(r['source'])}"
            f"{' · ' + esc(r['reason']) if r['reason'] != reason else ''}</summary>"
            + (f"<p class='url'>{esc(r['url'])}</p>" if r.get("url") else "")
            + f"<pre>{esc(r['text'][:SAMPLE_CHARS]) or '(no text)'}"
            f"{'…' if r['text_chars'] > SAMPLE_CHARS else ''}</pre></details>"
            for r in rows[:SAMPLES_SHOWN])
        parts.append(f"<div class='reason'><h3>{esc(stage)} · {esc(reason)}</h3>{docs}</div>")
    return section("samples", "Sample rejected documents per reason", "".join(parts) or empty(),
                   f"Up to {SAMPLES_SHOWN} per reason, {SAMPLE_CHARS} characters each; "
                   "`corpus show VERSION --reason R` shows more.")


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}h2{font-size:1.2em;margin-top:2em;"
    "border-bottom:1px solid #ddd}h3{font-size:1em;margin:1em 0 .3em}svg text{font-size:12px;fill:#222}"
    "svg .title{font-weight:600}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
    "padding:3px 8px;vertical-align:top}td.n{text-align:right}.empty,.note{color:#777}.legend .key{margin-right:1em}"
    ".legend i,.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}"
    "svg.small{margin:0 1em 1em 0}details{margin:.2em 0 .2em 1em}summary{cursor:pointer}"
    "pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;max-height:18em;overflow:auto}.url{color:#555}"
)


def render_report(manifest_path: str | os.PathLike) -> str:
    manifest_path = resolve_manifest(manifest_path)
    m = read_json(manifest_path)
    vdir = manifest_path.parent
    colours = source_colours([s for st in m["stages"] for s in st["sources"]])
    order = {st["name"]: i for i, st in enumerate(m["stages"])}
    cols = _doc_columns(vdir, m)
    rejected_entry = m.get("rejected_ledger")
    rejected = (read_table(vdir / rejected_entry["path"], columns=["id", "reason"]).to_pylist()
                if rejected_entry and (vdir / rejected_entry["path"]).exists() else [])
    reasons, skipped = reasons_by_stage(m, colours)
    lengths, per_source = lengths_section(vdir, m, colours)
    langs = Counter(x for x in cols["lang"] if x)
    sections = [
        funnel(m, colours),
        time_table(m, read_run(manifest_path)),
        reasons,
        skipped,
        tokens_section(vdir, m, colours),
        per_source,
        lengths,
        section("languages", "Languages of kept documents", bars(langs.most_common(20))),
        clusters_section(cols, rejected),
        contamination_section(vdir, m),
        samples_section(vdir, m, order),
    ]
    head = (
        f"<h1>{esc(m['corpus'])} · version {esc(m['version'])}</h1>"
        f"<p>{m['totals']['docs']:,} documents, {m['totals']['text_bytes']:,} bytes of text; config hash "
        f"{esc(m['config']['hash'])}; code {esc((m['code'].get('git_commit') or 'unknown')[:12])}"
        f"{' (dirty)' if m['code'].get('git_dirty') else ''}</p>" + legend(colours)
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(m['corpus'])} {esc(m['version'])}</title>"
        f"<style>{STYLE}</style></head><body>{head}{''.join(sections)}</body></html>"
    )


def write_report(manifest_path: str | os.PathLike, out: str | os.PathLike) -> AnyPath:
    """Render the report and write it to `out` (local or a URI), atomically."""
    out = as_path(out)
    write_bytes_atomic(render_report(manifest_path).encode("utf-8"), out)
    return out
