"""`corpus build`: every configured source extracted, then every enabled stage, then the outputs.

Each step's output directory is keyed by a hash of (step name, code version, config, input keys), so
a rebuild reuses every step whose key is unchanged and a killed build resumes task by task.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.core import accounting
from pipeline.core.config import ConfigError, stable_hash, to_plain
from pipeline.core.extractor import InputError, PlanContext, WorkUnit, expand_inputs
from pipeline.core.io import AnyPath, as_path, cache_dir, copy_file, is_remote
from pipeline.core.shards import STAGE_FILE, read_json
from pipeline.core.stage import Executor, GlobalStage
from pipeline.running.buildconfig import BuildConfig, with_workdir_var
from pipeline.running.configpaths import keyed_paths
from pipeline.running.gc import record_build
from pipeline.running.registry import extractor_class, stage_class
from pipeline.running.runner import StageReport, run_extract, run_global_stage, run_shard_stage, stage_inputs

URL_PREFIXES = ("http://", "https://")


@dataclass
class StepResult:
    name: str
    key: str
    out_dir: AnyPath
    report: StageReport
    inputs: list[dict[str, str]] = field(default_factory=list)
    section: str = ""  # the config table this step's options come from, e.g. `stages.quality`
    report_files: dict[str, str] = field(default_factory=dict)  # the stage's reports that go into a version


@dataclass
class BuildResult:
    steps: list[StepResult]
    final_dirs: list[AnyPath]
    outputs_dir: AnyPath | None = None  # mix, text shards, token shards, Megatron export
    outputs: dict[str, Any] | None = None  # their summary (tokenizer hash, shards with sha256, tokens)
    outputs_key: str = ""
    stopped_after: str = ""  # set when the build stopped early (`--until`): no version is written
    uses: list[AnyPath] = field(default_factory=list)  # step, cache and scratch directories (corpus gc)
    started: float = 0.0  # time.time() when run_build began: run.json's `started`
    ledger_cache: AnyPath | None = None  # where the version's ledger rows and rejected parts are kept by shard content


class EmptySourceError(RuntimeError):
    """A source whose extraction kept no document (no input records, all rejected, all failed): a
    build from it would be silently empty (`corpus build` exits 1; `--allow-empty` builds anyway)."""


def empty_source(name: str, step: StepResult) -> str | None:
    """What went wrong when the extraction step of source `name` kept no document, else None."""
    counts = step.report.counts
    totals = accounting.totals(counts)
    if totals["kept_docs"]:
        return None
    reasons: Counter = Counter()
    for c in counts.values():
        reasons.update(c.get("reasons", {}))
    detail = f"{len(step.inputs)} input(s), {totals['in_docs']:,} records read"
    if totals["rejected_docs"]:
        detail += ", all rejected: " + ", ".join(f"{r} {n:,}" for r, n in reasons.most_common(3))
    if step.report.failed:
        detail += f"; {len(step.report.failed)} input(s) FAILED"
    return f"source {name} yielded no documents ({detail})"


def select_sources(config: BuildConfig, names: list[str] | None) -> list[str]:
    if not names:
        if not config.sources:
            raise ConfigError(f"{config.path}: no [sources.*] section: nothing to build")
        return list(config.sources)
    for n in names:
        extractor_class(n)  # unknown names fail here with the list of known sources
        if n not in config.sources:
            raise ConfigError(f"source {n!r} is not configured in {config.path} (configured: {', '.join(config.sources)})")
    return names


def check_inputs(config: BuildConfig, sources: list[str]) -> None:
    """Every input file (local or on object storage) must exist before any work starts; the error
    names source and path. http(s) inputs are checked when they are streamed."""
    for name in sources:
        section = config.sources[name]
        if not section.inputs:
            raise ConfigError(f"{config.path}: sources.{name}.inputs is empty")
        files = [i for i in section.inputs if not i.startswith(URL_PREFIXES)]
        try:
            expand_inputs(files)
        except InputError as exc:
            raise InputError(f"sources.{name}: {exc}") from None


def stages_until(config: BuildConfig, until: str | None) -> list[str]:
    """The stages a build runs: all of them, or those up to `until` (a stage's config or class name)."""
    names = list(config.stages)
    for i, name in enumerate(names):
        if until in (name, stage_class(name).name):
            return names[: i + 1]
    if until:
        raise ConfigError(f"--until {until}: no such stage in this build ({', '.join(names) or 'none'})")
    return names


def check_files(config: BuildConfig, sources: list[str], until: str | None = None) -> None:
    """Every file the build will read besides its inputs (models, eval sets, the tokenizer), checked by
    the extractor, stage or outputs that reads it (their `check_files`), before any work starts: a
    missing eval set fails now, not after hours of dedup. Errors name the config file and the key.
    With `until`, only the steps that will run are asked (a classifier trained after `--until langid`)."""
    for name in sources:
        extractor_class(name).check_files(config.sources[name].options, f"{config.path}: sources.{name}")
    for name in stages_until(config, until):
        stage_class(name).check_files(config.stages[name], f"{config.path}: stages.{name}")
    if config.outputs is not None and not until:
        from pipeline.outputs.writer import check_files as check_output_files

        check_output_files(config.outputs, f"{config.path}: outputs")


def _finished(out_dir: AnyPath) -> bool:
    """A step is reusable when its `_stage.json` exists and lists no failed task (those are retried)."""
    path = out_dir / STAGE_FILE
    return path.exists() and not read_json(path).get("failed")


def _reused_report(name: str, out_dir: AnyPath) -> StageReport:
    data = read_json(out_dir / STAGE_FILE)
    return StageReport(name, out_dir, shards_total=data["tasks"], shards_reused=data["tasks"],
                       failed=data.get("failed", []), counts=data["sources"],
                       outputs=data.get("outputs") or [], rejected_outputs=data.get("rejected_outputs") or [],
                       listed=data.get("outputs") is not None, seconds=data.get("task_seconds", 0.0))


def run_build(
    config: BuildConfig,
    executor: Executor,
    *,
    sources: list[str],
    workdir: str | os.PathLike,
    log=print,
    until: str | None = None,
    allow_empty: bool = False,
) -> BuildResult:
    """Run every step; `until` (a stage name) stops after that stage, with no outputs and no version.

    A source whose extraction keeps no document stops the build after extraction with an
    EmptySourceError naming it, unless `allow_empty` (then it is a WARNING line)."""
    stages_until(config, until)  # a bad --until fails here, before any work
    from pipeline.running.fingerprints import FingerprintCache

    started = time.time()
    workdir = as_path(workdir)

    fingerprints = FingerprintCache(workdir / "cache" / "fingerprints.json")
    steps: list[StepResult] = []
    upstream: list[StepResult] = []
    uses: list[AnyPath] = []
    for name in sources:
        section = config.sources[name]
        extractor = extractor_class(name)(section.options)
        scratch = workdir / "scratch" / f"extract-{name}"
        ctx = PlanContext(executor=executor, scratch=scratch, fingerprints=fingerprints)
        units: list[WorkUnit] = extractor.plan(section.inputs, ctx)
        fingerprints.save()
        basis = {
            "step": f"extract:{name}",
            "version": extractor.version,
            "config": keyed_paths(portable(to_plain(section.options), workdir), type(section.options), config.path),
        }
        key = stable_hash({**basis, "units": [[u.key, u.fingerprint] for u in units]})
        out_dir = workdir / "stages" / f"extract-{name}" / key
        unit_cache = workdir / "shard-cache" / f"extract-{name}" / stable_hash(basis)
        uses += [out_dir, unit_cache]
        report = _reused_report(f"extract:{name}", out_dir) if _finished(out_dir) else run_extract(
            extractor, units, out_dir, executor, unit_cache=unit_cache, digests=fingerprints)
        fingerprints.save()
        log(report.summary())
        for failure in report.failed:
            log(f"  FAILED input {failure['task']}: {failure['error']}")
        step = StepResult(f"extract:{name}", key, out_dir, report,
                          inputs=[{"unit": u.key, "fingerprint": u.fingerprint, **_plain_payload(u)} for u in units],
                          section=f"sources.{name}")
        steps.append(step)
        upstream.append(step)
    empty = [m for m in (empty_source(name, step) for name, step in zip(sources, steps, strict=True)) if m]
    if empty and not allow_empty:
        raise EmptySourceError("; ".join(empty) + "; nothing to build from it (--allow-empty builds anyway)")
    for message in empty:
        log(f"WARNING: {message}")

    for stage_name in config.stages:  # config order; load_build_config checked it against PIPELINE_ORDER
        cls = stage_class(stage_name)
        stage = cls(config.stages[stage_name])
        basis = {
            "step": stage_name,
            "version": stage.version,
            "config": keyed_paths(portable(to_plain(stage.config), workdir), type(stage.config), config.path),
            "files": stage.input_fingerprints(),
        }
        key = stable_hash({**basis, "inputs": sorted(s.key for s in upstream)})
        out_dir = workdir / "stages" / stage.name / key
        # per-shard work keyed by content: a shard another build already did is not done again
        cache, scratch = workdir / "shard-cache" / stage.name / stable_hash(basis), workdir / "scratch" / stage.name / key
        uses += [out_dir, cache]
        if _finished(out_dir):
            report = _reused_report(stage_name, out_dir)
        else:
            in_shards = stage_inputs([s.out_dir for s in upstream])
            if isinstance(stage, GlobalStage):
                report = run_global_stage(stage, in_shards, out_dir, scratch, executor, shard_cache=cache,
                                          digests=fingerprints)
            else:
                report = run_shard_stage(stage, in_shards, out_dir, executor, shard_cache=cache, digests=fingerprints)
                fingerprints.save()
        log(report.summary())
        for line in cls.summary_lines(out_dir):
            log(line)
        step = StepResult(stage.name, key, out_dir, report, section=f"stages.{stage_name}",
                          report_files=dict(cls.report_files))
        steps.append(step)
        upstream = [step]
        if until in (stage_name, stage.name):
            record_build(workdir, config.corpus.name, config.path, uses)
            return BuildResult(steps=steps, final_dirs=[out_dir], stopped_after=stage.name, started=started,
                               uses=uses)
    result = BuildResult(steps=steps, final_dirs=[s.out_dir for s in upstream], started=started, uses=uses,
                         ledger_cache=workdir / "shard-cache" / "ledger" / "by-content")
    uses.append(result.ledger_cache)
    if config.outputs is not None:
        run_outputs(config, result, upstream, executor, workdir, log)
        uses.append(result.outputs_dir)
    record_build(workdir, config.corpus.name, config.path, uses)
    return result


OUTPUTS_FILE = "_outputs.json"


def run_outputs(config: BuildConfig, result: BuildResult, upstream: list[StepResult], executor: Executor,
                workdir: AnyPath, log) -> None:
    """Mix, then per split text shards, token shards and (optionally) the Megatron export."""
    from pipeline.core.shards import write_json
    from pipeline.outputs.writer import OUTPUTS_VERSION, write_outputs

    tokenizer = config.outputs.tokenize.tokenizer
    files = {"tokenizer": fingerprints_of(tokenizer)} if tokenizer else {}
    key = stable_hash({"step": "outputs", "version": OUTPUTS_VERSION, "config": keyed_paths(portable(to_plain(config.outputs), workdir), type(config.outputs), config.path), "seed": config.corpus.seed,
                       "inputs": sorted(s.key for s in upstream), "files": files})
    out_dir = workdir / "stages" / "outputs" / key
    # documents' tokens kept by shard content; each entry is keyed by the tokenizer's content and EOS too
    token_cache = workdir / "shard-cache" / "tokens" / "by-content"
    scan_cache = workdir / "shard-cache" / "mix-scans" / "by-content"  # entries keyed by the split settings too
    result.uses += [token_cache, scan_cache]
    if (out_dir / OUTPUTS_FILE).exists():
        summary = read_json(out_dir / OUTPUTS_FILE)
        log("outputs: reused")
    else:
        summary = write_outputs(stage_inputs([s.out_dir for s in upstream]), out_dir, config.outputs, executor,
                                token_cache=token_cache, scan_cache=scan_cache)
        write_json(summary, out_dir / OUTPUTS_FILE)
    train = summary["tokens"].get("train", {})
    log(f"outputs: {sum(t.get('tokens', 0) for t in summary['tokens'].values()):,} tokens in "
        f"{sum(len(t.get('shards', [])) for t in summary['tokens'].values())} token shards; "
        f"train {train.get('tokens', 0):,} tokens")
    result.outputs_dir, result.outputs, result.outputs_key = out_dir, summary, key


def fingerprints_of(path: str) -> str:
    from pipeline.core.extractor import file_fingerprint

    return file_fingerprint(path) if as_path(path).is_file() else f"missing:{path}"


def portable(value: Any, workdir: str | os.PathLike) -> Any:
    """A config as keyed: the work directory written back as `${workdir}`, so that the same build in
    another work directory has the same step keys (content changes are caught by fingerprints)."""
    return with_workdir_var(value, str(workdir))


def _plain_payload(unit: WorkUnit) -> dict[str, Any]:
    return {k: v for k, v in unit.payload.items() if isinstance(v, str | int | float | bool)}


@contextlib.contextmanager
def demo_environment(config: BuildConfig, workdir: str | os.PathLike, log=print):
    """Generate the embedded demo inputs and serve the Reddit-linked pages for the build's duration.

    With the work directory on object storage the inputs are generated in the local cache and
    uploaded to `<workdir>/demo-inputs`, where every node reads them."""
    if not config.corpus.demo:
        yield
        return
    from pipeline.demo import inputs as demo

    port = config.corpus.demo_port
    target = as_path(workdir) / "demo-inputs"
    if is_remote(target):
        local = as_path(cache_dir("demo-inputs")) / stable_hash(str(target))
        inputs_dir = demo.generate(local, port=port)
        _upload_missing(inputs_dir, target)
        log(f"demo inputs generated in {target}")
    else:
        inputs_dir = demo.generate(target, port=port)
        log(f"demo inputs generated in {inputs_dir}")
    with demo.serve_pages(inputs_dir / "web", port=port) as url:
        log(f"demo pages served at {url}")
        yield


def _upload_missing(local_dir: AnyPath, remote_dir: AnyPath) -> None:
    """Copy every file under `local_dir` whose remote copy is missing or of another size."""
    there = {rel: st.st_size for rel, st in remote_dir.tree().items()}  # one listing
    for f in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(local_dir).as_posix()
        if there.get(rel) != f.stat().st_size:
            copy_file(f, remote_dir / rel)


def fail(msg: str) -> int:
    print(f"corpus: error: {msg}", file=sys.stderr)
    return 2
