"""Immutable corpus versions and their manifests.

A version directory is content-addressed: its name is a hash of the resolved config and the keys of
every step that produced it, so the same inputs and config always land in the same, never rewritten,
directory. `manifest.json` holds everything that must be equal between two reproductions;
`run.json` beside it holds what legitimately differs (time, host, durations).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import __version__
from pipeline.core import accounting
from pipeline.core.config import stable_hash
from pipeline.core.io import (
    AnyPath,
    RemotePath,
    as_path,
    copy_file,
    makedirs,
    parquet_bytes,
    parquet_num_rows,
    read_json,
    sha256_file,
    write_bytes_atomic,
    write_json,
)
from pipeline.core.schema import is_skipped_record
from pipeline.core.shardcache import ShardCache
from pipeline.core.shards import list_rejected, list_shards, read_table
from pipeline.running.buildconfig import BuildConfig
from pipeline.running.fingerprints import FingerprintCache
from pipeline.versions.lineage import SAMPLES_FILE, step_columns
from pipeline.versions.rejected import build_rejected_ledger, build_samples, rejected_parts

MANIFEST_SCHEMA_VERSION = 1
RUN_FILE = "run.json"  # beside manifest.json: what legitimately differs between reproductions
KEY_PACKAGES = ("pyarrow", "ray", "tokenizers", "trafilatura", "fasttext", "datasketch", "warcio", "zstandard", "numpy")


@dataclass
class Version:
    version: str
    dir: AnyPath
    manifest_path: AnyPath



SOURCE_PACKAGES = ("pipeline", "sources", "filters", "dedup")


def source_sha256() -> str:
    """A content hash of the code that runs: every `*.py` of the installed packages, by path relative
    to the packages' parent (sorted), each as path and content. The same wherever the code was copied
    to (a checkout, an install, Ray's unpacked working_dir), unlike a git commit, which needs `.git`."""
    import importlib.util

    files: list[tuple[str, Path]] = []
    for name in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            pkg = Path(location)
            files += [(f"{name}/{p.relative_to(pkg).as_posix()}", p) for p in pkg.rglob("*.py") if p.is_file()]
    h = hashlib.sha256()
    for rel, p in sorted(files):
        data = p.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def code_version() -> dict[str, Any]:
    """The code a version was built with: `source_sha256` always; the git commit when the packages run
    from a git checkout (not, e.g., from the copy `ray job submit --working-dir` uploads)."""
    root = Path(__file__).resolve().parents[2]
    info: dict[str, Any] = {"package": __version__, "source_sha256": source_sha256(), "git_commit": None,
                            "git_dirty": None}
    if not (root / ".git").exists():  # never the commit of some repository that happens to enclose it
        return info
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True, timeout=10).stdout
        info.update(git_commit=commit, git_dirty=bool(status.strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def environment() -> dict[str, Any]:
    pkgs = {}
    for name in KEY_PACKAGES:
        try:
            pkgs[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pkgs[name] = None
    return {"python": platform.python_version(), "packages": pkgs}


LEDGER_PART = "2"  # the format of a shard's ledger rows kept in the shard cache (2: Arrow IPC)


def build_ledger(shards: list[AnyPath], sha256: list[str] | None = None, cache: ShardCache | None = None) -> pa.Table:
    """Per document: shard, id, source and a content hash — enough for document-level diffs.

    With the shards' `sha256` and a `cache`, each shard's rows are kept by its content: a grown corpus
    hashes the texts of its new shards only."""
    cache = cache or ShardCache(None)
    parts = []
    for shard, sha in zip(shards, sha256 or [None] * len(shards), strict=True):
        entry = cache.entry(sha, kind="ledger", format=LEDGER_PART) if sha else None
        t = cache.table(entry, "ledger.arrow", lambda shard=shard: _ledger_rows(shard))
        parts.append(t.add_column(0, "shard", pa.array([shard.name] * t.num_rows, pa.string())))
    if not parts:
        return pa.table({"shard": pa.array([], pa.string()), "id": pa.array([], pa.string()),
                         "source": pa.array([], pa.string()), "text_sha256": pa.array([], pa.string()),
                         "text_bytes": pa.array([], pa.int64())})
    return pa.concat_tables(parts)


def _ledger_rows(shard: AnyPath) -> pa.Table:
    t = read_table(shard, columns=["id", "source", "text"])
    hashes = [hashlib.sha256(s.encode()).hexdigest()[:32] for s in t.column("text").to_pylist()]
    return pa.table({"id": t.column("id"), "source": t.column("source"), "text_sha256": pa.array(hashes, pa.string()),
                     "text_bytes": pc.binary_length(t.column("text").cast(pa.binary()))})


def write_version(config: BuildConfig, result, *, sources: list[str], out: str | os.PathLike,
                  workdir: str | os.PathLike) -> Version:
    """Write the version directory: content-addressed, never overwritten.

    The version name hashes the config, the step keys and the sha256 of every output, so two builds get
    the same name exactly when they hold the same bytes (a Reddit page fetched again at another time is
    different content, hence a different version). The name is computed before anything is written,
    so files go straight to their final place (object storage has no rename) and `manifest.json`,
    written last, is what makes a version exist: a killed write leaves a directory without one, which
    the next build completes. A build whose step keys were already written as a version returns that
    version without re-hashing its outputs.
    """
    started = float(getattr(result, "started", 0.0) or time.time())
    build_key = stable_hash({"config": config.identity, "sources": sources, "steps": [s.key for s in result.steps],
                             "outputs": result.outputs_key})
    root = makedirs(as_path(out) / config.corpus.name)
    known = root / ".builds" / build_key
    if known.is_file():
        version = known.read_text().strip()
        if (root / version / "manifest.json").exists():
            return Version(version, root / version, root / version / "manifest.json")
    shards = sorted((p for d in result.final_dirs for p in list_shards(d)), key=lambda p: p.name)
    # (source, path in the version, entry extras), in manifest order
    plan: list[tuple[Any, str, dict[str, Any]]] = [
        (shard, f"docs/{shard.name}", {"docs": parquet_num_rows(shard)}) for shard in shards]
    # a shard copied from the shard cache (a hard link) is the file hashed by an earlier build: not read again
    digests = FingerprintCache(as_path(workdir) / "cache" / "fingerprints.json")
    files = [{"path": rel, "bytes": src.stat().st_size, "sha256": _digest(digests, src), **extra}
             for src, rel, extra in plan]
    tokens_summary: dict[str, Any] = {}
    if result.outputs_dir is not None:
        tokens_summary, extra_plan = _outputs_plan(result)
        plan += extra_plan
        files += [{"path": rel, "bytes": src.stat().st_size, "sha256": _digest(digests, src), **extra}
                  for src, rel, extra in extra_plan]
    parts_cache = ShardCache(result.ledger_cache)
    ledger = build_ledger(shards, [f["sha256"] for f in files[:len(shards)]], parts_cache)
    with ThreadPoolExecutor(max_workers=2) as pool:  # Arrow compresses without the GIL: a file a thread
        ledger_job = pool.submit(parquet_bytes, ledger)
        rejected_shards = [s for step in result.steps for s in list_rejected(step.out_dir)]
        parts = rejected_parts(rejected_shards, [_digest(digests, s) for s in rejected_shards], parts_cache)
        digests.save()
        rejected = build_rejected_ledger(parts)
        rejected_job = pool.submit(parquet_bytes, rejected)
        samples = build_samples(parts)
        del parts
        samples_bytes = parquet_bytes(samples)
        ledger_bytes, rejected_bytes = ledger_job.result(), rejected_job.result()
    content = [f["sha256"] for f in files] + [_sha(ledger_bytes), _sha(rejected_bytes), _sha(samples_bytes)]
    version = stable_hash({"build": build_key, "content": content}, n=12)
    vdir = root / version
    manifest_path = vdir / "manifest.json"
    if not manifest_path.exists():
        for src, rel, _ in plan:
            dst = vdir / rel
            if not (dst.exists() and dst.stat().st_size == src.stat().st_size):
                copy_file(src, dst)
        write_bytes_atomic(ledger_bytes, vdir / "ledger.parquet")
        write_bytes_atomic(rejected_bytes, vdir / "rejected.parquet")
        write_bytes_atomic(samples_bytes, vdir / SAMPLES_FILE)
        reports = {}
        for step in result.steps:
            for report_name, file_name in sorted(step.report_files.items()):
                report = step.out_dir / file_name
                if report.exists():
                    copy_file(report, vdir / file_name)
                    reports[report_name] = _file_entry(vdir, file_name)
        manifest = {
            "reports": reports,
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "corpus": config.corpus.name,
            "version": version,
            "config": {"hash": config.hash, "resolved": config.identity, "effective": config.effective},
            "sources": sources,
            "code": code_version(),
            "environment": environment(),
            "inputs": {s.name: s.inputs for s in result.steps if s.inputs},
            "stages": [
                {"name": s.name, "key": s.key, "config_section": s.section, "tasks": s.report.shards_total, "failed": s.report.failed,
                 "sources": s.report.counts, "totals": accounting.totals(s.report.counts),
                 "records_skipped": skipped_records(s.report.counts), "columns": step_columns(s.out_dir)}
                for s in result.steps
            ],
            "outputs": files,
            "ledger": {"path": "ledger.parquet", "bytes": len(ledger_bytes), "sha256": _sha(ledger_bytes),
                       "docs": ledger.num_rows},
            "rejected_ledger": {"path": "rejected.parquet", "bytes": len(rejected_bytes),
                                "sha256": _sha(rejected_bytes), "docs": rejected.num_rows},
            "samples": {"path": SAMPLES_FILE, "bytes": len(samples_bytes), "sha256": _sha(samples_bytes),
                        "docs": samples.num_rows},
            "tokens": tokens_summary,
            "totals": {"docs": ledger.num_rows, "text_bytes": int(pc.sum(ledger.column("text_bytes")).as_py() or 0)},
        }
        write_json({
            "started": started, "finished": time.time(), "host": socket.gethostname(), "pid": os.getpid(),
            "reused": {s.name: s.report.shards_reused for s in result.steps},
            "computed": {s.name: s.report.shards_computed for s in result.steps},
            "seconds": {s.name: round(s.report.seconds, 3) for s in result.steps},
        }, vdir / RUN_FILE)
        write_json(manifest, manifest_path)  # the commit point: last
    write_bytes_atomic((version + "\n").encode(), known)
    if config.corpus.manifests_dir:
        copy_file(manifest_path, as_path(config.corpus.manifests_dir) / config.corpus.name / f"{version}.json")
    return Version(version, vdir, manifest_path)


def skipped_records(counts: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Per source, the rejected records that were never documents (`cc:request`, `cc:warcinfo`, ...):
    still counted in `rejected_docs`, so in = kept + rejected holds, but reported apart."""
    out = {src: sum(n for r, n in c["reasons"].items() if is_skipped_record(r)) for src, c in sorted(counts.items())}
    return {src: n for src, n in out.items() if n}


def read_run(manifest_path: AnyPath) -> dict[str, Any] | None:
    """The `run.json` beside a manifest (local or a URI): when the build ran, where, and the task
    seconds of each step (`seconds`: {step name: seconds}). None where there is none: a committed copy
    in manifests/, or a version whose directory lost it."""
    path = manifest_path.parent / RUN_FILE
    if not path.exists():
        return None
    run = read_json(path)
    return run if isinstance(run, dict) else None


def step_seconds(run: dict[str, Any] | None) -> dict[str, float] | None:
    """{step name: task seconds} of a run, or None when it recorded none (versions before seconds)."""
    seconds = (run or {}).get("seconds")
    if not isinstance(seconds, dict):
        return None
    return {str(k): float(v) for k, v in seconds.items() if isinstance(v, int | float)}


def wall_seconds(run: dict[str, Any] | None) -> float | None:
    """From the build's start to its version being written, or None."""
    if not run or not isinstance(run.get("started"), int | float) or not isinstance(run.get("finished"), int | float):
        return None
    return max(0.0, run["finished"] - run["started"])


def format_seconds(seconds: float) -> str:
    """12.34s, 3m07s, 2h05m09s."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


OUTPUT_DIRS = ("text", "tokens", "megatron")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(digests: FingerprintCache, path: AnyPath) -> str:
    return digests.of(path).removeprefix("sha256:")


def _outputs_plan(result) -> tuple[dict[str, Any], list[tuple[Any, str, dict[str, Any]]]]:
    """The text shards, token shards, Megatron export and trained tokenizer that go into the version
    (temporary files of killed writes, named `.*`, never do), and the token summary."""
    src_root = result.outputs_dir
    summary = result.outputs
    token_counts = {}
    for split, index in summary.get("tokens", {}).items():
        for shard in index.get("shards", []):
            token_counts[f"tokens/{split}/{shard['path']}"] = (shard["docs"], shard["tokens"])
    extra = [p for d in OUTPUT_DIRS if (src_root / d).is_dir() for p in sorted((src_root / d).rglob("*"))
             if (isinstance(p, RemotePath) or p.is_file())  # a remote glob yields only objects
             and "_tasks" not in _rel(p, src_root).split("/") and not p.name.startswith(".")]
    for name in ("tokenizer.json", "mix/_mix.json"):
        if (src_root / name).is_file():
            extra.append(src_root / name)
    plan = []
    for src in extra:
        rel = _rel(src, src_root)
        plan.append((src, rel, dict(zip(("docs", "tokens"), token_counts[rel], strict=True)) if rel in token_counts else {}))
    tokens = summary.get("tokens", {})
    train = tokens.get("train", {})
    any_index = next(iter(tokens.values()), {})
    return {
        "tokenizer_sha256": any_index.get("tokenizer_sha256"),
        "vocab_size": any_index.get("vocab_size"),
        "dtype": any_index.get("dtype"),
        "splits": {s: {"docs": i.get("docs", 0), "tokens": i.get("tokens", 0)} for s, i in sorted(tokens.items())},
        "per_source": {s: c["tokens"] for s, c in sorted(train.get("sources", {}).items())},
    }, plan


def _rel(path: Any, root: Any) -> str:
    rel = path.relative_to(root)
    return rel if isinstance(rel, str) else rel.as_posix()


def _file_entry(root: Any, rel: str, **extra: Any) -> dict[str, Any]:
    path = root / rel
    return {"path": rel, "bytes": path.stat().st_size, "sha256": sha256_file(path), **extra}
