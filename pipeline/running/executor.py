"""All Ray plumbing lives here: starting or joining a cluster and running plain functions as tasks.

Stages receive an `Executor` and call `map`; they never import Ray. `SerialExecutor` runs the same
functions in-process, for debugging a stage with a debugger (`--serial`).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.running.progress import Progress

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class TaskFailure:
    """What `map(..., return_failures=True)` returns in place of a failed task's result."""

    item: Any
    message: str


class TaskError(RuntimeError):
    pass


_NO_SHARED = "__no_shared__"


def _call(fn: Callable[..., Any], item: Any, catch: bool, shared: Any = _NO_SHARED) -> Any:
    args = (item,) if isinstance(shared, str) and shared == _NO_SHARED else (item, shared)
    if not catch:
        return fn(*args)
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the driver with the item
        return TaskFailure(item, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")


class RayExecutor:
    def __init__(self, address: str | None = None, num_cpus: int | None = None, progress: bool = True):
        import ray

        self._ray = ray
        self.progress = progress
        address = address or os.environ.get("RAY_ADDRESS") or None
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=True)
            else:
                ray.init(
                    num_cpus=num_cpus or os.cpu_count() or 1,
                    include_dashboard=False,
                    log_to_driver=True,
                    configure_logging=False,
                )
        # SPREAD, as Ray Data does for its read tasks: shard tasks are alike, so spreading them over the
        # nodes beats packing the head node first.
        self._remote_call = ray.remote(num_cpus=1, max_retries=2, scheduling_strategy="SPREAD")(_call)

    @property
    def num_workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def put(self, obj: Any) -> Any:
        return self._ray.put(obj)

    def get(self, ref: Any) -> Any:
        return self._ray.get(ref)

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        desc: str = "",
        return_failures: bool = False,
        shared: Any = _NO_SHARED,
    ) -> list[R]:
        """Run fn over items, one task each; results come back in item order, whatever finished first.

        `shared` (a value from `put`) is passed as a second argument to every call; Ray hands each
        task the object from its store instead of copying it per task.
        """
        ray = self._ray
        refs = [self._remote_call.remote(fn, item, return_failures, shared) for item in items]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        bar = Progress(desc or getattr(fn, "__name__", "tasks"), len(refs)) if self.progress and refs else None
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=None)
                for ref in done:
                    try:
                        results[index[ref]] = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                        raise TaskError(f"{desc or fn.__name__}: task for {items[index[ref]]!r} failed: {cause}") from cause
                    if bar:
                        bar.advance()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return results

    def shutdown(self) -> None:
        self._ray.shutdown()


class SerialExecutor:
    """Runs tasks in the driver process, in order."""

    num_workers = 1

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def put(self, obj: Any) -> Any:
        return obj

    def get(self, ref: Any) -> Any:
        return ref

    def map(self, fn, items, *, desc: str = "", return_failures: bool = False, shared: Any = _NO_SHARED):
        bar = Progress(desc or fn.__name__, len(items)) if self.progress and items else None
        out = []
        for item in items:
            out.append(_call(fn, item, return_failures, shared))
            if bar:
                bar.advance()
        return out

    def shutdown(self) -> None:
        pass
