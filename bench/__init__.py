"""Benchmarks (not run by `make test`)."""

from __future__ import annotations

import json
from pathlib import Path


def save_results(path: Path, result: dict) -> None:
    """Write one benchmark's results where bench/report.py reads them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
