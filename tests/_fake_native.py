"""A slow pure-Python model of the parts of the ``kfast._native`` contract the informer uses
(WatchDecoder, IndexFunc, Indexer, DeltaFIFO, process_batch), written from ``_native.pyi``.

It is installed by conftest only for classes the compiled extension does not provide yet,
so the Python side can be tested before the Rust branches land; once they do, the same tests
run against Rust.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from kfast import _native, errors

StoredObject = _native.StoredObject
Tombstone = _native.DeletedFinalStateUnknown


class WatchEvent:
    def __init__(self, type: str, obj: Any, rv: str, status: Any, ie_end: bool) -> None:
        self.type, self.object, self.resource_version, self.status = type, obj, rv, status
        self.initial_events_end = ie_end


class FeedResult:
    def __init__(self) -> None:
        self.events = 0
        self.bookmarks = 0
        self.last_resource_version: str | None = None
        self.initial_events_end = False
        self.error_status: dict[str, Any] | None = None


class WatchDecoder:
    def __init__(self, *, http: bool = True, max_line_bytes: int = 64 << 20) -> None:
        self._http = http
        self._raw = b""
        self._head_done = not http
        self.status_code: int | None = None if http else 200
        self.headers: list[tuple[str, str]] | None = None if http else []
        self._mode = "close"
        self._remaining = 0  # content-length left or chunk bytes left
        self._body = b""
        self._line = b""
        self.body_offset = 0
        self.complete = False
        self._poison: BaseException | None = None
        self._max = max_line_bytes

    def _parse(self, data: bytes) -> list[bytes]:
        if self._poison is not None:
            raise self._poison
        self._raw += bytes(data)
        if not self._head_done:
            i = self._raw.find(b"\r\n\r\n")
            if i < 0:
                return []
            head, self._raw = self._raw[:i].decode("latin-1").split("\r\n"), self._raw[i + 4:]
            self.status_code = int(head[0].split()[1])
            self.headers = [tuple(x.strip() for x in h.split(":", 1)) for h in head[1:]]  # type: ignore[misc]
            hd = {k.lower(): v for k, v in self.headers}
            if hd.get("transfer-encoding", "").lower() == "chunked":
                self._mode = "chunked"
            elif "content-length" in hd:
                self._mode, self._remaining = "length", int(hd["content-length"])
            self._head_done = True
        body = b""
        if not self._http or self._mode == "close":
            body, self._raw = self._raw, b""
        elif self._mode == "length":
            body, self._raw = self._raw[: self._remaining], self._raw[self._remaining:]
            self._remaining -= len(body)
            self.complete = self._remaining == 0
        else:
            while not self.complete:
                if self._remaining == 0:
                    i = self._raw.find(b"\r\n")
                    if i < 0:
                        break
                    size = int(self._raw[:i].split(b";")[0], 16)
                    if size == 0:
                        self.complete = True
                        break
                    if len(self._raw) < i + 2 + size + 2:
                        break
                    body += self._raw[i + 2: i + 2 + size]
                    self._raw = self._raw[i + 2 + size + 2:]
                else:
                    break
        if self.status_code is not None and not 200 <= self.status_code < 300:
            self._body += body
            if self.complete:
                status = json.loads(self._body) if self._body else None
                raise errors.api_error_from_status(status, code=self.status_code)
            return []
        buf = self._line + body
        *lines, self._line = buf.split(b"\n")
        if len(self._line) > self._max:
            self._poison = errors.LineTooLongError("line too long")
        return [ln for ln in lines if ln.strip()]

    def _event(self, line: bytes) -> WatchEvent:
        try:
            d = json.loads(line)
            t = d["type"]
            obj = d["object"]
        except (ValueError, KeyError, TypeError) as e:
            raise errors.DecodeError(f"bad watch line: {e}", self.body_offset) from e
        finally:
            self.body_offset += len(line) + 1
        if t == "ERROR":
            return WatchEvent(t, None, "", obj, False)
        if t not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
            raise errors.DecodeError(f"unknown event type {t!r}", self.body_offset)
        meta = obj.get("metadata") or {}
        rv = meta.get("resourceVersion", "")
        ie = (meta.get("annotations") or {}).get("k8s.io/initial-events-end") == "true"
        so = StoredObject(json.dumps(obj).encode()) if t != "BOOKMARK" else None
        return WatchEvent(t, so, rv, None, ie)

    def _events(self, data: Any) -> list[WatchEvent]:
        out = []
        for ln in self._parse(data):
            try:
                out.append(self._event(ln))
            except errors.DecodeError as e:
                self._poison = e
                break
            if out[-1].type == "ERROR":
                break
        return out

    def feed(self, data: Any) -> list[WatchEvent]:
        return self._events(data)

    def feed_fifo(self, data: Any, fifo: DeltaFIFO) -> FeedResult:
        r = FeedResult()
        for ev in self._events(data):
            if ev.type == "ERROR":
                r.error_status = ev.status
                break
            if ev.type == "BOOKMARK":
                r.bookmarks += 1
            else:
                r.events += 1
                {"ADDED": fifo.add, "MODIFIED": fifo.update, "DELETED": fifo.delete}[ev.type](ev.object)
            r.last_resource_version = ev.resource_version
        return r

    def finish(self) -> None:
        if self._poison is not None:
            raise self._poison
        if self._http and self._mode != "close" and not self.complete:
            raise errors.StreamTruncated("truncated body")
        if self._line.strip():
            raise errors.StreamTruncated("truncated line")


class IndexFunc:
    def __init__(self, fn: Callable[[Any], list[str]]) -> None:
        self._fn = fn

    def values(self, obj: Any) -> list[str]:
        return self._fn(obj)

    @staticmethod
    def namespace() -> IndexFunc:
        return IndexFunc(lambda o: [o.namespace] if o.namespace else [])

    @staticmethod
    def label(key: str) -> IndexFunc:
        return IndexFunc(lambda o: [o.labels[key]] if key in o.labels else [])

    @staticmethod
    def annotation(key: str) -> IndexFunc:
        def f(o: Any) -> list[str]:
            v = ((json.loads(bytes(o)).get("metadata") or {}).get("annotations") or {}).get(key)
            return [v] if v is not None else []
        return IndexFunc(f)

    @staticmethod
    def field(path: str) -> IndexFunc:
        def f(o: Any) -> list[str]:
            v: Any = json.loads(bytes(o))
            for p in path.split("."):
                v = v.get(p) if isinstance(v, dict) else None
            if v is None:
                return []
            vs = v if isinstance(v, list) else [v]
            return [str(x).lower() if isinstance(x, bool) else str(x) for x in vs]
        return IndexFunc(f)

    @staticmethod
    def owner_uid() -> IndexFunc:
        return IndexFunc(lambda o: [r["uid"] for r in o.owner_references])

    @staticmethod
    def owner_kind() -> IndexFunc:
        return IndexFunc(lambda o: [f"{r['kind']}/{r['name']}" for r in o.owner_references])


def _vals(fn: Any, obj: Any) -> list[str]:
    return list(fn.values(obj) if isinstance(fn, IndexFunc) else fn(obj))


class Indexer:
    def __init__(self, indexers: dict[str, Any] | None = None) -> None:
        self._lock = threading.RLock()
        self._items: dict[str, Any] = {}
        self._fns: dict[str, Any] = {}
        self._idx: dict[str, dict[str, set[str]]] = {}
        self.add_indexers(indexers or {})

    def _index(self, key: str, old: Any, new: Any) -> None:
        for name, fn in self._fns.items():
            ix = self._idx[name]
            for v in _vals(fn, old) if old is not None else []:
                ix[v].discard(key)
                if not ix[v]:
                    del ix[v]
            for v in _vals(fn, new) if new is not None else []:
                ix.setdefault(v, set()).add(key)

    def add(self, obj: Any) -> None:
        with self._lock:
            old = self._items.get(obj.key)
            self._items[obj.key] = obj
            self._index(obj.key, old, obj)

    update = add

    def delete(self, obj: Any) -> None:
        with self._lock:
            old = self._items.pop(obj.key, None)
            if old is not None:
                self._index(obj.key, old, None)

    def replace(self, objs: list[Any], resource_version: str) -> None:
        with self._lock:
            self._items = {}
            self._idx = {n: {} for n in self._fns}
            for o in objs:
                self.add(o)

    def get(self, obj: Any) -> Any:
        return self._items.get(obj.key)

    def get_by_key(self, key: str) -> Any:
        return self._items.get(key)

    def list(self) -> list[Any]:
        with self._lock:
            return list(self._items.values())

    def list_keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def add_indexers(self, indexers: dict[str, Any]) -> None:
        with self._lock:
            for name, fn in indexers.items():
                if name in self._fns:
                    raise ValueError(name)
                self._fns[name] = fn
                self._idx[name] = {}
                for k, o in self._items.items():
                    for v in _vals(fn, o):
                        self._idx[name].setdefault(v, set()).add(k)

    def by_index(self, name: str, value: str) -> list[Any]:
        with self._lock:
            return [self._items[k] for k in self._idx[name].get(value, ())]

    def index_keys(self, name: str, value: str) -> list[str]:
        return [o.key for o in self.by_index(name, value)]

    def list_index_values(self, name: str) -> list[str]:
        with self._lock:
            return list(self._idx[name])

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def check_invariants(self) -> None:
        pass


class Delta:
    def __init__(self, type: str, obj: Any) -> None:
        self.type, self.object = type, obj


class DeltaFIFO:
    def __init__(self, known_objects: Indexer | None = None) -> None:
        self._known = known_objects
        self._cond = threading.Condition()
        self._items: dict[str, list[Delta]] = {}
        self._queue: list[str] = []
        self._populated = False
        self._initial = 0
        self.closed = False

    def _push(self, t: str, obj: Any) -> None:
        key = obj.key
        ds = self._items.get(key)
        if ds is None:
            ds = self._items[key] = []
            self._queue.append(key)
        if t == "Deleted" and ds and ds[-1].type == "Deleted":
            if isinstance(ds[-1].object, Tombstone):
                ds[-1] = Delta(t, obj)
            return
        ds.append(Delta(t, obj))
        self._cond.notify_all()

    def add(self, obj: Any) -> None:
        with self._cond:
            self._populated = True
            self._push("Added", obj)

    def update(self, obj: Any) -> None:
        with self._cond:
            self._populated = True
            self._push("Updated", obj)

    def delete(self, obj: Any) -> None:
        with self._cond:
            self._populated = True
            self._push("Deleted", obj)

    def replace(self, objs: list[Any], resource_version: str) -> None:
        with self._cond:
            keys = set()
            for o in objs:
                keys.add(o.key)
                self._push("Replaced", o)
            known = {o.key: o for o in self._known.list()} if self._known is not None else {}
            for k, ds in list(self._items.items()):
                if k not in keys and k not in known:
                    last = ds[-1].object if ds else None
                    if not isinstance(last, Tombstone) and not (ds and ds[-1].type == "Deleted"):
                        self._push("Deleted", Tombstone(k, last))
            for k, o in known.items():
                if k not in keys:
                    self._push("Deleted", Tombstone(k, o))
            if not self._populated:
                self._populated = True
                self._initial = len(self._queue)

    def resync(self) -> None:
        with self._cond:
            if self._known is None:
                return
            for o in self._known.list():
                if o.key not in self._items:
                    self._push("Sync", o)

    def pop(self, timeout: float | None = None) -> tuple[str, list[Delta]] | None:
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while not self._queue:
                if self.closed:
                    return None
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            key = self._queue.pop(0)
            if self._initial > 0:
                self._initial -= 1
            return key, self._items.pop(key)

    def list_keys(self) -> list[str]:
        return list(self._queue)

    def get_by_key(self, key: str) -> list[Delta] | None:
        return self._items.get(key)

    def has_synced(self) -> bool:
        with self._cond:
            return self._populated and self._initial == 0

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._queue)

    def check_invariants(self) -> None:
        pass


def process_batch(fifo: DeltaFIFO, indexer: Indexer, max_keys: int = 4096, timeout: float = 0.1,
                  collect: bool = True) -> list[Any] | int:
    out: list[Any] = []
    n = 0
    item = fifo.pop(timeout)
    if item is None:
        return -1 if fifo.closed and len(fifo) == 0 else ([] if collect else 0)
    while item is not None and n < max_keys:
        n += 1
        _key, deltas = item
        for d in deltas:
            if d.type == "Deleted":
                indexer.delete(d.object)
                out.append((2, d.object, None, False))
                continue
            old = indexer.get(d.object)
            if old is not None:
                indexer.update(d.object)
                out.append((1, d.object, old, False))
            else:
                indexer.add(d.object)
                out.append((0, d.object, None, d.type == "Replaced"))
        item = fifo.pop(0) if len(fifo) and n < max_keys else None
    return out if collect else len(out)


def install() -> list[str]:
    """Add the missing classes to kfast._native; returns the names installed."""
    store = {"IndexFunc": IndexFunc, "Indexer": Indexer, "DeltaFIFO": DeltaFIFO, "Delta": Delta,
             "process_batch": process_batch}
    todo: dict[str, Any] = {}
    if not all(hasattr(_native, n) for n in store):
        # A native decoder's feed_fifo only accepts the native DeltaFIFO: fake both together.
        todo = {**store, "WatchDecoder": WatchDecoder}
    elif not hasattr(_native, "WatchDecoder") or not hasattr(_native.WatchDecoder, "feed_fifo"):
        todo = {"WatchDecoder": WatchDecoder}
    for name, v in todo.items():
        setattr(_native, name, v)
    return sorted(todo)
