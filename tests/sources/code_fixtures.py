"""Helpers shared by the tests of the code source (sources/code.py, code_files.py, code_rules.py)."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.extractor import PlanContext
from pipeline.core.schema import Doc, Rejected
from pipeline.running.executor import SerialExecutor
from sources.code import CodeConfig, CodeExtractor

MIT = """MIT License\n\nCopyright (c) 2024 Someone\n\nPermission is hereby granted, free of charge, to any person
obtaining a copy of this software...\n"""


def extract(inputs, tmp_path: Path, config: CodeConfig | None = None) -> list[Doc | Rejected]:
    ex = CodeExtractor(config)
    units = ex.plan([str(i) for i in inputs], PlanContext(SerialExecutor(progress=False), tmp_path))
    return [item for u in units for item in ex.extract(u)]


def by_path(items) -> dict[str, str]:
    return {i.meta["path"]: getattr(i, "reason", "kept") for i in items}
