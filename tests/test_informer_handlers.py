"""Handler registrations: per-handler resync, late handlers, removal, has_synced, and a stop
that drains the FIFO. Against the embedded simulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import kfast
from kfast.simulator import Simulator


def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture()
def sim() -> Iterator[Simulator]:
    with Simulator(pods=50, seed=8, bookmark_interval=3600) as s:
        yield s


def test_resync_period_is_per_handler(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    fast: list[str] = []
    never: list[str] = []
    inf.add_event_handler(on_update=lambda o, n: fast.append(n.key), resync_period=0.3)
    inf.add_event_handler(on_update=lambda o, n: never.append(n.key))
    with inf:
        assert inf.wait_for_sync(10)
        eventually(lambda: len(fast) >= 100)  # at least two resyncs of 50 objects
        assert sorted(set(fast)) == sorted(sim.keys())
        assert never == []
        # A real change reaches both, resync or not.
        k = sim.keys()[0]
        sim.update("pods", k)
        eventually(lambda: never == [k])


def test_informer_resync_period_is_the_default_for_handlers(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", resync_period=0.2)
    dflt: list[str] = []
    off: list[str] = []
    inf.add_event_handler(on_update=lambda o, n: dflt.append(n.key))
    inf.add_event_handler(on_update=lambda o, n: off.append(n.key), resync_period=0)
    with inf:
        eventually(lambda: len(dflt) >= 50)
        time.sleep(0.3)
        assert off == []


def test_late_handler_replay_is_initial_and_has_synced_tracks_it(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    early_adds: list[bool] = []
    seen_when_synced: list[int] = []
    early = inf.add_event_handler(lambda o, initial: early_adds.append(initial))
    assert not early.has_synced()
    with inf:
        assert inf.wait_for_sync(10)
        eventually(early.has_synced)
        assert len(early_adds) == 50 and all(early_adds)
        late_adds: list[tuple[str, bool]] = []
        gate = threading.Event()

        def slow_add(o: kfast.ObjectView, initial: bool) -> None:
            gate.wait(5)
            late_adds.append((o.key, initial))

        late = inf.add_event_handler(slow_add)
        time.sleep(0.05)
        assert not late.has_synced()  # its replay is still running
        gate.set()
        eventually(late.has_synced)
        seen_when_synced.append(len(late_adds))
        assert seen_when_synced == [50] and all(i for _k, i in late_adds)
        assert sorted(k for k, _ in late_adds) == sorted(sim.keys())
        late.remove()
        assert late.removed
        sim.create("pods", {"metadata": {"name": "after", "namespace": "default"}})
        eventually(lambda: len(early_adds) == 51)
        assert early_adds[-1] is False and len(late_adds) == 50


def test_stop_drains_the_fifo_exactly_once() -> None:
    with Simulator(pods=200, seed=9, bookmark_interval=3600) as s:
        churn = s.prepare_churn("pods", 3000, updates=0.7, deletes=0.15)
        inf = kfast.SharedIndexInformer(kfast.Config.for_url(s.url), "pods")
        mirror: dict[str, str] = {}
        problems: list[str] = []
        slow = threading.Event()
        slow.set()

        def on_add(o: kfast.ObjectView) -> None:
            if o.key in mirror:
                problems.append(f"add twice {o.key}")
            mirror[o.key] = o.resource_version
            if slow.is_set():
                time.sleep(0.0005)

        def on_update(old: kfast.ObjectView, new: kfast.ObjectView) -> None:
            if mirror.get(new.key) != old.resource_version:
                problems.append(f"update from unseen state {new.key}")
            mirror[new.key] = new.resource_version

        def on_delete(o: Any) -> None:
            if mirror.pop(o.key, None) is None:
                problems.append(f"delete of unknown {o.key}")

        inf.add_event_handler(on_add, on_update, on_delete)
        inf.start()
        assert inf.wait_for_sync(10)
        s.release_churn(churn)
        # Stop while the FIFO still holds work (the slow adds keep the processor behind).
        eventually(lambda: inf.metrics().fifo_depth > 50 or inf.metrics().events >= 3000)
        depth = inf.metrics().fifo_depth
        inf.stop()
        assert not any(t.is_alive() for t in inf._threads)
        m = inf.metrics()
        assert m.fifo_depth == 0 and depth > 0
        assert problems == []
        # Everything that reached the FIFO was applied and told to the handler once.
        assert mirror == {o.key: o.resource_version for o in inf.indexer.list()}
        assert inf.dispatched == sum(m.notifications.values())


def test_metrics_and_relist_logging(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="kfast.reflector")
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    inf.add_event_handler(on_delete=lambda o: None)  # notifications are counted as dispatched
    with inf:
        assert inf.wait_for_sync(10) and sim.wait_for_watches(1)
        m0 = inf.metrics()
        assert (m0.lists, m0.relists, m0.watch_restarts, m0.decode_errors) == (1, 0, 0, 0)
        assert m0.cached_objects == 50 and m0.has_synced and m0.initial_events == 50
        sim.break_open_watches("malformed")
        eventually(lambda: inf.metrics().decode_errors == 1)
        assert sim.wait_for_watches(1)
        sim.update("pods", sim.keys()[0])
        sim.break_open_watches("expired")
        eventually(lambda: inf.metrics().relists == 1)
        assert sim.wait_for_watches(1)
        sim.delete("pods", sim.keys()[1])
        eventually(lambda: inf.metrics().notifications["delete"] == 1)
        m = inf.metrics()
        assert m.watch_restarts >= 2 and m.error_events >= 1 and m.watch_failures >= 2
        assert m.notifications["update"] == 1 and m.notifications["sync"] >= 49  # the relist
        assert m.last_sync_rv == sim.resource_version and m.fifo_depth == 0
        assert set(m.as_dict()) >= {"events", "relists", "watch_restarts", "decode_errors",
                                    "fifo_depth", "last_sync_rv", "notifications"}
    assert "relisting by streaming list" in caplog.text
    assert "DecodeError" in caplog.text


@pytest.mark.parametrize("watch_list", [True, False], ids=["streaming", "list"])
@pytest.mark.parametrize("transform", [None, "native", "python"])
def test_metrics_count_watch_events_by_type(sim: Simulator, watch_list: bool, transform: str | None) -> None:
    from kfast import transforms

    tf: Any = {None: None, "native": transforms.drop_managed_fields(),
               "python": lambda o: o}[transform]
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", watch_list=watch_list,
                                    transform=tf)
    with inf:
        assert inf.wait_for_sync(10) and sim.wait_for_watches(1)
        initial = 50 if watch_list else 0  # a streaming list's initial events are ADDED events
        m0 = inf.metrics()
        assert m0.events_by_type == {"ADDED": initial, "MODIFIED": 0, "DELETED": 0,
                                     "BOOKMARK": 1 if watch_list else 0}
        keys = sim.keys()
        sim.update("pods", keys[0])
        sim.update("pods", keys[1])
        sim.delete("pods", keys[2])
        sim.create("pods", {"metadata": {"name": "fresh", "namespace": "default"}})
        sim.break_open_watches("bookmark")
        eventually(lambda: inf.metrics().events_by_type["BOOKMARK"] == m0.events_by_type["BOOKMARK"] + 1)
        eventually(lambda: inf.metrics().events == 4)
        m = inf.metrics()
        assert m.events_by_type == {"ADDED": initial + 1, "MODIFIED": 2, "DELETED": 1,
                                    "BOOKMARK": m0.events_by_type["BOOKMARK"] + 1}
        assert m.bookmarks == m.events_by_type["BOOKMARK"]
        assert m.as_dict()["events_by_type"] == m.events_by_type and m.initial_events_timeouts == 0


def _slow_adds(adds: list[str]) -> Callable[[kfast.ObjectView, bool], None]:
    def on_add(o: kfast.ObjectView, initial: bool) -> None:
        time.sleep(0.004)  # 50 pods: ~0.2 s of delivery after the store has synced
        adds.append(o.key)
    return on_add


def test_factory_wait_for_cache_sync_waits_for_the_handlers_too(sim: Simulator) -> None:
    # The README's snippet: reg.has_synced() right after wait_for_cache_sync() is True.
    with kfast.SharedInformerFactory(kfast.Config.for_url(sim.url), resolver=lambda n: kfast.GroupVersionResource(
            "", "v1", n)) as f:
        pods = f.for_resource("pods")
        adds: list[str] = []
        reg = pods.add_event_handler(on_add=_slow_adds(adds))
        f.start()
        assert list(f.wait_for_cache_sync(10).values()) == [True]
        assert reg.has_synced() and len(adds) == 50
        assert sorted(adds) == sorted(sim.keys())


def test_informer_wait_for_sync_waits_for_handlers_registered_before_it(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    adds: list[str] = []
    reg = inf.add_event_handler(on_add=_slow_adds(adds))
    with inf:
        assert inf.wait_for_sync(10)
        assert reg.has_synced() and len(adds) == 50
        # A late handler is replayed; a wait made after it was added waits for its replay.
        late_adds: list[str] = []
        late = inf.add_event_handler(on_add=_slow_adds(late_adds))
        assert inf.wait_for_sync(10)
        assert late.has_synced() and len(late_adds) == 50


def test_informer_wait_for_sync_async_waits_for_handlers(sim: Simulator) -> None:
    import asyncio

    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    adds: list[str] = []
    reg = inf.add_event_handler(on_add=_slow_adds(adds))

    async def run() -> None:
        async with inf:
            assert await inf.wait_for_sync_async(10)
            assert reg.has_synced() and len(adds) == 50
    asyncio.run(run())


def test_a_removed_handler_does_not_hold_the_wait(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
    gate = threading.Event()
    reg = inf.add_event_handler(on_add=lambda o, i: gate.wait(0.5))
    with inf:
        reg.remove()
        assert inf.wait_for_sync(10)
        gate.set()
