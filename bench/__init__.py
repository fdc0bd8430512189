"""Benchmarks (not run by `make test`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

# Peers' virtual environments live beside the checkout (like ../shared), never in the project's .venv.
PEER_VENVS = Path(os.environ.get("CORPUSFORGE_BENCH_VENVS", Path(__file__).resolve().parents[2] / "bench-venvs"))
DATATROVE_VENV = PEER_VENVS / "datatrove"


def save_results(path: Path, result: dict) -> None:
    """Write one benchmark's results where bench/report.py reads them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def ensure_venv(venv: Path, packages: list[str], imports: str) -> Path | str:
    """A peer's venv python, created and installed if `import <imports>` fails there (never our .venv);
    or why it could not be."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import {imports}"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], capture_output=True, text=True)
    if install.returncode != 0 or subprocess.run(probe, capture_output=True).returncode != 0:
        return f"pip install {' '.join(packages)} failed: {install.stderr.strip()[-2000:]}"
    return python
