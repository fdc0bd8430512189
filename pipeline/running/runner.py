"""Runs extractors and stages over shard directories: one task per shard, resumable, counted.

A stage's output directory holds `*.parquet` (kept), `rejected/*.parquet`, `_tasks/<shard>.json`
(one per finished task, written after its shards) and `_stage.json` (written last). A task whose
record exists is never recomputed, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipeline.core import accounting
from pipeline.core.config import stable_hash
from pipeline.core.extractor import Extractor, WorkUnit
from pipeline.core.io import AnyPath, as_path, is_remote, makedirs, remove_tree
from pipeline.core.schema import DOC_SCHEMA, Doc, Rejected, docs_to_table, with_rejection
from pipeline.core.shardcache import ShardCache, content_key
from pipeline.core.shards import (
    REJECTED_DIR,
    STAGE_FILE,
    TASKS_DIR,
    list_shards,
    read_json,
    read_shard_bytes,
    read_table,
    table_from_bytes,
    write_json,
    write_table,
)
from pipeline.core.stage import Executor, GlobalStage, ShardStage
from pipeline.running.executor import TaskFailure
from pipeline.running.fingerprints import FingerprintCache

SHARD_MAX_DOCS = 20_000
SHARD_MAX_TEXT_BYTES = 128 << 20


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


# ----------------------------------------------------------------------------------------- tasks


_STAGE_CACHE: dict[tuple[type, str], Any] = {}


def _stage_instance(cls: type, config: Any) -> Any:
    """One set-up stage object per worker process and config (models load once, not per shard)."""
    key = (cls, stable_hash(config))
    if key not in _STAGE_CACHE:
        stage = cls(config)
        stage.setup()
        _STAGE_CACHE[key] = stage
    return _STAGE_CACHE[key]


def _finish_task(out_dir: AnyPath, name: str, counts: dict[str, Any], outputs: list[str],
                 rejected_outputs: list[str], started: float) -> dict[str, Any]:
    """Write the task's record: the commit point that makes its shards count (written last)."""
    accounting.check_balance(counts, f"{out_dir.name}/{name}")
    record = {"task": name, "counts": counts, "outputs": outputs, "rejected_outputs": rejected_outputs,
              "seconds": round(time.perf_counter() - started, 3)}
    write_json(record, out_dir / TASKS_DIR / f"{name}.json")
    return {**record, "reused": False}


def _existing_record(out_dir: AnyPath, name: str) -> dict[str, Any] | None:
    try:
        return {**read_json(out_dir / TASKS_DIR / f"{name}.json"), "reused": True}
    except FileNotFoundError:
        return None


def _recorded(out_dir: AnyPath) -> set[str]:
    """The tasks with a record, from one listing: a task the listing does not show skips its own check
    (on object storage a request per task); one finished meanwhile by another build is redone, same bytes."""
    return {p.stem for p in (out_dir / TASKS_DIR).glob("*.json")}


def shard_task(args: tuple[type, Any, str, str, bool, str]) -> dict[str, Any]:
    """Apply one shard stage to one input shard; the output shards keep the input's file name.

    With a shard cache (`cache`: a directory keyed by the stage, its version, config and files), the
    output is also keyed by the input shard's content: the same shard reached through another build,
    another source selection or another work directory is copied from there (a hard link locally, a
    server-side copy on object storage), not computed again; the bytes are the same either way."""
    cls, config, in_path, out_dir_s, recorded, cache_dir = args
    started = time.perf_counter()
    out_dir, name = as_path(out_dir_s), as_path(in_path).stem
    if recorded and (rec := _existing_record(out_dir, name)) is not None:
        return rec
    data = read_shard_bytes(in_path)
    sha = content_key(data)
    cache = ShardCache(cache_dir)
    entry = cache.entry(sha, name=name)
    files = _shard_files(out_dir, name)
    if (cached := cache.lookup(entry)) is not None:
        return {**_restored(cache, entry, files, cached, out_dir, name), "input_sha256": sha}
    table = table_from_bytes(data, in_path)
    stage = _stage_instance(cls, config)
    result = stage.process(table)
    accounting.check_unique_ids(pa.concat_tables([result.kept.select(["id"]), result.rejected.select(["id"])]),
                                f"{stage.name}/{name}")
    write_table(result.kept, out_dir / f"{name}.parquet")
    write_table(result.rejected, out_dir / REJECTED_DIR / f"{name}.parquet")
    counts = accounting.count_shard(table, result.kept, result.rejected)
    record = _finish_task(out_dir, name, counts, [f"{name}.parquet"], [f"{name}.parquet"], started)
    cache.store(entry, files, {k: v for k, v in record.items() if k != "reused"})
    return {**record, "input_sha256": sha}


