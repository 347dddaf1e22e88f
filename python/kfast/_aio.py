"""asyncio on top of the threaded informer: waiting, event streams and coroutine handlers.

The informer's work stays on its own two threads; the event loop only ever receives
finished notifications through ``call_soon_threadsafe``/``run_coroutine_threadsafe``, so
nothing here can block the loop, and a slow coroutine never stalls the informer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from kfast.informer import EventHandlerRegistration, SharedIndexInformer

__all__ = ["Event", "EventStream", "coroutine_handler", "wait_until"]

log = logging.getLogger("kfast.informer")


class Event(NamedTuple):
    """One notification as an :class:`EventStream` yields it. ``old`` is set for updates;
    for deletes ``object`` may be a ``DeletedFinalStateUnknown`` tombstone."""

    type: Literal["add", "update", "delete"]
    object: Any
    old: Any = None
    is_in_initial_list: bool = False


async def wait_until(cond: Callable[[], bool], abort: Callable[[], bool],
                     timeout: float | None) -> bool:
    end = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    while not cond():
        if abort() or (end is not None and time.monotonic() >= end):
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def coroutine_handler(fn: Callable[..., Any] | None, loop: asyncio.AbstractEventLoop | None,
                      path: str) -> Callable[..., Any] | None:
    """Wrap a coroutine function so the processor thread only schedules it on ``loop``.
    Calls run one at a time in the order they were made (an asyncio.Lock is FIFO and the
    tasks reach it in creation order), so a handler sees its events in order."""
    if fn is None or not inspect.iscoroutinefunction(fn):
        return fn
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("a coroutine handler needs loop= or a running event loop") from None
    target_loop = loop
    lock: asyncio.Lock | None = None
    coro_fn = fn

    async def run(args: tuple[Any, ...]) -> None:
        nonlocal lock
        if lock is None:
            lock = asyncio.Lock()  # created on the loop it serves
        async with lock:
            await coro_fn(*args)

    def done(fut: concurrent.futures.Future[None]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            log.error("informer %s: coroutine handler %r failed", path, coro_fn,
                      exc_info=fut.exception())

    def schedule(*args: Any) -> None:
        if target_loop.is_closed():
            return
        fut = asyncio.run_coroutine_threadsafe(run(args), target_loop)
        fut.add_done_callback(done)

    # Keep the signature visible so on_add(obj) vs on_add(obj, initial) is still detected.
    schedule.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return schedule


_END = object()


class _Sink:
    """The handlers an :class:`EventStream` registers. They hold the stream weakly, so a
    stream dropped without ``close()`` (a ``break`` out of ``async for``) unregisters itself
    at the next notification instead of buffering forever."""

    def __init__(self, stream: EventStream, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = weakref.ref(stream)
        self._loop = loop
        self.reg: EventHandlerRegistration | None = None
        self.closed = False

    def put(self, item: Any) -> None:
        s = self._stream()
        if s is None or s._closed:
            self.closed = True
            if self.reg is not None:
                self.reg.remove()
            return
        try:
            self._loop.call_soon_threadsafe(s._deliver, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            s._closed = True

    def on_add(self, obj: Any, initial: bool) -> None:
        self.put(Event("add", obj, None, initial))

    def on_update(self, old: Any, new: Any) -> None:
        self.put(Event("update", new, old))

    def on_delete(self, obj: Any) -> None:
        self.put(Event("delete", obj))

    def end(self) -> None:
        if not self.closed:
            self.put(_END)


class EventStream:
    """``async for event in informer.stream()``: every notification, starting with the
    current cache as adds (``is_in_initial_list=True``), delivered on the running loop.
    ``maxsize`` > 0 bounds the buffer: when the consumer falls that far behind, the stream
    ends with an OverflowError instead of stalling the informer. Close it (``async with``,
    or :meth:`close`) when done; a stream that is garbage collected detaches itself."""

    def __init__(self, informer: SharedIndexInformer, maxsize: int = 0) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._maxsize = maxsize
        self._closed = False
        sink = _Sink(self, asyncio.get_running_loop())
        self._reg: EventHandlerRegistration = informer.add_event_handler(
            sink.on_add, sink.on_update, sink.on_delete, resync_period=0)
        sink.reg = self._reg
        informer._on_stop.append(sink.end)

    # -- event loop ---------------------------------------------------------------------

    def _deliver(self, item: Any) -> None:
        if self._maxsize and self._queue.qsize() >= self._maxsize and item is not _END:
            self._closed = True
            self._reg.remove()
            item = OverflowError(f"event stream fell {self._maxsize} events behind")
        self._queue.put_nowait(item)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self.close()
            raise StopAsyncIteration
        if isinstance(item, OverflowError):
            raise item
        ev: Event = item
        return ev

    def close(self) -> None:
        self._closed = True
        self._reg.remove()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
