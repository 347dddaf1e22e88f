"""LIST pages on kfast's own keep-alive sockets, pipelined (kfast._list_conn)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kfast import Config, _native, errors
from kfast._list_conn import next_page_params
from kfast._wire import Wire
from kfast.informer import SharedIndexInformer
from kfast.simulator import Simulator

from _scripted import event, json_response, status

PODS = "/api/v1/pods"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(pods=1200, seed=3) as s:
        yield s


def list_all(wire: Wire, limit: int) -> tuple[list[str], set[str], int]:
    keys: list[str] = []
    rvs: set[str] = set()
    params = {"resourceVersion": "0", "limit": str(limit)}
    pages = 0
    while True:
        page = wire.list_page(PODS, params)
        pages += 1
        keys += [o.key for o in page.items]
        rvs.add(page.resource_version)
        if not page.continue_token:
            return keys, rvs, pages
        params = {"limit": str(limit), "continue": page.continue_token}


def test_pages_are_requested_ahead_and_match_httpx(sim: Simulator) -> None:
    wire = Wire(Config.for_url(sim.url))
    assert wire.lister is not None
    n0 = len(sim.requests)
    keys, rvs, pages = list_all(wire, 100)
    assert pages == 12 and len(keys) == len(set(keys)) == 1200 and len(rvs) == 1
    # Every page after the first was the request sent ahead; none was sent twice.
    assert wire.lister.pipelined_hits == 11
    reqs = sim.requests[n0:]
    assert [(r.verb, r.status) for r in reqs] == [("list", 200)] * 12
    # The same pages through httpx (a custom transport cannot have its socket owned).
    fallback = Wire(Config.for_url(sim.url), transport=httpx.HTTPTransport())
    assert fallback.lister is None
    assert list_all(fallback, 100)[:2] == (keys, rvs)
    wire.close()


def test_without_pipelining_the_connection_is_kept_alive(sim: Simulator) -> None:
    wire = Wire(Config.for_url(sim.url))
    assert wire.lister is not None
    wire.lister.pipeline = False
    keys, _, pages = list_all(wire, 500)
    assert (len(set(keys)), pages, wire.lister.pipelined_hits) == (1200, 3, 0)
    assert len(wire.lister._idle) == 1  # one connection served all three pages


def test_expired_token_fails_the_request_sent_ahead_as_it_would_unpipelined(sim: Simulator) -> None:
    wire = Wire(Config.for_url(sim.url))
    assert wire.lister is not None
    wire.lister.pipeline = False
    first = wire.list_page(PODS, {"resourceVersion": "0", "limit": "100"})
    sim.expire_continue_tokens()
    wire.lister.pipeline = True
    assert first.continue_token
    with pytest.raises(errors.Gone) as ei:
        wire.list_page(PODS, {"limit": "100", "continue": first.continue_token})
    assert ei.value.continue_token  # the fresh token the server offers
    # The connection answered a 410 cleanly and is reused by the unpaged relist.
    assert len(wire.lister._idle) == 1
    page = wire.list_page(PODS, {"resourceVersion": "0"})
    assert len(page.items) == 1200 and page.continue_token is None


class _KeepAliveServer:
    """Answers requests on each connection in order (HTTP/1.1 pipelining), recording the
    connection each came on."""

    def __init__(self, respond: Callable[[str, str], bytes]) -> None:
        self.respond = respond
        self.seen: list[tuple[int, str]] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn_id = 0
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn_id += 1
            threading.Thread(target=self._handle, args=(conn, conn_id), daemon=True).start()

    def _handle(self, conn: socket.socket, conn_id: int) -> None:
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    try:
                        more = conn.recv(65536)
                    except OSError:
                        return
                    if not more:
                        return
                    data += more
                head, data = data.split(b"\r\n\r\n", 1)
                target = head.split(b" ")[1].decode()
                self.seen.append((conn_id, target))
                conn.sendall(self.respond(target, head.decode("latin-1")))

    def close(self) -> None:
        self._sock.close()


def _page_body(names: list[str], token: str) -> dict[str, object]:
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9", "continue": token},
            "items": [json.loads(event("ADDED", n, "3"))["object"] for n in names]}


def test_pipelined_request_on_one_connection_and_its_410() -> None:
    def respond(target: str, head: str) -> bytes:
        if "continue=t1" in target:
            return json_response(410, status(410, "Expired", "continue expired", metadata={"continue": "t9"}))
        return json_response(200, _page_body(["a", "b"], "t1"))

    srv = _KeepAliveServer(respond)
    try:
        wire = Wire(Config.for_url(srv.url))
        assert wire.lister is not None
        page = wire.list_page(PODS, {"resourceVersion": "0", "limit": "2", "labelSelector": "x=y"})
        assert [o.key for o in page.items] == ["default/a", "default/b"]
        # The next page went out on the same connection before this call returned.
        deadline = time.monotonic() + 2
        while len(srv.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [c for c, _ in srv.seen] == [1, 1]
        assert "continue=t1" in srv.seen[1][1] and "labelSelector=x%3Dy" in srv.seen[1][1]
        assert "resourceVersion" not in srv.seen[1][1]
        with pytest.raises(errors.Gone) as ei:
            wire.list_page(PODS, {"limit": "2", "labelSelector": "x=y", "continue": "t1"})
        assert ei.value.continue_token == "t9" and wire.lister.pipelined_hits == 1
        # A request that is not the one sent ahead is sent afresh.
        page = wire.list_page(PODS, {"resourceVersion": "0", "limit": "2"})
        assert page.continue_token == "t1"
        wire.close()
    finally:
        srv.close()


def test_401_refreshes_the_credential_once_and_retries(tmp_path: Path) -> None:
    tok = tmp_path / "token"
    tok.write_text("old")
    auths: list[str] = []

    def respond(target: str, head: str) -> bytes:
        auth = next(line for line in head.split("\r\n") if line.lower().startswith("authorization:"))
        auths.append(auth.split(" ", 2)[2])
        if auths[-1] != "new":
            return json_response(401, status(401, "Unauthorized", "bad token"))
        return json_response(200, _page_body(["a"], ""))

    srv = _KeepAliveServer(respond)
    try:
        wire = Wire(Config(server=srv.url, token_file=str(tok)))
        wire.build_request(PODS, {})  # the old token is read and cached
        tok.write_text("new")  # rotated
        page = wire.list_page(PODS, {"limit": "5"})
        assert [o.key for o in page.items] == ["default/a"] and page.continue_token is None
        assert auths == ["old", "new"]
        tok.write_text("bad")
        wire.credentials_refused()
        with pytest.raises(errors.Unauthorized):
            wire.list_page(PODS, {"limit": "5"})
        assert auths[2:] == ["bad", "bad"]  # one retry, then the typed error
        wire.close()
    finally:
        srv.close()


def test_next_page_params() -> None:
    p = {"resourceVersion": "7", "resourceVersionMatch": "NotOlderThan", "limit": "5", "fieldSelector": "a=b"}
    assert next_page_params(p, "tok") == {"limit": "5", "fieldSelector": "a=b", "continue": "tok"}
    assert next_page_params({"resourceVersion": "7"}, "tok") is None  # unpaged: never followed


def test_list_response_framing_and_early_metadata() -> None:
    body = json.dumps(_page_body(["a"], "tok")).encode()
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body + b"HTTP/1.1 410 Gone\r\n"
    r = _native.ListResponse()
    assert r.feed(wire[:60]) == 60 and r.early_metadata is None
    used = r.feed(bytearray(wire[60:]))
    assert 60 + used == len(wire) - len(b"HTTP/1.1 410 Gone\r\n")
    assert r.complete and r.reusable and r.status_code == 200
    assert r.early_metadata == ("9", "tok")
    items, rv, token = r.decode()
    assert ([o.key for o in items], rv, token) == (["default/a"], "9", "tok")
    cut = _native.ListResponse()
    cut.feed(wire[:80])
    with pytest.raises(errors.StreamTruncated):
        cut.finish()


def test_reflector_takes_one_rate_limiter_token_per_page(sim: Simulator) -> None:
    # As in client-go, each page is a request and draws a token: 12 pages at 4 qps with a
    # burst of 1 cannot take less than 11 / 4 = 2.75 s; with the limiter off they are quick.
    for transport in (None, httpx.HTTPTransport()):
        for qps, at_least, at_most in ((4.0, 2.7, 30.0), (None, 0.0, 2.5)):
            cfg = Config.for_url(sim.url).replace(qps=qps, burst=1)
            wire = Wire(cfg, transport=transport)
            inf = SharedIndexInformer(cfg, "pods", watch_list=False, page_size=100, wire=wire)
            t0 = time.monotonic()
            inf.start()
            try:
                assert inf.wait_for_sync(30)
                assert at_least <= time.monotonic() - t0 < at_most
                assert len(inf.indexer) == 1200 and inf.metrics().list_requests == 12
            finally:
                inf.stop()
                wire.close()


def test_list_page_throttle_false_draws_no_token(sim: Simulator) -> None:
    # A caller of list_page draws a token per page unless it says otherwise.
    cfg = Config.for_url(sim.url).replace(qps=0.5, burst=1)
    wire = Wire(cfg)
    limiter = cfg.rate_limiter
    assert limiter is not None
    wire.list_page(PODS, {"limit": "1"}, throttle=False)
    assert limiter.reserve() == 0.0  # the one token of the burst was still there
    wire.close()
