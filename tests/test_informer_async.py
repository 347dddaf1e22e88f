"""asyncio: waiting for sync, ``async for`` event streams, coroutine handlers. Plain
``asyncio.run`` (no plugin)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import kfast
from kfast._aio import Event
from kfast.simulator import Simulator


async def _until(cond: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def test_wait_for_sync_async_does_not_block_the_loop() -> None:
    with Simulator(pods=100, seed=2, bookmark_interval=3600) as sim:
        async def main() -> tuple[bool, int]:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            t = asyncio.create_task(ticker())
            sim.fail_next_requests(500, verb="watch")  # the sync takes a backoff (~0.8 s)
            async with kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods") as inf:
                ok = await inf.wait_for_sync_async(10)
                assert len(inf.indexer) == 100
            t.cancel()
            return ok, ticks

        ok, ticks = asyncio.run(main())
        assert ok and ticks > 50  # the loop kept running while the informer synced


def test_wait_for_sync_async_times_out() -> None:
    with Simulator(pods=1) as sim:
        sim.fail_next_requests(500, count=100)

        async def main() -> bool:
            inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods").start()
            try:
                return await inf.wait_for_sync_async(0.2)
            finally:
                await asyncio.to_thread(inf.stop)

        assert asyncio.run(main()) is False


def test_async_for_stream_sees_cache_then_changes_and_ends_on_stop() -> None:
    with Simulator(pods=20, seed=6, bookmark_interval=3600) as sim:
        async def main() -> list[Event]:
            inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods").start()
            assert await inf.wait_for_sync_async(10)
            got: list[Event] = []
            k = sim.keys()[0]
            async for ev in inf.stream():
                got.append(ev)
                if len(got) == 20:
                    sim.update("pods", k)
                    sim.delete("pods", k)
                if len(got) == 22:
                    await asyncio.to_thread(inf.stop)
            return got

        got = asyncio.run(main())
        assert len(got) == 22
        assert all(e.type == "add" and e.is_in_initial_list for e in got[:20])
        assert sorted(e.object.key for e in got[:20]) == sorted([*sim.keys(), got[21].object.key])
        assert [e.type for e in got[20:]] == ["update", "delete"]
        assert got[20].old.resource_version != got[20].object.resource_version


def test_stream_closed_by_context_removes_its_handler() -> None:
    with Simulator(pods=5, seed=6) as sim:
        async def main() -> int:
            async with kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods") as inf:
                await inf.wait_for_sync_async(10)
                n = 0
                async with inf.stream() as events:
                    async for _ev in events:
                        n += 1
                        if n == 5:
                            break
                return len(inf._handlers) + n * 100

        assert asyncio.run(main()) == 500


def test_coroutine_handlers_run_on_the_callers_loop_in_order() -> None:
    with Simulator(pods=30, seed=12, bookmark_interval=3600) as sim:
        async def main() -> None:
            loop_thread = threading.get_ident()
            seen: list[tuple[str, str]] = []
            threads: set[int] = set()
            inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")

            async def on_add(obj: kfast.ObjectView, initial: bool) -> None:
                threads.add(threading.get_ident())
                await asyncio.sleep(0)  # interleaving must not reorder the calls
                seen.append(("add", obj.key))

            async def on_update(old: kfast.ObjectView, new: kfast.ObjectView) -> None:
                threads.add(threading.get_ident())
                await asyncio.sleep(0.001)
                seen.append(("update", new.resource_version))

            async def boom(obj: Any) -> None:
                raise RuntimeError("coroutine handler bug")

            inf.add_event_handler(on_add, on_update, boom)
            async with inf:
                assert await inf.wait_for_sync_async(10)
                await _until(lambda: len(seen) == 30)
                k = sim.keys()[1]
                rvs = [sim.update("pods", k)["metadata"]["resourceVersion"] for _ in range(5)]
                sim.delete("pods", sim.keys()[2])
                await _until(lambda: len(seen) == 35)
                assert seen[30:] == [("update", rv) for rv in rvs]
            assert threads == {loop_thread}

        asyncio.run(main())


def test_coroutine_handler_needs_a_loop() -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url("http://127.0.0.1:9"), "pods")

    async def h(obj: Any) -> None:
        pass

    with pytest.raises(RuntimeError, match="running event loop"):
        inf.add_event_handler(h)
    inf.stop()


def test_dropped_stream_detaches_itself() -> None:
    import gc

    with Simulator(pods=5, seed=6, bookmark_interval=3600) as sim:
        async def main() -> int:
            async with kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods") as inf:
                await inf.wait_for_sync_async(10)
                async for _ev in inf.stream():
                    break  # no close(): the stream is simply dropped
                gc.collect()
                sim.update("pods", sim.keys()[0])
                await _until(lambda: len(inf._handlers) == 0)
                return len(inf._handlers)

        assert asyncio.run(main()) == 0
