"""Loopback HTTP/1.1 front of the simulator: LIST, GET, WATCH (chunked, one chunk per
event), WatchList, bookmarks, and injected faults.

The request side uses :mod:`http.server` (a few requests per second matter little); the
watch side writes pre-framed history slices with ``socket.sendall`` so that the server does
no Python work per event and is never what a benchmark measures.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kfast.simulator._history import (END_CHUNK, Raw, bookmark_line, event_line, frame_line,
                                      status_doc)
from kfast.simulator._store import (Resource, Selector, Store, parse_selector,
                                    selector_matches)

__all__ = ["SimServer", "RequestFault", "WatchFault", "WATCH_FAULTS", "RequestRecord"]

SEND_SLICE = 4 << 20
IDLE_CHECK = 0.25  # how often an idle watch checks whether its client went away
WATCH_FAULTS = ("close", "close_mid_line", "close_mid_chunk", "malformed", "expired", "gone",
                "end", "bookmark", "no_initial_end")


@dataclass
class RequestFault:
    """Answer the next ``remaining`` matching requests with this HTTP error."""

    code: int
    reason: str
    message: str
    retry_after: int | None = None
    verb: str | None = None  # list, watch, get; None: any
    resource: str | None = None
    remaining: int = 1


@dataclass
class WatchFault:
    """Break a watch stream after it sent ``after_events`` events (kinds: WATCH_FAULTS)."""

    kind: str
    after_events: int = 0
    resource: str | None = None


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    verb: str
    status: int


@dataclass
class WatchConn:
    resource: str
    sock: socket.socket
    faults: collections.deque[WatchFault] = field(default_factory=collections.deque)
    events_sent: int = 0


_REASONS = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 410: "Expired", 422: "Invalid",
            429: "TooManyRequests", 500: "InternalError", 403: "Forbidden", 504: "Timeout"}
_PHRASES = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 410: "Gone",
            422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 504: "Gateway Timeout"}


class SimServer(ThreadingHTTPServer):
    """The listening server; one thread per connection (``daemon_threads``)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, store: Store, *, host: str = "127.0.0.1", port: int = 0,
                 bookmark_interval: float = 60.0, watch_list: bool = True,
                 paginate_rv0: bool = True) -> None:
        super().__init__((host, port), _Handler)
        self.store = store
        self.bookmark_interval = bookmark_interval
        self.watch_list = watch_list
        self.paginate_rv0 = paginate_rv0
        self.stopping = False
        self.request_faults: list[RequestFault] = []
        self.watch_faults: list[WatchFault] = []
        self.watches: list[WatchConn] = []
        self.requests: collections.deque[RequestRecord] = collections.deque(maxlen=10_000)

    def take_request_fault(self, verb: str, resource: str) -> RequestFault | None:
        with self.store.cond:
            for f in self.request_faults:
                if (f.verb in (None, verb)) and (f.resource in (None, resource)):
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self.request_faults.remove(f)
                    return f
        return None


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("1", "true")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimServer
    _rec: RequestRecord | None = None

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass

    # ------------------------------------------------------------------------ responses

    def _head(self, code: int, headers: list[tuple[str, str]]) -> bytes:
        if self._rec is not None:
            self._rec.status = code  # recorded before the client can see the answer
        lines = [f"HTTP/1.1 {code} {_PHRASES.get(code, 'Status')}",
                 "Content-Type: application/json", "Cache-Control: no-cache, private",
                 "Audit-Id: kfast-simulator"]
        lines += [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _send(self, code: int, body: Raw, headers: list[tuple[str, str]] | None = None) -> None:
        hs = [("Content-Length", str(len(body)))] + (headers or [])
        self.connection.sendall(self._head(code, hs) + body)

    def _status(self, code: int, message: str, reason: str | None = None,
                retry_after: int | None = None) -> None:
        hs = [("Retry-After", str(retry_after))] if retry_after is not None else []
        self._send(code, status_doc(code, reason or _REASONS.get(code, "Unknown"), message,
                                    retry_after=retry_after), hs)

    # -------------------------------------------------------------------------- routing

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in url.path.split("/") if p]
        self._rec = RequestRecord("GET", url.path, q, "get", 0)
        self.server.requests.append(self._rec)
        try:
            if parts in (["healthz"], ["readyz"], ["livez"]):
                self._send(200, b"ok")
                return
            if parts == ["version"]:
                self._send(200, b'{"major":"1","minor":"37","gitVersion":"v1.37.2-kfast-sim"}')
                return
            if parts == ["api"]:
                self._send(200, b'{"kind":"APIVersions","versions":["v1"],'
                                b'"serverAddressByClientCIDRs":[]}')
                return
            if parts == ["api", "v1"]:
                self._send(200, b'{"kind":"APIResourceList","groupVersion":"v1","resources":['
                                b'{"name":"pods","namespaced":true,"kind":"Pod","verbs":'
                                b'["get","list","watch"]},{"name":"configmaps","namespaced":'
                                b'true,"kind":"ConfigMap","verbs":["get","list","watch"]}]}')
                return
            ns: str | None = None
            name: str | None = None
            if len(parts) == 3 and parts[:2] == ["api", "v1"]:
                resource = parts[2]
            elif len(parts) in (5, 6) and parts[:3] == ["api", "v1", "namespaces"]:
                ns, resource = parts[3], parts[4]
                name = parts[5] if len(parts) == 6 else None
            else:
                self._status(404, f"the server could not find the requested resource ({url.path})")
                return
            store = self.server.store
            if resource not in store.resources:
                self._status(404, f"the server could not find the requested resource ({resource})")
                return
            watching = _truthy(q.get("watch"))
            verb = "watch" if watching else ("get" if name else "list")
            self._rec.verb = verb
            fault = self.server.take_request_fault(verb, resource)
            if fault is not None:
                self._status(fault.code, fault.message, fault.reason, fault.retry_after)
                return
            res = store.resources[resource]
            if name is not None:
                with store.cond:
                    item = res.items.get(f"{ns}/{name}")
                if item is None:
                        self._status(404, f'{resource} "{name}" not found')
                else:
                    self._send(200, item.raw)
                return
            selector = parse_selector(q.get("labelSelector", ""))
            if watching:
                self._watch(res, ns, selector, q)
            else:
                self._list(res, ns, selector, q)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _refuse_write(self) -> None:
        """The simulator is read-only (its objects change through churn, not the API): any
        write answers what kube-apiserver answers for a verb a resource does not serve, a
        405 Status, so clients see a typed MethodNotAllowed rather than an HTML page."""
        url = urlsplit(self.path)
        self._rec = RequestRecord(self.command, url.path, {}, self.command.lower(), 0)
        self.server.requests.append(self._rec)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= 1 << 20:
            self.rfile.read(length)  # drain the body so the connection can be reused
        else:
            self.close_connection = True
        try:
            self._status(405, f"the server does not allow this method on the requested resource "
                              f"({self.command} {url.path}; the kfast simulator is read-only)",
                         "MethodNotAllowed")
        except OSError:
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_write  # noqa: N815 - http.server naming

    # ----------------------------------------------------------------------------- list

    def _list(self, res: Resource, ns: str | None, selector: Selector, q: dict[str, str]) -> int:
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            self._status(400, "invalid limit")
            return 400
        rv = q.get("resourceVersion", "")
        if rv == "0" and not self.server.paginate_rv0:
            limit = 0  # the watch cache ignores limit for RV "0"
        result = self.server.store.list(res.name, namespace=ns, selector=selector, limit=limit,
                                        continue_token=q.get("continue") or None)
        self._send(result.status, result.body, result.headers)
        return result.status

    # ---------------------------------------------------------------------------- watch

    def _watch(self, res: Resource, ns: str | None, selector: Selector,
               q: dict[str, str]) -> int:
        srv, store = self.server, self.server.store
        rv_param = q.get("resourceVersion", "")
        bookmarks = _truthy(q.get("allowWatchBookmarks"))
        initial_end = _truthy(q.get("sendInitialEvents"))
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        if initial_end:
            if not srv.watch_list:
                self._status(422, "sendInitialEvents is forbidden for watch unless the "
                                  "WatchList feature gate is enabled", "Invalid")
                return 422
            if q.get("resourceVersionMatch") != "NotOlderThan":
                self._status(422, "sendInitialEvents requires setting resourceVersionMatch "
                                  "to NotOlderThan", "Invalid")
                return 422
        if rv_param not in ("", "0") and not rv_param.isdigit():
            self._status(400, f"invalid resourceVersion {rv_param!r}")
            return 400
        conn = WatchConn(res.name, self.connection)
        initial: list[Raw] = []
        expired = False
        withhold_end = False
        with store.cond:
            for f in list(srv.watch_faults):
                if f.resource in (None, res.name):
                    if f.kind == "no_initial_end":
                        if not initial_end:
                            continue  # only a streaming list has that bookmark to withhold
                        withhold_end = True
                    else:
                        conn.faults.append(f)
                    srv.watch_faults.remove(f)
                    break
            if initial_end or rv_param in ("", "0"):
                start_rv = store.rv
                for k in res.keys:
                    it = res.items[k]
                    if (not ns or it.namespace == ns) and (
                            not selector or selector_matches(selector, it.labels)):
                        initial.append(it.raw)
            else:
                start_rv = int(rv_param)
                expired = start_rv < res.compacted_rv
            seg_abs, idx = _cursor_locked(res, start_rv)
            srv.watches.append(conn)
        self.close_connection = True
        try:
            head = self._head(200, [("Transfer-Encoding", "chunked")])
            if expired:
                self.connection.sendall(head + _error_frame(410, "Expired", start_rv) + END_CHUNK)
                return 200
            self.connection.sendall(head)
            self._send_initial(initial)
            if initial_end and bookmarks and not withhold_end:
                self._sendall(frame_line(bookmark_line(res.kind, res.api_version, start_rv, True)))
            self._stream(conn, res, ns, selector, seg_abs, idx, bookmarks, timeout)
        finally:
            with store.cond:
                srv.watches.remove(conn)
        return 200

    def _sendall(self, data: bytes | memoryview) -> None:
        mv = memoryview(data)
        for i in range(0, len(mv), SEND_SLICE):
            self.connection.sendall(mv[i:i + SEND_SLICE])

    def _send_initial(self, raws: list[Raw]) -> None:
        batch: list[bytes] = []
        size = 0
        for raw in raws:
            fr = frame_line(event_line(b"ADDED", raw))
            batch.append(fr)
            size += len(fr)
            if size >= SEND_SLICE:
                self.connection.sendall(b"".join(batch))
                batch, size = [], 0
        if batch:
            self.connection.sendall(b"".join(batch))

    def _stream(self, conn: WatchConn, res: Resource, ns: str | None, selector: Selector,
                seg_abs: int, idx: int, bookmarks: bool, timeout: float | None) -> None:
        srv, store = self.server, self.server.store
        now = time.monotonic()
        deadline = now + timeout if timeout is not None else None
        next_bookmark = now + srv.bookmark_interval
        last_check = now
        while True:
            with store.cond:
                while True:
                    now = time.monotonic()
                    behind = seg_abs < res.base
                    pending = res.history[seg_abs - res.base:] if not behind else []
                    has_events = bool(pending) and (len(pending) > 1 or idx < len(pending[0]))
                    fault_due = bool(conn.faults) and (
                        conn.faults[0].after_events <= conn.events_sent)
                    if (has_events or behind or fault_due or srv.stopping
                            or (deadline is not None and now >= deadline)
                            or (bookmarks and now >= next_bookmark)):
                        break
                    wake = now + IDLE_CHECK
                    if bookmarks:
                        wake = min(wake, next_bookmark)
                    if deadline is not None:
                        wake = min(wake, deadline)
                    store.cond.wait(max(0.0, wake - now))
                    if time.monotonic() - last_check >= IDLE_CHECK:
                        last_check = time.monotonic()
                        if self._peer_closed():
                            # Nothing written would notice a client that left; without this
                            # open_watches would count it until the server stops.
                            return
                current_rv = store.rv
            if behind:
                # The watch fell behind compaction, as a slow watcher of the watch cache does.
                self._sendall(_error_frame(410, "Expired", current_rv) + END_CHUNK)
                return
            if fault_due:
                if self._fault(conn, res, conn.faults.popleft(), pending, idx, current_rv):
                    return
                continue
            if has_events:
                budget = (conn.faults[0].after_events - conn.events_sent) if conn.faults else None
                seg_abs, idx = self._send_events(conn, pending, seg_abs, idx, ns, selector, budget)
                continue
            if srv.stopping or (deadline is not None and now >= deadline):
                if bookmarks:
                    self._sendall(frame_line(bookmark_line(res.kind, res.api_version, current_rv)))
                self._sendall(END_CHUNK)
                return
            # Idle and a bookmark is due: everything up to current_rv has been sent.
            self._sendall(frame_line(bookmark_line(res.kind, res.api_version, current_rv)))
            next_bookmark = now + srv.bookmark_interval

    def _send_events(self, conn: WatchConn, pending: list[Any], seg_abs: int, idx: int,
                     ns: str | None, selector: Selector, budget: int | None) -> tuple[int, int]:
        for seg in pending:
            end = len(seg)
            if budget is not None:
                end = min(end, idx + budget)
            if ns is None and not selector:
                self._sendall(memoryview(seg.buf)[seg.offs[idx]:seg.offs[end]])
            else:
                mv = memoryview(seg.buf)
                parts = [mv[seg.offs[i]:seg.offs[i + 1]] for i in range(idx, end)
                         if (ns is None or seg.namespaces[i] == ns)
                         and (not selector or selector_matches(selector, seg.labels[i]))]
                if parts:
                    self._sendall(b"".join(parts))
            conn.events_sent += end - idx
            if budget is not None:
                budget -= end - idx
            if end < len(seg):
                return seg_abs, end
            seg_abs, idx = seg_abs + 1, 0
            if budget is not None and budget <= 0:
                break
        return seg_abs, idx

    def _fault(self, conn: WatchConn, res: Resource, fault: WatchFault, pending: list[Any],
               idx: int, current_rv: int) -> bool:
        """Apply one fault; True if the stream is over."""
        kind = fault.kind
        if kind == "bookmark":
            self._sendall(frame_line(bookmark_line(res.kind, res.api_version, current_rv)))
            return False
        if kind == "malformed":
            self._sendall(frame_line(b'{"type":"MODIFIED","object":{"metadata":{"name":'
                                     b'"broken"},,,"spec":}\n'))
            return False
        if kind in ("expired", "gone"):
            reason = "Expired" if kind == "expired" else "Gone"
            self._sendall(_error_frame(410, reason, current_rv) + END_CHUNK)
            return True
        if kind == "end":
            self._sendall(END_CHUNK)
            return True
        if kind in ("close_mid_line", "close_mid_chunk"):
            line = b""
            if pending and idx < len(pending[0]):
                seg = pending[0]
                line = bytes(memoryview(seg.buf)[seg.offs[idx]:seg.offs[idx + 1]])
                line = line[line.index(b"\r\n") + 2:-2]
            if not line:
                line = event_line(b"MODIFIED", b'{"kind":"Pod","metadata":{"name":"x"}}')
            half = line[: len(line) // 2]
            if kind == "close_mid_line":
                self._sendall(frame_line(half))  # valid chunk, incomplete line
            else:
                self._sendall(b"%x\r\n" % len(line) + half)  # chunk promises more than sent
        self._close()
        return True

    def _peer_closed(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _close(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _cursor_locked(res: Resource, rv: int) -> tuple[int, int]:
    """Absolute segment number and event index of the first event newer than ``rv``."""
    for i, seg in enumerate(res.history):
        if seg.rvs[-1] > rv:
            return res.base + i, seg.first_after(rv)
    return res.base + len(res.history), 0


def _error_frame(code: int, reason: str, rv: int) -> bytes:
    msg = f"too old resource version: {rv}" if code == 410 else reason
    return frame_line(b'{"type":"ERROR","object":' + status_doc(code, reason, msg) + b"}\n")


def serve_in_thread(server: SimServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="kfast-simulator", daemon=True)
    t.start()
    return t
