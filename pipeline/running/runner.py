"""Runs extractors and stages over shard directories: one task per shard, resumable, counted.

A stage's output directory holds `*.parquet` (kept), `rejected/*.parquet`, `_tasks/<shard>.json`
(one per finished task, written after its shards) and `_stage.json` (written last). A task whose
record exists is never recomputed, so a killed run resumes where it stopped. The tasks themselves,
and the driver's copies of work done before, are in pipeline/running/tasks.py.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipeline.core import accounting
from pipeline.core.extractor import Extractor, WorkUnit
from pipeline.core.io import AnyPath, as_path, is_remote, makedirs, remove_tree
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import (
    STAGE_FILE,
    TASKS_DIR,
    list_shards,
    read_table,
    write_json,
)
from pipeline.core.stage import Executor, GlobalStage, ShardStage
from pipeline.running.executor import TaskFailure
from pipeline.running.fingerprints import FingerprintCache
from pipeline.running.tasks import (
    count_global_shard,
    existing_record,
    extract_task,
    finish_task,
    known_shard,
    known_unit,
    recorded_tasks,
    shard_task,
)


@dataclass
class StageReport:
    name: str
    out_dir: AnyPath
    shards_total: int = 0
    shards_reused: int = 0
    shards_computed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # kept shards, by file name
    rejected_outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0  # task seconds, summed over computed tasks
    listed: bool = True  # every task record named its outputs (records of older versions did not)

    def summary(self) -> str:
        t = accounting.totals(self.counts)
        line = (
            f"{self.name}: {self.shards_total} tasks ({self.shards_reused} reused, {self.shards_computed} computed);"
            f" docs in {t['in_docs']:,}, kept {t['kept_docs']:,}, rejected {t['rejected_docs']:,}"
        )
        if self.failed:
            line += f"; {len(self.failed)} FAILED"
        return line

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "tasks": self.shards_total,
            "failed": self.failed,
            "sources": self.counts,
            "totals": accounting.totals(self.counts),
            "outputs": sorted(self.outputs) if self.listed else None,
            "rejected_outputs": sorted(self.rejected_outputs) if self.listed else None,
            "task_seconds": round(self.seconds, 3),
        }


# ------------------------------------------------------------------------------- tasks or copies


def _map_unknown(executor: Executor, task: Any, items: list[Any], known: Any, desc: str) -> list[Any]:
    """Each item's result: `known(item)` (work done before, copied into place by the driver) or its
    task's. A lookup that fails (a cache file missing, a storage error) is left to the task, which
    reports the error with its item."""
    results: list[Any] = []
    for item in items:
        try:
            results.append(known(item))
        except Exception:  # noqa: BLE001 - see above
            results.append(None)
    todo = [i for i, r in enumerate(results) if r is None]
    for i, r in zip(todo, executor.map(task, [items[i] for i in todo], desc=desc, return_failures=True), strict=True):
        results[i] = r
    return results


def _remember(digests: FingerprintCache | None, out_dir: AnyPath, results: list[Any],
              inputs: list[str] | None = None) -> None:
    """Remember (local work directories only) the sha256 the tasks and cache records reported: of each
    input shard they read (`inputs`, in the order of `results`) and of each shard they wrote, so that a
    later step or build finds work keyed by those shards' content without reading them."""
    if digests is None or is_remote(out_dir):
        return
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            continue
        if inputs is not None and r.get("input_sha256"):
            digests.remember(inputs[i], "sha256:" + r["input_sha256"])
        for rel, sha in (r.get("output_sha256") or {}).items():
            with contextlib.suppress(FileNotFoundError):  # gone already: nothing to remember
                digests.remember(out_dir / rel, "sha256:" + sha)


