"""The stage contract.

A shard stage maps one shard of documents to kept documents plus rejected ones (each with `stage`
and `reason`). It is a small class with an explicit config dataclass and never touches Ray: the
runner in pipeline/running/runner.py schedules it, one task per shard, and does the counting.

A global stage (dedup, decontamination) needs a pass over every shard first; it gets an
`Executor` whose `map` runs plain functions as parallel tasks, and still never imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.config import ConfigError
from pipeline.core.io import as_path
from pipeline.core.schema import with_rejection
from pipeline.core.shardcache import ShardCache

T = TypeVar("T")
R = TypeVar("R")


class StageHooks:
    """What a stage reports beyond its shards, so that the build, the CLI and the manifest loop over
    stages instead of naming them."""

    #: files the stage writes into its output directory that belong in a corpus version, by report name
    report_files: ClassVar[dict[str, str]] = {}

    @classmethod
    def summary_lines(cls, out_dir: Any) -> list[str]:
        """Lines printed after the stage's accounting line (e.g. what decontamination found)."""
        return []

    @classmethod
    def add_cli_arguments(cls, parser: Any) -> None:
        """Options of `corpus <stage>` beyond --in/--out/--config."""

    @classmethod
    def apply_cli_arguments(cls, config: Any, args: Any) -> None:
        """Fold the options of `add_cli_arguments` into the stage's config; raise on a bad value."""

    @classmethod
    def check_files(cls, config: Any, where: str) -> None:
        """The pre-flight of `corpus build` and `corpus <stage>`, before any work starts: every file
        the stage will read with `config` besides its input shards (models, eval sets) is there and,
        as far as that is cheap to tell, usable. `where` names the stage's config table
        (`configs/x.toml: stages.decontam`); an error (ConfigError, InputError) names it and the key."""

    #: The config dataclass of one source's settings for this stage (langid: `LangPolicy`), or None
    #: for a stage without per-source settings. Sources declare theirs as data, under the stage's
    #: name in `Extractor.stage_defaults`; each declaration is checked against this class.
    source_settings: ClassVar[type | None] = None

    @classmethod
    def merge_source_settings(cls, table: dict[str, Any], defaults: dict[str, dict[str, Any]],
                              where: str) -> dict[str, Any]:
        """The stage's config table as the user wrote it (`[stages.<name>]`, not yet validated), with
        `defaults` ({source: the table it declares for this stage}) merged under it: per source, the
        user's keys win and the rest of the source's defaults stay. `where` names the user's table.
        A stage without per-source settings takes none."""
        if defaults:
            raise ConfigError(f"{where}: stage {cls.name!r} has no per-source settings, but source(s) "
                              f"{', '.join(defaults)} declare some in their stage_defaults")
        return table


@dataclass
class ShardResult:
    kept: pa.Table
    rejected: pa.Table  # the document columns (plus any added ones) and `stage`, `reason`


class ShardStage(StageHooks):
    """Base class of per-shard stages: subclasses set `name`, `version`, `config_class`, `process`.

    Bump `version` whenever a code change alters the stage's output: it is part of the key of the
    stage's output directory, so a new version recomputes instead of reusing stale shards.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    config_class: ClassVar[type]

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.config_class()

    def setup(self) -> None:
        """Load models and other heavy state; called once per task before `process`."""

    def input_fingerprints(self) -> dict[str, str]:
        """Content hashes of files the stage reads besides its input shards (models, eval sets), so
        that editing such a file reruns the stage although its config (holding only paths) did not change."""
        return {}

    def process(self, table: pa.Table) -> ShardResult:  # pragma: no cover - abstract
        raise NotImplementedError


class Executor(Protocol):
    """Runs plain functions as parallel tasks; the only parallelism a stage may use."""

    def map(
        self, fn: Callable[..., R], items: Sequence[T], *, desc: str = "", return_failures: bool = False,
        shared: Any = ...,
    ) -> list[R]: ...

    def put(self, obj: Any) -> Any: ...

    @property
    def num_workers(self) -> int: ...


class GlobalStage(StageHooks):
    """A stage that must see every shard before deciding (dedup, decontamination).

    `run` reads `in_shards` and must write, for every input shard, an output shard and a rejected
    shard of the same file name into `out_dir` and `out_dir/rejected`; the runner checks the
    accounting afterwards exactly as for shard stages.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    config_class: ClassVar[type]

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.config_class()

    def input_fingerprints(self) -> dict[str, str]:
        """See `ShardStage.input_fingerprints`."""
        return {}

    def run(self, in_shards: list[Path], out_dir: Path, scratch: Path, executor: Executor,
            cache: ShardCache | None = None, digests: Mapping[str, str] | None = None
            ) -> dict[str, dict[str, Any]] | None:
        """`cache` keeps per-shard work by shard content across builds (a disabled one when None).
        `digests`: {input shard file name: hex sha256} for the shards whose content key the runner
        already knows (not necessarily all), so that their work can be looked up in `cache` by the
        driver, without a task reading the shard to hash it. A stage may ignore it.

        May return, by input shard file name, the counts (`accounting.count_shard`) of what it wrote
        for that shard, when it had the tables in hand: the runner reads the other shards to count them."""
        raise NotImplementedError  # pragma: no cover - abstract


def check_file(path: str, key: str) -> None:
    """For `check_files`: the file (local or a URI) set at config key `key` must exist."""
    if not as_path(path).is_file():
        raise ConfigError(f"{key}: file not found: {path}")


def split_by_reason(
    table: pa.Table,
    reasons: Sequence[str | None],
    stage: str,
    columns: dict[str, pa.Array] | None = None,
) -> ShardResult:
    """Split a shard into kept rows (reason None) and rejected rows, after adding score columns.

    Scores go on both sides, so a rejected document shows the score that rejected it.
    """
    if len(reasons) != table.num_rows:
        raise ValueError(f"{stage}: {len(reasons)} reasons for {table.num_rows} rows")
    for name, values in (columns or {}).items():
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, values)
    keep_mask = pa.array([r is None for r in reasons], pa.bool_())
    kept = table.filter(keep_mask)
    rejected_rows = table.filter(pc.invert(keep_mask))
    rejected = with_rejection(rejected_rows, stage, [r for r in reasons if r is not None])
    return ShardResult(kept=kept, rejected=rejected)
