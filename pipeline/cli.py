"""The `corpus` command: `build`, one subcommand per stage, and the tools around builds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.config import ConfigError, from_mapping, load_toml
from pipeline.running.buildconfig import load_build_config
from pipeline.running.registry import STAGES

DEFAULT_CONFIG = "configs/demo.toml"


def _executor(args: argparse.Namespace):
    from pipeline.running.executor import make_executor

    return make_executor(getattr(args, "ray_address", None), getattr(args, "workers", None),
                         getattr(args, "serial", False))


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray-address", help="connect to this Ray cluster (default: $RAY_ADDRESS, else a local instance)")
    p.add_argument("--workers", type=int,
                   help="CPUs of the local Ray instance (default: all cores); 1 runs in this process, without Ray")
    p.add_argument("--serial", action="store_true", help="run tasks in this process, without Ray (debugging)")


def cmd_build(args: argparse.Namespace) -> int:
    from pipeline.core.io import as_path, check_location
    from pipeline.running.build import (
        EmptySourceError,
        check_files,
        check_inputs,
        demo_environment,
        run_build,
        select_sources,
    )
    from pipeline.versions.manifest import write_version

    config = load_build_config(Path(args.config), workdir=args.workdir)
    workdir = as_path(config.corpus.workdir)
    out = as_path(args.out or config.corpus.out)
    for location in (workdir, out, config.corpus.manifests_dir):
        if location:
            check_location(location)
    sources = select_sources(config, args.sources.split(",") if args.sources else None)
    with demo_environment(config, workdir):
        check_inputs(config, sources)
        check_files(config, sources, until=args.until)
        executor = _executor(args)
        try:
            result = run_build(config, executor, sources=sources, workdir=workdir, until=args.until,
                               allow_empty=args.allow_empty)
            if result.stopped_after:
                print(f"stopped after {result.stopped_after}: {result.final_dirs[0]}")
                return 0
            executor.shutdown(wait=False)  # writing the version needs no Ray
            version = write_version(config, result, sources=sources, out=out, workdir=workdir)
        except EmptySourceError as exc:
            print(f"corpus: error: {exc}", file=sys.stderr)
            return 1
        finally:
            # now, not at exit: Ray's exit hook first sleeps 0.5 s for late log lines of tasks long done
            executor.shutdown()
    print(f"corpus {config.corpus.name} version {version.version}: {version.dir}")
    print(f"manifest: {version.manifest_path}")
    failed = [f for s in result.steps for f in s.report.failed]
    if failed:
        print(f"corpus: {len(failed)} input(s) failed; see the FAILED lines above", file=sys.stderr)
        return 1
    return 0


def _stage_config(stage_name: str, config_path: str | None, cls):
    """The stage's config table merged over its sources' declared defaults, as in a build."""
    from pipeline.running.buildconfig import load_stage_config

    return load_stage_config(stage_name, Path(config_path) if config_path else None)


def cmd_stage(args: argparse.Namespace) -> int:
    from pipeline.core.stage import GlobalStage
    from pipeline.running.registry import stage_class
    from pipeline.running.runner import run_global_stage, run_shard_stage, stage_inputs

    cls = stage_class(args.command)
    config = _stage_config(args.command, args.config, cls)
    cls.apply_cli_arguments(config, args)
    cls.check_files(config, f"{args.config}: stages.{args.command}" if args.config else f"stages.{args.command}")
    in_shards = stage_inputs([Path(d) for d in args.in_dirs])
    out = Path(args.out)
    stage = cls(config)
    executor = _executor(args)
    if isinstance(stage, GlobalStage):
        report = run_global_stage(stage, in_shards, out, out / "_scratch", executor)
    else:
        report = run_shard_stage(stage, in_shards, out, executor)
    print(report.summary())
    for line in cls.summary_lines(out):
        print(line)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from pipeline.core.extractor import PlanContext
    from pipeline.running.fingerprints import FingerprintCache
    from pipeline.running.registry import extractor_class
    from pipeline.running.runner import run_extract

    cls = extractor_class(args.source)
    if args.config:
        raw = load_toml(Path(args.config))
        table = dict(raw.get("sources", {}).get(args.source, {}))
        table.pop("inputs", None)
        config = from_mapping(cls.config_class, table, f"{args.config}: sources.{args.source}")
    else:
        config = cls.config_class()
    extractor = cls(config)
    out = Path(args.out)
    executor = _executor(args)
    ctx = PlanContext(executor=executor, scratch=out / "_scratch",
                      fingerprints=FingerprintCache(out / "_scratch" / "fingerprints.json"))
    units = extractor.plan(args.inputs, ctx)
    report = run_extract(extractor, units, out, executor)
    print(report.summary())
    for failure in report.failed:
        print(f"  FAILED input {failure['task']}: {failure['error']}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.core.io import as_path
    from pipeline.versions.verify import verify

    problems = verify(as_path(args.manifest))
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{args.manifest}: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def cmd_diff(args: argparse.Namespace) -> int:
    import json

    from pipeline.core.io import as_path
    from pipeline.versions.diff import diff_manifests, format_diff

    d = diff_manifests(as_path(args.a), as_path(args.b))
    print(json.dumps(d, indent=2, sort_keys=True) if args.json else format_diff(d))
    return 0 if d["identical"] else 1


def cmd_train_quality(args: argparse.Namespace) -> int:
    import json

    from filters.classifier import ClassifierTrainConfig, train_quality_classifier
    from pipeline.core.io import as_path
    from pipeline.running.runner import stage_inputs

    table = {}
    if args.config:
        table = dict(load_toml(Path(args.config)).get("train_quality", {}))
    config = from_mapping(ClassifierTrainConfig, table, f"{args.config}: train_quality")
    if args.positive_sources:
        config.positive_sources = args.positive_sources.split(",")
    if args.negative_sources:
        config.negative_sources = args.negative_sources.split(",")
    positives = stage_inputs([as_path(d) for d in args.positive])
    negatives = stage_inputs([as_path(d) for d in (args.negative or args.positive)])
    meta = train_quality_classifier(positives, negatives, as_path(args.out), config)
    print(json.dumps(meta, indent=2, sort_keys=True))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.core.io import as_path
    from pipeline.versions.report import write_report

    out = write_report(as_path(args.manifest), as_path(args.out))
    print(f"report: {out}")
    return 0


def _print_long(text: str) -> None:
    """Print a long answer that may be piped into `head`: a reader that stops early is no error."""
    import os

    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


def cmd_trace(args: argparse.Namespace) -> int:
    from pipeline.outputs.reader import TokenShardError
    from pipeline.versions.store import TraceError
    from pipeline.versions.trace import run_trace

    try:
        _print_long(run_trace(args.version, doc=args.doc, split=args.split, token=args.token, step=args.step,
                              batch_size=args.batch_size, seq_len=args.seq_len, as_json=args.json))
    except (TraceError, TokenShardError) as exc:
        print(f"corpus: error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pipeline.versions.show import run_show
    from pipeline.versions.store import TraceError

    try:
        _print_long(run_show(args.version, reason=args.reason, sample=args.sample, source=args.source,
                             kept=args.kept, seed=args.seed, chars=args.chars, as_json=args.json))
    except TraceError as exc:
        print(f"corpus: error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from pipeline.running.gc import collect

    workdir = args.workdir or load_build_config(Path(args.config)).corpus.workdir
    result = collect(workdir, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for directory, size in result.removed.items():
        print(f"{verb} {directory} ({size / 1e6:,.1f} MB)")
    print(f"{workdir}: {verb} {len(result.removed)} directories, {sum(result.removed.values()) / 1e6:,.1f} MB; "
          f"kept {len(result.kept)} that the last builds of {result.records} config(s) use")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from pipeline.running.config_reference import render_markdown, render_toml

    sys.stdout.write(render_markdown() if args.markdown else render_toml())
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    from pipeline.core.io import as_path
    from pipeline.outputs.tokenize import TokenizeConfig, tokenize_shards
    from pipeline.running.runner import stage_inputs

    table = dict(load_toml(Path(args.config)).get("outputs", {}).get("tokenize", {})) if args.config else {}
    config = from_mapping(TokenizeConfig, table, f"{args.config}: outputs.tokenize")
    if args.tokenizer:
        config.tokenizer = args.tokenizer
    if args.eos_token is not None:
        config.eos_token = args.eos_token
    if not config.tokenizer:
        raise ConfigError("tokenize: give --tokenizer FILE (a tokenizers tokenizer.json) or outputs.tokenize.tokenizer")
    index = tokenize_shards(stage_inputs([as_path(d) for d in args.in_dirs]), as_path(args.out), config,
                            _executor(args))
    print(f"tokenize: {index['docs']:,} docs, {index['tokens']:,} tokens in {len(index['shards'])} shard(s) "
          f"({index['dtype']}) -> {args.out}")
    return 0


def cmd_train_tokenizer(args: argparse.Namespace) -> int:
    from pipeline.core.io import as_path
    from pipeline.outputs.training import train_tokenizer
    from pipeline.running.runner import stage_inputs

    path = train_tokenizer(stage_inputs([as_path(d) for d in args.in_dirs]), as_path(args.out), args.vocab_size,
                           eos_token=args.eos_token, max_train_bytes=args.max_bytes or None)
    print(f"tokenizer: {path}")
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build a corpus version from a TOML config")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--sources", help="comma-separated subset of the configured sources")
    p.add_argument("--workdir", help="where stage outputs are kept for reuse (default: corpus.workdir)")
    p.add_argument("--out", help="where corpus versions are written (default: corpus.out)")
    p.add_argument("--until", metavar="STAGE", help="stop after this stage (e.g. langid, to train a classifier "
                   "on its output first); no version is written")
    p.add_argument("--allow-empty", action="store_true", help="build even when a source yields no document "
                   "(by default such a build fails after extraction, naming the source)")
    _add_runtime(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("extract", help="run one source's extractor on inputs")
    p.add_argument("--source", required=True)
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", required=True)
    p.add_argument("--config", help="take the extractor's options from this build config's [sources.NAME]")
    _add_runtime(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("train-quality", help="train the Pile/GPT-3 fastText quality classifier")
    p.add_argument("--positive", nargs="+", required=True, metavar="DIR", help="doc shards of the positive class")
    p.add_argument("--negative", nargs="+", metavar="DIR", help="doc shards of the negative class (default: --positive)")
    p.add_argument("--positive-sources", help="comma-separated sources taken as positives, e.g. wikipedia,books,reddit")
    p.add_argument("--negative-sources", help="comma-separated sources taken as negatives, e.g. cc")
    p.add_argument("--out", required=True, help="model path; its metadata goes beside it as .json")
    p.add_argument("--config", help="take training options from this file's [train_quality] table")
    p.set_defaults(func=cmd_train_quality)

    p = sub.add_parser("tokenize", help="tokenize doc shards into zstd token shards")
    p.add_argument("--in", dest="in_dirs", nargs="+", required=True, metavar="DIR")
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", help="a tokenizers tokenizer.json (e.g. the GPT-NeoX-20B one)")
    p.add_argument("--eos-token", help="appended after every document (default <|endoftext|>; '' for none)")
    p.add_argument("--config", help="take options from this build config's [outputs.tokenize]")
    _add_runtime(p)
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("train-tokenizer", help="train a byte-level BPE tokenizer on doc shards")
    p.add_argument("--in", dest="in_dirs", nargs="+", required=True, metavar="DIR")
    p.add_argument("--out", required=True, help="tokenizer.json to write")
    p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--eos-token", default="<|endoftext|>")
    p.add_argument("--max-bytes", type=int, default=0, help="train on at most this much text (0: all)")
    p.set_defaults(func=cmd_train_tokenizer)

    p = sub.add_parser("report", help="a self-contained HTML report of a corpus version")
    p.add_argument("manifest", help="manifest.json or a version directory")
    p.add_argument("--out", default="report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("trace", help="where a document, a training token or a training step came from")
    p.add_argument("version", help="a version directory or its manifest.json")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--doc", metavar="ID", help="a document id, kept or rejected")
    what.add_argument("--token", type=int, metavar="N", help="a token position in the split's token stream")
    what.add_argument("--step", type=int, metavar="S", help="a training step of the reader's packed order")
    p.add_argument("--split", default="train", help="the split of --token and --step (default train)")
    p.add_argument("--batch-size", type=int, metavar="B", help="sequences per step (global batch size)")
    p.add_argument("--seq-len", type=int, metavar="L", help="tokens per sequence, as given to the reader")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("show", help="sample documents a rule rejected (or kept); --reason alone lists reasons")
    p.add_argument("version", help="a version directory or its manifest.json")
    p.add_argument("--reason", nargs="?", const="", help="e.g. quality:gopher_min_words, near-dup, lang:de")
    p.add_argument("--sample", type=int, default=10, metavar="N", help="how many documents (default 10)")
    p.add_argument("--source", help="only documents of this source")
    p.add_argument("--kept", action="store_true", help="sample kept documents instead (with the scores of "
                   "the --reason's stage)")
    p.add_argument("--seed", type=int, default=0, help="another seed draws another sample (default 0)")
    p.add_argument("--chars", type=int, default=300, help="text shown per document (default 300)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("gc", help="delete the work directory's steps and caches that no config's last build uses")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--config", default=DEFAULT_CONFIG, help="the work directory of this config")
    where.add_argument("--workdir", help="this work directory")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("verify", help="re-hash every file of a corpus version and check its counts")
    p.add_argument("manifest", help="manifest.json or a version directory")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("config", help="the config reference: every key of a build config with its default")
    p.add_argument("--defaults", action="store_true", required=True,
                   help="print every key with its default and help, as TOML to copy into a config")
    p.add_argument("--markdown", action="store_true", help="as Markdown instead (docs/config.md)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("diff", help="what changed between two corpus versions (exit 1 when they differ)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_diff)

    from pipeline.running.registry import stage_class

    for name in STAGES:
        p = sub.add_parser(name, help=f"run the {name} stage on a directory of doc shards")
        p.add_argument("--in", dest="in_dirs", nargs="+", required=True, metavar="DIR")
        p.add_argument("--out", required=True)
        p.add_argument("--config", help=f"take options from this build config's [stages.{name}]")
        if command in (None, name):  # a stage's own options: its module is imported only when it runs
            stage_class(name).add_cli_arguments(p)
        _add_runtime(p)
        p.set_defaults(func=cmd_stage)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.core.accounting import AccountingError
    from pipeline.core.extractor import InputError
    from pipeline.core.io import StorageError
    from pipeline.core.shards import ShardError
    from pipeline.outputs.mix import MixError
    from pipeline.running.executor import ClusterError, TaskError
    from pipeline.running.registry import UnknownSourceError
    from pipeline.running.runner import StageFailed

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(next((a for a in argv if not a.startswith("-")), "")).parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, InputError, UnknownSourceError, ShardError, StageFailed, AccountingError, TaskError,
            ClusterError, MixError, StorageError) as exc:
        print(f"corpus: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing file; the last resort: disk full, permission denied, a file for a directory
        print(f"corpus: error: {os_error_message(exc)}", file=sys.stderr)
        return 2


def os_error_message(exc: OSError) -> str:
    """One line naming the path: `out/demo/x.parquet: No space left on device`."""
    if exc.filename is None:
        return str(exc)
    path = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
    return f"{path}: {exc.strerror or exc}"
