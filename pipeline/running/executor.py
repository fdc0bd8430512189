"""All Ray plumbing lives here: starting or joining a cluster and running plain functions as tasks.

Stages receive an `Executor` and call `map`; they never import Ray. `SerialExecutor` runs the same
functions in-process, for debugging a stage with a debugger (`--serial`).

With no address (neither `--ray-address` nor `RAY_ADDRESS`) `RayExecutor` always starts its own local
instance (`address="local"`), whatever other Ray cluster runs on the machine and whatever
`ray_current_cluster` file a `ray start` left behind, on a thread of its own (the first call that
needs Ray waits for it); with one it joins that cluster, and an address it
cannot reach is a `ClusterError` naming it, in one line. Usage stats are off in every instance it starts.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

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


class _LocalStart:
    """`ray.init` of a local instance on a thread of its own: the driver goes on planning (and copying
    work done before into place) during the seconds Ray's processes take to come up.

    The thread lives until `stop`, and stops the instance itself: Ray starts its processes with
    PR_SET_PDEATHSIG, which Linux sends when the *thread* that started them ends, so an ended thread
    would take the instance down."""

    current: _LocalStart | None = None  # the process's latest, which later executors share while in use

    def __init__(self, num_cpus: int) -> None:
        _LocalStart.current = self
        self.num_cpus = num_cpus
        self.ray: Any = None
        self._error: BaseException | None = None
        self._started, self._stopping = threading.Event(), threading.Event()
        if threading.current_thread() is threading.main_thread():
            # what ray.init sets when called from the main thread: SIGTERM exits through atexit, where
            # Ray stops its processes
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        worker_log = logging.getLogger("ray._private.worker")
        if _not_main_thread_warning not in worker_log.filters:
            worker_log.addFilter(_not_main_thread_warning)
        self._thread = threading.Thread(target=self._start, name="ray-local-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            import ray  # here too: importing it takes ~0.5 s

            self.ray = ray
            with _private_instance(ray):
                ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=True,
                         configure_logging=False, _system_config=_QUICK_CONNECT)
            ray.put(None)  # builds the driver's serialization context (~0.2 s), else built by the first task
        except BaseException as exc:  # noqa: BLE001 - reported by wait(), in the driver's thread
            self._error = exc
        finally:
            self._started.set()
        self._stopping.wait()
        if self._error is None:
            self.ray.shutdown()

    def in_use(self) -> bool:
        """Starting, or up and not stopped (by us, or by someone's `ray.shutdown()`)."""
        if self._stopping.is_set():
            return False
        return not self._started.is_set() or (self._error is None and self.ray.is_initialized())

    def wait(self) -> Any:
        """The `ray` module, once the instance is up."""
        self._started.wait()
        if self._error is not None:
            raise ClusterError(f"cannot start a local Ray instance: {_short(self._error)}") from self._error
        return self.ray

    def stop(self, wait: bool = True) -> None:
        """Stops the instance (once it is up) on its own thread; without `wait`, while the driver
        goes on (a later `stop()` waits)."""
        self._stopping.set()
        if wait:
            self._thread.join()


# What Ray starts on a head node that an instance private to one command has no use for: the dashboard's
# API server (job submission and the state API, for clients of a shared cluster; Ray starts it even with
# include_dashboard=False, and ray.init waits for it) and the autoscaler monitor (nothing to scale; at
# exit it also held ray.shutdown() for its 1 s grace, trying to report to the GCS stopped before it).
_UNUSED_HEAD_PROCESSES = ("start_api_server", "start_monitor")
# the raylet's (and workers') socket connections: Ray's 10 attempts 1 s apart, as 500 attempts 20 ms apart
_QUICK_CONNECT = {"raylet_client_connect_timeout_milliseconds": 20, "raylet_client_num_connect_attempts": 500}
_MINIMAL = ImportError("a private local instance runs as Ray's minimal install does (pipeline/running/executor.py)")


@contextlib.contextmanager
def _private_instance(ray: Any) -> Iterator[None]:
    """During `ray.init` of our local instance, Ray's head skips `_UNUSED_HEAD_PROCESSES`: each is a
    Python process importing Ray (~1 CPU s) while the raylet's own agents start on the same cores, and
    the API server's start is waited for. ray.init took 2.1-3.1 s instead of 3.8-4.2 s on 2 cores.

    And it runs as Ray's minimal install (`pip install ray`) does: the raylet's dashboard agent loads
    none of the modules that serve the dashboard, and the driver does not import the dashboard's
    dependencies (aiohttp, opentelemetry, ...) to find out whether they are installed: ~0.4 CPU s on the
    thread that starts the raylet.

    Two waits of a whole second each are made short: the raylet's connection to its object store, on
    a socket the store's thread may not have opened yet, retries every `raylet_client_connect_timeout_
    milliseconds` (1 s; `_QUICK_CONNECT` keeps the 10 s of patience in 20 ms steps), and Ray's wait for
    the raylet to register, `GlobalStateAccessor::GetNode`, sleeps 1 s after each miss: `_registered`
    asks first, every 20 ms. Together ~1 s of a start on average (0-2 s). Where Ray lacks these
    functions (another Ray than the one locked), Ray starts as it would."""
    node_class = getattr(getattr(getattr(ray, "_private", None), "node", None), "Node", None)
    saved = {name: vars(node_class)[name] for name in _UNUSED_HEAD_PROCESSES
             if node_class is not None and name in vars(node_class)}
    for name in saved:
        setattr(node_class, name, _not_started)
    utils = getattr(getattr(ray, "_private", None), "utils", None)
    dependency_error = getattr(utils, "get_dashboard_dependency_error", None)
    if dependency_error is not None:
        utils.get_dashboard_dependency_error = _minimal_install
    services = getattr(getattr(ray, "_private", None), "services", None)
    get_node = getattr(services, "get_node", None)
    if get_node is not None:
        services.get_node = functools.partial(_registered, get_node)
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(node_class, name, method)
        if dependency_error is not None:
            utils.get_dashboard_dependency_error = dependency_error
        if get_node is not None:
            services.get_node = get_node


def _minimal_install() -> ImportError:
    return _MINIMAL


def _registered(get_node: Callable[[str, str], Any], gcs_address: str, node_id: str) -> Any:
    """Ray's `get_node`, called once the GCS lists the node (asked every 20 ms, for up to the 30 s Ray
    itself waits), so that it finds the node at its first try instead of after a 1 s sleep."""
    try:
        from ray._raylet import GcsClient, NodeID
        from ray.core.generated.gcs_pb2 import GcsNodeInfo
        from ray.core.generated.gcs_service_pb2 import GetAllNodeInfoRequest

        client = GcsClient(address=gcs_address)
        wanted = [GetAllNodeInfoRequest.NodeSelector(node_id=NodeID.from_hex(node_id).binary())]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not client.get_all_node_info(
                timeout=5, node_selectors=wanted, state_filter=GcsNodeInfo.GcsNodeState.ALIVE):
            time.sleep(0.02)
    except Exception:  # noqa: BLE001 - another Ray's API: its own wait decides
        pass
    return get_node(gcs_address, node_id)


def _not_started(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(signum)


def _not_main_thread_warning(record: logging.LogRecord) -> bool:
    """Drops Ray's warning that ray.init ran off the main thread: `_LocalStart` sets the handler itself."""
    return "SIGTERM handler is not set" not in record.getMessage()


class RayExecutor:
    """Runs tasks on Ray: a cluster it joins, or a local instance it starts in the background (the
    first call that needs Ray waits for it; a start that failed raises `ClusterError` there)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, progress: bool = True):
        self.progress = progress
        address = (address or os.environ.get("RAY_ADDRESS") or "").strip() or None
        self.address = address
        self._local: _LocalStart | None = None
        self._ray: Any = sys.modules.get("ray")
        self._remote_call: Any = None
        if _LocalStart.current is not None and _LocalStart.current.in_use():
            # a command before us in this process (tests, notebooks) left its instance running or starting
            self._local = _LocalStart.current
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
                self._local = _LocalStart(num_cpus or os.cpu_count() or 1)

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
            self._ray = self._local.wait()
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
