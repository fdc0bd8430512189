"""Small stages used by the runner tests: importable by Ray workers as `tests.pipeline.stages_for_tests`."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa

from pipeline.core.stage import ShardResult, ShardStage, split_by_reason


@dataclass
class MinWordsConfig:
    min_words: int = 5
    sleep_per_shard: float = 0.0  # lets the kill-and-resume test stop a run mid-stage


class MinWordsStage(ShardStage):
    """Rejects documents with fewer than `min_words` words; adds a `words` column."""

    name = "min_words"
    version = "1"
    config_class = MinWordsConfig

    def process(self, table: pa.Table) -> ShardResult:
        if self.config.sleep_per_shard:
            time.sleep(self.config.sleep_per_shard)
        words = [len(t.split()) for t in table.column("text").to_pylist()]
        reasons = [None if w >= self.config.min_words else f"min_words:below-{self.config.min_words}" for w in words]
        return split_by_reason(table, reasons, self.name, {"words": pa.array(words, pa.int64())})


@dataclass
class LossyConfig:
    pass


class LossyStage(ShardStage):
    """Loses a document without rejecting it: the runner must refuse to accept that."""

    name = "lossy"
    config_class = LossyConfig

    def process(self, table: pa.Table) -> ShardResult:
        reasons = [None] * (table.num_rows - 1)
        return split_by_reason(table.slice(0, table.num_rows - 1), reasons, self.name)


@dataclass
class NodeRecorderConfig:
    record_dir: str = ""


class NodeRecorderStage(ShardStage):
    """Keeps every document and notes which Ray node ran the task (test-only: stages never touch Ray)."""

    name = "node_recorder"
    config_class = NodeRecorderConfig

    def process(self, table: pa.Table) -> ShardResult:
        import os

        import ray

        node = ray.get_runtime_context().get_node_id()
        with open(os.path.join(self.config.record_dir, f"{node}-{os.getpid()}-{time.monotonic_ns()}"), "w") as f:
            f.write(node)
        time.sleep(1.0)  # long enough that both nodes' workers get tasks
        return split_by_reason(table, [None] * table.num_rows, self.name)
