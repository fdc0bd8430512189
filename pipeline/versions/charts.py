"""Inline SVG charts for `corpus report`: no JavaScript, no network, one colour per source everywhere.

Every chart is a function from rows of numbers to an SVG string; labels and tooltips are escaped, so a
document id or a reason can never inject markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]
WIDTH, LABEL_W, BAR_H = 760, 240, 18


def esc(x: Any) -> str:
    return html.escape(str(x))


def source_colours(sources: list[str]) -> dict[str, str]:
    """A colour per source, by sorted name: the same source has the same colour in every chart."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(sorted(set(sources)))}


def legend(colours: dict[str, str]) -> str:
    items = "".join(f'<span class="key"><i style="background:{c}"></i>{esc(s)}</span>' for s, c in colours.items())
    return f'<p class="legend">{items}</p>'


def empty(text: str = "nothing to show") -> str:
    return f'<p class="empty">{esc(text)}</p>'


def stacked_bars(rows: list[tuple[str, dict[str, float]]], colours: dict[str, str], *, unit: str = "docs",
                 scale: float | None = None, label_w: int = LABEL_W, fmt: Callable[[float], str] | None = None) -> str:
    """One horizontal bar per (label, {source: value}), its segments in the sources' colours."""
    if not rows:
        return empty()
    vmax = scale or max((sum(v.values()) for _, v in rows), default=0) or 1
    height = len(rows) * (BAR_H + 6) + 8
    room = WIDTH - label_w - 110
    parts = [f'<svg class="chart" width="{WIDTH}" height="{height}" role="img">']
    for i, (label, values) in enumerate(rows):
        y = 4 + i * (BAR_H + 6)
        x = float(label_w)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(label)}</text>')
        for src, v in values.items():
            if v <= 0:
                continue
            w = max(1.0, room * v / vmax)
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_H}" fill="{colours.get(src, "#999")}">'
                         f'<title>{esc(label)} · {esc(src)}: {v:,.0f} {esc(unit)}</title></rect>')
            x += w
        total = sum(values.values())
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 13}">{esc(fmt(total) if fmt else f"{total:,.0f}")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(rows: list[tuple[str, float]], colour: str = PALETTE[0], *, unit: str = "docs",
         fmt: Callable[[float], str] | None = None) -> str:
    """Plain horizontal bars in one colour."""
    return stacked_bars([(label, {"": v}) for label, v in rows], {"": colour}, unit=unit, fmt=fmt)


def log2_bins(values: list[int]) -> list[tuple[int, int]]:
    """Bins [0,16), [16,32), [32,64), ... up to the largest value."""
    top = max(5, math.ceil(math.log2(max(values) + 1)) + 1) if values else 5
    edges = [0] + [2 ** k for k in range(4, top)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def bin_counts(values: list[int], bins: list[tuple[int, int]]) -> list[int]:
    counts = [0] * len(bins)
    for v in values:
        i = next((j for j, (lo, hi) in enumerate(bins) if lo <= v < hi), len(bins) - 1)
        counts[i] += 1
    return counts


def column_histogram(counts: list[int], labels: list[str], colour: str, title: str, *, width: int = 360,
                     height: int = 120) -> str:
    """Vertical bars (one per bin) with the first and last bin labelled: a small multiple."""
    n = max(1, len(counts))
    top = max(counts, default=0) or 1
    bw = (width - 20) / n
    parts = [f'<svg class="chart small" width="{width}" height="{height + 34}" role="img">',
             f'<text x="4" y="12" class="title">{esc(title)}</text>']
    for i, c in enumerate(counts):
        h = (height - 20) * c / top
        x = 10 + i * bw
        parts.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{max(1.0, bw - 2):.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{esc(labels[i])}: {c:,}</title></rect>')
    if labels:
        parts.append(f'<text x="10" y="{height + 14}">{esc(labels[0])}</text>')
        parts.append(f'<text x="{width - 10}" y="{height + 14}" text-anchor="end">{esc(labels[-1])}</text>')
    parts.append("</svg>")
    return "".join(parts)
