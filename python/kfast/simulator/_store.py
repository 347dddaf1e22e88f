"""The simulator's state: objects per resource, one global resourceVersion, watch history.

Everything here is I/O free; ``_server`` serves it. One ``threading.Condition`` guards the
whole store: mutations ``notify_all`` so that open watches wake up and send the new events.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from kfast.simulator._history import Raw, Segment, SegmentBuilder
from kfast.simulator._pager import ListResult, Pager
from kfast.simulator._objects import ConfigMapFactory, ConfigMapSeed, PodFactory, PodSeed

__all__ = ["Item", "Resource", "Store", "Churn", "ListResult", "Selector", "parse_selector",
           "selector_matches"]

Seed = PodSeed | ConfigMapSeed


class Factory(Protocol):
    """What a synthetic-object factory offers (PodFactory, ConfigMapFactory)."""

    def new(self) -> Any: ...
    def touch(self, seed: Any) -> None: ...
    def render(self, seed: Any, rv: int) -> bytes: ...


@dataclass(slots=True)
class Item:
    """One stored object: its JSON bytes and what filters need."""

    key: str
    namespace: str
    rv: int
    raw: Raw
    labels: dict[str, str]
    seed: Seed | None = None  # set for synthetic objects: cheap re-render on update


Selector = list[tuple[str, str, str | None]]  # (op, key, value): op in =, !=, exists, !exists


def parse_selector(text: str) -> Selector:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    out: Selector = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            out.append(("!=", k.strip(), v.strip()))
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            out.append(("=", k.strip(), v.strip()))
        elif term.startswith("!"):
            out.append(("!exists", term[1:].strip(), None))
        else:
            out.append(("exists", term, None))
    return out


def selector_matches(sel: Selector, labels: dict[str, str]) -> bool:
    for op, k, v in sel:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!exists" and k in labels:
            return False
    return True


@dataclass
class Resource:
    """One collection (pods, configmaps). ``keys`` is sorted and equals ``set(items)``;
    ``compacted_rv`` is the newest RV whose events are no longer in ``history``: a watch
    from an older RV gets 410 Expired. ``base`` counts segments dropped by compaction, so
    a watch cursor (an absolute segment number) survives compaction of older segments."""

    name: str
    kind: str
    api_version: str = "v1"
    items: dict[str, Item] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    history: list[Segment] = field(default_factory=list)
    base: int = 0
    compacted_rv: int = 0
    history_events: int = 0
    # Items replaced or removed by the last churn, freed after the watches were woken.
    retired: list[Item] = field(default_factory=list)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def put_locked(self, item: Item) -> None:
        if item.key not in self.items:
            bisect.insort(self.keys, item.key)
        self.items[item.key] = item

    def remove_locked(self, key: str) -> None:
        del self.items[key]
        i = bisect.bisect_left(self.keys, key)
        del self.keys[i]

    def apply_locked(self, ops: list[tuple[str, Item | None]]) -> None:
        """``put_locked``/``remove_locked`` for many ops, with ``keys`` rebuilt once: one
        insort or delete per create/delete moved the whole sorted list (~100 us each at
        100k objects), which held the store lock for 200 ms of a 50k-event churn while the
        watches waited to send it."""
        items, keys = self.items, self.keys
        created: list[str] = []
        removed = False
        # Replaced items are kept, not freed here: freeing ~50k cold 5 KB objects took most
        # of the time the lock was held. `retired` is emptied outside it (`Store.release_churn`).
        retired = self.retired
        for key, item in ops:
            if item is None:
                retired.append(items.pop(key))
                removed = True
            else:
                old = items.get(key)
                if old is None:
                    created.append(key)
                else:
                    retired.append(old)
                items[key] = item
        if not created and not removed:
            return
        kept = [k for k in keys if k in items] if removed else keys
        fresh = set()
        for k in created:
            if k in items:
                i = bisect.bisect_left(keys, k)
                if i == len(keys) or keys[i] != k:
                    fresh.add(k)
        # Two sorted runs: timsort merges them in one linear pass.
        self.keys = sorted(kept + sorted(fresh)) if fresh else kept


@dataclass
class Churn:
    """Pre-built events (framed bytes) and the state change each one makes."""

    resource: str
    first_rv: int
    segment: Segment
    ops: list[tuple[str, Item | None]]  # (key, new item or None for delete), per event

    def __len__(self) -> int:
        return len(self.ops)


class Store:
    """All simulated objects. Thread-safe; methods ending in ``_locked`` need ``cond`` held."""

    def __init__(self, *, seed: int = 1, history_limit: int = 2_000_000,
                 max_snapshots: int = 16) -> None:
        self.cond = threading.Condition()
        self.rv = 0
        self.history_limit = history_limit
        self.pods = PodFactory(seed=seed)
        self.configmaps = ConfigMapFactory(seed=seed)
        self.resources: dict[str, Resource] = {
            "pods": Resource("pods", "Pod"), "configmaps": Resource("configmaps", "ConfigMap")}
        self.pager = Pager(self.cond, lambda: self.rv, max_snapshots)
        self._uid = itertools.count(1)

    # ----------------------------------------------------------------------------- seeding

    def _factory(self, resource: str) -> Factory:
        if resource == "pods":
            return self.pods
        if resource == "configmaps":
            return self.configmaps
        raise KeyError(f"no synthetic objects for resource {resource!r}")

    def seed(self, resource: str, count: int) -> None:
        """Add ``count`` synthetic objects without watch events (the initial state)."""
        fac = self._factory(resource)
        with self.cond:
            res = self.resources[resource]
            items = res.items
            for _ in range(count):
                s = fac.new()
                self.rv += 1
                key = f"{s.namespace}/{s.name}"
                items[key] = Item(key, s.namespace, self.rv, fac.render(s, self.rv), s.labels, s)
            res.keys = sorted(items)
            res.compacted_rv = self.rv
            self._compact_all_locked(self.rv)

    # ---------------------------------------------------------------------------- mutations

    def _append_locked(self, res: Resource, seg: Segment) -> None:
        res.history.append(seg)
        res.history_events += len(seg)
        while res.history_events > self.history_limit and len(res.history) > 1:
            old = res.history.pop(0)
            res.base += 1
            res.history_events -= len(old)
            res.compacted_rv = old.rvs[-1]
        self.cond.notify_all()

    def _event_locked(self, res: Resource, etype: bytes, item: Item) -> None:
        b = SegmentBuilder()
        b.add_event(etype, item.raw, item.rv, item.namespace, item.labels)
        self._append_locked(res, b.build())

    def _render_doc(self, doc: dict[str, Any], rv: int) -> bytes:
        doc.setdefault("metadata", {})["resourceVersion"] = str(rv)
        return msgspec.json.encode(doc)

    def create(self, resource: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Create an object from a dict; returns it as stored (uid, RV filled in)."""
        res = self.resources[resource]
        meta = doc.setdefault("metadata", {})
        ns = meta.get("namespace", "")
        key = f"{ns}/{meta['name']}" if ns else meta["name"]
        doc.setdefault("kind", res.kind)
        doc.setdefault("apiVersion", res.api_version)
        meta.setdefault("uid", f"00000000-0000-4000-8000-{next(self._uid):012d}")
        meta.setdefault("creationTimestamp", "2026-12-01T00:00:00Z")
        with self.cond:
            if key in res.items:
                raise KeyError(f"{resource} {key} already exists")
            self.rv += 1
            item = Item(key, ns, self.rv, self._render_doc(doc, self.rv),
                        dict(meta.get("labels") or {}))
            res.put_locked(item)
            self._event_locked(res, b"ADDED", item)
        out: dict[str, Any] = msgspec.json.decode(item.raw)
        return out

    def update(self, resource: str, key: str,
               mutate: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Apply ``mutate`` to the decoded object (or, without it, a synthetic change) and
        store it with a new RV; delivers MODIFIED."""
        res = self.resources[resource]
        with self.cond:
            old = res.items[key]
            self.rv += 1
            if mutate is None and old.seed is not None:
                fac = self._factory(resource)
                fac.touch(old.seed)
                raw = fac.render(old.seed, self.rv)
                item = Item(key, old.namespace, self.rv, raw, old.labels, old.seed)
            else:
                doc = msgspec.json.decode(old.raw)
                if mutate is not None:
                    mutate(doc)
                item = Item(key, old.namespace, self.rv, self._render_doc(doc, self.rv),
                            dict(doc.get("metadata", {}).get("labels") or {}))
            res.put_locked(item)
            self._event_locked(res, b"MODIFIED", item)
        out: dict[str, Any] = msgspec.json.decode(item.raw)
        return out

    def delete(self, resource: str, key: str) -> dict[str, Any]:
        """Delete; the DELETED event carries the last state with the deletion's RV."""
        res = self.resources[resource]
        with self.cond:
            old = res.items[key]
            self.rv += 1
            doc: dict[str, Any] = msgspec.json.decode(old.raw)
            item = Item(key, old.namespace, self.rv, self._render_doc(doc, self.rv), old.labels)
            res.remove_locked(key)
            self._event_locked(res, b"DELETED", item)
        return doc

    def compact(self, resource: str | None = None, rv: int | None = None) -> None:
        """Forget watch history up to ``rv`` (default: all of it), like etcd compaction:
        watches from an older RV get 410 Expired, and so do continue tokens."""
        with self.cond:
            target = self.rv if rv is None else rv
            for res in self.resources.values():
                if resource is None or res.name == resource:
                    keep = [s for s in res.history if s.rvs[-1] > target]
                    res.base += len(res.history) - len(keep)
                    res.history = keep
                    res.history_events = sum(len(s) for s in keep)
                    res.compacted_rv = max(res.compacted_rv, target)
            self._compact_all_locked(target)
            self.cond.notify_all()

    def _compact_all_locked(self, rv: int) -> None:
        self.pager.drop_older_locked(rv)

    def expire_continue_tokens(self) -> None:
        with self.cond:
            self.pager.clear_locked()

    def _free_retired(self) -> None:
        """Free what the last churn replaced (see ``Resource.apply_locked``), off the lock."""
        with self.cond:
            old = [r.retired for r in self.resources.values()]
            for r in self.resources.values():
                r.retired = []
        del old

    def state(self, resource: str) -> dict[str, str]:
        """key -> resourceVersion of every object, as a client cache should end up."""
        self._free_retired()
        with self.cond:
            return {k: str(v.rv) for k, v in self.resources[resource].items.items()}

    # -------------------------------------------------------------------------------- churn

    def prepare_churn(self, resource: str, count: int, *, updates: float = 0.8,
                      deletes: float = 0.1, seed: int = 7) -> Churn:
        """Build ``count`` events (updates, deletes, creates in the given mix) against the
        current state, as bytes, without applying them. ``release_churn`` applies them."""
        import random

        rng = random.Random(seed)
        fac = self._factory(resource)
        with self.cond:
            res = self.resources[resource]
            first = self.rv + 1
            keys = list(res.keys)
            pos = {k: i for i, k in enumerate(keys)}
            current = dict(res.items)
        b = SegmentBuilder()
        ops: list[tuple[str, Item | None]] = []
        rv = first - 1
        for _ in range(count):
            rv += 1
            r = rng.random()
            if keys and r < updates:
                key = keys[rng.randrange(len(keys))]
                old = current[key]
                s = old.seed
                if s is None:
                    doc = msgspec.json.decode(old.raw)
                    raw = self._render_doc(doc, rv)
                else:
                    fac.touch(s)
                    raw = fac.render(s, rv)
                item = Item(key, old.namespace, rv, raw, old.labels, s)
                current[key] = item
                b.add_event(b"MODIFIED", raw, rv, item.namespace, item.labels)
                ops.append((key, item))
            elif keys and r < updates + deletes:
                i = rng.randrange(len(keys))
                key = keys[i]
                # O(1) removal: move the last key into the hole.
                last = keys.pop()
                if last != key:
                    keys[i] = last
                    pos[last] = i
                del pos[key]
                old = current.pop(key)
                if old.seed is not None:
                    raw = fac.render(old.seed, rv)
                else:
                    raw = self._render_doc(msgspec.json.decode(old.raw), rv)
                b.add_event(b"DELETED", raw, rv, old.namespace, old.labels)
                ops.append((key, None))
            else:
                s = fac.new()
                key = f"{s.namespace}/{s.name}"
                raw = fac.render(s, rv)
                item = Item(key, s.namespace, rv, raw, s.labels, s)
                current[key] = item
                pos[key] = len(keys)
                keys.append(key)
                b.add_event(b"ADDED", raw, rv, item.namespace, item.labels)
                ops.append((key, item))
        seg = b.build()
        # Point each new item at its bytes inside the framed buffer instead of keeping a
        # second copy: halves the memory of a large churn (and its page-fault cost).
        mv = memoryview(seg.buf)
        for i, (_, new) in enumerate(ops):
            if new is not None:
                hdr = seg.offs[i]
                start = hdr + bytes(mv[hdr:hdr + 64]).index(b'"object":') + 9
                new.raw = mv[start:seg.offs[i + 1] - 4]
        return Churn(resource, first, seg, ops)

    def release_churn(self, churn: Churn, start: int = 0, stop: int | None = None) -> None:
        """Apply events ``[start, stop)`` of a prepared churn and deliver them to watches."""
        stop = len(churn) if stop is None else stop
        if start >= stop:
            return
        self._free_retired()  # a paced release frees each step's leftovers at the next
        with self.cond:
            if self.rv != churn.first_rv + start - 1:
                raise RuntimeError("the store changed since this churn was prepared")
            res = self.resources[churn.resource]
            res.apply_locked(churn.ops[start:stop])
            self.rv = churn.first_rv + stop - 1
            whole = (start, stop) == (0, len(churn))
            seg = churn.segment if whole else churn.segment.slice(start, stop)
            self._append_locked(res, seg)

    # --------------------------------------------------------------------------------- list

    def list(self, resource: str, *, namespace: str | None, selector: Selector,
             limit: int, continue_token: str | None) -> ListResult:
        """One LIST page (see :class:`~kfast.simulator._pager.Pager`)."""
        return self.pager.list(self.resources[resource], namespace=namespace,
                               selector=selector, limit=limit, continue_token=continue_token)
