"""`corpus report MANIFEST --out report.html`: one self-contained HTML file explaining a version.

Plots are inline SVG drawn here (no JavaScript, no network), so the file opens anywhere and can be
archived next to the manifest: the document funnel per stage and source, rejection reasons, languages,
document lengths, dedup cluster sizes, the contamination summary, tokens per source, and the time each
step took (from the `run.json` beside the manifest). The manifest and `--out` may each be local or a URI
(`s3://...`).
"""

from __future__ import annotations

import html
import math
import os
from collections import Counter
from typing import Any

import pyarrow.parquet as pq

from pipeline.core.io import AnyPath, as_path, read_table, write_bytes_atomic
from pipeline.core.shards import read_json
from pipeline.versions.manifest import format_seconds, read_run, step_seconds, wall_seconds
from pipeline.versions.verify import resolve_manifest

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


def _esc(x: Any) -> str:
    return html.escape(str(x))


def hbar_chart(title: str, rows: list[tuple[str, float]], *, chart_id: str, unit: str = "docs") -> str:
    """Horizontal bars, one per (label, value); an empty chart says so instead of drawing nothing."""
    if not rows:
        return f'<section id="{chart_id}"><h2>{_esc(title)}</h2><p class="empty">nothing to show</p></section>'
    width, bar_h, label_w = 720, 20, 260
    vmax = max(v for _, v in rows) or 1
    height = len(rows) * (bar_h + 6) + 10
    parts = [f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">']
    for i, (label, v) in enumerate(rows):
        y = 5 + i * (bar_h + 6)
        w = max(1.0, (width - label_w - 90) * v / vmax)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_esc(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_esc(label)}: {v:,.0f} {unit}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{v:,.0f}</text>')
    parts.append("</svg>")
    return f'<section id="{chart_id}"><h2>{_esc(title)}</h2>{"".join(parts)}</section>'


def histogram(title: str, values: list[int], *, chart_id: str, log_bins: bool = True) -> str:
    if not values:
        return f'<section id="{chart_id}"><h2>{_esc(title)}</h2><p class="empty">nothing to show</p></section>'
    if log_bins:
        edges = [0] + [2 ** k for k in range(4, max(5, math.ceil(math.log2(max(values) + 1)) + 1))]
    else:
        edges = list(range(1, max(values) + 2))
    counts = Counter()
    for v in values:
        i = next((j for j in range(len(edges) - 1) if edges[j] <= v < edges[j + 1]), len(edges) - 2)
        counts[i] += 1
    rows = [(f"{edges[i]:,}–{edges[i + 1] - 1:,}" if log_bins else f"{edges[i]}", counts.get(i, 0))
            for i in range(len(edges) - 1)]
    while rows and rows[-1][1] == 0:
        rows.pop()
    return hbar_chart(title, rows, chart_id=chart_id)


def _doc_columns(version_dir: AnyPath, manifest: dict) -> dict[str, list]:
    cols: dict[str, list] = {"lang": [], "dup_cluster_size": [], "source": []}
    for out in manifest["outputs"]:
        path = version_dir / out["path"]
        if path.suffix != ".parquet" or not path.exists():
            continue
        with path.open("rb") as f:  # on object storage: ranged reads of the footer and the columns
            pf = pq.ParquetFile(f)
            wanted = [c for c in cols if c in pf.schema_arrow.names]
            t = pf.read(columns=wanted)
        for c in wanted:
            cols[c].extend(t.column(c).to_pylist())
    return cols


def time_table(manifest: dict, run: dict | None) -> str:
    """Task seconds per step (computed tasks only; a reused step shows the seconds it took when it was
    computed), with tasks computed and reused in this build, and the build's wall time."""
    seconds = step_seconds(run)
    if seconds is None:
        why = "no run.json beside the manifest" if run is None else "this version's run.json records no seconds"
        return f'<section id="time"><h2>Time per step</h2><p class="empty">{_esc(why)}</p></section>'
    total = sum(seconds.values())
    tasks = {st["name"]: st.get("tasks", 0) for st in manifest["stages"]}
    computed, reused = (run or {}).get("computed", {}), (run or {}).get("reused", {})
    rows = []
    for name in dict.fromkeys([*tasks, *seconds]):
        sec = seconds.get(name)
        share = f"{sec / total:.0%}" if sec is not None and total > 0 else ""
        rows.append(f"<tr><td>{_esc(name)}</td><td>{tasks.get(name, '')}</td><td>{computed.get(name, '')}</td>"
                    f"<td>{reused.get(name, '')}</td><td>{'' if sec is None else _esc(format_seconds(sec))}</td>"
                    f"<td>{share}</td></tr>")
    rows.append(f"<tr><th>total</th><td></td><td></td><td></td><th>{_esc(format_seconds(total))}</th><td></td></tr>")
    wall = wall_seconds(run)
    note = f"<p>Build wall time {_esc(format_seconds(wall))}. " if wall is not None else "<p>"
    note += ("Task seconds are summed over a step's tasks, so they exceed the wall time when tasks run in "
             "parallel; a reused step shows the seconds it took when it was computed.</p>")
    return ('<section id="time"><h2>Time per step</h2><table><tr><th>step</th><th>tasks</th><th>computed</th>'
            "<th>reused</th><th>task seconds</th><th>share</th></tr>" + "".join(rows) + "</table>" + note
            + "</section>")


def render_report(manifest_path: str | os.PathLike) -> str:
    manifest_path = resolve_manifest(manifest_path)
    m = read_json(manifest_path)
    vdir = manifest_path.parent
    sections = []

    funnel = []
    for st in m["stages"]:
        for src, c in sorted(st["sources"].items()):
            funnel.append((f"{st['name']} · {src} kept", c["kept_docs"]))
    sections.append(hbar_chart("Documents kept per stage and source", funnel, chart_id="funnel"))

    byte_funnel = [(st["name"], st["totals"]["kept_bytes"]) for st in m["stages"]]
    sections.append(hbar_chart("Text kept per stage (bytes)", byte_funnel, chart_id="bytes", unit="bytes"))

    reasons = Counter()
    for st in m["stages"]:
        for c in st["sources"].values():
            for r, n in c["reasons"].items():
                reasons[r] += n
    sections.append(hbar_chart("Rejection reasons", reasons.most_common(30), chart_id="reasons"))

    cols = _doc_columns(vdir, m)
    langs = Counter(x for x in cols["lang"] if x)
    sections.append(hbar_chart("Languages of kept documents", langs.most_common(20), chart_id="languages"))

    ledger = read_table(vdir / m["ledger"]["path"], columns=["source", "text_bytes"])
    lengths = ledger.column("text_bytes").to_pylist()
    sections.append(histogram("Document length (bytes)", lengths, chart_id="lengths"))
    per_source = Counter(ledger.column("source").to_pylist())
    sections.append(hbar_chart("Documents per source in this version", sorted(per_source.items()), chart_id="sources"))

    sizes = [s for s in cols["dup_cluster_size"] if s]
    sections.append(histogram("Dedup cluster sizes (kept survivors)", sizes, chart_id="clusters", log_bins=False))

    tokens = m.get("tokens", {}).get("per_source", {})
    sections.append(hbar_chart("Tokens per source after mixing", sorted(tokens.items()), chart_id="tokens",
                               unit="tokens"))

    contamination = m.get("reports", {}).get("contamination")
    if contamination and (vdir / contamination["path"]).exists():
        rep = read_json(vdir / contamination["path"])
        rows = "".join(
            f"<tr><td>{_esc(name)}</td><td>{s['items_found']:,} / {s['items']:,}</td><td>{s['docs_matched']:,}</td>"
            f"<td>{s['docs_modified']:,}</td><td>{s['docs_dropped']:,}</td>"
            f"<td>{_esc(', '.join(f'{k} {v}' for k, v in sorted(s['sources'].items())))}</td></tr>"
            for name, s in rep["eval_sets"].items()
        )
        sections.append(
            '<section id="contamination"><h2>Contamination</h2><table><tr><th>eval set</th><th>items found</th>'
            "<th>docs matched</th><th>modified</th><th>dropped</th><th>sources</th></tr>" + rows + "</table></section>"
        )
    else:
        sections.append('<section id="contamination"><h2>Contamination</h2><p class="empty">no decontamination '
                        "stage in this build</p></section>")

    sections.append(time_table(m, read_run(manifest_path)))

    head = (
        f"<h1>{_esc(m['corpus'])} · version {_esc(m['version'])}</h1>"
        f"<p>{m['totals']['docs']:,} documents, {m['totals']['text_bytes']:,} bytes of text; config hash "
        f"{_esc(m['config']['hash'])}; code {_esc((m['code'].get('git_commit') or 'unknown')[:12])}"
        f"{' (dirty)' if m['code'].get('git_dirty') else ''}</p>"
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}h2{font-size:1.1em;margin-top:2em}"
        "svg text{font-size:12px;fill:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px}.empty{color:#888}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_esc(m['corpus'])} {_esc(m['version'])}</title>"
        f"<style>{style}</style></head><body>{head}{''.join(sections)}</body></html>"
    )


def write_report(manifest_path: str | os.PathLike, out: str | os.PathLike) -> AnyPath:
    """Render the report and write it to `out` (local or a URI), atomically."""
    out = as_path(out)
    write_bytes_atomic(render_report(manifest_path).encode("utf-8"), out)
    return out
