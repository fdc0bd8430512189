"""A real `ray start --head` for the tests: on 127.0.0.1, with its own temp dir and free ports, stopped by
the pids of the processes it started (never `ray stop`, which stops every Ray instance on the machine)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

RAY = str(REPO / ".venv" / "bin" / "ray")
VENV_BIN = str(REPO / ".venv" / "bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path) -> dict[str, str]:
    """This environment without what would point Ray elsewhere: no RAY_ADDRESS, no Ray auth settings
    (a local `ray.init` of the test session sets RAY_AUTH_MODE), no PYTHONPATH; its own HOME, so that
    `~/.ray/auth_token` is the test's."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"RAY_ADDRESS", "PYTHONPATH", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
                        "VIRTUAL_ENV", "RAY_TMPDIR"}}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(d))
    return out


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ancestors(pid: int) -> set[int]:
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return out


def process_tree(root: int, marker: str = "") -> dict[int, str]:
    """{pid: start time} of `root` and its descendants, plus any process whose command line holds
    `marker` (the cluster's own temp dir: Ray's processes all name it)."""
    children = _children()
    found: dict[int, str] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        start = _start_time(pid)
        if start is not None and pid not in found:
            found[pid] = start
            stack.extend(children.get(pid, []))
    if marker:
        ours = _ancestors(os.getpid())  # never this test process or what runs it
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) not in found and int(d) not in ours and marker in _cmdline(int(d)):
                start = _start_time(int(d))
                if start is not None:
                    found[int(d)] = start
    return found


def stop_tree(proc: subprocess.Popen, marker: str, grace_s: float = 20.0) -> None:
    """SIGTERM the `ray start --block` process (it stops what it started), then SIGKILL, by pid, whatever
    of its processes is still alive (checked by start time, so that a reused pid is never hit)."""
    tree = process_tree(proc.pid, marker)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()  # reaps it once it exits (a zombie counts as gone)
        tree.update(process_tree(proc.pid, marker))
        if all(_start_time(p) != s for p, s in tree.items()):
            break
        time.sleep(0.2)
    for pid, start in tree.items():
        if _start_time(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class Head:
    proc: subprocess.Popen
    temp_dir: Path
    gcs_address: str
    dashboard_url: str
    log: Path

    @property
    def session_dir(self) -> Path:
        return (self.temp_dir / "session_latest").resolve()

    def pids(self) -> dict[int, str]:
        return process_tree(self.proc.pid, str(self.temp_dir))


def start_args(temp_dir: Path, num_cpus: int = 2) -> tuple[list[str], int, int]:
    """The flags that make a head private to a test: 127.0.0.1, its temp dir, a free port for every
    service (random worker ports), `--block` so that it stays our child; and its GCS and dashboard ports."""
    gcs, dashboard = free_port(), free_port()
    args = [
        "--node-ip-address", "127.0.0.1", "--port", str(gcs),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
        "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
        "--ray-client-server-port", str(free_port()), "--object-manager-port", str(free_port()),
        "--node-manager-port", str(free_port()), "--min-worker-port", "0", "--max-worker-port", "0",
        "--temp-dir", str(temp_dir), "--num-cpus", str(num_cpus), "--block",
    ]
    return args, gcs, dashboard


@contextmanager
def ray_head(temp_dir: Path, env: dict[str, str], command: list[str] | None = None, *, num_cpus: int = 2,
             cwd: Path = REPO, timeout_s: float = 120.0) -> Iterator[Head]:
    """Run `command` (default `ray start --head`) plus the private flags of `start_args`; yield once
    the head and its dashboard answer; stop every process it started, by pid, on exit."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    args, gcs, dashboard = start_args(temp_dir, num_cpus)
    log = temp_dir.parent / f"{temp_dir.name}-ray-start.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*(command or [RAY, "start", "--head"]), *args], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    head = Head(proc, temp_dir, f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}", log)
    try:
        deadline = time.monotonic() + timeout_s
        while b"Ray runtime started" not in log.read_bytes() or not _listening(dashboard):
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ray start not up in {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield head
    finally:
        stop_tree(proc, str(temp_dir))


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
