"""The streaming list (WatchList) end to end against the embedded simulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import kfast
from kfast._reflector import ListRequest, ReplaceStore, Sleep, WatchListRequest, WatchRequest
from kfast.simulator import Simulator


def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def cache_state(inf: kfast.SharedIndexInformer) -> dict[str, str]:
    return {o.key: o.resource_version for o in inf.indexer.list()}


def of(inf: kfast.SharedIndexInformer, cls: type[Any]) -> list[Any]:
    return [a for a in inf.runner.history if isinstance(a, cls)]


class Adds:
    """Counts adds; at the first one, notes how much of the initial set was already stored."""

    def __init__(self, inf: kfast.SharedIndexInformer) -> None:
        self.inf = inf
        self.seen: list[tuple[str, bool]] = []
        self.stored_at_first: int | None = None
        self.synced_at_first: bool | None = None
        self.lock = threading.Lock()

    def __call__(self, obj: kfast.ObjectView, initial: bool) -> None:
        with self.lock:
            if self.stored_at_first is None:
                self.stored_at_first = len(self.inf.indexer)
                self.synced_at_first = self.inf.has_synced()
            self.seen.append((obj.key, initial))


@pytest.fixture()
def sim() -> Iterator[Simulator]:
    with Simulator(pods=300, seed=11, bookmark_interval=3600) as s:
        yield s


def test_initial_sync_streams_and_replaces_atomically(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    adds = Adds(inf)
    inf.add_event_handler(adds)
    with inf:
        assert inf.wait_for_sync(10)
        assert cache_state(inf) == sim.state("pods")
        assert of(inf, ListRequest) == []
        first = of(inf, WatchListRequest)[0].params
        assert first["sendInitialEvents"] == "true" and first["resourceVersion"] == ""
        assert first["resourceVersionMatch"] == "NotOlderThan" and first["allowWatchBookmarks"] == "true"
        replaces = of(inf, ReplaceStore)
        assert [r.resource_version for r in replaces] == [sim.resource_version]
        eventually(lambda: len(adds.seen) == 300)
        # The whole initial set was stored before any handler heard of any of it.
        assert adds.stored_at_first == 300
        assert all(initial for _k, initial in adds.seen)
        assert sorted(k for k, _ in adds.seen) == sorted(sim.keys())
        # The same connection goes on as the watch: a change arrives without a new request.
        sim.create("pods", {"metadata": {"name": "later", "namespace": "default"}})
        eventually(lambda: len(adds.seen) == 301)
        assert adds.seen[-1] == ("default/later", False)
        assert len(of(inf, WatchListRequest)) == 1 and of(inf, WatchRequest) == []
        m = inf.metrics()
        assert m.streaming_list is True and m.initial_events == 300 and m.lists == 1
        assert m.relists == 0 and m.watch_restarts == 0 and m.last_sync_rv == sim.resource_version
        assert m.events == 1 and m.notifications == {"add": 301, "update": 0, "delete": 0, "sync": 0}


def test_server_without_watch_list_falls_back_and_remembers() -> None:
    with Simulator(pods=120, seed=2, bookmark_interval=3600, watch_list=False) as s:
        inf = kfast.SharedIndexInformer(kfast.Config.for_url(s.url), "pods", page_size=50)
        with inf:
            assert inf.wait_for_sync(10)
            assert cache_state(inf) == s.state("pods")
            assert isinstance(inf.runner.history[0], WatchListRequest)
            assert [a.params.get("limit") for a in of(inf, ListRequest)] == ["50"] * 3
            assert isinstance(inf.runner.last_error, kfast.errors.ApiError)
            assert inf.runner.last_error.code == 422
            assert not any(isinstance(a, Sleep) for a in inf.runner.history)
            assert s.wait_for_watches(1)
            assert s.break_open_watches("expired") == 1
            eventually(lambda: len(of(inf, ListRequest)) >= 4)
            assert len(of(inf, WatchListRequest)) == 1  # never tried again
            eventually(lambda: cache_state(inf) == s.state("pods"))
            assert inf.metrics().streaming_list is False


@pytest.mark.parametrize("transform", [None, lambda o: o], ids=["rust", "python"])
def test_missing_initial_events_end_bookmark_times_out_and_falls_back(sim: Simulator, transform: Any) -> None:
    # The server streams the initial events, then carries on as a watch without ever
    # sending the initial-events-end bookmark (as one that ignores sendInitialEvents does).
    sim.fail_next_watch("no_initial_end")
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", initial_events_timeout=0.5,
                                    transform=transform)
    adds = Adds(inf)
    inf.add_event_handler(adds)
    with inf:
        start = time.monotonic()
        assert inf.wait_for_sync(10)
        assert time.monotonic() - start >= 0.5
        kinds = [type(a) for a in inf.runner.history]
        assert kinds[0] is WatchListRequest and ListRequest in kinds
        assert kinds.index(ListRequest) == 1  # nothing of the abandoned stream was applied
        eventually(lambda: len(adds.seen) == 300)
        assert sorted(adds.seen) == sorted((k, True) for k in sim.keys())
        m = inf.metrics()
        assert m.initial_events_timeouts == 1 and m.streaming_list is False
        assert m.events_by_type["ADDED"] == 300  # the abandoned stream's initial events
        sim.update("pods", sim.keys()[0])
        eventually(lambda: cache_state(inf) == sim.state("pods"))
        assert len(of(inf, WatchListRequest)) == 1  # LIST + WATCH from now on


def test_initial_events_timeout_is_over_once_the_bookmark_came(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", initial_events_timeout=0.3)
    with inf:
        assert inf.wait_for_sync(10)
        time.sleep(0.6)  # well past the timeout: the stream, now a plain watch, stays open
        sim.update("pods", sim.keys()[0])
        eventually(lambda: cache_state(inf) == sim.state("pods"))
        m = inf.metrics()
        assert m.initial_events_timeouts == 0 and m.streaming_list is True and m.watch_restarts == 0
        assert of(inf, ListRequest) == [] and len(of(inf, WatchListRequest)) == 1


@pytest.mark.parametrize("code", [500, 429])
def test_transient_refusal_retries_the_streaming_list(sim: Simulator, code: int) -> None:
    sim.fail_next_requests(code, verb="watch", retry_after=0 if code == 429 else None)
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    adds = Adds(inf)
    inf.add_event_handler(adds)
    with inf:
        assert inf.wait_for_sync(15)
        assert [type(a) for a in inf.runner.history[:3]] == [WatchListRequest, Sleep, WatchListRequest]
        assert of(inf, ListRequest) == []
        eventually(lambda: len(adds.seen) == 300)
        assert len(set(adds.seen)) == 300 and inf.metrics().streaming_list is True


def test_410_relists_by_streaming_list_with_tombstones(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    deletes: list[Any] = []
    adds = Adds(inf)
    inf.add_event_handler(adds, on_delete=deletes.append)
    keys = sim.keys()
    with inf:
        assert inf.wait_for_sync(10) and sim.wait_for_watches(1)
        sim.fail_next_requests(503, verb="watch", count=1)
        sim.break_open_watches("close")
        eventually(lambda: any(isinstance(a, Sleep) for a in inf.runner.history))
        rv = inf.reflector.last_synced_rv
        # While the informer backs off, objects change and the history is compacted.
        sim.delete("pods", keys[0])
        sim.create("pods", {"metadata": {"name": "in-gap", "namespace": "default"}})
        sim.compact("pods")
        eventually(lambda: cache_state(inf) == sim.state("pods"))
        relist = of(inf, WatchListRequest)[1].params
        assert relist["resourceVersion"] == rv and relist["sendInitialEvents"] == "true"
        assert [d.key for d in deletes] == [keys[0]]
        assert isinstance(deletes[0], kfast.DeletedFinalStateUnknown) and deletes[0].obj is not None
        # A relist is not the initial list: its new objects are plain adds (client-go).
        assert ("default/in-gap", False) in adds.seen
        m = inf.metrics()
        assert m.relists == 1 and m.notifications["delete"] == 1
