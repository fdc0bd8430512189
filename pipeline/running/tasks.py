"""What runs in a worker for the runner (pipeline/running/runner.py): one extraction unit, one shard of
a shard stage, the counting of one shard of a global stage; and what the driver can do instead of a
task when the work was done before (`known_unit`, `known_shard`: copy it into place from a cache).

A task writes its shards, then its record `_tasks/<name>.json`, the commit point: a task whose record
exists is never recomputed, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from pipeline.core import accounting
from pipeline.core.config import stable_hash
from pipeline.core.extractor import WorkUnit
from pipeline.core.io import AnyPath, as_path, is_remote
from pipeline.core.schema import DOC_SCHEMA, Doc, Rejected, docs_to_table, with_rejection
from pipeline.core.shardcache import ShardCache, content_key
from pipeline.core.shards import (
    REJECTED_DIR,
    TASKS_DIR,
    read_json,
    read_shard_bytes,
    read_table,
    table_from_bytes,
    write_json,
    write_table_sha256,
)
from pipeline.running.fingerprints import FingerprintCache

SHARD_MAX_DOCS = 20_000
SHARD_MAX_TEXT_BYTES = 128 << 20


_STAGE_CACHE: dict[tuple[type, str], Any] = {}


def _stage_instance(cls: type, config: Any) -> Any:
    """One set-up stage object per worker process and config (models load once, not per shard)."""
    key = (cls, stable_hash(config))
    if key not in _STAGE_CACHE:
        stage = cls(config)
        stage.setup()
        _STAGE_CACHE[key] = stage
    return _STAGE_CACHE[key]


def finish_task(out_dir: AnyPath, name: str, counts: dict[str, Any], outputs: list[str],
                 rejected_outputs: list[str], started: float,
                 output_sha256: dict[str, str] | None = None) -> dict[str, Any]:
    """Write the task's record: the commit point that makes its shards count (written last).
    `output_sha256`: the sha256 of the shards written, by path under `out_dir`, so that the driver can
    remember them (and a copy from a cache report them) without anyone reading the shards again."""
    accounting.check_balance(counts, f"{out_dir.name}/{name}")
    record = {"task": name, "counts": counts, "outputs": outputs, "rejected_outputs": rejected_outputs,
              "seconds": round(time.perf_counter() - started, 3)}
    if output_sha256 is not None:
        record["output_sha256"] = output_sha256
    write_json(record, out_dir / TASKS_DIR / f"{name}.json")
    return {**record, "reused": False}


def existing_record(out_dir: AnyPath, name: str) -> dict[str, Any] | None:
    try:
        return {**read_json(out_dir / TASKS_DIR / f"{name}.json"), "reused": True}
    except FileNotFoundError:
        return None


def recorded_tasks(out_dir: AnyPath) -> set[str]:
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
    if recorded and (rec := existing_record(out_dir, name)) is not None:
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
    shards = {f"{name}.parquet": result.kept, f"{REJECTED_DIR}/{name}.parquet": result.rejected}
    written = {rel: write_table_sha256(t, out_dir / rel) for rel, t in shards.items()}
    counts = accounting.count_shard(table, result.kept, result.rejected)
    record = finish_task(out_dir, name, counts, [f"{name}.parquet"], [f"{name}.parquet"], started, written)
    cache.store(entry, files, {k: v for k, v in record.items() if k != "reused"})
    return {**record, "input_sha256": sha}


def _shard_files(out_dir: AnyPath, name: str) -> dict[str, AnyPath]:
    return {"kept.parquet": out_dir / f"{name}.parquet", "rejected.parquet": out_dir / REJECTED_DIR / f"{name}.parquet"}


def known_shard(args: tuple[type, Any, str, str, bool, str], digests: FingerprintCache | None) -> dict[str, Any] | None:
    """For the driver: the record of a shard done already, in this step (its record) or by any build
    (the shard cache, found by the input's digest that an earlier build's task recorded, and copied
    into place); None when a task must read the shard. Nothing is read but small records."""
    _, _, in_path, out_dir_s, recorded, cache_dir = args
    out_dir, name = as_path(out_dir_s), as_path(in_path).stem
    if recorded and (rec := existing_record(out_dir, name)) is not None:
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
    if (known := known_unit(args)) is not None:
        return known
    cache = ShardCache(cache_dir if unit.fingerprint else None)
    entry = cache.entry(unit.fingerprint, key=unit.key)
    record = _extract_unit(cls, config, unit, out_dir, started)
    cache.store(entry, _unit_files(record, out_dir), {k: v for k, v in record.items() if k != "reused"})
    return record


def known_unit(args: tuple[type, Any, WorkUnit, str, bool, str]) -> dict[str, Any] | None:
    """The record of a unit done already, in this step (its record) or by any build (the unit cache,
    copied into place); None when it must be extracted."""
    _, _, unit, out_dir_s, recorded, cache_dir = args
    out_dir = as_path(out_dir_s)
    if recorded and (rec := existing_record(out_dir, unit.key)) is not None:
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
    written: dict[str, str] = {}  # sha256 by path under out_dir

    def flush_kept() -> None:
        nonlocal kept, kept_bytes
        name = f"{cls.name}-{unit.key}-{len(outputs):05d}.parquet"
        table = docs_to_table(kept)
        written[name] = write_table_sha256(table, out_dir / name)
        accounting.merge(counts, accounting.count_shard(None, table, with_rejection(DOC_SCHEMA.empty_table(), "", [])))
        outputs.append(name)
        kept, kept_bytes = [], 0

    rejected_parts = 0
    rejected_outputs: list[str] = []

    def flush_rejected() -> None:
        nonlocal rejected, rejected_parts
        table = with_rejection(docs_to_table(r.doc() for r in rejected), stage_name, [r.reason for r in rejected])
        rejected_name = f"{cls.name}-{unit.key}-{rejected_parts:05d}.parquet"
        written[f"{REJECTED_DIR}/{rejected_name}"] = write_table_sha256(table, out_dir / REJECTED_DIR / rejected_name)
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
    return finish_task(out_dir, unit.key, counts, outputs, rejected_outputs, started, written)


def count_global_shard(args: tuple[str, str]) -> dict[str, Any]:
    """Count one input shard of a global stage and what the stage wrote for it (a task: the text
    columns of every shard are read, in parallel, not by the driver), and write its task record."""
    in_path, out_dir_s = args
    p, out_dir = as_path(in_path), as_path(out_dir_s)
    kept = read_table(out_dir / f"{p.stem}.parquet", columns=["source", "text"])
    rejected = read_table(out_dir / REJECTED_DIR / f"{p.stem}.parquet", columns=["source", "reason", "text"])
    counts = accounting.count_shard(read_table(p, columns=["source", "text"]), kept, rejected)
    rec = finish_task(out_dir, p.stem, counts, [p.name], [p.name], time.perf_counter())
    rec["seconds"] = 0.0
    return rec
