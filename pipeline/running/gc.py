"""`corpus gc`: delete from a work directory what the last build of each config no longer uses.

A work directory only grows: every config change makes new step directories (`stages/<step>/<key>`),
the shard caches keep every shard ever computed (`shard-cache/<step>/<key>`), and a killed global stage
leaves its scratch (`scratch/<stage>/<key>`). Each build records what it used in
`builds/<corpus>-<config>.json` (the last build of each config file wins); gc deletes every step and
cache directory that no record names, and all stage scratch (only a running build needs it). What the
kept records name stays, so rebuilding those configs, or growing them, reuses everything as before.
Extractors' own scratch (`scratch/extract-*`: the Reddit fetch archive) is never touched. Run it when
no build is using the work directory.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.config import stable_hash
from pipeline.core.io import AnyPath, as_path, read_json, remove_tree, write_json

BUILDS_DIR = "builds"
# the directories gc may delete: <top>/<name>/<key>
COLLECTED = ("stages", "shard-cache", "scratch")


def _rel(path: AnyPath, workdir: AnyPath) -> str:
    return os.path.relpath(str(path), str(workdir)) if isinstance(workdir, Path) else str(path)[len(str(workdir)) + 1:]


def record_build(workdir: AnyPath, corpus: str, config_path: str | os.PathLike, uses: list[AnyPath]) -> None:
    """Name, for `corpus gc`, the directories this build used (the record of its config is replaced)."""
    rel = sorted({_rel(p, workdir) for p in uses})
    name = f"{corpus}-{stable_hash(os.path.abspath(str(config_path)) if config_path else '', 8)}.json"
    write_json({"corpus": corpus, "config": str(config_path), "finished": time.time(), "uses": rel},
               workdir / BUILDS_DIR / name)


@dataclass
class Collection:
    kept: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)  # directory -> bytes
    records: int = 0


def _sizes(workdir: AnyPath) -> dict[str, int]:
    """Bytes under each collectable directory (`<top>/<name>/<key>`), from one listing per top."""
    out: dict[str, int] = {}
    for top in COLLECTED:
        root = workdir / top
        if isinstance(root, Path):
            files = {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()} \
                if root.is_dir() else {}
        else:
            files = {rel: st.st_size for rel, st in root.tree().items()}
        for rel, size in files.items():
            parts = rel.split("/")
            if len(parts) < 3 or (top == "scratch" and parts[0].startswith("extract-")):
                continue
            key = f"{top}/{parts[0]}/{parts[1]}"
            out[key] = out.get(key, 0) + size
    return out


def collect(workdir: str | os.PathLike, dry_run: bool = False) -> Collection:
    """Delete (unless `dry_run`) every step, cache and scratch directory no build record names."""
    workdir = as_path(workdir)
    used: set[str] = set()
    result = Collection()
    for record in sorted((workdir / BUILDS_DIR).glob("*.json")):
        used.update(read_json(record)["uses"])
        result.records += 1
    for directory, size in sorted(_sizes(workdir).items()):
        if directory in used and not directory.startswith("scratch/"):
            result.kept.append(directory)
            continue
        result.removed[directory] = size
        if not dry_run:
            remove_tree(workdir / directory)
    return result
