"""The list-then-watch loop as a state machine with one step function and no I/O.

A driver (``_driver.py``) performs the :data:`Action` the machine asks for and feeds back
what happened as an :data:`Input`; the machine never touches a socket, a clock or a random
source it was not given, so every transition is unit-tested without a server.

Rules (docs/protocol.md, "Reflector discipline"):

* the initial LIST is at RV "0", paginated with ``limit``/``continue``;
* the WATCH starts at the list's RV with ``allowWatchBookmarks`` and a random 5-10 min
  ``timeoutSeconds``; events and bookmarks advance the RV; a normal end resumes from it;
* 410 (HTTP or in-stream ERROR) relists at the last RV seen; only if *that* LIST answers
  Expired or "too large resource version" does it relist with RV "" (consistent read);
* 429, connection failures and 5xx back off and retry the watch without relisting
  (Retry-After is a floor for the delay); decode errors and truncated streams resume the
  watch at once from the last RV, because the bytes before the damage were applied;
* backoff is 800 ms doubling to 30 s with jitter, and resets after 2 min healthy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from kfast import errors

__all__ = [
    "Reflector",
    "ReflectorOptions",
    "Backoff",
    # actions
    "ListRequest",
    "WatchRequest",
    "ReplaceStore",
    "Sleep",
    # inputs
    "ListPage",
    "ListFailed",
    "StoreReplaced",
    "WatchOpened",
    "WatchProgress",
    "WatchEnded",
    "WatchFailed",
    "Slept",
]


# ---- actions: what the driver must do next ------------------------------------------------


@dataclass(frozen=True)
class ListRequest:
    """GET the collection with these query parameters."""

    params: dict[str, str]


@dataclass(frozen=True)
class WatchRequest:
    """Open a watch with these query parameters and stream it until it ends."""

    params: dict[str, str]


@dataclass(frozen=True)
class ReplaceStore:
    """Replace the FIFO's view of the world with ``items`` (tombstones for the missing)."""

    items: list[Any]
    resource_version: str


@dataclass(frozen=True)
class Sleep:
    seconds: float
    reason: str


Action = ListRequest | WatchRequest | ReplaceStore | Sleep


# ---- inputs: what happened ----------------------------------------------------------------


@dataclass(frozen=True)
class ListPage:
    items: list[Any]
    resource_version: str
    continue_token: str | None = None


@dataclass(frozen=True)
class ListFailed:
    error: BaseException


@dataclass(frozen=True)
class StoreReplaced:
    pass


@dataclass(frozen=True)
class WatchOpened:
    """The watch answered 200: from now on the connection counts as healthy."""


@dataclass(frozen=True)
class WatchProgress:
    """Events or a bookmark were applied; ``resource_version`` is the newest seen."""

    resource_version: str


@dataclass(frozen=True)
class WatchEnded:
    """The server closed the watch cleanly (timeoutSeconds elapsed, or its own limit)."""


@dataclass(frozen=True)
class WatchFailed:
    error: BaseException


@dataclass(frozen=True)
class Slept:
    pass


Input = ListPage | ListFailed | StoreReplaced | WatchOpened | WatchProgress | WatchEnded | WatchFailed | Slept


# ---- states ------------------------------------------------------------------------------


@dataclass
class Listing:
    """Fetching pages of a LIST at ``rv`` (the RV *parameter*: "0", "", or a known RV)."""

    rv: str
    paginate: bool = True
    continue_token: str | None = None
    items: list[Any] = field(default_factory=list)


@dataclass
class Replacing:
    resource_version: str


@dataclass
class Watching:
    rv: str


@dataclass
class BackingOff:
    then: Listing | Watching


State = Listing | Replacing | Watching | BackingOff


@dataclass(frozen=True)
class ReflectorOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    page_size: int = 500
    min_watch_timeout: int = 300  # seconds; each watch asks for a random 1x-2x of this
    initial_backoff: float = 0.8
    max_backoff: float = 30.0
    backoff_reset_after: float = 120.0
    jitter: float = 1.0  # client-go's reflector uses jitter 1.0: delay * (1 + rand)


class Backoff:
    """800 ms doubling to 30 s; ``healthy(now)`` marks the start of a good period, and a
    failure after ``reset_after`` seconds of health starts again from the initial delay."""

    def __init__(self, opts: ReflectorOptions, rng: random.Random) -> None:
        self._opts = opts
        self._rng = rng
        self._next = opts.initial_backoff
        self._healthy_since: float | None = None

    def healthy(self, now: float) -> None:
        if self._healthy_since is None:
            self._healthy_since = now

    def delay(self, now: float, floor: float | None = None) -> float:
        if self._healthy_since is not None and now - self._healthy_since >= self._opts.backoff_reset_after:
            self._next = self._opts.initial_backoff
        self._healthy_since = None
        base = self._next
        self._next = min(self._next * 2, self._opts.max_backoff)
        d = base * (1.0 + self._opts.jitter * self._rng.random())
        return max(d, floor) if floor is not None else d


