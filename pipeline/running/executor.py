"""All Ray plumbing lives here (and, for the local instance a command starts, in localray.py): starting or
joining a cluster and running plain functions as tasks.

Stages receive an `Executor` and call `map`; they never import Ray. `SerialExecutor` runs the same
functions in-process, for debugging a stage with a debugger (`--serial`).

With no address (neither `--ray-address` nor `RAY_ADDRESS`) `RayExecutor` always starts its own local
instance (`address="local"`), whatever other Ray cluster runs on the machine and whatever
`ray_current_cluster` file a `ray start` left behind, on a thread of its own (the first call that
needs Ray waits for it); with one it joins that cluster, and an address it
cannot reach is a `ClusterError` naming it, in one line. Usage stats are off in every instance it starts.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pipeline.running.localray import LocalStart
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


class ClusterError(RuntimeError):
    """Ray could not be joined at the given address (or a local instance could not be started)."""


# How long a connection attempt to a given address may take before it counts as unreachable; Ray's
# own connect loop retries for minutes on an address where nothing listens.
CONNECT_TIMEOUT_S = 5.0
_LOCAL_HINT = "unset RAY_ADDRESS / drop --ray-address to run locally"


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line error."""
    text = (getattr(exc, "strerror", None) if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    line = next((s.strip() for s in str(text).splitlines() if s.strip()), type(exc).__name__)
    return line if len(line) <= 200 else line[:197] + "..."


def _host_port(address: str) -> tuple[str, int] | None:
    """`host:port`, `[v6]:port` or `scheme://host:port` -> (host, port); None when it has no port
    (e.g. `auto`, which Ray resolves itself)."""
    rest = address.split("://", 1)[1] if "://" in address else address
    parts = urlsplit("//" + rest.split("/", 1)[0])
    try:
        port = parts.port
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname and port else None


def _cannot(address: str, reason: str, hint: str = f"is the cluster running? ({_LOCAL_HINT})") -> ClusterError:
    return ClusterError(f"cannot connect to Ray at {address}: {reason}; {hint}")


def _check_reachable(address: str) -> None:
    """Fail fast, naming the address, where `ray.init` would retry for minutes: nothing accepts
    connections there, or what answers is not a Ray GCS (e.g. the dashboard's port), or the cluster
    wants Ray's token authentication and this process has none configured."""
    if address.startswith(("http://", "https://")):
        raise _cannot(address, "that is an HTTP (dashboard / job submission) address",
                      "give the cluster's address, HEAD:6379, or submit the build with `ray job submit`")
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise _cannot(address, "timed out" if isinstance(exc, TimeoutError) else _short(exc)) from None
    if "://" in address:  # ray:// (Ray Client): not a GCS
        return
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:  # pragma: no cover - grpcio comes with ray[default]
        return
    host, port = hp
    with grpc.insecure_channel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}") as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=CONNECT_TIMEOUT_S)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
                    raise _cannot(address, "the cluster uses Ray's token authentication",
                                  "set RAY_AUTH_MODE=token, with its token in ~/.ray/auth_token or "
                                  "RAY_AUTH_TOKEN") from None
            elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.UNIMPLEMENTED):
                raise _cannot(address, "no Ray cluster (GCS) answers there") from None


_NO_SHARED = "__no_shared__"


_WARM_UP_MAX = 64  # workers started ahead of a job's first tasks, at most


def _nothing(item: Any) -> None:
    return None


def _call(fn: Callable[..., Any], item: Any, catch: bool, shared: Any = _NO_SHARED) -> Any:
    args = (item,) if isinstance(shared, str) and shared == _NO_SHARED else (item, shared)
    if not catch:
        return fn(*args)
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the driver with the item
        return TaskFailure(item, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")


class RayExecutor:
    """Runs tasks on Ray: a cluster it joins, or a local instance it starts in the background (the
    first call that needs Ray waits for it; a start that failed raises `ClusterError` there)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, progress: bool = True):
        self.progress = progress
        address = (address or os.environ.get("RAY_ADDRESS") or "").strip() or None
        self.address = address
        self._local: LocalStart | None = None
        self._ray: Any = sys.modules.get("ray")
        self._remote_call: Any = None
        if LocalStart.current is not None and LocalStart.current.in_use():
            # a command before us in this process (tests, notebooks) left its instance running or starting
            self._local = LocalStart.current
        elif self._ray is None or not self._ray.is_initialized():
            # No usage stats from any instance we start (Ray's probe also queries cloud metadata
            # addresses); set before init so that every process of the instance inherits it.
            os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
            if address and address != "local":
                import ray

                self._ray = ray
                _check_reachable(address)
                try:
                    ray.init(address=address, log_to_driver=True)
                except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
                    raise _cannot(address, _short(exc)) from exc
                self._warm_up_workers()
            else:
                # "local": a new instance of our own, never a cluster found through RAY_ADDRESS or the
                # `ray_current_cluster` file of a `ray start` (joining one would also refuse num_cpus).
                self._local = LocalStart(num_cpus or os.cpu_count() or 1)

    def _warm_up_workers(self) -> None:
        """Start the job's workers while the driver plans: on a running cluster Ray starts a job's
        workers only when its first tasks arrive (it prestarts them for a cluster's first driver only),
        and a worker takes ~0.5-1 s to start. A task that does nothing per CPU (at most
        `_WARM_UP_MAX`), not waited for: the workers it starts take the build's first tasks."""
        self._ready()
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        for _ in range(max(1, min(cpus, _WARM_UP_MAX))):
            self._remote_call.remote(_nothing, None, False)

    def _ready(self) -> None:
        if self._local is not None:
            try:
                self._ray = self._local.wait()
            except BaseException as exc:  # noqa: BLE001 - any failed start, as one line
                raise ClusterError(f"cannot start a local Ray instance: {_short(exc)}") from exc
        if self._remote_call is None:
            # SPREAD, as Ray Data does for its read tasks: shard tasks are alike, so spreading them over
            # the nodes beats packing the head node first.
            self._remote_call = self._ray.remote(num_cpus=1, max_retries=2, scheduling_strategy="SPREAD")(_call)

    @property
    def num_workers(self) -> int:
        if self._local is not None:  # known without waiting for the instance
            return self._local.num_cpus
        self._ready()
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def put(self, obj: Any) -> Any:
        self._ready()
        return self._ray.put(obj)

    def get(self, ref: Any) -> Any:
        self._ready()
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
        if not items:
            return []
        self._ready()
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

    def shutdown(self, wait: bool = True) -> None:
        """Stops the local instance, or leaves the cluster. `wait=False` begins stopping a local
        instance and returns (its ~8 processes stop while the driver writes the version); the driver
        must not call Ray after it, and a later `shutdown()` waits."""
        if self._local is not None:
            self._local.stop(wait)
        elif wait and self._ray is not None and self._ray.is_initialized():
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

    def shutdown(self, wait: bool = True) -> None:
        pass


def make_executor(address: str | None = None, workers: int | None = None, serial: bool = False):
    """The executor for a command: in-process when asked (`--serial`) or when a local run gets one
    worker (`--workers 1` and no cluster address): a one-CPU Ray instance runs the same tasks one at a
    time, and starting it costs ~6 s, more than a small extraction; otherwise Ray."""
    joins_cluster = bool((address or os.environ.get("RAY_ADDRESS") or "").strip() not in ("", "local"))
    if serial or (workers == 1 and not joins_cluster):
        return SerialExecutor()
    return RayExecutor(address=address, num_cpus=workers)
