"""Watching one collection through the REST client: typed events, transparent resumes.

:class:`WatchState` decides (without I/O) which watch request to open, decodes the body with
the Rust :class:`~kfast._native.WatchDecoder` and keeps the last resourceVersion;
:class:`Watch` and :class:`AsyncWatch` drive it (see :mod:`kfast._stream`).

How a watch ends (protocol.md, Watch wire format):

* The server ends every watch request after its ``timeoutSeconds`` (kfast sends the time left
  of the caller's ``timeout_seconds``, capped by ``server_timeout_seconds``, default a random
  5-10 minutes) or its own limit. That is normal: while the caller's time is not up (or it
  gave none), the watch is opened again from :attr:`resource_version`, the last RV seen in an
  event or bookmark, so no event is lost or repeated. Iteration ends (``StopIteration`` /
  ``StopAsyncIteration``) once ``timeout_seconds`` have passed: ``end_reason == "timeout"``.
* :meth:`Watch.stop` / :meth:`Watch.close` (from any thread or task) end the iteration
  quietly, even while a read is blocked: ``end_reason == "stopped"``.
* A resourceVersion too old to resume from raises :class:`kfast.errors.Expired` (as the HTTP
  status of the request or as an ERROR event, the same class); another ERROR event raises the
  ApiError of its Status; a connection that breaks mid-stream raises
  :class:`kfast.errors.StreamTruncated` (or another TransportError). The caller relists then.

Exactly-once needs a consistent starting point: pass ``resource_version`` (a list's
metadata.resourceVersion), or ``send_initial_events=True`` (the server's initial-events-end
bookmark is one). With neither, the first request asks for "now" and the server starts with
a synthetic ADDED per existing object, in key order, not resourceVersion order: a resume
before a bookmark arrived starts from the last of those and may repeat some changes (with
bookmarks on, the default, the server sends one about 2 s before it ends a request). A
resume before anything at all was seen asks for "now" again.

A request that ends at once with nothing in it is resumed after a short, growing pause
(0.1 s doubling to 5 s); after the first request, less than a second left is the end.

Bookmarks: the watch asks the server for them (``allow_bookmarks=True``, the default) and uses
them to advance :attr:`Watch.resource_version`, so resumes skip nothing and repeat nothing,
but does not hand them to the caller: every event iterated is ADDED, MODIFIED or DELETED
with a whole object. Pass ``yield_bookmarks=True`` to get them too, as ``BOOKMARK`` events
whose object holds only kind, apiVersion and metadata.resourceVersion (and, for the end of
``send_initial_events``, the ``k8s.io/initial-events-end`` annotation).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import httpx
import msgspec

from kfast import _native
from kfast._core import Core, Sleep
from kfast._rest_core import RestRequests
from kfast._stream import AsyncStreamIterator, Close, Emit, ReadChunk, StreamIterator, StreamStep
from kfast._transport import map_transport_error

if TYPE_CHECKING:
    from kfast._client import AsyncClient, Client

__all__ = ["WatchEvent", "EventType", "WatchState", "Watch", "AsyncWatch"]

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
_INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_READ_MARGIN = 60.0  # seconds of silence allowed past timeoutSeconds before a ReadTimeout
_EMPTY = b""


class WatchEvent(NamedTuple):
    """One watch event. ``object`` is the decoded object; for a BOOKMARK only its kind,
    apiVersion and metadata.resourceVersion (and the initial-events-end annotation)."""

    type: EventType
    object: dict[str, Any]


class WatchState:
    """The decisions of one watch: what to open next, resourceVersion bookkeeping, the end."""

    def __init__(self, requests: RestRequests, namespace: str | None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resource_version: str | None = None, timeout_seconds: int | None = None,
                 server_timeout_seconds: int | None = None, allow_bookmarks: bool = True,
                 send_initial_events: bool = False, yield_bookmarks: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        base = requests.list_params(label_selector=label_selector, field_selector=field_selector,
                                    timeout_seconds=timeout_seconds)
        base.pop("timeoutSeconds", None)
        if server_timeout_seconds is not None and (isinstance(server_timeout_seconds, bool) or
                                                   not isinstance(server_timeout_seconds, int)
                                                   or server_timeout_seconds < 1):
            raise ValueError(f"server_timeout_seconds must be a positive int, not {server_timeout_seconds!r}")
        if send_initial_events and not allow_bookmarks:
            raise ValueError("send_initial_events needs allow_bookmarks (the end of the initial "
                             "events is a bookmark)")
        self.requests = requests
        self.namespace = namespace
        self.base_params = base
        self.allow_bookmarks = allow_bookmarks
        self.yield_bookmarks = yield_bookmarks
        self.send_initial_events = send_initial_events
        self.initial_events_done = not send_initial_events
        self.start_resource_version = resource_version
        self.resource_version: str = resource_version or ""
        self.server_timeout_seconds = server_timeout_seconds or random.randint(300, 600)
        self.clock = clock
        self.deadline = clock() + timeout_seconds if timeout_seconds else None
        self.stopped = False
        self.end_reason: Literal["timeout", "stopped"] | None = None
        self.requests_opened = 0
        self._quick_ends = 0
        self._kind = requests.resource.kind
        self._api_version = requests.resource.group_version

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.end_reason = self.end_reason or "stopped"

    def next_request(self) -> httpx.Request | None:
        """The next watch request, or None when the watch is over."""
        if self.stopped:
            return None
        timeout = self.server_timeout_seconds
        if self.deadline is not None:
            left = self.deadline - self.clock()
            # timeoutSeconds is whole seconds: after the first request, less than one
            # second left is the end.
            if left <= 0 or (left < 1.0 and self.requests_opened):
                self.end_reason = "timeout"
                self.stopped = True
                return None
            timeout = min(timeout, math.ceil(left))
        params: dict[str, Any] = dict(self.base_params)
        params["timeoutSeconds"] = timeout
        if self.allow_bookmarks:
            params["allowWatchBookmarks"] = True
        if not self.initial_events_done:
            # Until the initial-events-end bookmark, (re)start the initial phase.
            params["sendInitialEvents"] = True
            params["resourceVersionMatch"] = "NotOlderThan"
            params["resourceVersion"] = self.start_resource_version or ""
        elif self.resource_version:
            params["resourceVersion"] = self.resource_version
        req = self.requests.watch(self.namespace, params)
        req.extensions["timeout"] = httpx.Timeout(30.0, read=timeout + _READ_MARGIN).as_dict()
        self.requests_opened += 1
        return req

    def events(self, raw: list[_native.WatchEvent]) -> list[WatchEvent]:
        out: list[WatchEvent] = []
        decode = msgspec.json.decode
        for ev in raw:
            if ev.resource_version:
                self.resource_version = ev.resource_version
            obj = ev.object
            if obj is not None:
                out.append(WatchEvent(ev.type, decode(obj)))  # type: ignore[arg-type]
                continue
            meta: dict[str, Any] = {"resourceVersion": ev.resource_version}
            if ev.initial_events_end:
                self.initial_events_done = True
                meta["annotations"] = {_INITIAL_EVENTS_END: "true"}
            if not self.yield_bookmarks:
                continue  # kept for the resume point only
            out.append(WatchEvent("BOOKMARK", {"kind": self._kind, "apiVersion": self._api_version,
                                               "metadata": meta}))
        return out

    def quiet_end_backoff(self, started: float, got_events: bool) -> float:
        """Seconds to wait before resuming a request that ended at once with nothing in it
        (a server or proxy that keeps closing watches must not be hammered)."""
        if got_events or self.clock() - started >= 1.0:
            self._quick_ends = 0
            return 0.0
        self._quick_ends += 1
        return min(5.0, 0.05 * 2.0 ** self._quick_ends)

    def steps(self, core: Core) -> Generator[StreamStep, Any, None]:
        while (req := self.next_request()) is not None:
            started = self.clock()
            got_events = False
            resp = yield from core.call(req, stream=True)
            decoder = _native.WatchDecoder(http=False)
            while True:
                chunk = yield ReadChunk(resp)
                if self.stopped:
                    return
                if isinstance(chunk, BaseException):
                    raise map_transport_error(chunk) from chunk
                if chunk is None:
                    decoder.finish()
                    break
                raw = decoder.feed(chunk)
                if raw:
                    got_events = True
                    events = self.events(raw)
                    if events:
                        yield Emit(events)
                    if self.stopped:
                        return
                # A bad line poisons the decoder and only raises on the next call: probe
                # now, so that an ERROR event arriving last cannot wait for more bytes.
                decoder.feed(_EMPTY)
            yield Close(resp)
            wait = self.quiet_end_backoff(started, got_events)
            if wait and not self.stopped:
                yield Sleep(wait, "watch ended at once without events")


class Watch(StreamIterator[WatchEvent]):
    """An iterator of :class:`WatchEvent`; a context manager (closes on exit); :meth:`stop`
    from any thread ends it quietly (see the module docstring for how else it ends)."""

    def __init__(self, client: Client, state: WatchState) -> None:
        super().__init__(client, state)
        self._state = state

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen (events and bookmarks), where a resume starts."""
        return self._state.resource_version

    @property
    def end_reason(self) -> Literal["timeout", "stopped"] | None:
        """None while running (or after an error), "timeout" or "stopped" once it ended."""
        return self._state.end_reason


class AsyncWatch(AsyncStreamIterator[WatchEvent]):
    """An async iterator of :class:`WatchEvent`; an async context manager; :meth:`stop`
    from any task or thread ends it quietly."""

    def __init__(self, client: AsyncClient, state: WatchState) -> None:
        super().__init__(client, state)
        self._state = state

    @property
    def resource_version(self) -> str:
        return self._state.resource_version

    @property
    def end_reason(self) -> Literal["timeout", "stopped"] | None:
        return self._state.end_reason
