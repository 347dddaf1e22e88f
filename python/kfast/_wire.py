"""How LIST and WATCH bytes travel between the API server and the Rust decoder.

LIST pages go over kfast's own keep-alive sockets, pipelined (:mod:`kfast._list_conn`),
falling back to httpx where WATCH does. WATCH does not go through httpx (design.md §1): the
request is built as an ``httpx.Request`` by the same client, with the same auth flow, then
serialised here and sent on a socket we open ourselves (TLS from the config's one
``SSLContext``); the response is read in 1 MiB ``recv_into`` calls and each buffer goes to
``WatchDecoder(http=True)`` whole (or, on the informer's path, to a
``WatchPump``, which decodes on a Rust thread while this one reads on). Through a
proxy or a user-supplied httpx transport we cannot own the socket, so the body streams through
``iter_bytes()`` (uncompressed) into ``WatchDecoder(http=False)`` instead.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import msgspec

from kfast import _native, errors
from kfast._auth import RefreshingAuth, authorize
from kfast._config import Config
from kfast._list_conn import DirectLister
from kfast._metrics import Counters
from kfast._transport import map_transport_error

__all__ = ["Wire", "WatchStream", "ListResult", "resource_path", "READ_SIZE", "METADATA_LIST_ACCEPT",
           "METADATA_WATCH_ACCEPT"]

# Metadata-only (PartialObjectMetadata) answers, with plain JSON as the fallback a server
# without the transformation would use (protocol.md, Discovery).
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
METADATA_WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

_T = TypeVar("_T")

READ_SIZE = 1 << 20  # one Python call per MiB, not per event
_WATCH_READ_MARGIN = 60.0
_EMPTY = b""  # the server may stay silent until timeoutSeconds; then allow slack


def resource_path(resource: str, *, group: str = "", version: str = "v1", namespace: str | None = None) -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        return f"{base}/namespaces/{namespace}/{resource}"
    return f"{base}/{resource}"


class ListResult(msgspec.Struct, frozen=True):
    items: list[Any]  # StoredObject
    resource_version: str
    continue_token: str | None


def _status_error(resp_body: bytes, code: int, headers: Any) -> errors.ApiError:
    try:
        status = msgspec.json.decode(resp_body) if resp_body else None
    except msgspec.DecodeError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        status = {"code": code, "message": resp_body[:200].decode("utf-8", "replace")}
    return errors.api_error_from_status(status, code=code, retry_after=_retry_after(headers))


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    for k, v in items:
        if str(k).lower() == "retry-after":
            try:
                return float(v)
            except ValueError:
                return None  # HTTP-date form; the backoff floor is enough then
    return None


def _map_httpx(e: httpx.HTTPError) -> errors.KfastError:
    return map_transport_error(e)


class Wire:
    """LIST and WATCH against one API server. Thread-safe for one LIST at a time per thread."""

    def __init__(self, config: Config, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.client = config.httpx_client(transport=transport)
        self._auth = config.auth()
        # Owning the socket is only possible when we are the ones dialling the server.
        self.direct = transport is None and config.proxy_for(config.server) is None
        # LIST pages on our own keep-alive sockets, the next page requested early.
        self.lister: DirectLister | None = DirectLister(self) if self.direct else None

    def close(self) -> None:
        if self.lister is not None:
            self.lister.close()
        self.client.close()

    def build_request(self, path: str, params: dict[str, str], accept: str = "application/json") -> httpx.Request:
        req = self.client.build_request("GET", path, params=params)
        req.headers["Accept"] = accept
        if self.config.tls_server_name:
            req.extensions["sni_hostname"] = self.config.tls_server_name
        return authorize(self._auth, req)

    def credentials_refused(self) -> None:
        """A watch got 401 outside httpx's auth flow: fetch a fresh credential next time."""
        if isinstance(self._auth, RefreshingAuth):
            self._auth.invalidate()

    def _throttle(self) -> None:
        # LISTs and watch starts draw from the same bucket as the config's REST calls.
        limiter = self.config.rate_limiter
        if limiter is not None:
            limiter.wait()

    def list_page(self, path: str, params: dict[str, str], accept: str = "application/json", *,
                  capture_for: _native.DeltaFIFO | None = None,
                  transform: _native.ObjectTransform | None = None,
                  throttle: bool = True) -> ListResult:
        """One LIST page, its items parsed in Rust. ``transform`` is applied to each item;
        ``capture_for``: capture the values its Indexer's field indexes read. ``throttle``:
        take a rate-limiter token (the reflector does for the first page of each LIST only,
        see ``_driver``)."""
        if self.lister is not None:
            return self.lister.page(path, params, accept, capture_for=capture_for, transform=transform,
                                    throttle=throttle)
        if throttle:
            self._throttle()
        try:
            resp = self.client.send(self.build_request(path, params, accept), auth=self._auth)
        except httpx.HTTPError as e:
            raise _map_httpx(e) from e
        if resp.status_code >= 300:
            raise _status_error(resp.content, resp.status_code, resp.headers)
        try:
            items, rv, token = _native.decode_list(resp.content, capture_for=capture_for,
                                                   transform=transform)
        except errors.DecodeError as e:
            # A nameless item's cache key would collide with others (see the decoder).
            raise errors.DecodeError(f"LIST {path}: {e}", e.offset) from e
        return ListResult(items, rv, token)

    def watch(self, path: str, params: dict[str, str], accept: str = "application/json",
              transform: _native.ObjectTransform | None = None) -> WatchStream:
        """``transform``: a native transform the decoder applies to every object."""
        timeout = float(params.get("timeoutSeconds") or 0) or 1800.0
        self._throttle()
        return WatchStream(self, self.build_request(path, params, accept),
                           read_timeout=timeout + _WATCH_READ_MARGIN, transform=transform)


