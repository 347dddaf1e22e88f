"""Child processes with a log file, free loopback ports, and polling."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["Child", "free_port", "poll", "tail"]

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If the test process is SIGKILLed, its servers must not outlive it holding ports and
    # data directories. SIGKILL, because kube-apiserver's graceful SIGTERM shutdown can hang
    # once etcd is gone too. Linux only; elsewhere the children are merely orphaned.
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (it can still be taken before use,
    so callers retry start-up on a bind failure)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a (possibly large) log file."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def poll(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str,
    alive: Callable[[], None] | None = None,
) -> T:
    """Call ``check`` until it returns something other than None; ``alive`` raises if the
    thing being waited for has died, so a crash fails fast instead of at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Child:
    """One server process whose stdout and stderr go to a log file that survives restarts."""

    def __init__(self, name: str, log_file: Path) -> None:
        self.name = name
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, argv: Sequence[str]) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_file.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            log.write(f"\n==== {stamp} kfast.testing: starting {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C in a terminal reaches only us, and we stop the servers
                # in order (apiserver before etcd).
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def check_alive(self) -> None:
        """Raise, with the log's tail, if the process has exited."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with status {code}; last lines of {self.log_file}:\n"
                + tail(self.log_file, 40)
            )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: an abrupt crash, for fault tests."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def tail(self, lines: int = 60) -> str:
        return tail(self.log_file, lines)
