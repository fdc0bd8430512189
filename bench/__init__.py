"""Benchmarks (not run by `make test`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Peers' virtual environments live beside the checkout (like ../shared), never in the project's .venv.
PEER_VENVS = Path(os.environ.get("CORPUSFORGE_BENCH_VENVS", Path(__file__).resolve().parents[2] / "bench-venvs"))
DATATROVE_VENV = PEER_VENVS / "datatrove"


def save_results(path: Path, result: dict) -> None:
    """Write one benchmark's results where bench/report.py reads them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
