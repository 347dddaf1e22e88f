"""httpx transports that follow the config's TLS state, and the one mapping of lower-level
transport failures onto kfast's public classes.

httpx binds an SSLContext to a connection pool when the pool is made. These transports keep
one pool per context: when :attr:`Config.ssl_context` changes (a rotated or exec-supplied
client certificate) the next request gets a new pool built on the new context; the old pool
is closed with the transport, so responses still streaming from it are not cut.
"""

from __future__ import annotations

import re
import ssl
import threading
from typing import TYPE_CHECKING

import httpx

from kfast import errors
from kfast._tls import ProxyTLSFailure

if TYPE_CHECKING:
    from kfast._config import Config

__all__ = ["SyncTransport", "AsyncTransport", "map_transport_error", "safe_url"]


class _Pools:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.ctx: ssl.SSLContext | None = None
        url = config.proxy_for(config.server)
        self.proxy: httpx.Proxy | None = None
        if url:
            https = httpx.URL(url).scheme == "https"
            self.proxy = httpx.Proxy(url, ssl_context=config.proxy_ssl_context if https else None)

    def want(self) -> ssl.SSLContext | None:
        return self.config.ssl_context if self.config.is_https else None

    def verify(self, ctx: ssl.SSLContext | None) -> ssl.SSLContext | bool:
        # A plain-http server never does TLS (an https proxy has its own context, set on
        # the httpx.Proxy): skip building httpx's default context (certifi, ~30 ms a client).
        return ctx if ctx is not None else False

    def proxy_failure(self, e: httpx.TransportError, request: httpx.Request) -> httpx.ProxyError | None:
        """Through a proxy every TCP connect is to the proxy, so a failed connect means the
        proxy is unreachable; a failed TLS handshake is the proxy's if the proxy context
        marked it, else the API server's (inside the tunnel), which stays a TLS error."""
        if self.proxy is None or not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
            return None
        where = f"proxy {safe_url(self.proxy.url)}"
        tls = _cause(e, ProxyTLSFailure)
        if tls is not None:
            msg = f"TLS handshake with the {where} failed: {tls}"
        elif _is_tls(e):
            return None
        elif isinstance(e, httpx.ConnectTimeout):
            msg = f"timed out connecting to (or through) the {where}"
        else:
            msg = f"cannot connect to the {where}: {e}"
        return httpx.ProxyError(msg, request=request)


def safe_url(url: httpx.URL) -> str:
    """scheme://host:port of a proxy URL: its user and password are credentials."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def _cause(e: BaseException, cls: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, cls):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class SyncTransport(httpx.BaseTransport):
    def __init__(self, config: Config) -> None:
        self._p = _Pools(config)
        self._current: httpx.HTTPTransport | None = None
        self._retired: list[httpx.HTTPTransport] = []

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The context the current pool was built on."""
        return self._p.ctx

    def pool(self) -> httpx.HTTPTransport:
        ctx = self._p.want()
        with self._p.lock:
            if self._current is None or ctx is not self._p.ctx:
                if self._current is not None:
                    self._retired.append(self._current)
                self._current = httpx.HTTPTransport(verify=self._p.verify(ctx), proxy=self._p.proxy)
                self._p.ctx = ctx
            return self._current

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.pool().handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            failure = self._p.proxy_failure(e, request)
            if failure is None:
                raise
            raise failure from e

    def close(self) -> None:
        with self._p.lock:
            pools = [*self._retired, *([self._current] if self._current else [])]
            self._retired.clear()
            self._current = None
        for p in pools:
            p.close()


class AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, config: Config) -> None:
        self._p = _Pools(config)
        self._current: httpx.AsyncHTTPTransport | None = None
        self._retired: list[httpx.AsyncHTTPTransport] = []

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self._p.ctx

    def pool(self) -> httpx.AsyncHTTPTransport:
        ctx = self._p.want()
        with self._p.lock:
            if self._current is None or ctx is not self._p.ctx:
                if self._current is not None:
                    self._retired.append(self._current)
                self._current = httpx.AsyncHTTPTransport(verify=self._p.verify(ctx), proxy=self._p.proxy)
                self._p.ctx = ctx
            return self._current

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.pool().handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            failure = self._p.proxy_failure(e, request)
            if failure is None:
                raise
            raise failure from e

    async def aclose(self) -> None:
        with self._p.lock:
            pools = [*self._retired, *([self._current] if self._current else [])]
            self._retired.clear()
            self._current = None
        for p in pools:
            await p.aclose()


def map_transport_error(e: BaseException) -> errors.KfastError:
    """The public class for an httpx/ssl/OS failure (the caller chains ``e`` as the cause).

    Messages name the failure, never the request's headers."""
    if isinstance(e, errors.KfastError):
        return e
    msg = _scrub(str(e) or type(e).__name__)
    if isinstance(e, httpx.ProxyError):
        return errors.ProxyError(msg)
    if isinstance(e, httpx.ConnectTimeout):
        return errors.ConnectTimeout(msg)
    if isinstance(e, httpx.ConnectError):
        if _is_tls(e):
            return errors.TLSError(msg)
        return errors.ConnectError(msg)
    if isinstance(e, httpx.ReadTimeout):
        return errors.ReadTimeout(msg)
    if isinstance(e, httpx.WriteTimeout):
        return errors.WriteTimeout(msg)
    if isinstance(e, httpx.PoolTimeout):
        return errors.PoolTimeout(msg)
    if isinstance(e, httpx.TimeoutException):
        return errors.ReadTimeout(msg)
    if isinstance(e, httpx.RemoteProtocolError | httpx.ReadError):
        return errors.StreamTruncated(msg)
    if isinstance(e, ssl.SSLError):
        return errors.TLSError(msg)
    return errors.TransportError(msg)


# Credentials as they may appear in a lower layer's message (h11 quotes a rejected header).
_SECRET = re.compile(r"(?i)(authorization\s*[:=]\s*)[^\r\n'\"]+|(bearer|basic)\s+[^\s'\"]+")


def _scrub(msg: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2) + " ") + "[REDACTED]", msg)


def _is_tls(e: BaseException) -> bool:
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSL" in str(e) or "CERTIFICATE" in str(e).upper()


def connection_was_used(e: BaseException) -> bool:
    """Whether the failed request may have reached the server (then only an idempotent
    request may be sent again). Connecting failed, or no connection was free: not sent."""
    return not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout | httpx.ProxyError
                          | httpx.PoolTimeout | errors.ConnectError)
