"""pipeline/running/taskhost.py: while a command's local Ray instance starts, the first items of a map
run on a task host of the driver's, the rest on Ray, with the same results in the same order, failures
reported as Ray's are, and an item whose host died run again on Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.running.executor import TaskFailure
from pipeline.running.taskhost import HostFailed, TaskHost
from tests.conftest import REPO
from tests.pipeline.running import host_tasks


@pytest.fixture
def host(monkeypatch):
    monkeypatch.chdir(REPO)  # the host imports the tasks' modules as Ray's workers do, from here
    h = TaskHost()
    yield h
    h.close()
    assert h.proc.poll() is not None


def test_the_host_runs_requests_in_turn_and_reports_what_they_raise(host):
    host.submit(host_tasks.where, 1, False)
    assert host.ready(60)
    assert host.result() == ("ok", (1, "host"))
    host.submit(host_tasks.fails_on_three, 3, False)
    kind, message = host.result()
    assert kind == "raised" and message.startswith("ValueError: bad item 3")
    host.submit(host_tasks.fails_on_three, 3, True)  # caught: a TaskFailure, as from a Ray task
    kind, failure = host.result()
    assert kind == "ok" and isinstance(failure, TaskFailure) and failure.item == 3


def test_a_request_the_host_cannot_load_or_survive_is_a_host_failure(host, tmp_path, monkeypatch):
    (tmp_path / "_cf_driver_only.py").write_text("def f(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here, not in the host
    import _cf_driver_only

    host.submit(_cf_driver_only.f, 1, False)
    with pytest.raises(HostFailed, match="_cf_driver_only"):
        host.result()
    host.submit(host_tasks.where, 2, False)  # the host goes on
    assert host.result() == ("ok", (2, "host"))
    host.submit(host_tasks.dies_on_the_host, 3, False)
    with pytest.raises(HostFailed, match="exited"):
        host.result()
    with pytest.raises(HostFailed):
        host.submit(host_tasks.where, 4, False)


_MAP_WHILE_STARTING = """
import json
from pipeline.running.executor import RayExecutor, TaskError
from tests.pipeline.running import host_tasks as t

out = {}
ex = RayExecutor(num_cpus=2, progress=False)
out["first"] = ex.map(t.where, list(range(6)))
# a second command of this process, while the first's instance may still be starting: shares it
out["shared"] = RayExecutor(num_cpus=2, progress=False)._local is ex._local
ex.put(0)  # waits for Ray: then all on Ray
out["later"] = ex.map(t.where, list(range(3)))
ex.shutdown()
ex = RayExecutor(num_cpus=2, progress=False)
out["failures"] = [type(r).__name__ for r in ex.map(t.fails_on_three, [3, 1], return_failures=True)]
try:
    ex.map(t.fails_on_three, [3, 1])
except TaskError as exc:
    out["error"] = str(exc).splitlines()[0]
ex.shutdown()
ex = RayExecutor(num_cpus=2, progress=False)
out["died"] = ex.map(t.dies_on_the_host, [0, 1])
ex.shutdown()
print(json.dumps(out))
"""


def test_a_map_during_the_start_runs_its_first_items_on_the_host_and_the_rest_on_ray():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _MAP_WHILE_STARTING], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    first = [tuple(r) for r in out["first"]]
    assert [i for i, _ in first] == list(range(6))  # in item order
    assert first[0] == (0, "host")  # handed to the host at once: Ray takes seconds to start
    assert {w for _, w in first} <= {"host", "ray"}
    assert out["shared"] is True
    assert [tuple(r) for r in out["later"]] == [(0, "ray"), (1, "ray"), (2, "ray")]
    assert out["failures"] == ["TaskFailure", "int"]
    assert out["error"] == "fails_on_three: task for 3 failed: ValueError: bad item 3"
    assert [tuple(r) for r in out["died"]][0] == (0, "ray")  # the host died with it: run again on Ray