def _shard_files(out_dir: AnyPath, name: str) -> dict[str, AnyPath]:
    return {"kept.parquet": out_dir / f"{name}.parquet", "rejected.parquet": out_dir / REJECTED_DIR / f"{name}.parquet"}


def _known_shard(args: tuple[type, Any, str, str, bool, str], digests: FingerprintCache | None) -> dict[str, Any] | None:
    """For the driver: the record of a shard done already, in this step (its record) or by any build
    (the shard cache, found by the input's digest that an earlier build's task recorded, and copied
    into place); None when a task must read the shard. Nothing is read but small records."""
    _, _, in_path, out_dir_s, recorded, cache_dir = args
    out_dir, name = as_path(out_dir_s), as_path(in_path).stem
    if recorded and (rec := _existing_record(out_dir, name)) is not None:
        return rec
    fingerprint = digests.cached(in_path) if digests is not None and not is_remote(in_path) else None
    if fingerprint is None or not cache_dir:
        return None
    sha = fingerprint.removeprefix("sha256:")
    cache = ShardCache(cache_dir)
    entry = cache.entry(sha, name=name)
    if (cached := cache.lookup(entry)) is None:
        return None
    return {**_restored(cache, entry, _shard_files(out_dir, name), cached, out_dir, name), "input_sha256": sha}


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


def _restored(cache: ShardCache, entry: AnyPath, files: dict[str, AnyPath], cached: dict[str, Any],
              out_dir: AnyPath, name: str) -> dict[str, Any]:
    """A task done from a cache entry: its files copied into place, then its record (the commit)."""
    cache.restore(entry, files)
    write_json({**cached, "cached": True}, out_dir / TASKS_DIR / f"{name}.json")
    return {**cached, "reused": True}


def _unit_files(record: dict[str, Any], out_dir: AnyPath) -> dict[str, AnyPath]:
    """An extraction unit's shards, by their name in a cache entry."""
    return {**{n: out_dir / n for n in record["outputs"]},
            **{f"{REJECTED_DIR}/{n}": out_dir / REJECTED_DIR / n for n in record["rejected_outputs"]}}


def extract_task(args: tuple[type, Any, WorkUnit, str, bool, str]) -> dict[str, Any]:
    """Extract one work unit into parts of bounded size; the task record makes the unit done.

    With a cache (keyed by the extractor, its version and config), a unit is also kept by its key and
    content fingerprint: adding files to a source's inputs extracts only the new ones."""
    cls, config, unit, out_dir_s, recorded, cache_dir = args
    started = time.perf_counter()
    out_dir = as_path(out_dir_s)
    if (known := _known_unit(args)) is not None:
        return known
    cache = ShardCache(cache_dir if unit.fingerprint else None)
    entry = cache.entry(unit.fingerprint, key=unit.key)
    record = _extract_unit(cls, config, unit, out_dir, started)
    cache.store(entry, _unit_files(record, out_dir), {k: v for k, v in record.items() if k != "reused"})
    return record


