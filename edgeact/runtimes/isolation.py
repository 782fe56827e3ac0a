"""Run native runtime code in a child process, so that a crash in it (a segfault in TFLite Micro's C++) becomes an
error instead of killing edgeact.

One child per edgeact process, started on first use as a fresh interpreter (``python -m`` this module: nothing
inherited from a parent that holds onnxruntime's threads, nothing of the parent's ``__main__`` re-imported) and
kept for later calls. A call sends a picklable function and its arguments over a socket pair; the child sends back
the result or the error. A child that dies is reported by its signal or exit code and replaced at the next call.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from edgeact.errors import EdgeactError, RuntimeUnavailableError

T = TypeVar("T")
_LOCK = threading.Lock()
_CHILD: _Child | None = None


class _Child:
    """The child process and the parent's end of its socket."""

    def __init__(self) -> None:
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(child.fileno())], pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env,
            )
        except OSError as exc:
            parent.close()
            raise RuntimeUnavailableError(f"cannot start a child process for the runtime: {exc}") from exc
        finally:
            child.close()
        self.connection, self.owner = Connection(parent.detach()), os.getpid()

    def close(self) -> None:
        """Close the socket (the child exits on it) and reap the child."""
        self.connection.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def death(self, runtime: str, source: str) -> str:
        """How the child ended, once its socket closed mid-call."""
        self.connection.close()
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "unknown signal"
            return f"{runtime} crashed (signal {-code} {name}) on {source}"
        return f"{runtime} ended unexpectedly (exit code {code}) on {source}"


def run_isolated(runtime: str, source: str, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in the child process (``function`` and ``args`` must pickle). Its edgeact errors are
    raised as they are; any other exception, or the child's death, as :class:`RuntimeUnavailableError` naming
    ``runtime`` and ``source``."""
    global _CHILD
    with _LOCK:
        if _CHILD is None or _CHILD.owner != os.getpid() or _CHILD.process.poll() is not None:
            _CHILD = _Child()  # the first call, after a crash, or in a forked copy of the process that started it
        child = _CHILD
        try:
            child.connection.send((function, args))
            ok, value = child.connection.recv()
        except (EOFError, OSError):
            _CHILD = None
            raise RuntimeUnavailableError(child.death(runtime, source)) from None
        except BaseException:  # Ctrl-C mid-call: the child's late reply must not answer the next call
            _CHILD = None
            child.process.kill()
            child.close()
            raise
    if ok:
        return value
    if isinstance(value, EdgeactError):
        raise value
    raise RuntimeUnavailableError(f"{runtime} failed on {source}: {value}")


@atexit.register
def _stop() -> None:
    global _CHILD
    with _LOCK:
        if _CHILD is not None and _CHILD.owner == os.getpid():
            _CHILD.close()
            _CHILD = None


def _reply(message: bytes) -> tuple[bool, Any]:
    try:
        function, args = pickle.loads(message)
        return True, function(*args)
    except EdgeactError as exc:
        return False, exc
    except Exception as exc:  # noqa: BLE001 - every error goes back to the parent
        return False, f"{type(exc).__name__}: {exc}"


def _serve(fd: int) -> None:
    """The child: run each call that arrives until the parent closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; the child ends when it closes
    connection = Connection(fd)
    while True:
        try:
            message = connection.recv_bytes()
        except EOFError:
            return
        ok, value = _reply(message)
        try:
            connection.send((ok, value))
        except Exception as exc:  # noqa: BLE001 - a result that does not pickle
            connection.send((False, f"the result could not be sent back: {type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
