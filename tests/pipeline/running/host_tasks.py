"""Task functions for test_taskhost.py: importable by the task host and by Ray's workers alike."""

from __future__ import annotations

import os
import sys


def where(i: int) -> tuple[int, str]:
    """The item and where it ran: the task host imports no Ray, Ray's workers do."""
    return i, ("ray" if "ray" in sys.modules else "host")


def fails_on_three(i: int) -> int:
    if i == 3:
        raise ValueError(f"bad item {i}")
    return i * 10


def dies_on_the_host(i: int) -> tuple[int, str]:
    """Kills the task host (as a crash in an extension would); runs on Ray."""
    if "ray" not in sys.modules:
        os._exit(7)
    return where(i)