def _known_unit(args: tuple[type, Any, WorkUnit, str, bool, str]) -> dict[str, Any] | None:
    """The record of a unit done already, in this step (its record) or by any build (the unit cache,
    copied into place); None when it must be extracted."""
    _, _, unit, out_dir_s, recorded, cache_dir = args
    out_dir = as_path(out_dir_s)
    if recorded and (rec := _existing_record(out_dir, unit.key)) is not None:
        return rec
    cache = ShardCache(cache_dir if unit.fingerprint else None)
    entry = cache.entry(unit.fingerprint, key=unit.key)
    if (cached := cache.lookup(entry)) is not None:
        return _restored(cache, entry, _unit_files(cached, out_dir), cached, out_dir, unit.key)
    return None


def _extract_unit(cls: type, config: Any, unit: WorkUnit, out_dir: AnyPath, started: float) -> dict[str, Any]:
    extractor = _stage_instance(cls, config)
    stage_name = f"extract:{cls.name}"
    kept: list[Doc] = []
    rejected: list[Rejected] = []
    kept_bytes = 0
    outputs: list[str] = []
    counts: dict[str, Any] = {}

    def flush_kept() -> None:
        nonlocal kept, kept_bytes
        name = f"{cls.name}-{unit.key}-{len(outputs):05d}.parquet"
        table = docs_to_table(kept)
        write_table(table, out_dir / name)
        accounting.merge(counts, accounting.count_shard(None, table, with_rejection(DOC_SCHEMA.empty_table(), "", [])))
        outputs.append(name)
        kept, kept_bytes = [], 0

    rejected_parts = 0
    rejected_outputs: list[str] = []

    def flush_rejected() -> None:
        nonlocal rejected, rejected_parts
        table = with_rejection(docs_to_table(r.doc() for r in rejected), stage_name, [r.reason for r in rejected])
        rejected_name = f"{cls.name}-{unit.key}-{rejected_parts:05d}.parquet"
        write_table(table, out_dir / REJECTED_DIR / rejected_name)
        rejected_outputs.append(rejected_name)
        accounting.merge(counts, accounting.count_shard(None, DOC_SCHEMA.empty_table(), table))
        rejected_parts += 1
        rejected = []

    seen: set[str] = set()
    repeated: list[str] = []
    for item in extractor.extract(unit):
        if item.id in seen:
            repeated.append(item.id)
        seen.add(item.id)
        if isinstance(item, Rejected):
            rejected.append(item)
            if len(rejected) >= SHARD_MAX_DOCS * 5:
                flush_rejected()
        else:
            kept.append(item)
            kept_bytes += len(item.text)
            if len(kept) >= SHARD_MAX_DOCS or kept_bytes >= SHARD_MAX_TEXT_BYTES:
                flush_kept()
    if repeated:
        raise accounting.AccountingError(
            f"{stage_name} {unit.key}: {len(repeated)} document ids occur more than once: "
            + ", ".join(sorted(set(repeated))[:5]))
    if kept or not outputs:
        flush_kept()
    if rejected or rejected_parts == 0:
        flush_rejected()
    return _finish_task(out_dir, unit.key, counts, outputs, rejected_outputs, started)


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
    unit_cache: str | os.PathLike | None = None,
) -> StageReport:
    """Extract every work unit, one task each. A unit whose task fails (e.g. a wholly unreadable
    file) is reported by name and the others still complete; a rerun retries only the failed ones.
    `unit_cache`: where units are kept by content across builds (see extract_task)."""
    out_dir = as_path(out_dir)
    _prepare_dir(out_dir)
    report = StageReport(f"extract:{extractor.name}", out_dir, shards_total=len(units))
    done = _recorded(out_dir)
    cache = str(unit_cache) if unit_cache else ""
    items = [(type(extractor), extractor.config, u, str(out_dir), u.key in done, cache) for u in units]
    # units done before are copied into place here (their key and fingerprint say where): tasks only extract
    results = _map_unknown(executor, extract_task, items, _known_unit, report.name)
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
    read them; a later build copies a known shard's output into place without a task."""
    out_dir = as_path(out_dir)
    _check_unique_names(in_shards)
    _prepare_dir(out_dir)
    report = StageReport(stage.name, out_dir, shards_total=len(in_shards))
    done = _recorded(out_dir)
    cache = str(shard_cache) if shard_cache else ""
    items = [(type(stage), stage.config, str(p), str(out_dir), p.stem in done, cache) for p in in_shards]
    # local shards only: on object storage each lookup would be a request per shard, made by the driver
    local = digests is not None and not is_remote(out_dir)
    results = _map_unknown(executor, shard_task, items, lambda item: _known_shard(item, digests) if local else None,
                           stage.name)
    if local:
        for item, r in zip(items, results, strict=True):
            if isinstance(r, dict) and r.get("input_sha256"):
                digests.remember(item[2], "sha256:" + r["input_sha256"])
    _collect(report, results, items, lambda it: it[2])
    if report.failed:
        raise StageFailed(report)
    _write_stage_file(report)
    return report


