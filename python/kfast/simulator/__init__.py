"""An embedded, simulated Kubernetes API server for benchmarks, demos and tests.

::

    from kfast.simulator import Simulator

    with Simulator(pods=10_000) as sim:
        sim.url                                   # http://127.0.0.1:PORT
        churn = sim.prepare_churn("pods", 50_000)  # built as bytes, not yet visible
        sim.release_churn(churn)                  # now delivered to open watches
        sim.state("pods")                         # {"ns/name": "rv", ...}: the truth

It serves ``/api/v1/pods``, ``/api/v1/configmaps`` and their namespaced forms: LIST with
``limit``/``continue`` (one RV per list; an expired token answers 410 Expired) and
``labelSelector``; GET of one object; WATCH with ``resourceVersion``, ``allowWatchBookmarks``,
``timeoutSeconds`` and WatchList (``sendInitialEvents=true``). Watch bodies are HTTP/1.1
chunked with one chunk per event, as kube-apiserver flushes.

It is not a correctness oracle for the Kubernetes API (that is the real kube-apiserver in
``testenv/``): no field selectors, no writes over HTTP, and a label-selected watch filters by
the object's current labels instead of synthesising ADDED/DELETED on (un)matching.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from kfast.simulator._server import (WATCH_FAULTS, RequestFault, RequestRecord, SimServer,
                                     WatchFault, serve_in_thread)
from kfast.simulator._store import Churn, Store

__all__ = ["Simulator", "Churn", "RequestRecord", "WATCH_FAULTS"]


class Simulator:
    """A simulated API server on a loopback port, served from a background thread.

    Args:
        pods, configmaps: synthetic objects created at start (no watch events for them).
        seed: makes every generated object deterministic.
        history_limit: watch events kept per resource; older RVs get 410 Expired.
        bookmark_interval: seconds between BOOKMARKs on idle watches that asked for them.
        watch_list: serve ``sendInitialEvents`` (False answers 422, like a server with the
            WatchList feature off).
        paginate_rv0: honour ``limit`` when resourceVersion is "0" (kube-apiserver's watch
            cache ignores it; set False to get that behaviour).
    """

    def __init__(self, pods: int = 0, configmaps: int = 0, *, seed: int = 1,
                 history_limit: int = 2_000_000, bookmark_interval: float = 60.0,
                 watch_list: bool = True, paginate_rv0: bool = True,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = Store(seed=seed, history_limit=history_limit)
        if pods:
            self.store.seed("pods", pods)
        if configmaps:
            self.store.seed("configmaps", configmaps)
        self._server = SimServer(self.store, host=host, port=port,
                                 bookmark_interval=bookmark_interval, watch_list=watch_list,
                                 paginate_rv0=paginate_rv0)
        self._thread: threading.Thread | None = None
        self._pacers: list[threading.Thread] = []

    # ------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self) -> Simulator:
        if self._thread is None:
            self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        """Stop serving; open watches end (with their terminating chunk)."""
        srv = self._server
        with self.store.cond:
            srv.stopping = True
            self.store.cond.notify_all()
        if self._thread is not None:
            srv.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        srv.server_close()
        for t in self._pacers:
            t.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------------ mutations

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion (global, across resources)."""
        return str(self.store.rv)

    def create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` (needs metadata.name); delivers ADDED. Returns the stored object."""
        return self.store.create(resource, obj)

    def update(self, resource: str, key: str,
               mutate: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Change the object ``key`` ("ns/name") with ``mutate(obj)`` or, without it, a
        synthetic status change; bumps its RV and delivers MODIFIED."""
        return self.store.update(resource, key, mutate)

    def delete(self, resource: str, key: str) -> dict[str, Any]:
        """Delete ``key``; delivers DELETED (carrying the deletion's RV)."""
        return self.store.delete(resource, key)

    def state(self, resource: str = "pods") -> dict[str, str]:
        """``{key: resourceVersion}`` of every object now: what a synced cache must hold."""
        return self.store.state(resource)

    def keys(self, resource: str = "pods") -> list[str]:
        with self.store.cond:
            return list(self.store.resources[resource].keys)

    def prepare_churn(self, resource: str, count: int, *, updates: float = 0.8,
                      deletes: float = 0.1, seed: int = 7) -> Churn:
        """Pre-build ``count`` events (updates, deletes; the rest creates) as framed bytes.
        Nothing is visible until :meth:`release_churn`; no other mutation may come between."""
        return self.store.prepare_churn(resource, count, updates=updates, deletes=deletes,
                                        seed=seed)

    def release_churn(self, churn: Churn, rate: float | None = None) -> None:
        """Apply the churn and deliver it to watches: all at once, or paced at ``rate``
        events per second from a background thread (in 10 ms steps)."""
        if rate is None:
            self.store.release_churn(churn)
            return

        def pace() -> None:
            t0 = time.monotonic()
            done = 0
            while done < len(churn) and not self._server.stopping:
                due = min(len(churn), int((time.monotonic() - t0) * rate) + 1)
                self.store.release_churn(churn, done, due)
                done = due
                time.sleep(0.01)

        t = threading.Thread(target=pace, name="kfast-simulator-churn", daemon=True)
        self._pacers.append(t)
        t.start()

    def compact(self, resource: str | None = None, rv: int | None = None) -> None:
        """Drop watch history up to ``rv`` (default: now): older watches get 410 Expired."""
        self.store.compact(resource, rv)

    def expire_continue_tokens(self) -> None:
        """Every outstanding continue token now answers 410 Expired."""
        self.store.expire_continue_tokens()

    # --------------------------------------------------------------------- fault injection

    def fail_next_requests(self, code: int, *, count: int = 1, verb: str | None = None,
                           resource: str | None = None, reason: str | None = None,
                           message: str = "injected by the simulator",
                           retry_after: int | None = None) -> None:
        """Answer the next ``count`` matching requests (verb: list, watch, get) with an HTTP
        error and a Status body (429 with ``Retry-After`` when ``retry_after`` is given)."""
        from kfast.simulator._server import _REASONS

        with self.store.cond:
            self._server.request_faults.append(RequestFault(
                code, reason or _REASONS.get(code, "Unknown"), message, retry_after, verb,
                resource, count))

    def fail_next_watch(self, kind: str, *, after_events: int = 0,
                        resource: str | None = None) -> None:
        """Break the next watch that starts after it sent ``after_events`` events. Kinds:
        close (EOF between events), close_mid_line (a valid chunk with half a line, then
        EOF), close_mid_chunk (EOF inside a chunk), malformed (one bad JSON line, stream
        goes on), expired / gone (ERROR 410 event, reason Expired / Gone, then the end),
        end (normal end), bookmark (send one BOOKMARK now), no_initial_end (the next
        streaming list sends its initial events but never the initial-events-end bookmark,
        then carries on as a watch, as a server that ignores sendInitialEvents does)."""
        if kind not in WATCH_FAULTS:
            raise ValueError(f"unknown watch fault {kind!r}; one of {WATCH_FAULTS}")
        with self.store.cond:
            self._server.watch_faults.append(WatchFault(kind, after_events, resource))

    def break_open_watches(self, kind: str, *, resource: str | None = None) -> int:
        """Apply a watch fault (see :meth:`fail_next_watch`) to every open watch now;
        returns how many were hit."""
        if kind not in WATCH_FAULTS:
            raise ValueError(f"unknown watch fault {kind!r}; one of {WATCH_FAULTS}")
        n = 0
        with self.store.cond:
            for w in self._server.watches:
                if resource in (None, w.resource):
                    w.faults.append(WatchFault(kind, w.events_sent, resource))
                    n += 1
            self.store.cond.notify_all()
        return n

    # ----------------------------------------------------------------------- observation

    @property
    def open_watches(self) -> int:
        with self.store.cond:
            return len(self._server.watches)

    def wait_for_watches(self, n: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``n`` watches are open."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.open_watches >= n:
                return True
            time.sleep(0.005)
        return False

    @property
    def requests(self) -> list[RequestRecord]:
        """The last 10,000 requests (method, path, query, verb, status), oldest first."""
        return list(self._server.requests)
