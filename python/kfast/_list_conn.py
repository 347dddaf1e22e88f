"""LIST pages over kfast's own keep-alive sockets, the next page requested early.

httpx spent more time per 2.5 MB page than the server took to render it (profiled: ~1.5 s
of a 100k-pod paginated sync inside httpx/h11, where ``http.client`` read the same pages in
~0.7 s). So, as for watches (design.md §1), a LIST to a server we dial ourselves is
serialised from the same authorised ``httpx.Request`` and its answer read in 1 MiB
``recv_into`` calls into a Rust :class:`_native.ListResponse`, on a connection kept alive
for the next page.

Pipelining: kube-apiserver writes ``metadata`` (with ``continue``) before ``items``, so as
soon as a page's first bytes are in, the request for the next page is sent on the same
connection (HTTP/1.1 pipelining; the server answers requests in order). The server renders
page N+1 while page N is still arriving and being parsed (the parse runs in Rust without
the GIL, so on another core). The reflector's state machine does not know: when it asks for
exactly the request that was sent ahead (same path, parameters and Accept), the answer
waiting on that connection is read; anything else, and the connection is dropped. An
expired continue token therefore answers 410 to the pipelined request, which is the answer
to the machine's next ListRequest, exactly as without pipelining (protocol.md).

Through a proxy or a user-supplied transport, :class:`kfast._wire.Wire` keeps httpx.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any

import httpx

from kfast import _native, errors
from kfast._auth import RefreshingAuth

if TYPE_CHECKING:
    from kfast._wire import ListResult, Wire

__all__ = ["DirectLister", "next_page_params"]

_READ_SIZE = 1 << 20
_READ_TIMEOUT = 30.0  # per read, as the httpx client's timeout
_MAX_PENDING = 8  # pipelined answers nobody asked for (a shared Wire; errors) are dropped

_Key = tuple[str, tuple[tuple[str, str], ...], str]


def _key(path: str, params: dict[str, str], accept: str) -> _Key:
    return path, tuple(sorted(params.items())), accept


def next_page_params(params: dict[str, str], token: str) -> dict[str, str] | None:
    """The parameters the reflector asks for after a page of ``params`` that returned
    ``token``: the same minus resourceVersion(Match), which the token carries. None when it
    would not ask (an unpaginated list: no ``limit``)."""
    if "limit" not in params:
        return None
    nxt = {k: v for k, v in params.items() if k not in ("resourceVersion", "resourceVersionMatch", "continue")}
    nxt["continue"] = token
    return nxt


class _Conn:
    """One connection; ``buf[:left]`` holds bytes read past the last response."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray(_READ_SIZE)
        self.view = memoryview(self.buf)
        self.left = 0
        self.served = 0  # responses read on it (a reused connection may have been closed)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class _Ahead:
    """The request sent ahead while reading one answer: its key and the token it used."""

    sent: tuple[_Key, str] | None = None


class _Stale(Exception):
    """A reused connection was closed by the server before answering: retry on a fresh one."""


