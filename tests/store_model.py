"""Pure-Python reference models of the DeltaFIFO, the informer processor and the Indexer,
written straight from shared/docs/protocol.md (and client-go's behaviour), for the
Hypothesis state machines and example tests to compare the Rust implementation with.

Objects are represented in the models by ``rep(obj)``: ``("obj", key, uid, rv)``, and
tombstones by ``("tomb", key, rep_of_last_state_or_None)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, overload

from kfast._native import DeletedFinalStateUnknown, StoredObject

Rep = tuple[Any, ...]


def make(
    name: str,
    *,
    ns: str = "ns",
    uid: str = "u1",
    rv: str = "1",
    labels: dict[str, str] | None = None,
    node: str | list[str] | None = None,
    owners: list[tuple[str, str, str]] | None = None,
) -> StoredObject:
    meta: dict[str, Any] = {"name": name, "uid": uid, "resourceVersion": rv}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = labels
    if owners:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": k, "name": n, "uid": u} for k, n, u in owners
        ]
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
    if node is not None:
        doc["spec"] = {"nodeName": node}
    return StoredObject(json.dumps(doc).encode())


@overload
def rep(o: StoredObject | DeletedFinalStateUnknown) -> Rep: ...
@overload
def rep(o: None) -> None: ...
@overload
def rep(o: StoredObject | DeletedFinalStateUnknown | None) -> Rep | None: ...
def rep(o: StoredObject | DeletedFinalStateUnknown | None) -> Rep | None:
    if o is None:
        return None
    if isinstance(o, DeletedFinalStateUnknown):
        return ("tomb", o.key, rep(o.obj))
    return ("obj", o.key, o.uid, o.resource_version)


def rep_key(r: Rep) -> str:
    return r[1]


def rep_uid(r: Rep | None) -> str | None:
    """uid of an object rep, or of a tombstone's last state."""
    if r is None:
        return None
    if r[0] == "tomb":
        return rep_uid(r[2])
    return r[2]


class FifoModel:
    """DeltaFIFO + the known-objects store the processor fills (key -> rep)."""

    def __init__(self, with_known: bool = True) -> None:
        self.queue: list[str] = []
        self.items: dict[str, list[tuple[str, Rep]]] = {}
        self.populated = False
        self.initial_count = 0
        self.closed = False
        self.with_known = with_known
        self.known: dict[str, Rep] = {}

    def synced(self) -> bool:
        return self.populated and self.initial_count == 0

    def _push(self, kind: str, r: Rep) -> None:
        key = rep_key(r)
        if key not in self.items:
            self.queue.append(key)
            self.items[key] = []
        ds = self.items[key]
        ds.append((kind, r))
        # Two Deleted in a row collapse; the older survives unless it is a tombstone.
        if len(ds) >= 2 and ds[-1][0] == ds[-2][0] == "Deleted":
            newer = ds.pop()
            if ds[-1][1][0] == "tomb":
                ds[-1] = newer

    def add(self, r: Rep) -> None:
        self.populated = True
        self._push("Added", r)

    def update(self, r: Rep) -> None:
        self.populated = True
        self._push("Updated", r)

    def delete(self, r: Rep) -> None:
        self.populated = True
        key = rep_key(r)
        if (self.with_known and key in self.known) or key in self.items:
            self._push("Deleted", r)

    def _last_known(self, key: str) -> Rep | None:
        if key in self.items:
            kind, r = self.items[key][-1]
            return None if kind == "Deleted" else r
        return self.known.get(key) if self.with_known else None

    def replace(self, reps: Iterable[Rep]) -> None:
        listed: set[str] = set()
        for r in reps:
            key = rep_key(r)
            listed.add(key)
            old = self._last_known(key)
            # kfast extension: a different uid means delete + re-create during the gap.
            if old is not None and rep_uid(old) != rep_uid(r):
                self._push("Deleted", ("tomb", key, old))
            self._push("Replaced", r)
        deletions = 0
        for key in list(self.queue):
            if key not in listed:
                newest = self.items[key][-1][1]
                if newest[0] == "tomb":
                    newest = newest[2]
                deletions += 1
                self._push("Deleted", ("tomb", key, newest))
        if self.with_known:
            for key in sorted(self.known):
                if key not in listed and key not in self.items:
                    deletions += 1
                    self._push("Deleted", ("tomb", key, self.known[key]))
        if not self.populated:
            self.populated = True
            self.initial_count = len(listed) + deletions

    def resync(self) -> None:
        if not self.with_known:
            return
        for key in sorted(self.known):
            if key not in self.items:
                self._push("Sync", self.known[key])

    def pop(self) -> tuple[str, list[tuple[str, Rep]], bool] | None:
        if not self.queue:
            return None
        initial = not self.synced()
        key = self.queue.pop(0)
        if self.initial_count > 0:
            self.initial_count -= 1
        return key, self.items.pop(key), initial

    def process(self, max_keys: int) -> list[tuple[int, Rep, Rep | None, bool]] | int:
        if not self.queue and self.closed:
            return -1
        out: list[tuple[int, Rep, Rep | None, bool]] = []
        for _ in range(min(max_keys, len(self.queue))):
            popped = self.pop()
            assert popped is not None
            key, deltas, initial = popped
            for kind, r in deltas:
                if kind == "Deleted":
                    self.known.pop(key, None)
                    out.append((2, r, None, False))
                elif key in self.known:
                    out.append((1, r, self.known[key], False))
                    self.known[key] = r
                else:
                    out.append((0, r, None, initial))
                    self.known[key] = r
        return out


IndexFn = Callable[[dict[str, Any]], list[str]]


class IndexerModel:
    """Store by key plus indices recomputed from scratch on every query."""

    def __init__(self, indexers: dict[str, IndexFn]) -> None:
        self.indexers = dict(indexers)
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, desc: dict[str, Any]) -> None:
        self.items[desc["key"]] = desc

    def delete(self, key: str) -> None:
        self.items.pop(key, None)

    def replace(self, descs: Iterable[dict[str, Any]]) -> None:
        self.items = {}
        for d in descs:
            self.items[d["key"]] = d

    def add_indexers(self, indexers: dict[str, IndexFn]) -> None:
        clash = set(indexers) & set(self.indexers)
        if clash:
            raise ValueError(sorted(clash))
        self.indexers.update(indexers)

    def index_map(self, name: str) -> dict[str, set[str]]:
        fn = self.indexers[name]
        out: dict[str, set[str]] = {}
        for key, d in self.items.items():
            for v in fn(d):
                out.setdefault(v, set()).add(key)
        return out

    def index_of(self, name: str, desc: dict[str, Any]) -> set[str]:
        m = self.index_map(name)
        keys: set[str] = set()
        for v in self.indexers[name](desc):
            keys |= m.get(v, set())
        return keys
