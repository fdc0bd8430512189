"""The fastest-of-N timing both sides of bench/minhash_vs_peers.py use: ours in the project's venv, rensa's
in its own (bench/rensa_peer.py imports this file as a sibling, so it needs nothing but the standard library)."""

from __future__ import annotations

import time


def best_seconds(fn, repeats: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeats` runs (the least disturbed on a shared machine)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu
