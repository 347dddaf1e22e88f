"""The sync driver: performs the machine's actions against a scripted fake Wire (no sockets)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from kfast import _native, errors
from kfast._driver import ReflectorRunner
from kfast._reflector import ListRequest, Reflector, ReflectorOptions, ReplaceStore, Sleep, WatchRequest
from kfast._wire import ListResult


def pod(name: str, rv: str) -> _native.StoredObject:
    return _native.StoredObject(json.dumps({"kind": "Pod", "apiVersion": "v1", "metadata": {
        "name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": rv}}).encode())


class FakeStream:
    def __init__(self, behave: Callable[[Any, Callable[[], None], Callable[[str], None]], None]) -> None:
        self.behave = behave
        self.closed = threading.Event()

    def run_into_fifo(self, fifo: Any, on_opened: Callable[[], None], on_progress: Callable[[str], None],
                      counters: Any = None) -> None:
        self.behave(fifo, on_opened, on_progress)

    def close(self) -> None:
        self.closed.set()


class FakeWire:
    """Answers LIST and WATCH from scripts; each script entry is a result or an exception."""

    def __init__(self, lists: list[Any], watches: list[Any]) -> None:
        self.lists = lists
        self.watches = watches
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.done = threading.Event()

    def list_page(self, path: str, params: dict[str, str]) -> ListResult:
        self.calls.append(("list", params))
        r = self.lists.pop(0)
        if isinstance(r, BaseException):
            raise r
        return r  # type: ignore[no-any-return]

    def watch(self, path: str, params: dict[str, str]) -> FakeStream:
        self.calls.append(("watch", params))
        if not self.watches:
            self.done.set()
            return FakeStream(lambda f, o, p: self._block())
        return FakeStream(self.watches.pop(0))

    def _block(self) -> None:
        time.sleep(0.05)
        raise errors.StreamTruncated("end of script")


def run(wire: FakeWire, *, wait: bool = True) -> tuple[ReflectorRunner, _native.DeltaFIFO, threading.Thread]:
    idx = _native.Indexer()
    fifo = _native.DeltaFIFO(known_objects=idx)
    runner = ReflectorRunner(wire, "/api/v1/pods", fifo,  # type: ignore[arg-type]
                             Reflector(ReflectorOptions(page_size=2, initial_backoff=0.01, jitter=0.0, watch_list=False),
                                       rng=random.Random(0)))
    t = threading.Thread(target=runner.run, daemon=True)
    t.start()
    if wait:
        assert wire.done.wait(5)
        runner.stop()
        t.join(2)
        assert not t.is_alive()
    return runner, fifo, t


def events(*rvs: str, error: BaseException | None = None) -> Callable[..., None]:
    def behave(fifo: Any, opened: Callable[[], None], progress: Callable[[str], None]) -> None:
        opened()
        for rv in rvs:
            fifo.update(pod("a", rv))
            progress(rv)
        if error is not None:
            raise error
    return behave


def test_list_pages_replace_then_watch_and_resume() -> None:
    wire = FakeWire([ListResult([pod("a", "1"), pod("b", "2")], "5", "t1"), ListResult([pod("c", "3")], "5", None)],
                    [events("6", "7"), events("8", error=errors.DecodeError("bad", 3))])
    runner, fifo, _ = run(wire)
    kinds = [(k, p.get("resourceVersion"), p.get("continue")) for k, p in wire.calls]
    assert kinds == [("list", "0", None), ("list", None, "t1"), ("watch", "5", None), ("watch", "7", None),
                     ("watch", "8", None)]
    assert any(isinstance(a, ReplaceStore) and a.resource_version == "5" for a in runner.history)
    assert sorted(fifo.list_keys()) == ["ns/a", "ns/b", "ns/c"]


def test_bugs_in_the_wire_are_retried_after_backoff(caplog: pytest.LogCaptureFixture) -> None:
    wire = FakeWire([ZeroDivisionError("bug"), ListResult([], "5", None)], [])
    runner, _, _ = run(wire)
    assert isinstance(runner.history[1], Sleep)
    assert [k for k, _ in wire.calls] == ["list", "list", "watch"]
    assert "unexpected error in LIST" in caplog.text


def test_410_relists_from_last_rv_then_consistent() -> None:
    gone = errors.Gone({"code": 410, "reason": "Expired"})
    wire = FakeWire([ListResult([], "5", None), gone, ListResult([pod("z", "30")], "30", None)],
                    [events("6", error=gone)])
    run(wire)
    lists = [p for k, p in wire.calls if k == "list"]
    assert [p.get("resourceVersion") for p in lists] == ["0", "6", ""]
    assert wire.calls[-1] == ("watch", wire.calls[-1][1]) and wire.calls[-1][1]["resourceVersion"] == "30"


def test_stop_during_backoff_is_prompt() -> None:
    wire = FakeWire([ListResult([], "5", None)], [events(error=errors.TooManyRequests({"code": 429}, retry_after=60))])
    runner, _, t = run(wire, wait=False)
    deadline = time.monotonic() + 5
    while not any(isinstance(a, Sleep) for a in runner.history) and time.monotonic() < deadline:
        time.sleep(0.01)
    sleep = next(a for a in runner.history if isinstance(a, Sleep))
    assert sleep.seconds >= 60
    t0 = time.monotonic()
    runner.stop()
    t.join(2)
    assert not t.is_alive() and time.monotonic() - t0 < 1


def test_stop_closes_the_open_watch() -> None:
    started = threading.Event()
    streams: list[FakeStream] = []

    def hang(fifo: Any, opened: Callable[[], None], progress: Callable[[str], None]) -> None:
        started.set()
        streams[0].closed.wait(5)

    wire = FakeWire([ListResult([], "5", None)], [hang])
    orig = wire.watch

    def watch(path: str, params: dict[str, str]) -> FakeStream:
        s = orig(path, params)
        streams.append(s)
        return s

    wire.watch = watch  # type: ignore[method-assign]
    runner, _, t = run(wire, wait=False)
    assert started.wait(5)
    runner.stop()
    t.join(2)
    assert not t.is_alive() and streams[0].closed.is_set()
    assert [type(a) for a in runner.history] == [ListRequest, ReplaceStore, WatchRequest]


def test_failure_building_the_watch_request_does_not_kill_the_thread() -> None:
    wire = FakeWire([ListResult([], "5", None), ListResult([], "6", None)], [])
    orig = wire.watch
    calls = [0]

    def watch(path: str, params: dict[str, str]) -> FakeStream:
        calls[0] += 1
        if calls[0] == 1:
            raise errors.ConfigError("token file gone")
        return orig(path, params)

    wire.watch = watch  # type: ignore[method-assign]
    runner, _, _ = run(wire)
    assert isinstance(runner.last_error, (errors.ConfigError, errors.StreamTruncated))
    assert calls[0] >= 2
