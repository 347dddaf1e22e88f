"""The list-then-watch loop as a state machine with one step function and no I/O.

A driver (``_driver.py``) performs the :data:`Action` the machine asks for and feeds back
what happened as an :data:`Input`; the machine never touches a socket, a clock or a random
source it was not given, so every transition is unit-tested without a server.

Rules (docs/protocol.md, "Reflector discipline" and "Streaming list"):

* with ``watch_list`` on (the default) the initial sync and every relist is a streaming list:
  a watch with ``sendInitialEvents=true`` whose ADDED events are collected until the
  ``k8s.io/initial-events-end`` bookmark, where the store is replaced atomically and the same
  connection carries on as a normal watch; a 4xx refusal (or an end before that bookmark)
  switches this reflector to LIST + WATCH for good, and so does a bookmark that has not come
  within ``initial_events_timeout`` (the driver closes the stream and says so);
* otherwise the initial LIST is at RV "0", paginated with ``limit``/``continue``;
* the WATCH starts at the list's RV with ``allowWatchBookmarks`` and a random 5-10 min
  ``timeoutSeconds``; events and bookmarks advance the RV; a normal end resumes from it;
* 410 (HTTP or in-stream ERROR) relists at the last RV seen; only if *that* LIST answers
  Expired or "too large resource version" does it relist with RV "" (consistent read);
* 429, connection failures and 5xx back off and retry the watch without relisting
  (Retry-After is a floor for the delay, itself capped at ``max_retry_after``); decode errors and truncated streams resume the
  watch at once from the last RV, because the bytes before the damage were applied;
* backoff is 800 ms doubling to 30 s with jitter, and resets after 2 min healthy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from kfast import errors
from kfast._reflector_io import (
    ListRequest,
    WatchRequest,
    WatchListRequest,
    ReplaceStore,
    Sleep,
    Action,
    ListPage,
    ListFailed,
    StoreReplaced,
    WatchOpened,
    WatchProgress,
    InitialEventsEnd,
    InitialEventsTimedOut,
    WatchEnded,
    WatchFailed,
    Slept,
    Input,
)
from kfast._backoff import (MAX_RETRY_AFTER_SECONDS, Backoff, is_expired, is_too_large_rv, is_watch_list_refusal,
                            retry_after, retry_watch_after_backoff)

__all__ = [
    "Action",
    "Input",
    "Reflector",
    "ReflectorOptions",
    "Backoff",
    # actions
    "ListRequest",
    "WatchRequest",
    "WatchListRequest",
    "ReplaceStore",
    "Sleep",
    # inputs
    "ListPage",
    "ListFailed",
    "StoreReplaced",
    "WatchOpened",
    "WatchProgress",
    "InitialEventsEnd",
    "InitialEventsTimedOut",
    "WatchEnded",
    "WatchFailed",
    "Slept",
]


# ---- states ------------------------------------------------------------------------------


@dataclass
class Listing:
    """Fetching pages of a LIST at ``rv`` (the RV *parameter*: "0", "", or a known RV)."""

    rv: str
    paginate: bool = True
    continue_token: str | None = None
    items: list[Any] = field(default_factory=list)


@dataclass
class StreamingList:
    """A streaming list at ``rv`` ("" = consistent snapshot, else NotOlderThan ``rv``) is
    open and has not reached its initial-events-end bookmark yet."""

    rv: str


@dataclass
class Replacing:
    resource_version: str
    # True when the replace came from a streaming list: its connection carries on as the
    # watch, so after StoreReplaced the driver keeps streaming instead of opening a watch.
    resume_stream: bool = False


@dataclass
class Watching:
    rv: str


@dataclass
class BackingOff:
    then: Listing | StreamingList | Watching


State = Listing | StreamingList | Replacing | Watching | BackingOff


@dataclass(frozen=True)
class ReflectorOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    page_size: int = 500
    min_watch_timeout: int = 300  # seconds; each watch asks for a random 1x-2x of this; 0: server's choice
    initial_backoff: float = 0.8
    max_backoff: float = 30.0
    backoff_reset_after: float = 120.0
    jitter: float = 1.0  # client-go's reflector uses jitter 1.0: delay * (1 + rand)
    # A server's Retry-After is honoured up to this (the same default as RetryPolicy's).
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS
    watch_list: bool = True  # try the streaming list first (falls back by itself)
    # Seconds a streaming list may take to reach its initial-events-end bookmark before the
    # driver abandons it and this reflector falls back to LIST + WATCH (None: wait for the
    # watch to end). Generous: kube-apiserver streams ~100k pods from its watch cache in
    # seconds; a server that ignores sendInitialEvents never sends the bookmark at all.
    initial_events_timeout: float | None = 120.0


class Reflector:
    """One step function over :data:`State`. Call :meth:`start` once, then :meth:`step`
    with each input; both return the next action."""

    def __init__(
        self,
        options: ReflectorOptions | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options or ReflectorOptions()
        self._rng = rng or random.Random()
        self.backoff = Backoff(self.options, self._rng)
        self.state: State = Listing(rv="0")
        # RV of the last LIST or event applied; a relist after 410 starts from here.
        self.last_synced_rv: str = ""
        # Set when a LIST at last_synced_rv said the RV is unavailable: relist with "" next.
        self.rv_unavailable: bool = False
        self.lists: int = 0  # completed LISTs, for tests and metrics
        # Whether the server paginated the initial LIST (at RV "0" the watch cache ignores
        # limit). Only then are relists at a known RV paginated; see _relist_state.
        self.paginated_result: bool = False
        # Set by a relist after 410 and cleared by watch progress: a second 410 with nothing
        # in between means the relist handed us a stale RV.
        self._relisted_after_gone: bool = False
        # Watches in a row that ended or broke without delivering anything. The first is
        # resumed at once (a dropped connection, a server timeout); after that the driver
        # backs off, so a stream that keeps breaking at the same bad event, or a proxy that
        # cuts every watch, cannot turn into a reconnect storm.
        self._fruitless_watches: int = 0
        # None until a streaming list answers: True once one reached its initial-events-end
        # bookmark, False once the server refused one (then LIST + WATCH for good).
        self.watch_list_supported: bool | None = None

    # -- public ---------------------------------------------------------------------------

    def start(self) -> Action:
        if self._streaming():
            # client-go's watch-list starts at RV "": a consistent snapshot, NotOlderThan.
            return self._watch_list(StreamingList(rv=""))
        self.state = Listing(rv="0")
        return self._list_request(self.state)

    def step(self, event: Input, now: float) -> Action | None:
        """Advance on ``event`` observed at monotonic time ``now``; None means keep going
        (the driver continues the action in progress, i.e. the watch stream)."""
        s = self.state
        if isinstance(s, Listing):
            return self._on_listing(s, event, now)
        if isinstance(s, StreamingList):
            return self._on_streaming(s, event, now)
        if isinstance(s, Replacing):
            self._expect(event, StoreReplaced)
            self.lists += 1
            self.last_synced_rv = s.resource_version
            self.rv_unavailable = False
            if s.resume_stream:
                self.state = Watching(s.resource_version)
                return None
            return self._watch(s.resource_version)
        if isinstance(s, Watching):
            return self._on_watching(s, event, now)
        self._expect(event, Slept)
        nxt = s.then
        self.state = nxt
        if isinstance(nxt, Listing):
            return self._list_request(nxt)
        if isinstance(nxt, StreamingList):
            return self._watch_list(nxt)
        return self._watch(nxt.rv)

    # -- transitions ----------------------------------------------------------------------

    def _on_listing(self, s: Listing, event: Input, now: float) -> Action:
        if isinstance(event, ListPage):
            s.items.extend(event.items)
            if event.continue_token and self.lists == 0 and s.rv == "0":
                self.paginated_result = True
            if event.continue_token and s.paginate:
                s.continue_token = event.continue_token
                return self._list_request(s)
            self.state = Replacing(event.resource_version)
            items, s.items = s.items, []
            return ReplaceStore(items, event.resource_version)
        ev = self._expect(event, ListFailed)
        err = ev.error
        if is_expired(err) and s.continue_token is not None:
            # The continue token expired mid-list: start over with one unpaginated LIST.
            return self._list_request(self._set(Listing(rv=s.rv, paginate=False)))
        if (is_expired(err) or is_too_large_rv(err)) and s.rv not in ("", "0"):
            # Our last RV is compacted away (or ahead of this server): consistent read.
            self.rv_unavailable = True
            return self._list_request(self._set(Listing(rv="")))
        delay = self.backoff.delay(now, retry_after(err, self.options.max_retry_after))
        self.state = BackingOff(Listing(rv=s.rv, paginate=s.paginate))
        return Sleep(delay, f"list failed: {err!r}")

    def _on_streaming(self, s: StreamingList, event: Input, now: float) -> Action | None:
        if isinstance(event, WatchOpened):
            self.backoff.healthy(now)
            return None
        if isinstance(event, WatchProgress):
            return None  # nothing is applied before the initial-events-end bookmark
        if isinstance(event, InitialEventsEnd):
            self.watch_list_supported = True
            self.state = Replacing(event.resource_version, resume_stream=True)
            return ReplaceStore(event.items, event.resource_version)
        if isinstance(event, (WatchEnded, InitialEventsTimedOut)):
            # A server that ends the stream before the bookmark, or never sends it, does not
            # stream lists (an old one treats the request as a plain watch from "now").
            return self._fall_back_to_list()
        err = self._expect(event, WatchFailed).error
        if (is_expired(err) or is_too_large_rv(err)) and s.rv != "":
            self.rv_unavailable = True
            return self._watch_list(StreamingList(rv=""))
        if is_watch_list_refusal(err):
            return self._fall_back_to_list()
        # Transport trouble, 429, 5xx, a damaged stream: the partial initial set is dropped
        # (the driver never applied it); back off and stream again from the same RV.
        delay = self.backoff.delay(now, retry_after(err, self.options.max_retry_after))
        self.state = BackingOff(StreamingList(rv=s.rv))
        return Sleep(delay, f"streaming list failed: {err!r}")

    def _fall_back_to_list(self) -> ListRequest | WatchListRequest:
        self.watch_list_supported = False
        if self.lists == 0:
            return self._list_request(self._set(Listing(rv="0")))
        return self._relist()

    def _on_watching(self, s: Watching, event: Input, now: float) -> Action | None:
        if isinstance(event, WatchOpened):
            self.backoff.healthy(now)
            return None
        if isinstance(event, WatchProgress):
            self._relisted_after_gone = False
            self._fruitless_watches = 0
            if event.resource_version:
                s.rv = event.resource_version
                self.last_synced_rv = event.resource_version
            return None
        if isinstance(event, WatchEnded):
            return self._resume(s.rv, now, "watch ended without delivering anything")
        ev = self._expect(event, WatchFailed)
        err = ev.error
        if is_expired(err):
            if self._relisted_after_gone:
                # The relist at our RV answered with an RV the watch cache no longer has
                # (seen after a kube-apiserver restart: etcd still serves it, the fresh watch
                # cache does not). Repeating would spin; back off and read consistently.
                self.rv_unavailable = True
                delay = self.backoff.delay(now)
                self.state = BackingOff(self._relist_state())
                return Sleep(delay, f"watch still expired right after a relist: {err!r}")
            self._relisted_after_gone = True
            return self._relist()
        if isinstance(err, (errors.DecodeError, errors.StreamTruncated)):
            # Everything before the damage was applied and advanced s.rv; resume from there.
            return self._resume(s.rv, now, f"watch broke again before any event: {err!r}")
        if retry_watch_after_backoff(err):
            delay = self.backoff.delay(now, retry_after(err, self.options.max_retry_after))
            self.state = BackingOff(Watching(s.rv))
            return Sleep(delay, f"watch failed: {err!r}")
        # Anything else (401, 403, 404, unexpected bugs): back off, then relist, as client-go
        # restarts ListAndWatch for errors it does not classify.
        delay = self.backoff.delay(now, retry_after(err, self.options.max_retry_after))
        self.state = BackingOff(self._relist_state())
        return Sleep(delay, f"watch failed: {err!r}")

    def _resume(self, rv: str, now: float, why: str) -> WatchRequest | Sleep:
        self._fruitless_watches += 1
        if self._fruitless_watches == 1:
            return self._watch(rv)
        delay = self.backoff.delay(now)
        self.state = BackingOff(Watching(rv))
        return Sleep(delay, why)

    def _relist_state(self) -> Listing | StreamingList:
        if self._streaming():
            return StreamingList(rv="" if self.rv_unavailable else self.last_synced_rv)
        if self.rv_unavailable or not self.last_synced_rv:
            return Listing(rv="")
        # Like client-go: a LIST at a known RV with limit has Exact semantics and is read
        # from etcd, so relists go unpaginated (served from the watch cache, at least as new
        # as our RV) unless the server paginated the initial list; then _list_request asks
        # for NotOlderThan explicitly so a page can never pin us to a stale RV.
        return Listing(rv=self.last_synced_rv, paginate=self.paginated_result)

    def _relist(self) -> ListRequest | WatchListRequest:
        nxt = self._relist_state()
        if isinstance(nxt, StreamingList):
            return self._watch_list(nxt)
        return self._list_request(self._set(nxt))

    def _streaming(self) -> bool:
        return self.options.watch_list and self.watch_list_supported is not False

    # -- helpers --------------------------------------------------------------------------

    def _set(self, s: Listing) -> Listing:
        self.state = s
        return s

    def _watch(self, rv: str) -> WatchRequest:
        self.state = Watching(rv)
        return WatchRequest(self._watch_params(rv))

    def _watch_list(self, s: StreamingList) -> WatchListRequest:
        self.state = s
        params = self._watch_params(s.rv)
        params["sendInitialEvents"] = "true"
        params["resourceVersionMatch"] = "NotOlderThan"
        return WatchListRequest(params)

    def _watch_params(self, rv: str) -> dict[str, str]:
        o = self.options
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true"}
        if o.min_watch_timeout > 0:
            params["timeoutSeconds"] = str(int(o.min_watch_timeout * (1.0 + self._rng.random())))
        # else the server picks (kube-apiserver: --min-request-timeout, times 1 to 2)
        return self._selectors(params)

    def _list_request(self, s: Listing) -> ListRequest:
        params: dict[str, str] = {}
        if s.continue_token:
            # The server rejects resourceVersion together with continue; the token carries it.
            params["continue"] = s.continue_token
        else:
            params["resourceVersion"] = s.rv
            if s.rv not in ("", "0") and s.paginate and self.options.page_size > 0:
                params["resourceVersionMatch"] = "NotOlderThan"
        if s.paginate and self.options.page_size > 0:
            params["limit"] = str(self.options.page_size)
        return ListRequest(self._selectors(params))

    def _selectors(self, params: dict[str, str]) -> dict[str, str]:
        if self.options.label_selector:
            params["labelSelector"] = self.options.label_selector
        if self.options.field_selector:
            params["fieldSelector"] = self.options.field_selector
        return params

    def _expect(self, event: Input, cls: type[Any]) -> Any:
        if not isinstance(event, cls):
            raise RuntimeError(f"reflector in {self.state!r} cannot take {event!r}")
        return event
