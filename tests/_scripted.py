"""A tiny scripted HTTP/1.1 server on loopback for wire-level tests.

Each connection's request head is recorded; ``respond(request) -> list[bytes | float]``
returns what to send: byte strings are written as-is, floats are pauses (seconds). After
the script the connection is closed (unless ``hold`` is set, then it stays open).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    raw: bytes
    peer_cert: dict[str, Any] | None = None


Script = list["bytes | float"]


@dataclass
class ScriptedServer:
    respond: Callable[[Request], Script]
    tls: ssl.SSLContext | None = None
    hold: bool = False
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        self._conns.append(conn)
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
                self._conns.append(conn)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:])}
            peer = conn.getpeercert() if isinstance(conn, ssl.SSLSocket) else None
            req = Request(method, target, headers, data, peer)
            self.requests.append(req)
            for step in self.respond(req):
                if isinstance(step, float):
                    time.sleep(step)
                else:
                    conn.sendall(step)
            while self.hold and not self._stop.is_set():
                time.sleep(0.05)
        except (OSError, ssl.SSLError):
            pass
        finally:
            if not self.hold:
                try:
                    conn.close()
                except OSError:
                    pass


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def watch_head(code: int = 200, extra: str = "") -> bytes:
    reason = {200: "OK", 410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error"}.get(code, "X")
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n{extra}\r\n").encode()


def event(type_: str, name: str, rv: str, ns: str = "default", **extra: Any) -> bytes:
    obj = {"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": rv}, **extra}
    return json.dumps({"type": type_, "object": obj}).encode() + b"\n"


def status(code: int, reason: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message, **extra}


def json_response(code: int, body: Any, extra: str = "") -> bytes:
    b = json.dumps(body).encode()
    return (f"HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {len(b)}\r\n{extra}\r\n").encode() + b