def known_digests(digests: FingerprintCache | None, shards: list[AnyPath]) -> dict[str, str]:
    """{file name: hex sha256} of the local shards whose digest is remembered for their current size
    and mtime; none is read (a stat each)."""
    known: dict[str, str] = {}
    for p in shards if digests is not None else []:
        with contextlib.suppress(OSError):  # a shard that cannot be stat'ed is left to the stage
            fp = None if is_remote(p) else digests.cached(p)
            if fp and fp.startswith("sha256:"):
                known[p.name] = fp.removeprefix("sha256:")
    return known


# ---------------------------------------------------------------------------------------- runner


def _collect(report: StageReport, results: list[Any], items: list[Any], label) -> None:
    for item, res in zip(items, results, strict=True):
        if isinstance(res, TaskFailure):
            report.failed.append({"task": label(item), "error": res.message.strip().splitlines()[0]})
            continue
        _add_record(report, res)


def _add_record(report: StageReport, rec: dict[str, Any]) -> None:
    report.shards_reused += rec["reused"]
    report.shards_computed += not rec["reused"]
    report.outputs.extend(rec.get("outputs", []))
    report.rejected_outputs.extend(rec.get("rejected_outputs", []))
    report.listed = report.listed and "rejected_outputs" in rec
    if not rec["reused"]:
        report.seconds += rec.get("seconds", 0.0)
    accounting.merge(report.counts, rec["counts"])


def _write_stage_file(report: StageReport) -> None:
    accounting.check_balance(report.counts, str(report.out_dir))
    write_json(report.to_json(), report.out_dir / STAGE_FILE)


def _prepare_dir(out_dir: AnyPath) -> None:
    """A stage dir being (re)run loses its `_stage.json` first, so it never looks finished early.

    Temporary files of killed local writes are left alone: their names never match a shard, and
    another build sharing the work directory may be writing them right now.
    """
    makedirs(out_dir)
    (out_dir / STAGE_FILE).unlink(missing_ok=True)


def run_extract(
    extractor: Extractor, units: list[WorkUnit], out_dir: str | os.PathLike, executor: Executor,
    unit_cache: str | os.PathLike | None = None, digests: FingerprintCache | None = None,
) -> StageReport:
    """Extract every work unit, one task each. A unit whose task fails (e.g. a wholly unreadable
    file) is reported by name and the others still complete; a rerun retries only the failed ones.
    `unit_cache`: where units are kept by content across builds (see extract_task). `digests`: where
    the sha256 of the shards written are remembered, for the steps that read them."""
    out_dir = as_path(out_dir)
    _prepare_dir(out_dir)
    report = StageReport(f"extract:{extractor.name}", out_dir, shards_total=len(units))
    done = recorded_tasks(out_dir)
    cache = str(unit_cache) if unit_cache else ""
    items = [(type(extractor), extractor.config, u, str(out_dir), u.key in done, cache) for u in units]
    # units done before are copied into place here (their key and fingerprint say where): tasks only extract
    results = _map_unknown(executor, extract_task, items, known_unit, report.name)
    _remember(digests, out_dir, results)
    _collect(report, results, items, lambda it: it[2].payload.get("path") or it[2].key)
    ids = [read_table(out_dir / name, columns=["id"]) for name in sorted(report.outputs)]
    if ids:  # unique across the step's tasks too (two inputs may name the same document)
        accounting.check_unique_ids(pa.concat_tables(ids), report.name)
    _write_stage_file(report)
    return report


