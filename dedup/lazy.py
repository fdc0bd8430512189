"""dedup/kernels.py, imported when first used: importing numba costs ~0.5 s, and every `corpus` command
imports the dedup stage (for its options) while most never compute a signature.

numba.np.arraymath, which numba imports before its first compilation (or cache load), checks for a
BLAS by importing scipy.linalg (~0.3 s with scipy itself) for `np.dot` in compiled code; no kernel uses
it, yet every worker's first signature paid for it. It is imported here with scipy unimportable, so
numba records "no BLAS" (pipeline/core/imports.py)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from pipeline.core.imports import unimportable


def import_kernels() -> ModuleType:
    with unimportable("scipy"):
        importlib.import_module("numba.np.arraymath")
        return importlib.import_module("dedup.kernels")


class _Kernels:
    def __getattr__(self, name: str) -> Any:
        return getattr(import_kernels(), name)


kernels: Any = _Kernels()
