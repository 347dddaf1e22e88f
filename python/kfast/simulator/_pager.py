"""Paginated LIST over consistent snapshots, with opaque continue tokens.

All pages of one list share its resourceVersion, as they do when kube-apiserver reads them
from one etcd revision: the first page takes a snapshot (copies of the sorted keys and the
item map, a few milliseconds for 100k objects) and the continue token names it. A token
whose snapshot is gone (evicted, compacted, or expired on purpose) answers 410 Expired with
a fresh token that continues from the same key on a new snapshot, as the API server does.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from kfast.simulator._history import Raw, status_doc

if TYPE_CHECKING:
    from kfast.simulator._store import Item, Resource, Selector

__all__ = ["ListResult", "Pager"]

_EXPIRED = ("The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter, or use the continue "
            "token in this response to retrieve the remainder of the results.")


@dataclass
class ListResult:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Snapshot:
    """One resource's sorted keys and items at ``rv``, for the later pages of a list."""

    sid: int
    rv: int
    resource: str
    keys: list[str]
    items: dict[str, Item]


class Pager:
    """Serves LIST pages; snapshots are guarded by the store's ``cond``."""

    def __init__(self, cond: threading.Condition, current_rv: Callable[[], int],
                 max_snapshots: int = 16) -> None:
        self._cond = cond
        self._rv = current_rv
        self._max = max_snapshots
        self._snapshots: OrderedDict[int, _Snapshot] = OrderedDict()
        self._ids = itertools.count(1)

    def drop_older_locked(self, rv: int) -> None:
        """Compaction: tokens of lists older than ``rv`` expire."""
        for sid in [k for k, s in self._snapshots.items() if s.rv < rv]:
            del self._snapshots[sid]

    def clear_locked(self) -> None:
        self._snapshots.clear()

    def list(self, res: Resource, *, namespace: str | None, selector: Selector, limit: int,
             continue_token: str | None) -> ListResult:
        if not continue_token:
            with self._cond:
                snap = self._snapshot_locked(res)
            return self._page(res, snap, namespace, selector, limit,
                              f"{namespace}/" if namespace else "", after=False)
        try:
            tok = msgspec.json.decode(base64.urlsafe_b64decode(continue_token.encode()))
            sid, start_key = int(tok["s"]), str(tok["k"])
        except Exception:  # noqa: BLE001 - any garbage in a token is the client's error
            return ListResult(400, status_doc(400, "BadRequest", "invalid continue token"))
        with self._cond:
            found = self._snapshots.get(sid)
            if found is None or found.resource != res.name:
                fresh = self._token(self._snapshot_locked(res), start_key)
                return ListResult(410, status_doc(410, "Expired", _EXPIRED,
                                                  continue_token=fresh))
        return self._page(res, found, namespace, selector, limit, start_key, after=True)

    def _snapshot_locked(self, res: Resource) -> _Snapshot:
        snap = _Snapshot(next(self._ids), self._rv(), res.name, list(res.keys), dict(res.items))
        self._snapshots[snap.sid] = snap
        while len(self._snapshots) > self._max:
            self._snapshots.popitem(last=False)
        return snap

    @staticmethod
    def _token(snap: _Snapshot, key: str) -> str:
        raw = msgspec.json.encode({"s": snap.sid, "k": key, "rv": snap.rv})
        return base64.urlsafe_b64encode(raw).decode()

    def _page(self, res: Resource, snap: _Snapshot, namespace: str | None, selector: Selector,
              limit: int, start_key: str, *, after: bool) -> ListResult:
        from kfast.simulator._store import selector_matches

        keys, items = snap.keys, snap.items
        i = (bisect.bisect_right if after else bisect.bisect_left)(keys, start_key)
        prefix = f"{namespace}/" if namespace else None
        raws: list[Raw] = []
        n = len(keys)
        last_key = ""
        while i < n and (limit <= 0 or len(raws) < limit):
            k = keys[i]
            if prefix is not None and not k.startswith(prefix):
                i = n  # keys are sorted: the namespace's range has ended
                break
            i += 1
            it = items[k]
            if selector and not selector_matches(selector, it.labels):
                continue
            raws.append(it.raw)
            last_key = k
        more = limit > 0 and i < n and (prefix is None or keys[i].startswith(prefix))
        meta = b'"resourceVersion":"%d"' % snap.rv
        if more:
            meta += b',"continue":"%s"' % self._token(snap, last_key).encode()
            if prefix is None and not selector:
                meta += b',"remainingItemCount":%d' % (n - i)
        return ListResult(200, b'{"kind":"%s","apiVersion":"%s","metadata":{%s},"items":['
                          % (res.list_kind.encode(), res.api_version.encode(), meta)
                          + b",".join(raws) + b"]}")
