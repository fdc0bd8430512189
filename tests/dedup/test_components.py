"""Connected components by large-star/small-star over partitioned edge files."""

from __future__ import annotations

import numpy as np
import pytest

from dedup.components import connected_components, read_edges, roots, write_edges
from pipeline.running.executor import SerialExecutor


def _union_find_roots(u: np.ndarray, v: np.ndarray) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(u.tolist(), v.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def _components(u, v, tmp_path, partitions):
    edges = tmp_path / f"edges-{partitions}"
    write_edges(u, v, edges, "input", partitions)
    final = connected_components(edges, tmp_path / f"cc-{partitions}", partitions, SerialExecutor(progress=False))
    out = {}
    for q in range(partitions):
        node, root = roots(*read_edges(final, q))
        out.update(zip(node.tolist(), root.tolist(), strict=True))
    return out


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_components_match_union_find(tmp_path, partitions):
    rng = np.random.default_rng(5)
    # sparse random graph with long chains (worst case for label propagation) and nodes across "shards"
    nodes = (rng.integers(0, 4, 400).astype(np.int64) << 32) | rng.integers(0, 1000, 400)
    u = rng.choice(nodes, 300)
    v = rng.choice(nodes, 300)
    chain = np.sort(rng.choice(nodes, 60, replace=False))
    u = np.concatenate([u, chain[:-1]])
    v = np.concatenate([v, chain[1:]])
    keep = u != v
    got = _components(u[keep], v[keep], tmp_path, partitions)
    assert got == _union_find_roots(u[keep], v[keep])