class WatchStream:
    """One watch response. :meth:`close` may be called from any thread to abort it."""

    def __init__(self, wire: Wire, request: httpx.Request, *, read_timeout: float,
                 transform: _native.ObjectTransform | None = None) -> None:
        self._wire = wire
        self._transform = transform
        self._request = request
        self._read_timeout = read_timeout
        self._sock: socket.socket | None = None
        self._closed = threading.Event()
        self._httpx_resp: httpx.Response | None = None

    def close(self) -> None:
        self._closed.set()
        sock = self._sock
        if sock is not None:
            try:
                # Shut the TCP socket down under any TLS layer: this wakes a blocked recv
                # without touching the SSL object the reading thread is using.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        resp = self._httpx_resp
        if resp is not None:
            resp.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- the informer path: events go straight into the FIFO -----------------------------

    def run_into_fifo(
        self,
        fifo: _native.DeltaFIFO,
        on_opened: Callable[[], None],
        on_progress: Callable[[str], None],
        counters: Counters | None = None,
        bounded: bool = False,
    ) -> None:
        """Stream until the watch ends. Returns on a normal end or close(); raises typed errors.
        ``bounded``: another thread drains ``fifo``; reading waits while it is full (see
        ``WatchPump.feed_fifo``)."""
        c = counters or Counters()
        opened = False

        def feed(d: Any, chunk: Any) -> Any:
            if bounded and isinstance(d, _native.WatchPump):
                return d.feed_fifo(chunk, fifo, bounded=True)
            return d.feed_fifo(chunk, fifo)

        for decoder, res in self._feeds(feed, pump=True):
            code = decoder.status_code
            if not opened and code is not None and 200 <= code < 300:
                opened = True
                on_opened()
            c.events += res.events
            c.bookmarks += res.bookmarks
            c.count_feed(res)
            if res.last_resource_version:
                on_progress(res.last_resource_version)
            if res.error_status is not None:
                c.error_events += 1
                raise errors.api_error_from_status(res.error_status)

    def events(self) -> Iterator[_native.WatchEvent]:
        """The event-iterator path; ERROR events raise their ApiError."""
        for _decoder, evs in self._feeds(lambda d, chunk: d.feed(chunk)):
            for ev in evs:
                if ev.type == "ERROR":
                    raise errors.api_error_from_status(ev.status)
                yield ev

    def feeds(self, feed: Callable[[Any, Any], _T], pump: bool = False) -> Iterator[tuple[Any, _T]]:
        """Run ``feed(decoder, chunk)`` on each chunk read; yields (decoder, its result).
        Decoder errors surface here as typed errors (see :mod:`kfast._feed`).

        With ``pump`` the decoder may be a :class:`kfast._native.WatchPump` (on a socket we
        own): ``feed`` must then only use ``feed_fifo``, whose results arrive as the pump's
        thread finishes them; ``feed(decoder, b"")`` waits for everything read so far, and is
        called (its result yielded too) before the stream goes quiet or ends."""
        return self._feeds(feed, pump)

    def _feeds(self, feed: Callable[[Any, Any], _T], pump: bool = False) -> Iterator[tuple[Any, _T]]:
        # feed() runs inside these generators so decoder errors pass through their handlers.
        if self._wire.direct:
            return self._refused(self._socket_feeds(feed, pump))
        return self._refused(self._httpx_feeds(feed))

    def _refused(self, feeds: Iterator[_T]) -> Iterator[_T]:
        try:
            yield from feeds
        except errors.Unauthorized:
            self._wire.credentials_refused()  # rotated token file, expired exec credential
            raise

    def _socket_feeds(self, feed: Callable[[Any, Any], _T], pump: bool) -> Iterator[tuple[Any, _T]]:
        decoder: Any = _native.WatchPump(transform=self._transform) if pump \
            else _native.WatchDecoder(http=True, transform=self._transform)
        try:
            sock = self._connect()
        except BaseException:
            if pump:
                decoder.close()
            raise
        buf = bytearray(READ_SIZE)
        view = memoryview(buf)
        poller = select.poll() if pump else None
        if poller is not None:
            poller.register(sock, select.POLLIN)
        try:
            while not self._closed.is_set():
                try:
                    n = sock.recv_into(buf)
                except TimeoutError as e:
                    raise errors.ReadTimeout(f"no data for {self._read_timeout:.0f}s on watch") from e
                except (ssl.SSLError, OSError) as e:
                    if self._closed.is_set():
                        return
                    raise errors.StreamTruncated(f"watch connection broke: {e}") from e
                if n == 0:
                    if self._closed.is_set():
                        return
                    if pump:  # what the pump still had, then its error if any
                        yield decoder, feed(decoder, _EMPTY)
                        yield decoder, feed(decoder, _EMPTY)
                    self._finish(decoder)
                    return
                try:
                    res = feed(decoder, view[:n])
                except errors.TooManyRequests as e:
                    if e.retry_after is None:
                        e.retry_after = _retry_after(decoder.headers)
                    raise
                yield decoder, res
                if poller is None:
                    # A malformed line poisons the decoder, but the error only surfaces on
                    # the next call; probe with an empty feed so a quiet stream cannot hide it.
                    feed(decoder, _EMPTY)
                elif decoder.complete or not _readable(sock, poller):
                    # The pump decodes behind the reads: before waiting for more bytes (or
                    # returning), wait for it, so its progress and errors are not held up
                    # (an error found after some events is raised by the call after them).
                    yield decoder, feed(decoder, _EMPTY)
                    yield decoder, feed(decoder, _EMPTY)
                if decoder.complete:
                    return  # terminating chunk seen; the connection may stay open (keep-alive)
        finally:
            if pump:
                decoder.close()  # joins its thread: nothing reaches the FIFO after this
            self._sock = None
            try:
                sock.close()
            except OSError:
                pass

    def _finish(self, decoder: Any) -> None:
        if decoder.status_code is None:
            raise errors.StreamTruncated("the server closed the watch connection before answering")
        try:
            decoder.finish()
        except errors.TooManyRequests as e:
            # A 429 body that ends at EOF is raised here; the delay is in the header.
            if e.retry_after is None:
                e.retry_after = _retry_after(decoder.headers)
            raise
        if not 200 <= decoder.status_code < 300:
            raise errors.api_error_from_status(None, code=decoder.status_code, retry_after=_retry_after(decoder.headers))

    def _connect(self) -> socket.socket:
        sock = open_socket(self._wire.config, self._request.url, min(30.0, self._read_timeout))
        try:
            sock.sendall(serialize_request(self._request))
            sock.settimeout(self._read_timeout)
        except (ssl.SSLError, OSError) as e:
            sock.close()
            raise _socket_error(self._request.url, e) from e
        self._sock = sock
        if self._closed.is_set():
            self.close()
        return sock

    def _httpx_feeds(self, feed: Callable[[_native.WatchDecoder, Any], _T]) -> Iterator[tuple[_native.WatchDecoder, _T]]:
        client = self._wire.client
        timeout = httpx.Timeout(30.0, read=self._read_timeout)
        self._request.extensions["timeout"] = timeout.as_dict()
        # As on the socket path: ask for no compression (kube-apiserver gzips a streaming
        # list's response when asked, and the decoder wants the JSON lines themselves).
        self._request.headers["Accept-Encoding"] = "identity"
        try:
            resp = client.send(self._request, stream=True)
        except httpx.HTTPError as e:
            raise _map_httpx(e) from e
        self._httpx_resp = resp
        try:
            if resp.status_code >= 300:
                raise _status_error(resp.read(), resp.status_code, resp.headers)
            decoder = _native.WatchDecoder(http=False, transform=self._transform)
            try:
                # iter_bytes: a server (or proxy) that compresses anyway is still decoded.
                for chunk in resp.iter_bytes():
                    yield decoder, feed(decoder, chunk)
                    feed(decoder, _EMPTY)  # surface a poisoned decoder now (see above)
                    if self._closed.is_set():
                        return
                decoder.finish()
            except httpx.HTTPError as e:
                if self._closed.is_set():
                    return
                raise _map_httpx(e) from e
        finally:
            resp.close()


