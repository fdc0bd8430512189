"""The local Ray instance a command starts when it joins no cluster: started on a thread of its own while
the driver plans, private to the command, and started without what such an instance has no use for.

pipeline/running/executor.py, the one user of this module, runs the tasks; this module only starts and
stops the instance.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


class LocalStart:
    """`ray.init` of a local instance on a thread of its own: the driver goes on planning (and copying
    work done before into place) during the seconds Ray's processes take to come up.

    The thread lives until `stop`, and stops the instance itself: Ray starts its processes with
    PR_SET_PDEATHSIG, which Linux sends when the *thread* that started them ends, so an ended thread
    would take the instance down."""

    current: LocalStart | None = None  # the process's latest, which later executors share while in use

    def __init__(self, num_cpus: int) -> None:
        LocalStart.current = self
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
        """The `ray` module, once the instance is up; raises what made its start fail."""
        self._started.wait()
        if self._error is not None:
            raise self._error
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
_MINIMAL = ImportError("a private local instance runs as Ray's minimal install does (pipeline/running/localray.py)")


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
    """Drops Ray's warning that ray.init ran off the main thread: `LocalStart` sets the handler itself."""
    return "SIGTERM handler is not set" not in record.getMessage()
