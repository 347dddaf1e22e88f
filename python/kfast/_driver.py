"""The sync driver of the reflector state machine: performs its actions, feeds back results.

All decisions live in :mod:`kfast._reflector`; this file only does I/O and waits, so an
asyncio driver would differ from it only where it awaits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kfast import _native, errors
from kfast._feed import Transform, run_python_path
from kfast._metrics import Counters
from kfast._reflector import (
    Action,
    InitialEventsEnd,
    Input,
    ListFailed,
    ListPage,
    ListRequest,
    Reflector,
    ReplaceStore,
    Sleep,
    Slept,
    StoreReplaced,
    WatchEnded,
    WatchFailed,
    WatchListRequest,
    WatchOpened,
    WatchProgress,
    WatchRequest,
)
from kfast._wire import METADATA_LIST_ACCEPT, METADATA_WATCH_ACCEPT, WatchStream, Wire

__all__ = ["ReflectorRunner"]

log = logging.getLogger("kfast.reflector")


class ReflectorRunner:
    """Runs one :class:`Reflector` against ``wire`` for the collection at ``path``, feeding
    ``fifo``. :meth:`run` blocks until :meth:`stop`; call it from a dedicated thread."""

    def __init__(
        self,
        wire: Wire,
        path: str,
        fifo: _native.DeltaFIFO,
        reflector: Reflector,
        *,
        clock: Callable[[], float] = time.monotonic,
        counters: Counters | None = None,
        metadata_only: bool = False,
        transform: Transform | None = None,
        bounded: bool = False,
    ) -> None:
        self.wire = wire
        # A processor thread drains `fifo` (the informer's): the watch may wait for room.
        self.bounded = bounded
        self.path = path
        self.fifo = fifo
        self.reflector = reflector
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self.history: list[Action] = []  # bounded log of actions, for tests and debugging
        self.last_error: BaseException | None = None
        self.counters = counters or Counters()
        self.transform = transform
        # Ask for PartialObjectMetadata instead of whole objects (extra Accept only then, so
        # wires that predate it keep working).
        self._list_kw = {"accept": METADATA_LIST_ACCEPT} if metadata_only else {}
        self._watch_kw = {"accept": METADATA_WATCH_ACCEPT} if metadata_only else {}

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        action: Action | None = self.reflector.start()
        while action is not None and not self._stop.is_set():
            self._record(action)
            event = self._perform(action)
            if event is None or self._stop.is_set():
                break
            action = self.reflector.step(event, self._clock())

    def _record(self, action: Action) -> None:
        if isinstance(action, ReplaceStore):
            action = ReplaceStore([], action.resource_version)  # do not pin the listed objects
        self.history.append(action)
        if len(self.history) > 1000:
            del self.history[:500]

    def _perform(self, action: Action) -> Input | None:
        if isinstance(action, ListRequest):
            self.counters.list_requests += 1
            if self.reflector.lists > 0 and "continue" not in action.params:
                log.info("reflector %s: relisting at resourceVersion=%r", self.path,
                         action.params.get("resourceVersion"))
            try:
                page = self.wire.list_page(self.path, action.params, **self._list_kw)
                items = page.items
                if self.transform is not None:
                    tf = self.transform
                    items = [tf(o) for o in items]
            except Exception as e:  # noqa: BLE001 - every failure is an input to the machine
                return ListFailed(self._note(e, "LIST"))
            return ListPage(items, page.resource_version, page.continue_token)
        if isinstance(action, ReplaceStore):
            self.fifo.replace(action.items, action.resource_version)
            return StoreReplaced()
        if isinstance(action, Sleep):
            log.info("reflector %s: backing off %.2fs (%s)", self.path, action.seconds, action.reason)
            if self._stop.wait(action.seconds):
                return None
            return Slept()
        return self._watch(action)

    def _watch(self, action: WatchRequest | WatchListRequest) -> Input | None:
        self.counters.watches_opened += 1
        streaming = isinstance(action, WatchListRequest)
        if streaming and self.reflector.lists > 0:
            log.info("reflector %s: relisting by streaming list at resourceVersion=%r",
                     self.path, action.params.get("resourceVersion"))
        try:
            stream = self.wire.watch(self.path, action.params, **self._watch_kw)
        except Exception as e:  # noqa: BLE001 - e.g. an unreadable token file: back off, retry
            return WatchFailed(self._note(e, "WATCH"))
        with self._lock:
            if self._stop.is_set():
                return None
            self._stream = stream
        machine = self.reflector

        def opened() -> None:
            machine.step(WatchOpened(), self._clock())

        def progress(rv: str) -> None:
            machine.step(WatchProgress(rv), self._clock())

        def initial_end(items: list[_native.StoredObject], rv: str) -> None:
            # The machine decides; for a streaming list it asks to replace the store now
            # and then to keep reading the same stream (step returns None).
            replace = machine.step(InitialEventsEnd(items, rv), self._clock())
            if not isinstance(replace, ReplaceStore):
                raise RuntimeError(f"reflector answered {replace!r} to the initial-events-end")
            self._record(replace)
            self.fifo.replace(replace.items, replace.resource_version)
            nxt = machine.step(StoreReplaced(), self._clock())
            if nxt is not None:
                raise RuntimeError(f"reflector answered {nxt!r} after a streaming replace")

        try:
            if streaming or self.transform is not None:
                run_python_path(stream, self.fifo, opened, initial_end if streaming else None,
                                progress, self.counters, self.transform, self.bounded)
            elif self.bounded:
                stream.run_into_fifo(self.fifo, opened, progress, self.counters, bounded=True)
            else:
                stream.run_into_fifo(self.fifo, opened, progress, self.counters)
        except Exception as e:  # noqa: BLE001
            if self._stop.is_set():
                return None
            return WatchFailed(self._note(e, "WATCH"))
        finally:
            with self._lock:
                self._stream = None
        return None if self._stop.is_set() else WatchEnded()

    def _note(self, e: Exception, what: str) -> BaseException:
        self.last_error = e
        c = self.counters
        if isinstance(e, errors.DecodeError):
            c.decode_errors += 1
        if what == "LIST":
            c.list_failures += 1
        else:
            c.watch_failures += 1
        if isinstance(e, errors.KfastError):
            log.info("reflector %s: %s failed: %r", self.path, what, e)
        else:
            # A bug, not a server condition: say so loudly, then retry like any failure.
            log.exception("reflector %s: unexpected error in %s", self.path, what)
        return e