def run_shard_stage(stage: ShardStage, in_shards: list[AnyPath], out_dir: str | os.PathLike,
                    executor: Executor, shard_cache: str | os.PathLike | None = None,
                    digests: FingerprintCache | None = None) -> StageReport:
    """Run a shard stage, one task per input shard. `shard_cache`: a directory for this stage, version,
    config and files (the build keys it), where outputs are kept by input shard content (see shard_task).
    `digests`: where the input shards' sha256 are remembered (by path and inode) from the tasks that
    read them, and the output shards' from the tasks that wrote them; a later build copies a known
    shard's output into place without a task, and a later step looks its work up by them."""
    out_dir = as_path(out_dir)
    _check_unique_names(in_shards)
    _prepare_dir(out_dir)
    report = StageReport(stage.name, out_dir, shards_total=len(in_shards))
    done = recorded_tasks(out_dir)
    cache = str(shard_cache) if shard_cache else ""
    items = [(type(stage), stage.config, str(p), str(out_dir), p.stem in done, cache) for p in in_shards]
    # local shards only: on object storage each lookup would be a request per shard, made by the driver
    local = digests is not None and not is_remote(out_dir)
    results = _map_unknown(executor, shard_task, items, lambda item: known_shard(item, digests) if local else None,
                           stage.name)
    _remember(digests if local else None, out_dir, results, [item[2] for item in items])
    _collect(report, results, items, lambda it: it[2])
    if report.failed:
        raise StageFailed(report)
    _write_stage_file(report)
    return report


def run_global_stage(
    stage: GlobalStage, in_shards: list[AnyPath], out_dir: str | os.PathLike, scratch: str | os.PathLike,
    executor: Executor, shard_cache: str | os.PathLike | None = None, digests: FingerprintCache | None = None
) -> StageReport:
    """Run a global stage, then count it exactly as a shard stage: shard by shard, by file name.
    `shard_cache`: where the stage keeps its per-shard work by content (pipeline/core/shardcache.py).
    `digests`: the sha256 remembered for input shards (local work directories only); the stage gets
    those it knows, so that it can look its per-shard work up without a task reading the shard."""
    # A scratch directory of this run's own: another build sharing the work directory may be running
    # the same stage (its outputs are the same bytes; its intermediates must not be ours).
    out_dir, scratch = as_path(out_dir), as_path(scratch) / f"run-{uuid.uuid4().hex[:12]}"
    _check_unique_names(in_shards)
    _prepare_dir(out_dir)
    makedirs(scratch)
    started = time.perf_counter()
    done = all((out_dir / TASKS_DIR / f"{p.stem}.json").exists() for p in in_shards)
    given: Mapping[str, dict[str, Any]] = {}
    if not done:
        known = known_digests(None if is_remote(out_dir) else digests, in_shards)
        given = stage.run(in_shards, out_dir, scratch, executor, ShardCache(shard_cache), digests=known) or {}
    report = StageReport(stage.name, out_dir, shards_total=len(in_shards))
    recorded = recorded_tasks(out_dir)
    to_count = [p for p in in_shards if p.stem not in recorded and p.name not in given]
    counted = dict(zip((p.name for p in to_count), executor.map(
        count_global_shard, [(str(p), str(out_dir)) for p in to_count], desc=f"{stage.name}: count"), strict=True))
    for p in in_shards:
        if p.name in given:
            rec = {**finish_task(out_dir, p.stem, given[p.name], [p.name], [p.name], started), "seconds": 0.0}
        else:
            rec = existing_record(out_dir, p.stem) if p.stem in recorded else counted[p.name]
        _add_record(report, rec)
    if not done:
        report.seconds = time.perf_counter() - started
    _write_stage_file(report)
    if not done:
        remove_tree(scratch)
    return report


class StageFailed(RuntimeError):
    def __init__(self, report: StageReport) -> None:
        lines = [f"{f['task']}: {f['error']}" for f in report.failed]
        super().__init__(f"stage {report.name}: {len(report.failed)} task(s) failed:\n  " + "\n  ".join(lines))
        self.report = report


def _check_unique_names(paths: list[AnyPath]) -> None:
    seen: dict[str, AnyPath] = {}
    for p in paths:
        if p.name in seen:
            raise ValueError(f"two input shards share the name {p.name}: {seen[p.name]} and {p}")
        seen[p.name] = p


def stage_inputs(dirs: list[str | os.PathLike]) -> list[AnyPath]:
    shards: list[AnyPath] = []
    for d in dirs:
        shards.extend(list_shards(d))
    return sorted(shards, key=lambda p: p.name)
