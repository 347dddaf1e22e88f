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
    InitialEventsTimedOut,
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
        # A native transform is applied by the watch decoder itself (no Python per event);
        # only a Python function needs the Python event path.
        self._native_transform = transform if isinstance(transform, _native.ObjectTransform) else None
        self._python_transform = None if self._native_transform is not None else transform
        # Ask for PartialObjectMetadata instead of whole objects (extra Accept only then, so
        # wires that predate it keep working).
        self._list_kw: dict[str, object] = {"accept": METADATA_LIST_ACCEPT} if metadata_only else {}
        self._watch_kw: dict[str, object] = {"accept": METADATA_WATCH_ACCEPT} if metadata_only else {}
        if self._native_transform is not None:
            # Passed only then, so wires that predate transforms keep working.
            self._watch_kw["transform"] = self._native_transform
        self._list_transformed = False
        self._real_wire = isinstance(wire, Wire)
        if isinstance(wire, Wire):
            # LIST items parsed in Rust with the field values our indexes read captured and
            # a native transform applied (a test double of a Wire does neither).
            self._list_kw["capture_for"] = fifo
            if self._native_transform is not None:
                self._list_kw["transform"] = self._native_transform
                self._list_transformed = True

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
            replaced = isinstance(action, ReplaceStore)
            action = self.reflector.step(event, self._clock())
            if replaced:
                # The listed pages are let go now (the machine and `action` held them):
                # return what they took to the OS rather than keep it for the watch.
                _native.release_free_memory()

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
            # Every page draws a rate-limiter token, as each page is a request in client-go.
            kw = self._list_kw
            try:
                page = self.wire.list_page(self.path, action.params, **kw)  # type: ignore[arg-type]
                items = page.items
                if self.transform is not None and not self._list_transformed:
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
            stream = self.wire.watch(self.path, action.params, **self._watch_kw)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - e.g. an unreadable token file: back off, retry
            return WatchFailed(self._note(e, "WATCH"))
        with self._lock:
            if self._stop.is_set():
                return None
            self._stream = stream
        machine = self.reflector
        # A streaming list whose initial-events-end bookmark never comes (a server that
        # ignores sendInitialEvents, a proxy that drops bookmarks) would otherwise wait for
        # it until the watch times out, or forever: past the deadline the stream is closed
        # and the machine falls back to LIST + WATCH.
        timed_out = threading.Event()
        reached_end = threading.Event()
        timer: threading.Timer | None = None
        limit = self.reflector.options.initial_events_timeout
        if streaming and limit:
            def give_up() -> None:
                if not reached_end.is_set():
                    timed_out.set()
                    stream.close()

            timer = threading.Timer(limit, give_up)
            timer.daemon = True
            timer.start()

        def opened() -> None:
            machine.step(WatchOpened(), self._clock())

        def progress(rv: str) -> None:
            machine.step(WatchProgress(rv), self._clock())

        def initial_end(items: list[_native.StoredObject], rv: str) -> None:
            reached_end.set()
            if timer is not None:
                timer.cancel()
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
            if streaming or self._python_transform is not None:
                run_python_path(stream, self.fifo, opened, initial_end if streaming else None,
                                progress, self.counters, self._python_transform, self.bounded)
            elif self.bounded:
                stream.run_into_fifo(self.fifo, opened, progress, self.counters, bounded=True)
            else:
                stream.run_into_fifo(self.fifo, opened, progress, self.counters)
        except Exception as e:  # noqa: BLE001
            if self._stop.is_set():
                return None
            if timed_out.is_set() and not reached_end.is_set():
                return self._initial_events_timed_out(limit)
            return WatchFailed(self._note(e, "WATCH"))
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._stream = None
        if self._stop.is_set():
            return None
        if timed_out.is_set() and not reached_end.is_set():
            return self._initial_events_timed_out(limit)
        # (A timer that fired just as the bookmark arrived closed a stream that had become a
        # plain watch: that is a watch end, resumed from the last RV.)
        return WatchEnded()

    def _initial_events_timed_out(self, limit: float | None) -> InitialEventsTimedOut:
        self.counters.initial_events_timeouts += 1
        log.warning("reflector %s: no initial-events-end bookmark within %.1fs of a streaming "
                    "list; falling back to LIST + WATCH", self.path, limit or 0.0)
        return InitialEventsTimedOut()

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
