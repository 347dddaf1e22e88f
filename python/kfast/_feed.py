"""The Python path of a watch stream: events decoded into Python objects, then queued.

The steady-state hot path is ``WatchDecoder.feed_fifo`` (bytes straight into the Rust FIFO,
:meth:`kfast._wire.WatchStream.run_into_fifo`). Two cases need the events in Python first:

* the initial phase of a streaming list: its ADDED events are kept aside until the
  ``k8s.io/initial-events-end`` bookmark and handed over whole, so the store is replaced
  atomically and no handler ever takes a partial initial set for the whole;
* a Python ``transform`` (the documented slow path): every object goes through it before it
  is queued, for the whole life of the stream. (A native transform, ``ObjectTransform``, is
  applied by the decoder itself and needs neither.)

Without a transform even the initial phase stays in Rust: ``feed_fifo`` fills a private
DeltaFIFO whose private Indexer ``process_batch`` keeps current (no Python object per
event); at the bookmark that Indexer's objects replace the store. Events that arrive in the
same read as the bookmark are folded into the initial set, which is then the state as of
the last of them (the RV handed to the replace), so the store is still a consistent
snapshot. After the bookmark the stream runs on ``feed_fifo`` into the informer's FIFO.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kfast import _native, errors
from kfast._metrics import Counters
from kfast._wire import WatchStream

__all__ = ["Transform", "run_python_path"]

# A transform takes an object as decoded and returns the object to cache (or the same one).
Transform = Callable[[_native.StoredObject], _native.StoredObject]


class _Feed:
    def __init__(self, fifo: _native.DeltaFIFO, on_opened: Callable[[], None],
                 on_initial_end: Callable[[list[_native.StoredObject], str], None] | None,
                 counters: Counters, transform: Transform | None, bounded: bool = False) -> None:
        self.fifo = fifo
        self.bounded = bounded
        self.on_opened = on_opened
        self.on_initial_end = on_initial_end
        self.c = counters
        self.transform = transform
        # Objects of the initial phase by key; None once it is over (or there is none).
        self.initial: dict[str, _native.StoredObject] | None = None
        # The Rust-only initial phase (no transform): a private FIFO and its Indexer.
        self.staging: tuple[_native.DeltaFIFO, _native.Indexer] | None = None
        if on_initial_end is not None:
            if transform is None:
                idx = _native.Indexer()
                self.staging = (_native.DeltaFIFO(known_objects=idx), idx)
            else:
                self.initial = {}
        self.opened = False

    @property
    def in_initial_phase(self) -> bool:
        return self.initial is not None or self.staging is not None

    def _staged(self, d: Any, chunk: Any,
                staging: tuple[_native.DeltaFIFO, _native.Indexer]) -> str | None:
        c = self.c
        fifo, idx = staging
        # Synchronous even on a pump: the initial set must be whole at the bookmark.
        res = d.feed_fifo(chunk, fifo, wait=True, capture_for=self.fifo) if isinstance(d, _native.WatchPump) \
            else d.feed_fifo(chunk, fifo, capture_for=self.fifo)
        code = d.status_code
        if not self.opened and code is not None and 200 <= code < 300:
            self.opened = True
            self.on_opened()
        c.initial_events += res.events
        c.bookmarks += res.bookmarks
        c.count_feed(res)
        while len(fifo):
            _native.process_batch(fifo, idx, 1 << 16, 0.0, False)
        if res.error_status is not None:
            c.error_events += 1
            raise errors.api_error_from_status(res.error_status)
        if res.initial_events_end:
            assert self.on_initial_end is not None and res.last_resource_version
            self.staging = None
            self.on_initial_end(idx.list(), res.last_resource_version)
        return None  # the replace sets the RV; nothing before it is progress

    def __call__(self, d: Any, chunk: Any) -> str | None:
        c = self.c
        if self.staging is not None:
            return self._staged(d, chunk, self.staging)
        if self.initial is None and self.transform is None:
            if self.bounded and isinstance(d, _native.WatchPump):
                res = d.feed_fifo(chunk, self.fifo, bounded=True)
            else:
                res = d.feed_fifo(chunk, self.fifo)
            c.events += res.events
            c.bookmarks += res.bookmarks
            c.count_feed(res)
            if res.error_status is not None:
                c.error_events += 1
                raise errors.api_error_from_status(res.error_status)
            return res.last_resource_version
        evs = d.feed(chunk)  # an ERROR event raises its ApiError here
        code = d.status_code
        if not self.opened and code is not None and 200 <= code < 300:
            self.opened = True
            self.on_opened()
        last: str | None = None
        fifo, tf = self.fifo, self.transform
        by_type = c.events_by_type
        for ev in evs:
            obj = ev.object
            by_type[ev.type] += 1
            if ev.type == "BOOKMARK":
                c.bookmarks += 1
                if self.initial is not None:
                    if ev.initial_events_end:
                        assert self.on_initial_end is not None
                        items, self.initial = list(self.initial.values()), None
                        self.on_initial_end(items, ev.resource_version)
                else:
                    last = ev.resource_version
                continue
            assert obj is not None
            if tf is not None:
                obj = tf(obj)
            if self.initial is not None:
                c.initial_events += 1
                if ev.type == "DELETED":
                    self.initial.pop(obj.key, None)
                else:
                    self.initial[obj.key] = obj
                continue
            c.events += 1
            if ev.type == "ADDED":
                fifo.add(obj)
            elif ev.type == "MODIFIED":
                fifo.update(obj)
            else:
                fifo.delete(obj)
            last = ev.resource_version
        return last


def run_python_path(
    stream: WatchStream,
    fifo: _native.DeltaFIFO,
    on_opened: Callable[[], None],
    on_initial_end: Callable[[list[_native.StoredObject], str], None] | None,
    on_progress: Callable[[str], None],
    counters: Counters,
    transform: Transform | None = None,
    bounded: bool = False,
) -> None:
    """Stream until the watch ends, like ``run_into_fifo``. With ``on_initial_end`` this is
    a streaming list: ``on_initial_end(objects, rv)`` is called at the initial-events-end
    bookmark (the driver replaces the store there) and the same stream carries on."""
    feed = _Feed(fifo, on_opened, on_initial_end, counters, transform, bounded)
    try:
        # The pump (decoding on a Rust thread) only serves feed_fifo, i.e. no transform.
        for _decoder, rv in stream.feeds(feed, pump=transform is None):
            if rv:
                on_progress(rv)
    except errors.ApiError:
        if feed.in_initial_phase and not feed.opened or transform is not None:
            counters.error_events += 1  # a non-2xx answer (stream ERRORs were counted)
        raise
