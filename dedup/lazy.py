"""dedup/kernels.py, imported when first used: importing numba costs ~0.15 s, and every `corpus` command
imports the dedup stage (for its options) while most never compute a signature."""

from __future__ import annotations

import importlib
from typing import Any


class _Kernels:
    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module("dedup.kernels")
        return getattr(module, name)


kernels: Any = _Kernels()
