"""What the reflector state machine (:mod:`kfast._reflector`) and its drivers say to each
other: actions the machine asks for, and inputs reporting what happened. Plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ListRequest",
    "WatchRequest",
    "WatchListRequest",
    "ReplaceStore",
    "Sleep",
    "Action",
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
    "Input",
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
class WatchListRequest:
    """Open a streaming list: collect its initial ADDED events (not into the FIFO), report
    them with :class:`InitialEventsEnd` at the initial-events-end bookmark, then carry on
    streaming into the FIFO exactly as for a :class:`WatchRequest`."""

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


Action = ListRequest | WatchRequest | WatchListRequest | ReplaceStore | Sleep


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
class InitialEventsEnd:
    """A streaming list reached its initial-events-end bookmark: ``items`` is the initial
    set, ``resource_version`` the bookmark's (the snapshot's) RV."""

    items: list[Any]
    resource_version: str


@dataclass(frozen=True)
class InitialEventsTimedOut:
    """A streaming list did not reach its initial-events-end bookmark within
    ``ReflectorOptions.initial_events_timeout``; the driver closed it."""


@dataclass(frozen=True)
class WatchEnded:
    """The server closed the watch cleanly (timeoutSeconds elapsed, or its own limit)."""


@dataclass(frozen=True)
class WatchFailed:
    error: BaseException


@dataclass(frozen=True)
class Slept:
    pass


Input = (ListPage | ListFailed | StoreReplaced | WatchOpened | WatchProgress | InitialEventsEnd
         | InitialEventsTimedOut | WatchEnded | WatchFailed | Slept)
