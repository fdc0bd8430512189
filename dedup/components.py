"""Connected components of the duplicate graph, without one process holding every edge.

The large-star / small-star algorithm (Kiveris et al., "Connected Components in MapReduce and
Beyond", SoCC 2014). Edges are stored in both directions, partitioned by a hash of their source node,
so a node's whole neighbourhood sits in one partition file set. One step reads one partition and
rewrites its edges into the next generation's partitions:

- large-star: for every node u, link each larger neighbour v to m = min(u, neighbours of u);
- small-star: for every node u, link u and each smaller neighbour to m = min(u, smaller neighbours).

Both steps preserve connectivity and never increase the minimum label of a component. When neither
changes anything, every component is a star around its smallest node, so each node's root is its
smallest neighbour (or itself). Nodes are int64 (shard index << 32 | row), so the result does not
depend on the number of partitions or workers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dedup.lsh import mix64, unique_pairs
from pipeline.core.io import AnyPath, as_path, remove_tree
from pipeline.core.shards import read_table, write_scratch_table


def node_partition(nodes: np.ndarray, partitions: int) -> np.ndarray:
    return (mix64(nodes) % np.uint64(partitions)).astype(np.int64)


def write_edges(u: np.ndarray, v: np.ndarray, gen_dir: AnyPath, name: str, partitions: int) -> None:
    """Write undirected edges (both directions) into gen_dir/<partition of source>/<name>.parquet."""
    src = np.concatenate([u, v]).astype(np.int64)
    dst = np.concatenate([v, u]).astype(np.int64)
    write_directed(src, dst, gen_dir, name, partitions)


def write_directed(src: np.ndarray, dst: np.ndarray, gen_dir: AnyPath, name: str, partitions: int) -> None:
    part = node_partition(src, partitions)
    for q in np.unique(part).tolist():
        sel = part == q
        table = pa.table({"src": pa.array(src[sel], pa.int64()), "dst": pa.array(dst[sel], pa.int64())})
        write_scratch_table(table, gen_dir / f"{q:05d}" / f"{name}.parquet")


def read_edges(gen_dir: AnyPath, partition: int) -> tuple[np.ndarray, np.ndarray]:
    d = gen_dir / f"{partition:05d}"
    srcs, dsts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for path in sorted(d.glob("*.parquet")):  # a missing directory globs to nothing
        t = read_table(path)
        srcs.append(t.column("src").to_numpy())
        dsts.append(t.column("dst").to_numpy())
    return unique_pairs(np.concatenate(srcs), np.concatenate(dsts))


def _group_min(src: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted `src`: per-row minimum of `values` over the row's src group, and group starts."""
    if len(src) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], src[1:] != src[:-1]]))
    mins = np.minimum.reduceat(values, starts)
    counts = np.diff(np.append(starts, len(src)))
    return np.repeat(mins, counts), starts


def large_star(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Edges (v, m(u)) for every edge u -> v with v > u; `changed` is whether any edge moved.

    `src` must be sorted (as `read_edges` returns it) and hold every neighbour of each src node.
    """
    m, _ = _group_min(src, np.minimum(dst, src))
    larger = dst > src
    new_u, new_v = dst[larger], m[larger]
    changed = bool(np.any(m[larger] != src[larger]))
    return new_u, new_v, changed


def small_star(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Edges (v, m) and (u, m) for every u and its smaller neighbours v, m = min of them and u."""
    smaller = dst < src
    s, d = src[smaller], dst[smaller]
    m, starts = _group_min(s, d)
    emit_u = np.concatenate([d, s[starts]])
    emit_v = np.concatenate([m, m[starts]])
    keep = emit_u != emit_v
    counts = np.diff(np.append(starts, len(s)))
    changed = bool(np.any(counts > 1))  # unchanged iff every node has at most one smaller neighbour
    return emit_u[keep], emit_v[keep], changed


def star_step(item: tuple[str, str, str, int, int]) -> bool:
    """One large- or small-star step over one partition (a task); returns whether it changed edges."""
    kind, in_dir, out_dir, partition, partitions = item
    src, dst = read_edges(as_path(in_dir), partition)
    step = large_star if kind == "large" else small_star
    u, v, changed = step(src, dst)
    if len(u):
        write_edges(u, v, as_path(out_dir), f"from-{partition:05d}", partitions)
    return changed


def roots(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(node, root) for every node of a converged partition: root = min(node, its neighbours)."""
    m, starts = _group_min(src, np.minimum(dst, src))
    return src[starts], m[starts]


def connected_components(
    edges_dir: AnyPath, work_dir: AnyPath, partitions: int, executor, max_rounds: int = 200
) -> AnyPath:
    """Run star steps until both make no change; return the directory of the converged edges."""
    current = edges_dir
    for round_no in range(max_rounds):
        changed_any = False
        for kind in ("large", "small"):
            nxt = work_dir / f"gen-{round_no:03d}-{kind}"
            items = [(kind, str(current), str(nxt), q, partitions) for q in range(partitions)]
            changed = executor.map(star_step, items, desc=f"dedup: components {kind}-star {round_no}")
            changed_any = changed_any or any(changed)
            if current != edges_dir:
                _remove_tree(current)
            current = nxt
        if not changed_any:
            return current
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds ({edges_dir})")


def _remove_tree(path: AnyPath) -> None:
    remove_tree(path)
