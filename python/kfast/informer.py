"""SharedIndexInformer: a cache of one resource kept current by list+watch, with handlers.

Two threads per informer, and a Rust one per watch. The reflector thread runs the
list/watch state machine and reads the watch socket; each read goes to a ``WatchPump``, whose
Rust thread decodes it and pushes the events straight into the Rust DeltaFIFO while the
reflector reads on (one thread doing both was the bottleneck on 2 cores). The
processor thread calls ``_native.process_batch``, which pops up to a few thousand keys and
applies them to the Indexer with the GIL released, and then dispatches that batch of
notifications to Python handlers in one Python loop.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from kfast import _native
from kfast._config import Config
from kfast._driver import ReflectorRunner
from kfast._aio import EventStream, coroutine_handler, wait_until
from kfast._feed import Transform
from kfast._gvk import GroupVersionResource
from kfast._lister import Lister
from kfast._metrics import Counters, InformerMetrics
from kfast._reflector import Reflector, ReflectorOptions
from kfast._view import ObjectView
from kfast._wire import Wire, resource_path
from kfast.index import NAMESPACE_INDEX

__all__ = ["SharedIndexInformer", "EventHandlerRegistration", "Handler", "Tombstone"]

log = logging.getLogger("kfast.informer")

Tombstone = _native.DeletedFinalStateUnknown
Handler = Callable[..., Any]
_ADD, _UPDATE, _DELETE = 0, 1, 2

# Resource names are the lowercase plurals in API paths (RFC 1123 labels, as CRD plurals must
# be); groups are DNS subdomains; versions are labels such as v1, v1beta1.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _checked_resource(resource: str | GroupVersionResource, group: str, version: str) -> GroupVersionResource:
    """The resource an informer watches, validated before any request is built from it
    (ValueError naming the mistake, e.g. ``"Pods"``, ``"deployments.apps"``, ``"v1/pods"``)."""
    if isinstance(resource, GroupVersionResource):
        if (group, version) not in (("", "v1"), (resource.group, resource.version)):
            raise ValueError(f"resource {resource} already names its group and version; "
                             f"do not pass group={group!r}/version={version!r} as well")
        group, version, name = resource
    elif isinstance(resource, str):
        name = resource
    else:
        raise TypeError(f"resource must be a str or GroupVersionResource, not {type(resource).__name__}")
    if not _LABEL.fullmatch(name):
        hint = ""
        if "/" in name or "." in name:
            hint = " (give the group and version with group=/version= or a GroupVersionResource)"
        elif name.lower() != name:
            hint = f" (resource names are lowercase plurals: {name.lower()!r}?)"
        raise ValueError(f"resource {name!r} is not a resource name such as 'pods' or "
                         f"'deployments'{hint}")
    if group and (len(group) > 253 or not _SUBDOMAIN.fullmatch(group)):
        raise ValueError(f"group {group!r} is not an API group such as 'apps' or 'example.com'")
    if not _LABEL.fullmatch(version):
        raise ValueError(f"version {version!r} is not an API version such as 'v1' or 'v1beta1'")
    return GroupVersionResource(group, version, name)


class EventHandlerRegistration:
    """What :meth:`SharedIndexInformer.add_event_handler` returns; ``remove()`` detaches it."""

    __slots__ = ("on_add", "on_update", "on_delete", "_informer", "_replayed", "_add_flag", "removed",
                 "resync_period", "_next_resync")

    def __init__(self, informer: SharedIndexInformer, on_add: Handler | None,
                 on_update: Handler | None, on_delete: Handler | None,
                 resync_period: float = 0.0) -> None:
        self.on_add = on_add
        self._add_flag = on_add is not None and _takes_two(on_add)
        self.on_update = on_update
        self.on_delete = on_delete
        self._informer = informer
        self._replayed = False  # a handler added late first gets the cache as adds
        self.removed = False
        # Seconds between resyncs for this handler (0: never). Resync notifications are
        # on_update(obj, obj) with an unchanged resourceVersion, sent only to handlers due.
        self.resync_period = float(resync_period)
        self._next_resync = time.monotonic() + self.resync_period

    def remove(self) -> None:
        self._informer._remove_handler(self)

    def has_synced(self) -> bool:
        """True once this handler has been told about every object of the initial list
        (by the informer's notifications, or by its replay when added after start)."""
        return self._replayed and self._informer._delivered_initial


class SharedIndexInformer:
    """Keeps ``indexer`` equal to the server's view of one resource and tells handlers.

    ``on_add(obj, is_in_initial_list)``, ``on_update(old, new)`` and ``on_delete(obj)`` get
    :class:`ObjectView` objects; ``on_delete`` gets a :class:`Tombstone`
    (``DeletedFinalStateUnknown``) when the delete was inferred by a relist. A handler that
    raises is logged and the informer carries on. Handlers run on the processor thread.
    ``on_add`` may also take just one argument.

    ``resource`` is the lowercase plural of the API path (``"pods"``, ``"deployments"`` with
    ``group="apps"``) or a :class:`GroupVersionResource`; anything else is a ValueError.
    Options beyond the resource: ``watch_list`` (streaming list first, default on),
    ``metadata_only`` (cache PartialObjectMetadata), ``transform`` (applied to every object
    before it is cached: a native :class:`kfast.transforms.ObjectTransform` such as
    ``transforms.drop_managed_fields()`` cuts fields in Rust; a Python function is the slow
    path, the watch is then decoded in Python; see :mod:`kfast.transforms`),
    ``min_watch_timeout`` (0 lets the server pick), ``initial_events_timeout`` (seconds a
    streaming list may take to reach its initial-events-end bookmark before the informer
    falls back to LIST + WATCH; default 120, None waits for the watch to end).
    """

    def __init__(
        self,
        config: Config,
        resource: str | GroupVersionResource = "pods",
        *,
        group: str = "",
        version: str = "v1",
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, Any] | None = None,
        resync_period: float = 0,
        page_size: int = 500,
        watch_list: bool = True,
        min_watch_timeout: int = 300,
        initial_events_timeout: float | None = 120.0,
        metadata_only: bool = False,
        transform: Transform | None = None,
        wire: Wire | None = None,
    ) -> None:
        self.config = config
        gvr = _checked_resource(resource, group, version)
        self.resource = gvr.resource
        self.path = resource_path(gvr.resource, group=gvr.group, version=gvr.version, namespace=namespace)
        idx = dict(indexers or {})
        idx.setdefault(NAMESPACE_INDEX, _native.IndexFunc.namespace())
        self._indexer = _native.Indexer(idx)
        self._index_names: frozenset[str] = frozenset(idx)
        self._index_lock = threading.Lock()
        self._fifo = _native.DeltaFIFO(known_objects=self._indexer)
        self._wire = wire or Wire(config)
        self._owns_wire = wire is None
        self._reflector = Reflector(ReflectorOptions(label_selector=label_selector,
                                                     field_selector=field_selector,
                                                     page_size=page_size,
                                                     watch_list=watch_list,
                                                     min_watch_timeout=min_watch_timeout,
                                                     initial_events_timeout=initial_events_timeout))
        self._counters = Counters()
        self._runner = ReflectorRunner(self._wire, self.path, self._fifo, self._reflector,
                                       counters=self._counters, metadata_only=metadata_only,
                                       transform=transform, bounded=True)
        self._lister = Lister(self._indexer, namespace)
        self.resync_period = float(resync_period)
        self._handlers: list[EventHandlerRegistration] = []
        self._handlers_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = False
        self.dispatched = 0  # notifications handed to handlers, for tests and metrics
        # Set by the processor once every notification of the initial list was dispatched.
        self._delivered_initial = False
        # Handlers whose resync was due at the last fifo.resync(): they get the Sync
        # notifications (client-go's syncingListeners).
        self._syncing: frozenset[EventHandlerRegistration] = frozenset()
        self._on_stop: list[Callable[[], None]] = []  # run once the processor has drained

    # -- public API -------------------------------------------------------------------------

    @property
    def indexer(self) -> _native.Indexer:
        return self._indexer

    @property
    def index_names(self) -> frozenset[str]:
        return self._index_names

    def add_indexers(self, indexers: Mapping[str, Any]) -> None:
        """Add indices, also after start (existing objects are indexed). ValueError on a
        name clash."""
        with self._index_lock:
            self._indexer.add_indexers(dict(indexers))
            self._index_names = self._index_names | frozenset(indexers)

    @property
    def started(self) -> bool:
        return self._started

    @property
    def fifo(self) -> _native.DeltaFIFO:
        return self._fifo

    @property
    def lister(self) -> Lister:
        return self._lister

    @property
    def reflector(self) -> Reflector:
        return self._reflector

    @property
    def runner(self) -> ReflectorRunner:
        return self._runner

    def add_event_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                          on_delete: Handler | None = None, *, resync_period: float | None = None,
                          loop: asyncio.AbstractEventLoop | None = None) -> EventHandlerRegistration:
        """Register handlers; ``resync_period`` defaults to the informer's. Coroutine
        functions run on ``loop`` (default: the running loop), one at a time and in order,
        and never block the informer."""
        on_add, on_update, on_delete = (coroutine_handler(f, loop, self.path)
                                        for f in (on_add, on_update, on_delete))
        period = self.resync_period if resync_period is None else resync_period
        reg = EventHandlerRegistration(self, on_add, on_update, on_delete, period)
        with self._handlers_lock:
            # Before start there is nothing to replay; after, the processor replays the cache.
            reg._replayed = not self._started
            self._handlers = [*self._handlers, reg]
        return reg

    def _remove_handler(self, reg: EventHandlerRegistration) -> None:
        with self._handlers_lock:
            reg.removed = True
            self._handlers = [h for h in self._handlers if h is not reg]

    def start(self) -> SharedIndexInformer:
        """Start the reflector and processor threads; a second call while running does
        nothing. A stopped informer cannot be started again (its FIFO is closed and its
        handlers have had their final notifications): like ``threading.Thread.start``,
        that raises RuntimeError; make a new informer instead."""
        with self._handlers_lock:
            if self._stop.is_set():
                raise RuntimeError(f"informer {self.path} was stopped and cannot be started again; "
                                   "create a new SharedIndexInformer")
            if self._started:
                return self
            self._started = True
        _running.add(self)
        name = f"kfast-{self.resource}"
        for target, suffix in ((self._runner.run, "reflector"), (self._process_loop, "processor")):
            t = threading.Thread(target=target, name=f"{name}-{suffix}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def has_synced(self) -> bool:
        return self._fifo.has_synced()

    def metrics(self) -> InformerMetrics:
        """A snapshot of this informer's counters (see :class:`InformerMetrics`)."""
        c, r = self._counters, self._reflector
        return InformerMetrics(
            events=c.events, initial_events=c.initial_events, bookmarks=c.bookmarks,
            error_events=c.error_events, notifications=dict(c.notifications),
            events_by_type=dict(c.events_by_type),
            initial_events_timeouts=c.initial_events_timeouts,
            lists=r.lists, relists=max(0, r.lists - 1), list_requests=c.list_requests,
            watch_restarts=max(0, c.watches_opened - 1), decode_errors=c.decode_errors,
            watch_failures=c.watch_failures, list_failures=c.list_failures,
            fifo_depth=len(self._fifo), cached_objects=len(self._indexer),
            last_sync_rv=r.last_synced_rv, streaming_list=r.watch_list_supported,
            has_synced=self.has_synced())

    async def wait_for_sync_async(self, timeout: float | None = None) -> bool:
        """:meth:`wait_for_sync` for asyncio: polls without blocking the event loop."""
        return await wait_until(self._synced_with_handlers(), self._stop.is_set, timeout)

    def _synced_with_handlers(self) -> Callable[[], bool]:
        # The handlers registered now: one added later does not hold back this wait.
        regs = self._handlers
        return lambda: self.has_synced() and all(r.removed or r.has_synced() for r in regs)

    def stream(self, maxsize: int = 0) -> EventStream:
        """An ``async for`` stream of :class:`kfast.InformerEvent` on the running loop, starting
        with the cache replayed as adds; it ends when the informer stops or the stream is
        closed (``async with informer.stream() as events:`` closes it)."""
        return EventStream(self, maxsize)

    async def __aenter__(self) -> SharedIndexInformer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until the cache holds the initial list (:meth:`has_synced`) AND every event
        handler registered before this call has been told about it (each registration's
        ``has_synced()``), or ``timeout`` seconds pass (False) or the informer stops.

        client-go keeps the two apart (``WaitForCacheSync(informer.HasSynced)`` returns
        while the processor may still be delivering the initial adds; a caller waits on
        ``registration.HasSynced`` too); kfast waits for both, so a handler's
        ``has_synced()`` is True once this returns True. :meth:`has_synced` itself keeps
        client-go's meaning (the store only)."""
        synced = self._synced_with_handlers()
        end = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while not synced():
            if self._stop.is_set():
                return False
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching, let the processor deliver everything already in the FIFO (each
        notification exactly once), then join both threads."""
        _running.discard(self)
        self._stop.set()
        self._runner.stop()
        reflector, processor = (self._threads + [None, None])[:2]
        me = threading.current_thread()
        # Nothing may enter the FIFO after it is closed: wait for the reflector first.
        if reflector is not None and reflector is not me:
            reflector.join(timeout)
        self._fifo.close()
        if processor is not None and processor is not me:
            processor.join(timeout)
        callbacks, self._on_stop = self._on_stop, []
        for cb in callbacks:
            cb()
        if self._owns_wire:
            self._wire.close()

    def __enter__(self) -> SharedIndexInformer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- processor thread -------------------------------------------------------------------

    def _process_loop(self) -> None:
        # Runs until the FIFO is closed *and* drained (stop() closes it), so whatever the
        # reflector queued is delivered before the thread ends.
        while True:
            handlers = self._handlers
            if any(not h._replayed for h in handlers):
                self._replay(handlers)
            if not self._stop.is_set():
                self._maybe_resync(handlers)
            try:
                out = _native.process_batch(self._fifo, self._indexer, collect=bool(handlers))
            except Exception:  # noqa: BLE001 - the processor must survive anything
                log.exception("informer %s: process_batch failed", self.path)
                time.sleep(0.1)
                continue
            # The last initial item was popped by now if the FIFO says synced, so once this
            # batch is dispatched every initial notification has been delivered.
            synced = self._fifo.has_synced()
            if isinstance(out, int):
                if out < 0:
                    return  # FIFO closed and drained
            elif out:
                # A handler registered since the replay above gets its replay next round,
                # which already contains this batch's result; do not deliver it twice.
                self._dispatch(out, [h for h in self._handlers if h._replayed])
            if synced:
                if not self._delivered_initial:
                    # The initial sync freed its scaffolding (list pages, staging tables, the
                    # FIFO's queue of 100k keys) on this and the reflector's thread; mimalloc
                    # keeps such pages until told (measured: ~35-160 B per cached pod).
                    _native.release_free_memory()
                self._delivered_initial = True

    def _maybe_resync(self, handlers: list[EventHandlerRegistration]) -> None:
        now = time.monotonic()
        due = [h for h in handlers if h.resync_period > 0 and now >= h._next_resync]
        if not due:
            return
        for h in due:
            h._next_resync = now + h.resync_period
        self._syncing = frozenset(due)
        self._fifo.resync()

    def _replay(self, handlers: list[EventHandlerRegistration]) -> None:
        # Runs on the processor thread between batches, so the replay and later
        # notifications arrive in order.
        objs = self._indexer.list()
        for h in handlers:
            if h._replayed or h.removed:
                continue
            if h.on_add is not None:
                for o in objs:
                    _call(h, self.path, ObjectView(o), True)  # as client-go does
            # Only now: has_synced() (and wait_for_sync) must not report a replay half done.
            h._replayed = True

    def _dispatch(self, notes: list[Any], handlers: list[EventHandlerRegistration]) -> None:
        path = self.path
        counts = self._counters.notifications
        for kind, obj, old, initial in notes:
            if kind == _ADD:
                counts["add"] += 1
                v = ObjectView(obj)
                for h in handlers:
                    if h.on_add is not None:
                        _call(h, path, v, initial)
            elif kind == _UPDATE:
                nv, ov = ObjectView(obj), ObjectView(old)
                # An unchanged RV is a resync (a Sync delta, or a relist's Replaced of an
                # object that did not change): only handlers due for a resync hear of it.
                sync = old is not None and obj.resource_version == old.resource_version
                counts["sync" if sync else "update"] += 1
                for h in ([h for h in handlers if h in self._syncing] if sync else handlers):
                    if h.on_update is not None:
                        _call2(h.on_update, path, ov, nv)
            else:
                counts["delete"] += 1
                dv = obj if isinstance(obj, Tombstone) else ObjectView(obj)
                for h in handlers:
                    if h.on_delete is not None:
                        _call1(h.on_delete, path, dv)
        self.dispatched += len(notes)


def _takes_two(fn: Handler) -> bool:
    """Whether ``on_add`` wants ``is_in_initial_list`` (``on_add(obj)`` is the common spelling)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    n = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n >= 2


def _call(h: EventHandlerRegistration, path: str, v: ObjectView, initial: bool) -> None:
    fn = h.on_add
    assert fn is not None
    try:
        if h._add_flag:
            fn(v, initial)
        else:
            fn(v)
    except Exception:  # noqa: BLE001
        log.exception("informer %s: add handler %r failed", path, fn)


def _call2(fn: Handler, path: str, a: Any, b: Any) -> None:
    try:
        fn(a, b)
    except Exception:  # noqa: BLE001
        log.exception("informer %s: update handler %r failed", path, fn)


def _call1(fn: Handler, path: str, a: Any) -> None:
    try:
        fn(a)
    except Exception:  # noqa: BLE001
        log.exception("informer %s: delete handler %r failed", path, fn)


# Informers still running when the interpreter exits are stopped first. Their threads are
# daemons that spend most of their time in Rust with the GIL released; if finalisation made
# such a thread exit while it re-took the GIL, unwinding through the Rust frames would abort
# the whole process (exit 134) instead of letting a script that forgot stop() end normally.
_running: weakref.WeakSet[SharedIndexInformer] = weakref.WeakSet()


@atexit.register
def _stop_running_informers() -> None:
    for inf in list(_running):
        try:
            inf.stop(timeout=2.0)
        except Exception:  # noqa: BLE001 - exiting anyway; never mask the real exit status
            log.debug("stopping informer at exit failed", exc_info=True)
