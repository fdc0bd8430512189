"""`corpus build` and Ray addresses: no address starts a local instance of its own, even beside another
cluster on the machine; an address it cannot reach is a one-line error naming it."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pipeline.running.executor import ClusterError, _check_reachable, _host_port
from tests.conftest import REPO
from tests.pipeline.running.rayhead import _cmdline, clean_env, free_port, ray_head

CORPUS = str(REPO / ".venv" / "bin" / "corpus")
PYTHON = sys.executable


def _demo_config(directory: Path) -> Path:
    """configs/demo.toml on a free port of its own, with no manifest copy into the repository."""
    text = (REPO / "configs" / "demo.toml").read_text(encoding="utf-8")
    text = re.sub(r"^demo_port = .*$", f"demo_port = {free_port()}", text, flags=re.M)
    text = re.sub(r"^manifests_dir = .*$", 'manifests_dir = ""', text, flags=re.M)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def short_tmp():
    d = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))  # short: Ray's socket paths live under it
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_build_without_address_starts_its_own_instance_beside_another_cluster(tmp_path, short_tmp):
    """A `ray start --head` runs, and its `ray_current_cluster` file is where Ray looks by default
    (RAY_TMPDIR points Ray's default temp dir at it): `corpus build` must neither join that cluster
    (which used to fail on num_cpus) nor touch it."""
    env = clean_env(tmp_path / "home")
    with ray_head(short_tmp / "ray", env, num_cpus=1) as other:
        assert (short_tmp / "ray" / "ray_current_cluster").read_text().strip()
        other_session = other.session_dir
        proc = subprocess.run(
            [CORPUS, "build", "--config", str(_demo_config(tmp_path / "cfg")), "--sources", "wikipedia",
             "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--workers", "2"],
            cwd=tmp_path, env={**env, "RAY_TMPDIR": str(short_tmp)}, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert re.search(r"^corpus demo version \w+: ", proc.stdout, re.M)
        assert "Connecting to existing Ray cluster" not in proc.stderr
        # No driver ever joined the other cluster, and it is still up, unharmed.
        drivers = list((other_session / "logs").glob("python-core-driver-*"))
        assert drivers == [], drivers
        assert other.proc.poll() is None
        host, port = other.gcs_address.split(":")
        socket.create_connection((host, int(port)), timeout=5).close()
        # The build ran a session of its own.
        sessions = {p.resolve() for p in (short_tmp / "ray").glob("session_2*")}
        assert len(sessions - {other_session}) == 1

        # Addresses of this cluster that are not its GCS fail at once, naming the address.
        _check_reachable(other.gcs_address)
        dashboard = other.dashboard_url.split("//", 1)[1]
        with pytest.raises(ClusterError, match=rf"^cannot connect to Ray at {dashboard}: no Ray cluster"):
            _check_reachable(dashboard)
        with pytest.raises(ClusterError, match="HTTP .* address; give the cluster's address"):
            _check_reachable(other.dashboard_url)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_unreachable_address_is_a_one_line_error_naming_it(tmp_path, how):
    env = clean_env(tmp_path / "home")
    cmd = [CORPUS, "build", "--config", str(_demo_config(tmp_path / "cfg")), "--sources", "wikipedia",
           "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    if how == "flag":
        cmd += ["--ray-address", "127.0.0.1:1"]
    else:
        env["RAY_ADDRESS"] = "127.0.0.1:1"
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("corpus: error: cannot connect to Ray at 127.0.0.1:1: ")
    assert "RAY_ADDRESS" in lines[0] and "Traceback" not in proc.stderr + proc.stdout


def test_address_forms():
    assert _host_port("127.0.0.1:6379") == ("127.0.0.1", 6379)
    assert _host_port("ray://head.example:10001") == ("head.example", 10001)
    assert _host_port("[::1]:6379") == ("::1", 6379)
    assert _host_port("auto") is None and _host_port("head") is None
    assert issubclass(ClusterError, RuntimeError)


def _worker_pids(head) -> set[int]:
    """The cluster's worker processes: `default_worker.py` until they name themselves `ray::IDLE` or
    `ray::<task>` (the raylet's agents are `ray::...Agent`)."""
    def is_worker(cmd: str) -> bool:
        return "default_worker.py" in cmd or (cmd.startswith("ray::") and not cmd.split()[0].endswith("Agent"))
    return {pid for pid in head.pids() if is_worker(_cmdline(pid))}


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


_FIRST = """
import sys
from pipeline.running.executor import RayExecutor
ex = RayExecutor(address=sys.argv[1], progress=False)
assert ex.map(abs, [-1, -2, -3, -4]) == [1, 2, 3, 4]
ex.shutdown()
"""
_JOINS = """
import sys
from pipeline.running.executor import RayExecutor
ex = RayExecutor(address=sys.argv[1], progress=False)
print("connected", flush=True)
sys.stdin.readline()  # the test looks at the cluster's workers meanwhile: no task submitted yet
print(ex.map(abs, [-1, -2]), flush=True)
ex.shutdown()
"""


def test_joining_a_cluster_starts_the_jobs_workers_while_the_driver_plans(tmp_path, short_tmp):
    """Ray starts a later job's workers only when its first tasks arrive (~0.5-1 s each on 2 cores): the
    executor starts them when it joins, so that they are up by the time the driver has planned."""
    env = clean_env(tmp_path / "home")
    with ray_head(short_tmp / "ray", env, num_cpus=2) as head:
        # a first build: Ray prestarts workers for a cluster's first driver; its tasks bind them to its
        # job, and they end with it
        subprocess.run([PYTHON, "-c", _FIRST, head.gcs_address], cwd=REPO, env=env, check=True,
                       capture_output=True, timeout=180)
        before = _worker_pids(head)
        proc = subprocess.Popen([PYTHON, "-c", _JOINS, head.gcs_address], cwd=REPO, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == "connected"
            started = _wait_for(lambda: len(_worker_pids(head) - before) >= 2, 30)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err[-3000:]
        assert out.strip() == "[1, 2]"
        assert started, "no worker started before the job's first tasks"
