"""Streamed logs and streamed opens of the resource clients, over httpx.MockTransport,
through both drivers. Logs are checked against simulated responses: a Pod cannot run in the
test environment (kube-apiserver + etcd, no kubelet), so the server has no log to give."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from _rest_mock import PODS, call, chunked, cm, config, ev, modes, recorder, status
from _rest_mock import Chunks as _Chunks

from kfast import AsyncClient, AsyncResourceClient, Config, ResourceClient, RetryPolicy, errors
from kfast._client import Client
from kfast._core import Core, Read, Send
from kfast._logs import LineSplitter


def _cfg() -> Any:
    return config()


# -- logs -------------------------------------------------------------------------------------


def test_line_splitter() -> None:
    s = LineSplitter()
    text = "héllo\nwörld ✓\n\nno newline".encode()
    out: list[str] = []
    for i in range(len(text)):  # one byte at a time: every split point
        out += s.feed(text[i:i + 1])
    out += s.finish()
    assert out == ["héllo", "wörld ✓", "", "no newline"]
    assert LineSplitter().feed(b"\xff\xfeok\n") == ["\ufffd\ufffdok"]


@modes
def test_logs_stream_lines_as_they_arrive(mode: str) -> None:
    chunks = [b"2026-01-01T00:00:00Z sta", b"rt\n2026-01-01T00:00:01Z r\xc3", b"\xa9ady\nlast"]
    seen, handler = recorder(lambda r: chunked(chunks, "text/plain"))
    lines = call(mode, handler, "logs", "p", resource=PODS, follow=True, timestamps=True, tail_lines=0)
    assert lines == ["2026-01-01T00:00:00Z start", "2026-01-01T00:00:01Z réady", "last"]
    req = seen[0]
    assert req.url.path == "/api/v1/namespaces/team/pods/p/log"
    assert dict(req.url.params) == {"tailLines": "0", "follow": "true", "timestamps": "true"}
    assert req.extensions["timeout"]["read"] is None  # following: no read timeout


@modes
def test_logs_can_be_left_early(mode: str) -> None:
    _, handler = recorder(lambda r: chunked([b"a\nb\nc\n", b"d\n"], "text/plain"))
    assert call(mode, handler, "logs", "p", resource=PODS, max_items=2) == ["a", "b"]


@modes
def test_logs_of_a_missing_pod_is_not_found(mode: str) -> None:
    _, handler = recorder(lambda r: status(404, "NotFound", 'pods "p" not found'))
    with pytest.raises(errors.NotFound):
        call(mode, handler, "logs", "p", resource=PODS)


@modes
def test_a_stream_cut_mid_body_is_stream_truncated(mode: str) -> None:
    class Cut(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            yield ev("ADDED", cm("a", "2"))
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

        async def __aiter__(self) -> Any:
            yield ev("ADDED", cm("a", "2"))
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    _, handler = recorder(lambda r: httpx.Response(200, stream=Cut()))
    got: list[Any] = []
    with pytest.raises(errors.StreamTruncated):
        got += call(mode, handler, "watch", resource_version="1")


# -- streamed opens (Client.open_stream, Core.call(stream=True)) --------------------------------


@modes
def test_a_throttled_watch_open_is_retried_and_the_refusal_read(mode: str) -> None:
    def answer(req: httpx.Request) -> httpx.Response:
        if len(seen) == 1:
            return httpx.Response(429, stream=_Chunks([b'{"kind":"Status","code":429,', b'"reason":"TooManyRequests"}']),
                                  headers={"Retry-After": "0", "Content-Type": "application/json"})
        return chunked([ev("ADDED", cm("a", "2"))])

    seen, handler = recorder(answer)
    events = call(mode, handler, "watch", resource_version="1", max_items=1)
    assert [e.object["metadata"]["name"] for e in events] == ["a"] and len(seen) == 2


def test_core_reads_the_body_of_a_streamed_error_before_mapping_it() -> None:
    core = Core(base_url="http://k8s.test", headers={}, limiter=None, retry=RetryPolicy(max_attempts=1),
                warning_handler=None)
    req = core.build_request("GET", "/api/v1/pods", params={"watch": True})
    steps = core.call(req, stream=True)
    assert next(steps) == Send(req, stream=True)
    resp = httpx.Response(403, stream=_Chunks([b'{"kind":"Status","code":403,"reason":"Forbidden",',
                                               b'"message":"no"}']), request=req)
    assert steps.send(resp) == Read(resp)
    resp.read()
    with pytest.raises(errors.Forbidden, match="no"):
        steps.send(None)
    ok = httpx.Response(200, stream=_Chunks([b"{}"]), request=req)
    steps = core.call(req, stream=True)
    next(steps)
    with pytest.raises(StopIteration) as stop:
        steps.send(ok)
    assert stop.value.value is ok and not ok.is_closed  # handed over unread


@modes
def test_open_stream_on_the_clients(mode: str) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return chunked([b"one ", b"two"], "text/plain")

    if mode == "sync":
        with Client(_cfg(), transport=httpx.MockTransport(handler)) as c:
            resp = c.open_stream(c.build_request("GET", "/x"))
            try:
                assert list(resp.iter_bytes()) == [b"one ", b"two"]
            finally:
                resp.close()
            return

    async def run() -> None:
        async with AsyncClient(_cfg(), transport=httpx.MockTransport(handler)) as c:
            resp = await c.open_stream(c.build_request("GET", "/x"))
            try:
                assert [b async for b in resp.aiter_bytes()] == [b"one ", b"two"]
            finally:
                await resp.aclose()

    asyncio.run(run())


class SilentServer:
    """A local HTTP server whose answer starts a chunked body, sends one line, then stays
    silent (a container that logs nothing more): only stop() can end the read."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"6\r\nhello\n\r\n")

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@modes
def test_stop_wakes_a_blocked_log_follow(mode: str) -> None:
    server = SilentServer()
    cfg = Config.for_url(f"http://127.0.0.1:{server.port}", namespace="team")
    got: list[str] = []

    async def run() -> float:
        started = time.monotonic()
        if mode == "sync":
            with Client(cfg) as c:
                lines = ResourceClient(c, PODS).logs("p", follow=True)
                timer = threading.Timer(0.5, lines.stop)
                timer.start()
                got.extend(lines)
        else:
            async with AsyncClient(cfg) as ac:
                alines = AsyncResourceClient(ac, PODS).logs("p", follow=True)
                asyncio.get_running_loop().call_later(0.5, alines.stop)
                got.extend([line async for line in alines])
        return time.monotonic() - started

    try:
        elapsed = asyncio.run(run())
    finally:
        server.close()
    assert got == ["hello"] and elapsed < 5
