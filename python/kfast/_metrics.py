"""Counters an informer keeps about itself, readable from Python at any time.

Each counter has exactly one writer thread (the reflector thread writes the watch and list
counters, the processor thread the notification counters), so plain ints suffice: a reader
sees a value that was true a moment ago, never a torn one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Counters", "InformerMetrics"]


class Counters:
    """Mutable counters, written by the informer's threads."""

    __slots__ = ("events", "initial_events", "bookmarks", "error_events", "watches_opened",
                 "list_requests", "decode_errors", "watch_failures", "list_failures",
                 "notifications", "events_by_type", "initial_events_timeouts")

    def __init__(self) -> None:
        # ADDED/MODIFIED/DELETED received on watches (the Rust bulk path counts them
        # together; the initial events of a streaming list are also in initial_events).
        self.events = 0
        self.initial_events = 0
        self.bookmarks = 0
        self.error_events = 0  # ERROR events in a watch stream or a non-2xx watch answer
        self.watches_opened = 0  # watch and streaming-list requests sent
        self.list_requests = 0  # LIST pages requested
        self.decode_errors = 0  # malformed, truncated or too-long lines
        self.watch_failures = 0
        self.list_failures = 0
        # What handlers were told, by kind: add, update, delete (counted while dispatching,
        # so only while at least one handler is registered; replays are not counted).
        # "sync" counts resync notifications (an unchanged resourceVersion), which only
        # handlers due for a resync receive.
        self.notifications = {"add": 0, "update": 0, "delete": 0, "sync": 0}
        # Every watch event received, by type (the initial events of a streaming list
        # included: they are ADDED; ERROR events are in error_events).
        self.events_by_type = {"ADDED": 0, "MODIFIED": 0, "DELETED": 0, "BOOKMARK": 0}
        # Streaming lists abandoned because their initial-events-end bookmark never came.
        self.initial_events_timeouts = 0

    def count_feed(self, res: Any) -> None:
        """Count one ``WatchDecoder.feed_fifo`` result by event type."""
        t = self.events_by_type
        t["ADDED"] += res.added
        t["MODIFIED"] += res.modified
        t["DELETED"] += res.deleted
        t["BOOKMARK"] += res.bookmarks


@dataclass(frozen=True)
class InformerMetrics:
    """A snapshot of an informer's counters (:meth:`SharedIndexInformer.metrics`)."""

    events: int
    initial_events: int
    bookmarks: int
    error_events: int
    notifications: dict[str, int] = field(default_factory=dict)
    # Watch events received by type: ADDED, MODIFIED, DELETED, BOOKMARK (initial events of
    # a streaming list included).
    events_by_type: dict[str, int] = field(default_factory=dict)
    lists: int = 0  # completed initial syncs and relists (LIST or streaming list)
    relists: int = 0  # lists after the first
    list_requests: int = 0
    watch_restarts: int = 0  # watches opened after the first
    decode_errors: int = 0
    watch_failures: int = 0
    list_failures: int = 0
    fifo_depth: int = 0  # keys queued in the DeltaFIFO, not yet processed
    cached_objects: int = 0
    last_sync_rv: str = ""
    streaming_list: bool | None = None  # None: not tried / unknown; False: refused
    initial_events_timeouts: int = 0  # streaming lists whose end bookmark never came
    has_synced: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
