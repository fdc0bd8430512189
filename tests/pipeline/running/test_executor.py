"""RayExecutor's local instance starts on a thread of its own while the driver goes on: it must then
run tasks like any instance, stop every process it started, and turn a failed start into a one-line
`ClusterError` at the first call that needs Ray. Each case runs in a fresh process (a test session may
already have Ray up, which an executor joins instead of starting one)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

_STARTS_AND_STOPS = """
import base64, json, os, threading, time
import ray._private.services
from pipeline.running.executor import RayExecutor

from ray._raylet import GcsClient, NodeID
from ray.core.generated.gcs_pb2 import GcsNodeInfo
from ray.core.generated.gcs_service_pb2 import GetAllNodeInfoRequest

calls = []  # per call of Ray's get_node: was the node registered already?
def get_node(gcs_address, node_id, _ray_get_node=ray._private.services.get_node):
    wanted = [GetAllNodeInfoRequest.NodeSelector(node_id=NodeID.from_hex(node_id).binary())]
    calls.append(bool(GcsClient(address=gcs_address).get_all_node_info(
        timeout=5, node_selectors=wanted, state_filter=GcsNodeInfo.GcsNodeState.ALIVE)))
    return _ray_get_node(gcs_address, node_id)
ray._private.services.get_node = get_node  # Ray's, as the executor finds it

ex = RayExecutor(num_cpus=2, progress=False)
import ray
up_at_return = ray.is_initialized()
results = ex.map(abs, [-3, 1, -2])
node = ray._private.worker._global_node
pids = [i.process.pid for infos in node.all_processes.values() for i in infos]
kinds = sorted(node.all_processes)
raylet = node.all_processes["raylet"][0].process.pid
raylet_args = open(f"/proc/{raylet}/cmdline").read().split("\\0")
agent = next(a for a in raylet_args if a.startswith("--dashboard_agent_command="))
minimal = ["--minimal"] if "--minimal" in agent.split() else []
gcs = node.all_processes["gcs_server"][0].process.pid
gcs_args = open(f"/proc/{gcs}/cmdline").read().split("\\0")  # the system config, which the raylet gets from it
config = json.loads(base64.b64decode(next(a for a in gcs_args if a.startswith("--config_list=")).split("=", 1)[1]))
import sys
dashboard_deps = "aiohttp" in sys.modules
STOP
time.sleep(0.5)
alive = []
for pid in pids:
    try:
        os.kill(pid, 0)
        alive.append(pid)
    except ProcessLookupError:
        pass
print(json.dumps({"results": results, "up_at_return": up_at_return, "pids": pids,
                  "alive": alive, "threads": [t.name for t in threading.enumerate()],
                  "workers": ex.num_workers, "kinds": kinds,
                  "patched": [n for n in ("start_api_server", "start_monitor")
                              if getattr(ray._private.node.Node, n).__name__ == "_not_started"]
                             + (["utils"] if ray._private.utils.get_dashboard_dependency_error() is not None else []),
                  "minimal_agent": len(minimal), "dashboard_deps": dashboard_deps,
                  "get_node_calls": calls, "raylet_config": config,
                  "get_node_restored": ray._private.services.get_node is get_node,
                  "initialized": ray.is_initialized()}))
"""

_FAILED_START = """
import json
from pipeline.running.executor import ClusterError, RayExecutor

ex = RayExecutor(num_cpus=-1, progress=False)  # Ray refuses a negative CPU count
out = {"empty": ex.map(abs, [])}  # nothing to run: no need to wait for Ray
try:
    ex.map(abs, [1])
except ClusterError as exc:
    out["error"] = str(exc)
ex.shutdown()
out["shutdown"] = "ok"
print(json.dumps(out))
"""


def _run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "SIGTERM handler is not set" not in proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stop", ["ex.shutdown()", "ex.shutdown(wait=False); ex.shutdown()"])
def test_local_instance_starts_in_the_background_runs_tasks_and_stops_every_process(stop):
    """Stopped at once, or begun (while the driver writes the version) and then waited for."""
    out = _run(_STARTS_AND_STOPS.replace("STOP", stop))
    assert out["up_at_return"] is False  # the constructor did not wait for Ray's processes
    assert out["results"] == [3, 1, 2]
    assert out["workers"] == 2
    assert len(out["pids"]) >= 3  # GCS, raylet, log monitor, ...
    assert out["alive"] == [], f"Ray processes left running: {out['alive']}"
    assert "ray-local-start" not in out["threads"]
    # a private instance: no dashboard API server, no autoscaler monitor; Ray's own methods restored
    assert {"gcs_server", "raylet"} <= set(out["kinds"]) and not {"dashboard", "monitor"} & set(out["kinds"])
    assert out["patched"] == []
    # as Ray's minimal install: the dashboard agent without the dashboard's modules, and the driver
    # never imported their dependencies to find out whether they are installed
    assert out["minimal_agent"] == 1 and out["dashboard_deps"] is False
    # no 1 s sleeps: Ray's wait for the raylet to register (which sleeps 1 s after a miss, and used to
    # be called ~1 s before the raylet's agents were up) is called once, with the node registered; and
    # the raylet retries its socket connections every 20 ms (its system config, from the GCS's; 10 s of
    # patience, as Ray's 10 x 1 s)
    assert out["get_node_calls"] == [True], out["get_node_calls"]
    assert out["get_node_restored"]
    assert out["raylet_config"]["raylet_client_connect_timeout_milliseconds"] == 20
    assert out["raylet_config"]["raylet_client_num_connect_attempts"] == 500
    assert out["initialized"] is False


def test_a_failed_start_is_a_one_line_cluster_error_at_first_use():
    out = _run(_FAILED_START)
    assert out["empty"] == []
    assert out["error"].startswith("cannot start a local Ray instance: ")
    assert "\n" not in out["error"] and "nonnegative" in out["error"]
    assert out["shutdown"] == "ok"


_TWO_COMMANDS = """
import json, sys
from pipeline.running.executor import RayExecutor

first = RayExecutor(num_cpus=2, progress=False)
second = RayExecutor(num_cpus=2, progress=False)  # another command of this process, while the first starts
out = {"shared": second._local is first._local, "results": second.map(abs, [-1, 2])}
first.shutdown()
third = RayExecutor(num_cpus=2, progress=False)  # after a shutdown: an instance of its own
out["third_new"] = third._local is not first._local
out["third"] = third.map(abs, [-4])
third.shutdown()
print(json.dumps(out))
"""


def test_a_second_executor_of_a_process_shares_the_instance_the_first_one_starts():
    """Two in-process commands (tests, a notebook): the second must neither start a second instance
    (Ray allows one per process) nor read the `ray` module the first one's thread is still importing."""
    out = _run(_TWO_COMMANDS)
    assert out == {"shared": True, "results": [1, 2], "third_new": True, "third": [4]}
