"""The simulator in its own process, driven over an authenticated local connection.

Benchmarks use this so that the server's half-gigabyte of pre-built bytes does not count in
the client's RSS, and the server's few Python calls never contend for the client's GIL. The
child is ``python -m kfast.simulator._process`` (not multiprocessing's spawn, which re-imports
the caller's ``__main__`` and so fails from a REPL or a script on stdin).
"""

from __future__ import annotations

import json
import os
import resource as _rusage
import statistics
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from types import TracebackType
from typing import Any

__all__ = ["SimulatorProcess", "ChurnInfo", "SimStats"]


@dataclass(frozen=True)
class ChurnInfo:
    """What a prepared churn will do, known before it is released."""

    events: int
    nbytes: int  # framed watch bytes
    first_rv: str
    last_rv: str
    last_key: str
    last_is_delete: bool


@dataclass(frozen=True)
class SimStats:
    objects: int
    mean_object_bytes: float
    resource_version: str
    peak_rss_bytes: int


class _Child:
    def __init__(self, kwargs: dict[str, Any]) -> None:
        from kfast.simulator import Simulator

        self.sim = Simulator(**kwargs).start()
        self.churns: list[Any] = []

    def url(self) -> str:
        return self.sim.url

    def prepare_churn(self, resource: str, count: int, updates: float, deletes: float) -> ChurnInfo:
        churn = self.sim.prepare_churn(resource, count, updates=updates, deletes=deletes)
        self.churns.append(churn)
        last_key, last_item = churn.ops[-1]
        return ChurnInfo(len(churn), len(churn.segment.buf), str(churn.first_rv),
                         str(churn.first_rv + len(churn) - 1), last_key, last_item is None)

    def release_churn(self, rate: float | None) -> None:
        self.sim.release_churn(self.churns.pop(0), rate=rate)

    def state(self, resource: str) -> dict[str, str]:
        return self.sim.state(resource)

    def stats(self, resource: str) -> SimStats:
        store = self.sim.store
        with store.cond:
            items = list(store.resources[resource].items.values())
            rv = store.rv
        sizes = [len(i.raw) for i in items]
        return SimStats(len(items), statistics.fmean(sizes) if sizes else 0.0, str(rv),
                        _rusage.getrusage(_rusage.RUSAGE_SELF).ru_maxrss * 1024)

    def requests(self) -> list[tuple[str, int]]:
        return [(r.verb, r.status) for r in self.sim.requests]

    def call(self, name: str, args: tuple[Any, ...]) -> Any:
        return getattr(self.sim, name)(*args)


def _serve(conn: Connection, kwargs: dict[str, Any]) -> None:
    child = _Child(kwargs)
    conn.send(("ok", child.url()))
    while True:
        try:
            name, args = conn.recv()
        except EOFError:
            break
        if name == "stop":
            child.sim.stop()
            conn.send(("ok", None))
            break
        try:
            conn.send(("ok", getattr(child, name)(*args)))
        except Exception as e:  # noqa: BLE001 - returned to the parent, raised there
            conn.send(("error", repr(e)))


class SimulatorProcess:
    """``with SimulatorProcess(pods=100_000) as sim: sim.url ...`` (same arguments as
    :class:`~kfast.simulator.Simulator`)."""

    def __init__(self, **kwargs: Any) -> None:
        key = os.urandom(16)
        with Listener(("127.0.0.1", 0), authkey=key) as listener:
            host, port = listener.address
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "kfast.simulator._process", f"{host}:{port}",
                 json.dumps(kwargs)], env={**os.environ, "KFAST_SIM_KEY": key.hex()})
            self._conn: Connection = listener.accept()
        self.url: str = self._reply()

    def _reply(self) -> Any:
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"simulator process: {value}")
        return value

    def _call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        return self._reply()

    def prepare_churn(self, resource: str, count: int, *, updates: float = 0.8,
                      deletes: float = 0.1) -> ChurnInfo:
        info: ChurnInfo = self._call("prepare_churn", resource, count, updates, deletes)
        return info

    def release_churn(self, rate: float | None = None) -> None:
        """Release the oldest prepared churn."""
        self._call("release_churn", rate)

    def state(self, resource: str = "pods") -> dict[str, str]:
        state: dict[str, str] = self._call("state", resource)
        return state

    def stats(self, resource: str = "pods") -> SimStats:
        stats: SimStats = self._call("stats", resource)
        return stats

    def requests(self) -> list[tuple[str, int]]:
        """(verb, HTTP status) of the requests served so far (the last 10,000)."""
        reqs: list[tuple[str, int]] = self._call("requests")
        return reqs

    def call(self, method: str, *args: Any) -> Any:
        """Any :class:`~kfast.simulator.Simulator` method with picklable arguments."""
        return self._call("call", method, args)

    def stop(self) -> None:
        if self._proc.poll() is None:
            try:
                self._call("stop")
            except (EOFError, BrokenPipeError, OSError):
                pass
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._conn.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    # Run the imported module's _serve, not this __main__ copy: replies must pickle as
    # kfast.simulator._process.ChurnInfo etc., which the parent can load.
    from kfast.simulator import _process as _mod

    _h, _p = sys.argv[1].rsplit(":", 1)
    _mod._serve(Client((_h, int(_p)), authkey=bytes.fromhex(os.environ["KFAST_SIM_KEY"])),
                json.loads(sys.argv[2]))
