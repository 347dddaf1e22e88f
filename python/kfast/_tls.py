"""One ``ssl.SSLContext`` per cluster connection, rebuilt only when the client certificate
changes.

httpx (REST) and the watch wire path both ask :meth:`TLSState.context` for the context to
use for a new connection, so they always agree. The client certificate can come from the
kubeconfig (fixed bytes), from files on disk that a sidecar rotates (re-checked by their
``stat`` at most every :data:`CERT_FILE_CHECK_SECONDS`), or from an exec plugin (its last
credential). The CA bundle read from a file (the in-cluster ``ca.crt``, a kubeconfig's
``certificate-authority`` path) is re-checked the same way, because the cluster's CA rotates
too. When either changes a new context replaces the old one; connections already open keep
the one they were made with, new ones get the new certificate or CA.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfast.errors import ConfigError

__all__ = ["TLSState", "build_ssl_context", "build_proxy_ssl_context", "ProxyTLSFailure",
           "CERT_FILE_CHECK_SECONDS"]

CERT_FILE_CHECK_SECONDS = 5.0

CertPair = tuple[bytes, bytes]


class TLSState:
    def __init__(
        self,
        *,
        ca_pem: bytes | None,
        insecure: bool,
        source: str,
        static_cert: CertPair | None = None,
        cert_files: tuple[str, str] | None = None,
        dynamic_cert: Callable[[], CertPair | None] | None = None,
        ca_file: str | None = None,
        server_name: str | None = None,
    ) -> None:
        self._server_name = server_name
        self._ca_pem = ca_pem
        self._ca_file = ca_file
        self._ca_stat = _stat(ca_file) if ca_file else None
        self._ctx_ca: bytes | None = None
        self._insecure = insecure
        self._source = source
        self._static = static_cert
        self._files = cert_files
        self._dynamic = dynamic_cert
        self._lock = threading.Lock()
        self._ctx: ssl.SSLContext | None = None
        self._ctx_cert: CertPair | None = None
        self._file_cert: CertPair | None = static_cert if cert_files else None
        self._file_stat: tuple[int, ...] | None = self._stat() if cert_files else None
        self._checked_at = time.monotonic()
        self.generation = 0  # bumped whenever the context is replaced

    def __repr__(self) -> str:
        return f"TLSState(source={self._source!r}, generation={self.generation})"

    def context(self) -> ssl.SSLContext:
        """The context for the next connection (the same object until the cert or CA changes)."""
        with self._lock:
            now = time.monotonic()
            due = now - self._checked_at >= CERT_FILE_CHECK_SECONDS
            if due:
                self._checked_at = now
                self._check_ca_file_locked()
            cert = self._current_cert_locked(due)
            if self._ctx is None or cert != self._ctx_cert or self._ca_pem != self._ctx_ca:
                self._ctx = build_ssl_context(self._ca_pem, self._insecure, cert, self._source,
                                              server_name=self._server_name)
                self._ctx_cert = cert
                self._ctx_ca = self._ca_pem
                self.generation += 1
            return self._ctx

    def _current_cert_locked(self, check_files: bool) -> CertPair | None:
        if self._dynamic is not None:
            dyn = self._dynamic()
            if dyn is not None:
                return dyn
        if self._files is not None:
            if check_files:
                st = self._stat()
                if st != self._file_stat:
                    self._reload_files_locked(st)
            return self._file_cert
        return self._static

    def _check_ca_file_locked(self) -> None:
        if self._ca_file is None:
            return
        st = _stat(self._ca_file)
        if st is None or st == self._ca_stat:
            return  # unchanged, or gone mid-rotation: keep the last good bundle
        try:
            pem = Path(self._ca_file).read_bytes()
            # A half-written bundle must not replace a working one.
            build_ssl_context(pem, False, None, self._source)
        except (OSError, ConfigError):
            return
        self._ca_pem = pem
        self._ca_stat = st

    def _stat(self) -> tuple[int, ...] | None:
        assert self._files is not None
        try:
            a, b = (os.stat(p) for p in self._files)
        except OSError:
            return None
        return (a.st_mtime_ns, a.st_size, a.st_ino, b.st_mtime_ns, b.st_size, b.st_ino)

    def _reload_files_locked(self, st: tuple[int, ...] | None) -> None:
        assert self._files is not None
        try:
            cert, key = (Path(p).read_bytes() for p in self._files)
        except OSError:
            return  # mid-rotation: keep the last good pair and look again later
        try:
            # A half-written pair (new cert, old key) must not replace a working one.
            build_ssl_context(None, True, (cert, key), self._source)
        except ConfigError:
            return
        self._file_cert = (cert, key)
        self._file_stat = st


def _stat(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class _ServerNameContext(ssl.SSLContext):
    """A context that checks the API server's certificate against ``tls-server-name`` (and
    sends it as SNI) whatever host name its caller passes: httpx passes the URL's host when
    it opens TLS inside a proxy tunnel, and would otherwise verify the wrong name."""

    server_name: str = ""

    def wrap_socket(self, sock: Any, server_side: bool = False, do_handshake_on_connect: bool = True,
                    suppress_ragged_eofs: bool = True, server_hostname: str | bytes | None = None,
                    session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                   self.server_name or server_hostname, session)

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, self.server_name or server_hostname, session)


def build_ssl_context(
    ca_pem: bytes | None, insecure: bool, cert: CertPair | None, source: str, *,
    server_name: str | None = None,
) -> ssl.SSLContext:
    # PROTOCOL_TLS_CLIENT verifies hostnames and certificates by default. With a cluster CA
    # we trust only that CA (as kubectl does), not the system roots as well.
    ctx: ssl.SSLContext
    if server_name:
        named = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
        named.server_name = server_name
        ctx = named
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The watch path speaks HTTP/1.1 itself; httpx uses h11 too, so both agree on ALPN.
    ctx.set_alpn_protocols(["http/1.1"])
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem:
        try:
            ctx.load_verify_locations(cadata=ca_pem.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as e:
            raise ConfigError(f"{source}: certificate-authority is not valid PEM") from e
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cert is not None:
        _load_cert_chain(ctx, cert[0], cert[1], source)
    return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes, source: str) -> None:
    # ssl only loads certificates from files; write them 0600 into a private temp dir and
    # remove them at once so key material does not linger on disk.
    with tempfile.TemporaryDirectory(prefix="kfast-") as d:
        cp, kp = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        for p, data in ((cp, cert), (kp, key)):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            ctx.load_cert_chain(cp, kp)
        except ssl.SSLError as e:
            raise ConfigError(f"{source}: client certificate/key cannot be loaded ({e.reason})") from e


# -- the TLS connection to an https proxy --------------------------------------------------


class ProxyTLSFailure(ssl.SSLError):
    """The TLS handshake with the proxy itself failed (not the one with the API server inside
    the tunnel). Raised in place of the ssl error, which stays chained as its cause, so the
    transports can tell the two apart and raise :class:`kfast.errors.ProxyError`."""


def _mark_proxy_failure(e: ssl.SSLError) -> ProxyTLSFailure:
    # (errno, strerror): SSLError's str() is then the original message.
    return ProxyTLSFailure(e.errno, str(e))


class _ProxySSLSocket(ssl.SSLSocket):
    # the blocking path (httpx's sync transport wraps the proxy socket)
    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as e:
            raise _mark_proxy_failure(e) from e


class _ProxySSLObject(ssl.SSLObject):
    # the memory-BIO path (anyio, under httpx's async transport)
    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as e:
            raise _mark_proxy_failure(e) from e


def build_proxy_ssl_context(cluster_ca_pem: bytes | None, proxy_ca_pem: bytes | None,
                            source: str) -> ssl.SSLContext:
    """The context for TLS to an ``https://`` proxy, verified against the proxy's host name.

    Trusted: the system store (which honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``), the
    cluster's certificate-authority (client-go uses the cluster's TLS settings for the proxy
    too, so a kubeconfig kubectl accepts keeps working) and ``proxy_ca_pem``. Unlike
    client-go, the cluster's ``tls-server-name``, client certificate and
    ``insecure-skip-tls-verify`` are not applied to the proxy: they describe the API server.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])  # the proxy speaks HTTP/1.1 CONNECT
    ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    for what, pem in (("certificate-authority", cluster_ca_pem), ("proxy CA (proxy_ca_pem)", proxy_ca_pem)):
        if pem:
            try:
                ctx.load_verify_locations(cadata=pem.decode("ascii", "replace"))
            except (ssl.SSLError, ValueError) as e:
                raise ConfigError(f"{source}: {what} is not valid PEM") from e
    ctx.sslsocket_class = _ProxySSLSocket
    ctx.sslobject_class = _ProxySSLObject
    return ctx
