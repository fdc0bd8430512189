"""Keeping a library from importing an optional module that the pipeline never uses through it.

Import time is CPU time of every command (`corpus extract` on 1,186 pages spends ~0.5 s importing): pyarrow
imports pandas (~0.15 s) to ask whether a list is a pandas object, warcio imports fsspec (~0.05 s) for its
command-line tools. Under `unimportable` the optional import fails, and the library records that the
module is absent; the module itself stays importable for anyone who asks for it afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Refuse:
    """A meta path finder that fails the import of one module (and only while it is installed)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, name: str, *args: Any) -> None:
        if name == self.name:
            raise ModuleNotFoundError(f"{name} is not imported here (pipeline/core/imports.py)", name=name)


@contextmanager
def unimportable(name: str) -> Iterator[None]:
    """`import <name>` fails inside the block, unless the module is imported already."""
    if name in sys.modules:
        yield
        return
    finder = _Refuse(name)
    sys.meta_path.insert(0, finder)  # type: ignore[arg-type]
    try:
        yield
    finally:
        sys.meta_path.remove(finder)  # type: ignore[arg-type]
