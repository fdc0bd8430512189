"""A process of the driver's that runs a map's first tasks while the local Ray instance still starts.

A command's own Ray instance takes 2-5 s to come up (GCS, raylet, its agents, then the workers), and
its processes mostly wait on each other meanwhile; a build that adds one WARC to a corpus has ~4 s of
tasks in all. So the executor hands the first items of a map to this host, one at a time, until Ray
is up, and the rest to Ray. A task is a plain function of its item (it writes its outputs by content
and returns a small record), so where it ran changes nothing in what it returns or writes.

Not a thread of the driver: the task would hold the GIL that `ray.init`'s thread needs (a busy driver
thread slowed a start from 3 s to 19 s). Requests and replies are pickles over the host's stdin and a
pipe of its own; its stdout is its stderr, so that a task's prints cannot corrupt a reply.

    python -m pipeline.running.taskhost FD    (started by `TaskHost`, never by hand)
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import traceback
from typing import IO, Any

_LEN = struct.Struct("<Q")


def _send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (size,) = _LEN.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class HostFailed(RuntimeError):
    """The host could not run the request (it died, or could not unpickle it): run it elsewhere."""


class TaskHost:
    """The driver's side: one child process, one request at a time."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.running.taskhost", str(write_fd)],
                                         stdin=subprocess.PIPE, stdout=2, pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        self._replies = os.fdopen(read_fd, "rb")
        self.busy = self.dead = False

    def submit(self, fn: Any, item: Any, catch: bool) -> None:
        """Sends a request; raises `HostFailed` when it cannot be sent (an unpicklable function or item,
        a host that is gone)."""
        if self.dead:
            raise HostFailed("the task host exited")
        try:
            _send(self.proc.stdin, (fn, item, catch))
        except (pickle.PicklingError, AttributeError, TypeError, OSError) as exc:
            raise HostFailed(str(exc)) from exc
        self.busy = True

    def ready(self, timeout: float) -> bool:
        """Whether the reply to the request in flight can be read without waiting (after `timeout` s)."""
        return bool(select.select([self._replies], [], [], timeout)[0])

    def result(self) -> tuple[str, Any]:
        """("ok", result) or ("raised", message) of the request in flight; `HostFailed` when the host
        died or could not load the request."""
        try:
            kind, value = _receive(self._replies)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            self.dead = True
            raise HostFailed("the task host exited") from exc
        finally:
            self.busy = False
        if kind == "cannot":
            raise HostFailed(value)
        return kind, value

    def close(self) -> None:
        """Ends the host: at once if it is idle (it exits at the end of its input), else killed."""
        if self.proc.poll() is None:
            if self.busy:
                self.proc.kill()
            else:
                try:
                    self.proc.stdin.close()
                except OSError:
                    self.proc.kill()
        self.proc.wait()
        self._replies.close()


def serve(replies: IO[bytes], requests: IO[bytes]) -> None:
    """The host's side: run requests until the driver closes our stdin."""
    from pipeline.running.executor import _call

    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        except Exception as exc:  # noqa: BLE001 - a module the host cannot import: the driver runs it on Ray
            _send(replies, ("cannot", f"{type(exc).__name__}: {exc}"))
            continue
        fn, item, catch = request
        try:
            reply: tuple[str, Any] = ("ok", _call(fn, item, catch))
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which raises TaskError
            reply = ("raised", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
        try:
            _send(replies, reply)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            _send(replies, ("cannot", f"cannot return the result: {exc}"))


def main() -> None:
    serve(os.fdopen(int(sys.argv[1]), "wb"), sys.stdin.buffer)


if __name__ == "__main__":
    main()