class DirectLister:
    """LIST pages for one :class:`Wire`, over a small pool of keep-alive connections."""

    def __init__(self, wire: Wire, *, pipeline: bool = True) -> None:
        self._wire = wire
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._idle: list[_Conn] = []
        # Requests sent ahead, by key; their answers wait on the connection.
        self._pending: dict[_Key, _Conn] = {}
        self._closed = False
        self.pipelined_hits = 0  # pages whose request had been sent ahead (tests, metrics)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = self._idle + list(self._pending.values())
            self._idle, self._pending = [], {}
        for c in conns:
            c.close()

    def page(self, path: str, params: dict[str, str], accept: str, *,
             capture_for: _native.DeltaFIFO | None, transform: _native.ObjectTransform | None,
             throttle: bool = True) -> ListResult:
        from kfast._wire import ListResult

        key = _key(path, params, accept)
        with self._lock:
            conn = self._pending.pop(key, None)
        if conn is not None:
            self.pipelined_hits += 1
        elif throttle:
            self._wire._throttle()
        retried_auth = False
        ahead = _Ahead()
        while True:
            try:
                resp, conn = self._answer(conn, path, params, accept, ahead, throttle)
            except _Stale:
                conn = None
                continue  # once per stale connection; a fresh one cannot be stale
            code = resp.status_code
            if code == 401 and not retried_auth and isinstance(self._wire._auth, RefreshingAuth):
                # As httpx's auth flow does: refresh the credential once and retry.
                retried_auth = True
                self._wire.credentials_refused()
                self._release(conn, resp)
                conn = None
                continue
            break
        if code is None or code >= 300:
            self._release(conn, resp)
            if code == 401:
                self._wire.credentials_refused()
            from kfast._wire import _status_error

            raise _status_error(resp.body(), code or 0, resp.headers)
        sent_ahead = ahead.sent
        try:
            items, rv, token = resp.decode(capture_for=capture_for, transform=transform)
        except errors.DecodeError as e:
            self._drop(conn, sent_ahead)
            raise errors.DecodeError(f"LIST {path}: {e}", e.offset) from e
        except BaseException:
            self._drop(conn, sent_ahead)
            raise
        if sent_ahead is not None and sent_ahead[1] != token:
            # The whole body disagrees with its first bytes (a repeated member): the
            # request sent ahead is not the one the reflector will ask for.
            self._drop(conn, sent_ahead)
            sent_ahead = None
            conn = None
        if conn is not None:
            with self._lock:
                if self._closed:
                    conn.close()
                elif sent_ahead is not None:
                    old = self._pending.pop(sent_ahead[0], None)
                    if old is not None:
                        old.close()
                    while len(self._pending) >= _MAX_PENDING:
                        self._pending.pop(next(iter(self._pending))).close()
                    self._pending[sent_ahead[0]] = conn
                else:
                    self._idle.append(conn)
        return ListResult(items, rv, token)

    def _drop(self, conn: _Conn | None, sent_ahead: tuple[_Key, str] | None) -> None:
        if conn is not None:
            conn.close()

    def _release(self, conn: _Conn | None, resp: _native.ListResponse) -> None:
        if conn is None:
            return
        if resp.complete and resp.reusable:
            with self._lock:
                if not self._closed:
                    self._idle.append(conn)
                    return
        conn.close()

    # -- one response --------------------------------------------------------------------

    def _answer(self, conn: _Conn | None, path: str, params: dict[str, str],
                accept: str, ahead: _Ahead, throttle: bool) -> tuple[_native.ListResponse, _Conn | None]:
        """Read the answer to ``(path, params)``: on ``conn`` if it was sent ahead there,
        else sent now on an idle or new connection. Returns the response and the
        connection, None when it cannot be reused."""
        from kfast._wire import serialize_request

        ahead.sent = None
        if conn is None:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            request = self._wire.build_request(path, params, accept)
            if conn is None:
                conn = self._dial(request)
            try:
                conn.sock.sendall(serialize_request(request))
            except (ssl.SSLError, OSError) as e:
                conn.close()
                if conn.served:
                    raise _Stale() from e
                raise errors.ConnectError(f"LIST request could not be sent: {e}") from e
        resp = _native.ListResponse()
        try:
            self._read(conn, resp, path, params, accept, ahead if self.pipeline else None, throttle)
        except _Stale:
            conn.close()
            raise
        except BaseException:
            conn.close()
            raise
        conn.served += 1
        if not resp.reusable:
            conn.close()
            ahead.sent = None
            return resp, None
        return resp, conn

    def _read(self, conn: _Conn, resp: _native.ListResponse, path: str, params: dict[str, str],
              accept: str, ahead: _Ahead | None, throttle: bool) -> None:
        view = conn.view
        if conn.left:
            # Bytes of this response read along with the previous one.
            n = conn.left
            used = resp.feed(view[:n])
            rest = n - used
            if rest:
                conn.buf[:rest] = conn.buf[used:n]
            conn.left = rest
            self._maybe_send_ahead(conn, resp, path, params, accept, ahead, throttle)
        while not resp.complete:
            # (Leftover bytes are only ever the next response's: this one took all it could.)
            try:
                n = conn.sock.recv_into(conn.buf)
            except TimeoutError as e:
                raise errors.ReadTimeout(f"no data for {_READ_TIMEOUT:.0f}s on LIST {path}") from e
            except (ssl.SSLError, OSError) as e:
                if conn.served and resp.consumed == 0:
                    raise _Stale() from e
                raise errors.StreamTruncated(f"LIST connection broke: {e}") from e
            if n == 0:
                if conn.served and resp.consumed == 0:
                    raise _Stale()
                resp.finish()  # StreamTruncated unless the body runs to the close
                if resp.status_code is None:
                    raise errors.StreamTruncated("the server closed the LIST connection before answering")
                return
            used = resp.feed(view[:n])
            if used < n:
                conn.buf[: n - used] = conn.buf[used:n]
            conn.left = n - used
            self._maybe_send_ahead(conn, resp, path, params, accept, ahead, throttle)

    def _maybe_send_ahead(self, conn: _Conn, resp: _native.ListResponse, path: str,
                          params: dict[str, str], accept: str, ahead: _Ahead | None, throttle: bool) -> None:
        if ahead is None or ahead.sent is not None or not resp.reusable:
            return
        meta = resp.early_metadata
        if meta is None or meta[1] is None:
            return
        nxt = next_page_params(params, meta[1])
        if nxt is None:
            return
        from kfast._wire import serialize_request

        if throttle:
            # A caller that rations every page gets the same for the page sent ahead.
            self._wire._throttle()
        request = self._wire.build_request(path, nxt, accept)
        try:
            conn.sock.sendall(serialize_request(request))
        except (ssl.SSLError, OSError):
            return  # the current answer is still read; the next page is asked for normally
        ahead.sent = (_key(path, nxt, accept), meta[1])

    def _dial(self, request: httpx.Request) -> _Conn:
        from kfast._wire import open_socket

        sock = open_socket(self._wire.config, request.url, _READ_TIMEOUT)
        return _Conn(sock)