def run_global_stage(
    stage: GlobalStage, in_shards: list[AnyPath], out_dir: str | os.PathLike, scratch: str | os.PathLike,
    executor: Executor, shard_cache: str | os.PathLike | None = None
) -> StageReport:
    """Run a global stage, then count it exactly as a shard stage: shard by shard, by file name.
    `shard_cache`: where the stage keeps its per-shard work by content (pipeline/core/shardcache.py)."""
    # A scratch directory of this run's own: another build sharing the work directory may be running
    # the same stage (its outputs are the same bytes; its intermediates must not be ours).
    out_dir, scratch = as_path(out_dir), as_path(scratch) / f"run-{uuid.uuid4().hex[:12]}"
    _check_unique_names(in_shards)
    _prepare_dir(out_dir)
    makedirs(scratch)
    started = time.perf_counter()
    done = all((out_dir / TASKS_DIR / f"{p.stem}.json").exists() for p in in_shards)
    given = (stage.run(in_shards, out_dir, scratch, executor, ShardCache(shard_cache)) or {}) if not done else {}
    report = StageReport(stage.name, out_dir, shards_total=len(in_shards))
    recorded = _recorded(out_dir)
    to_count = [p for p in in_shards if p.stem not in recorded and p.name not in given]
    counted = dict(zip((p.name for p in to_count), executor.map(
        _count_global_shard, [(str(p), str(out_dir)) for p in to_count], desc=f"{stage.name}: count"), strict=True))
    for p in in_shards:
        if p.name in given:
            rec = {**_finish_task(out_dir, p.stem, given[p.name], [p.name], [p.name], started), "seconds": 0.0}
        else:
            rec = _existing_record(out_dir, p.stem) if p.stem in recorded else counted[p.name]
        _add_record(report, rec)
    if not done:
        report.seconds = time.perf_counter() - started
    _write_stage_file(report)
    if not done:
        remove_tree(scratch)
    return report


def _count_global_shard(args: tuple[str, str]) -> dict[str, Any]:
    """Count one input shard of a global stage and what the stage wrote for it (a task: the text
    columns of every shard are read, in parallel, not by the driver), and write its task record."""
    in_path, out_dir_s = args
    p, out_dir = as_path(in_path), as_path(out_dir_s)
    kept = read_table(out_dir / f"{p.stem}.parquet", columns=["source", "text"])
    rejected = read_table(out_dir / REJECTED_DIR / f"{p.stem}.parquet", columns=["source", "reason", "text"])
    counts = accounting.count_shard(read_table(p, columns=["source", "text"]), kept, rejected)
    rec = _finish_task(out_dir, p.stem, counts, [p.name], [p.name], time.perf_counter())
    rec["seconds"] = 0.0
    return rec


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