def _is_expired(err: BaseException) -> bool:
    return isinstance(err, errors.Gone)


def _is_too_large_rv(err: BaseException) -> bool:
    # kube-apiserver answers a LIST at an RV newer than its cache with 504 Timeout and a cause
    # of reason ResourceVersionTooLarge ("Too large resource version").
    if not isinstance(err, errors.ApiError):
        return False
    if "too large resource version" in err.message.lower():
        return True
    causes = err.details.get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "ResourceVersionTooLarge" for c in causes)


def _retry_watch_after_backoff(err: BaseException) -> bool:
    if isinstance(err, (errors.TooManyRequests, errors.ConnectError, errors.ReadTimeout)):
        return True
    return isinstance(err, errors.ApiError) and (err.code >= 500 or isinstance(err, errors.ServerTimeout))


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

    # -- public ---------------------------------------------------------------------------

    def start(self) -> Action:
        self.state = Listing(rv="0")
        return self._list_request(self.state)

    def step(self, event: Input, now: float) -> Action | None:
        """Advance on ``event`` observed at monotonic time ``now``; None means keep going
        (the driver continues the action in progress, i.e. the watch stream)."""
        s = self.state
        if isinstance(s, Listing):
            return self._on_listing(s, event, now)
        if isinstance(s, Replacing):
            self._expect(event, StoreReplaced)
            self.lists += 1
            self.last_synced_rv = s.resource_version
            self.rv_unavailable = False
            return self._watch(s.resource_version)
        if isinstance(s, Watching):
            return self._on_watching(s, event, now)
        self._expect(event, Slept)
        nxt = s.then
        self.state = nxt
        if isinstance(nxt, Listing):
            return self._list_request(nxt)
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
        if _is_expired(err) and s.continue_token is not None:
            # The continue token expired mid-list: start over with one unpaginated LIST.
            return self._list_request(self._set(Listing(rv=s.rv, paginate=False)))
        if (_is_expired(err) or _is_too_large_rv(err)) and s.rv not in ("", "0"):
            # Our last RV is compacted away (or ahead of this server): consistent read.
            self.rv_unavailable = True
            return self._list_request(self._set(Listing(rv="")))
        delay = self.backoff.delay(now, _retry_after(err))
        self.state = BackingOff(Listing(rv=s.rv, paginate=s.paginate))
        return Sleep(delay, f"list failed: {err!r}")

    def _on_watching(self, s: Watching, event: Input, now: float) -> Action | None:
        if isinstance(event, WatchOpened):
            self.backoff.healthy(now)
            return None
        if isinstance(event, WatchProgress):
            self._relisted_after_gone = False
            if event.resource_version:
                s.rv = event.resource_version
                self.last_synced_rv = event.resource_version
            return None
        if isinstance(event, WatchEnded):
            return self._watch(s.rv)
        ev = self._expect(event, WatchFailed)
        err = ev.error
        if _is_expired(err):
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
            return self._watch(s.rv)
        if _retry_watch_after_backoff(err):
            delay = self.backoff.delay(now, _retry_after(err))
            self.state = BackingOff(Watching(s.rv))
            return Sleep(delay, f"watch failed: {err!r}")
        # Anything else (401, 403, 404, unexpected bugs): back off, then relist, as client-go
        # restarts ListAndWatch for errors it does not classify.
        delay = self.backoff.delay(now, _retry_after(err))
        self.state = BackingOff(self._relist_state())
        return Sleep(delay, f"watch failed: {err!r}")

    def _relist_state(self) -> Listing:
        if self.rv_unavailable or not self.last_synced_rv:
            return Listing(rv="")
        # Like client-go: a LIST at a known RV with limit has Exact semantics and is read
        # from etcd, so relists go unpaginated (served from the watch cache, at least as new
        # as our RV) unless the server paginated the initial list; then _list_request asks
        # for NotOlderThan explicitly so a page can never pin us to a stale RV.
        return Listing(rv=self.last_synced_rv, paginate=self.paginated_result)

    def _relist(self) -> ListRequest:
        return self._list_request(self._set(self._relist_state()))

    # -- helpers --------------------------------------------------------------------------

    def _set(self, s: Listing) -> Listing:
        self.state = s
        return s

    def _watch(self, rv: str) -> WatchRequest:
        self.state = Watching(rv)
        o = self.options
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(int(o.min_watch_timeout * (1.0 + self._rng.random()))),
        }
        return WatchRequest(self._selectors(params))

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


def _retry_after(err: BaseException) -> float | None:
    ra = getattr(err, "retry_after", None)
    return float(ra) if ra is not None else None