def _readable(sock: socket.socket, poller: select.poll) -> bool:
    """Whether a read would return at once (TLS may hold decrypted bytes the socket lacks)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return bool(poller.poll(0))


def open_socket(config: Config, url: httpx.URL, timeout: float) -> socket.socket:
    """A connection of our own to ``url``'s host (LIST and WATCH bodies are read from it, not
    through httpx): TCP with Nagle off, TLS from the config's one SSLContext for https;
    ``timeout`` applies to the connect and to every later read. Typed errors."""
    host = url.host
    https = url.scheme == "https"
    port = url.port or (443 if https else 80)
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise errors.ConnectError(f"cannot connect to {host}:{port}: {e}") from e
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if https:
            return config.ssl_context.wrap_socket(raw, server_hostname=config.tls_server_name or host)
        return raw
    except (ssl.SSLError, OSError) as e:
        raw.close()
        raise _socket_error(url, e) from e


def _socket_error(url: httpx.URL, e: BaseException) -> errors.KfastError:
    port = url.port or (443 if url.scheme == "https" else 80)
    cls = errors.TLSError if isinstance(e, ssl.SSLError) else errors.ConnectError
    return cls(f"TLS/handshake with {url.host}:{port} failed: {e}")


def serialize_request(request: httpx.Request) -> bytes:
    """HTTP/1.1 request head for a watch: httpx's headers minus compression, which the Rust
    decoder does not undo and kube-apiserver only applies when asked."""
    lines = [b"GET " + request.url.raw_path + b" HTTP/1.1"]
    for k, v in request.headers.raw:
        if k.lower() in (b"accept-encoding", b"connection"):
            continue
        lines.append(k + b": " + v)
    lines.append(b"Accept-Encoding: identity")
    return b"\r\n".join(lines) + b"\r\n\r\n"
