"""Minimal proxies on loopback ports (HTTP CONNECT, optionally served over TLS and with
basic proxy authentication, and SOCKS5 without authentication), recording the tunnels they
opened."""

from __future__ import annotations

import base64
import os
import select
import socket
import socketserver
import ssl
import tempfile
import threading


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    socks = [client, upstream]
    try:
        while True:
            ready, _, _ = select.select(socks, [], [], 30)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                # A TLS socket may hold decrypted bytes select() cannot see.
                while isinstance(s, ssl.SSLSocket) and s.pending():
                    data += s.recv(s.pending())
                (upstream if s is client else client).sendall(data)
    finally:
        upstream.close()


def _recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("client went away")
        out += chunk
    return out


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Socks5Proxy:
    def __init__(self) -> None:
        self.tunnels: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                c: socket.socket = self.request
                ver, n = _recv_exact(c, 2)
                methods = _recv_exact(c, n)
                if ver != 5 or 0 not in methods:
                    c.sendall(b"\x05\xff")
                    return
                c.sendall(b"\x05\x00")
                _ver, cmd, _rsv, atyp = _recv_exact(c, 4)
                if atyp == 1:
                    host = socket.inet_ntoa(_recv_exact(c, 4))
                elif atyp == 3:
                    host = _recv_exact(c, _recv_exact(c, 1)[0]).decode()
                else:
                    c.sendall(b"\x05\x08\x00\x01" + bytes(6))
                    return
                port = int.from_bytes(_recv_exact(c, 2), "big")
                if cmd != 1:
                    c.sendall(b"\x05\x07\x00\x01" + bytes(6))
                    return
                proxy.tunnels.append(f"{host}:{port}")
                upstream = socket.create_connection((host, port))
                c.sendall(b"\x05\x00\x00\x01" + bytes(6))
                _pipe(c, upstream)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"socks5://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:
        cp, kp = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        for path, data in ((cp, cert_pem), (kp, key_pem)):
            with open(path, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cp, kp)
    return ctx


class ConnectProxy:
    """``tls=(cert, key)`` serves the proxy itself over TLS (an ``https://`` proxy-url);
    ``auth=(user, password)`` demands that Proxy-Authorization (407 otherwise)."""

    def __init__(self, tls: tuple[bytes, bytes] | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        self.tunnels: list[str] = []
        self.tls_handshakes = 0
        self.tls_failures: list[str] = []
        ctx = server_context(*tls) if tls else None
        want_auth = ("Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()) if auth else None
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                if ctx is not None:
                    try:
                        client = ctx.wrap_socket(client, server_side=True)
                    except (ssl.SSLError, OSError) as e:
                        proxy.tls_failures.append(str(e))
                        return
                    proxy.tls_handshakes += 1
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                line = head.split(b"\r\n", 1)[0].decode()
                method, target, _ = line.split(" ", 2)
                if method != "CONNECT":
                    client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                if want_auth is not None:
                    given = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")[1:]
                             if ln.lower().startswith(b"proxy-authorization:")]
                    if given != [want_auth.encode()]:
                        client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                       b"Proxy-Authenticate: Basic realm=\"kfast\"\r\nContent-Length: 0\r\n\r\n")
                        return
                proxy.tunnels.append(target)
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host.strip("[]"), int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(client, upstream)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        userinfo = f"{auth[0]}:{auth[1]}@" if auth else ""
        self.url = f"{'https' if tls else 'http'}://{userinfo}127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
