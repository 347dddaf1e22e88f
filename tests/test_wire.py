"""The watch wire path and LIST helper against a scripted loopback server (plain and TLS)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from kfast import Config, _native, errors
from kfast._wire import WatchStream, Wire, resource_path, serialize_request

from _scripted import Request, ScriptedServer, chunk, event, json_response, status, watch_head
from _pki import Pki

WATCH = {"watch": "true", "resourceVersion": "5", "allowWatchBookmarks": "true", "timeoutSeconds": "300"}


def collect(wire: Wire, params: dict[str, str] = WATCH) -> list[tuple[str, str]]:
    return [(e.type, e.resource_version) for e in wire.watch("/api/v1/pods", params).events()]


def simple_watch(_: Request) -> list[bytes | float]:
    return [watch_head(), chunk(event("ADDED", "a", "6")), chunk(event("MODIFIED", "a", "7")[:20]), 0.05,
            chunk(event("MODIFIED", "a", "7")[20:] + event("DELETED", "a", "8")), chunk(b""), ]


def test_resource_path() -> None:
    assert resource_path("pods") == "/api/v1/pods"
    assert resource_path("pods", namespace="ns") == "/api/v1/namespaces/ns/pods"
    assert resource_path("deployments", group="apps", version="v1", namespace="x") == "/apis/apps/v1/namespaces/x/deployments"


def test_request_head_is_built_by_httpx_with_auth_and_no_gzip() -> None:
    with ScriptedServer(simple_watch) as srv:
        wire = Wire(Config.for_url(srv.url, token="tkn"))
        assert wire.direct
        assert collect(wire) == [("ADDED", "6"), ("MODIFIED", "7"), ("DELETED", "8")]
        req = srv.requests[0]
        assert req.raw.startswith(b"GET /api/v1/pods?watch=true&resourceVersion=5&allowWatchBookmarks=true"
                                  b"&timeoutSeconds=300 HTTP/1.1\r\n")
        assert req.headers["host"] == f"127.0.0.1:{srv.port}"
        assert req.headers["accept"] == "application/json"
        assert req.headers["authorization"] == "Bearer tkn"
        assert req.headers["accept-encoding"] == "identity"
        wire.close()


def test_serialize_request_drops_compression() -> None:
    r = httpx.Client().build_request("GET", "http://h:1/api/v1/pods", params={"watch": "true"})
    head = serialize_request(r)
    assert head.endswith(b"\r\n\r\n") and b"gzip" not in head and b"Host: h:1" in head.replace(b"host", b"Host")


def tls_server_ctx(pki_files: dict[str, Path], require_client: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki_files["server_cert_pem"], pki_files["server_key_pem"])
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki_files["ca_pem"])
    return ctx


def big_watch(_: Request) -> list[bytes | float]:
    big = event("ADDED", "big", "6", data={"blob": "x" * (3 << 20)})  # spans several 1 MiB reads
    return [watch_head(), *(chunk(big[i:i + 16384]) for i in range(0, len(big), 16384)),
            chunk(event("BOOKMARK", "", "9")), chunk(b"")]


def test_tls_with_client_cert_and_shared_context(pki: Pki, pki_files: dict[str, Path]) -> None:
    with ScriptedServer(big_watch, tls=tls_server_ctx(pki_files, True)) as srv:
        cfg = Config(server=srv.url, ca_pem=pki.ca_pem, client_cert_pem=pki.client_cert_pem,
                     client_key_pem=pki.client_key_pem)
        wire = Wire(cfg)
        evs = list(wire.watch("/api/v1/pods", WATCH).events())
        assert [(e.type, e.resource_version) for e in evs] == [("ADDED", "6"), ("BOOKMARK", "9")]
        assert evs[0].object is not None and evs[0].object.nbytes > 3 << 20
        assert srv.requests[0].peer_cert is not None  # the client certificate was presented
        wire.close()


def test_tls_server_name_and_verification(pki: Pki, pki_files: dict[str, Path]) -> None:
    with ScriptedServer(simple_watch, tls=tls_server_ctx(pki_files, False)) as srv:
        ok = Config(server=srv.url, ca_pem=pki.ca_pem, tls_server_name="kfast.test")
        assert collect(Wire(ok))[0] == ("ADDED", "6")
        wrong = Config(server=srv.url, ca_pem=pki.ca_pem, tls_server_name="other.test")
        with pytest.raises(errors.ConnectError) as ei:
            collect(Wire(wrong))
        assert isinstance(ei.value.__cause__, ssl.SSLError)
        untrusted = Config(server=srv.url)  # system roots do not know the test CA
        with pytest.raises(errors.ConnectError):
            collect(Wire(untrusted))
        assert collect(Wire(Config(server=srv.url, insecure_skip_tls_verify=True)))[0] == ("ADDED", "6")


def test_list_over_tls_uses_same_config(pki: Pki, pki_files: dict[str, Path]) -> None:
    body = {"kind": "PodList", "metadata": {"resourceVersion": "12", "continue": "abc"},
            "items": [json.loads(event("ADDED", "p1", "3"))["object"]]}
    with ScriptedServer(lambda r: [json_response(200, body)], tls=tls_server_ctx(pki_files, True)) as srv:
        cfg = Config(server=srv.url, ca_pem=pki.ca_pem, client_cert_pem=pki.client_cert_pem,
                     client_key_pem=pki.client_key_pem)
        page = Wire(cfg).list_page("/api/v1/pods", {"limit": "1"})
        assert page.resource_version == "12" and page.continue_token == "abc"
        assert [o.key for o in page.items] == ["default/p1"]
        assert isinstance(page.items[0], _native.StoredObject)


def test_http_error_status_is_typed_with_retry_after() -> None:
    body = json.dumps(status(429, "TooManyRequests", "slow down")).encode()
    with ScriptedServer(lambda r: [watch_head(429, "Retry-After: 3\r\n"), chunk(body), chunk(b"")]) as srv:
        with pytest.raises(errors.TooManyRequests) as ei:
            collect(Wire(Config.for_url(srv.url)))
        assert ei.value.retry_after == 3 and ei.value.message == "slow down"


@pytest.mark.parametrize("direct", [True, False])
def test_410_http_and_in_stream_are_the_same_error(direct: bool) -> None:
    gone = json.dumps(status(410, "Expired", "too old resource version: 5 (10)")).encode()
    in_stream = json.dumps({"type": "ERROR", "object": status(410, "Expired", "too old")}).encode() + b"\n"
    transport = None if direct else httpx.HTTPTransport()
    with ScriptedServer(lambda r: [watch_head(410), chunk(gone), chunk(b"")]) as srv:
        with pytest.raises(errors.Gone):
            collect(Wire(Config.for_url(srv.url), transport=transport))
    with ScriptedServer(lambda r: [watch_head(), chunk(event("ADDED", "a", "6") + in_stream), 1.0]) as srv:
        wire = Wire(Config.for_url(srv.url), transport=transport)
        seen: list[str] = []
        with pytest.raises(errors.Gone):
            for e in wire.watch("/api/v1/pods", WATCH).events():
                seen.append(e.type)
        assert seen == ["ADDED"]


def test_httpx_fallback_streams_events() -> None:
    with ScriptedServer(simple_watch) as srv:
        wire = Wire(Config.for_url(srv.url, token="t"), transport=httpx.HTTPTransport())
        assert not wire.direct
        assert collect(wire) == [("ADDED", "6"), ("MODIFIED", "7"), ("DELETED", "8")]
        assert srv.requests[0].headers["authorization"] == "Bearer t"


def test_httpx_fallback_asks_for_identity_and_decodes_a_compressed_body_anyway() -> None:
    import gzip

    body = b"".join(json.dumps({"type": "ADDED", "object": {"kind": "Pod", "metadata": {
        "name": f"p{i}", "namespace": "ns", "resourceVersion": str(10 + i)}}}).encode() + b"\n" for i in range(3))
    seen: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        # kube-apiserver gzips a streaming list when the client allows it; this one ignores
        # "identity" on purpose, like a misbehaving proxy might.
        return httpx.Response(200, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
                              content=gzip.compress(body))

    wire = Wire(Config.for_url("http://k8s.test"), transport=httpx.MockTransport(handler))
    events = list(wire.watch("/api/v1/pods", {"watch": "1"}).events())
    assert [(e.type, e.resource_version) for e in events] == [("ADDED", "10"), ("ADDED", "11"), ("ADDED", "12")]
    assert seen[0].headers["Accept-Encoding"] == "identity"


def test_proxy_env_selects_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert not Wire(Config.for_url("http://10.1.2.3:80")).direct


def test_connection_refused_is_connect_error() -> None:
    with ScriptedServer(simple_watch) as srv:
        url = srv.url
    with pytest.raises(errors.ConnectError) as ei:
        collect(Wire(Config.for_url(url)))
    assert isinstance(ei.value.__cause__, OSError)
    with pytest.raises(errors.ConnectError):
        Wire(Config.for_url(url)).list_page("/api/v1/pods", {})


@pytest.mark.parametrize("tail", [chunk(event("ADDED", "b", "7"))[:-10], chunk(event("ADDED", "b", "7")[:15])])
def test_truncated_stream(tail: bytes) -> None:
    with ScriptedServer(lambda r: [watch_head(), chunk(event("ADDED", "a", "6")), tail]) as srv:
        seen: list[str] = []
        with pytest.raises(errors.StreamTruncated):
            for e in Wire(Config.for_url(srv.url)).watch("/api/v1/pods", WATCH).events():
                seen.append(e.resource_version)
        assert seen == ["6"]


def test_malformed_line_raises_decode_error_even_on_a_quiet_stream() -> None:
    with ScriptedServer(lambda r: [watch_head(), chunk(event("ADDED", "a", "6") + b"{not json\n"), 5.0]) as srv:
        seen: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(errors.DecodeError):
            for e in Wire(Config.for_url(srv.url)).watch("/api/v1/pods", WATCH).events():
                seen.append(e.resource_version)
        assert seen == ["6"] and time.monotonic() - t0 < 2


def test_read_timeout_and_close_from_another_thread() -> None:
    with ScriptedServer(lambda r: [watch_head(), chunk(event("ADDED", "a", "6"))], hold=True) as srv:
        wire = Wire(Config.for_url(srv.url))
        stream = WatchStream(wire, wire.build_request("/api/v1/pods", WATCH), read_timeout=0.3)
        with pytest.raises(errors.ReadTimeout):
            list(stream.events())
        stream = wire.watch("/api/v1/pods", WATCH)
        threading.Timer(0.3, stream.close).start()
        t0 = time.monotonic()
        assert [e.type for e in stream.events()] == ["ADDED"]
        assert time.monotonic() - t0 < 2


def test_list_errors() -> None:
    with ScriptedServer(lambda r: [json_response(410, status(410, "Expired", "continue expired",
                                                                metadata={"continue": "fresh"}))]) as srv:
        with pytest.raises(errors.Gone) as ei:
            Wire(Config.for_url(srv.url)).list_page("/api/v1/pods", {"continue": "old"})
        assert ei.value.continue_token == "fresh"
    with ScriptedServer(lambda r: [b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"items\":"]) as srv:
        with pytest.raises(errors.DecodeError):
            Wire(Config.for_url(srv.url)).list_page("/api/v1/pods", {})
    with ScriptedServer(lambda r: [json_response(503, {"oops": 1})]) as srv:
        with pytest.raises(errors.ApiError) as ei2:
            Wire(Config.for_url(srv.url)).list_page("/api/v1/pods", {})
        assert ei2.value.code == 503


def test_429_ending_at_eof_keeps_retry_after() -> None:
    body = json.dumps(status(429, "TooManyRequests", "later")).encode()
    head = (f"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 4\r\n"
            f"Connection: close\r\n\r\n").encode()
    with ScriptedServer(lambda r: [head, body]) as srv:
        with pytest.raises(errors.TooManyRequests) as ei:
            collect(Wire(Config.for_url(srv.url)))
        assert ei.value.retry_after == 4


# -- the informer's path: run_into_fifo decodes on the WatchPump's thread -----------------


def _run_into_fifo(srv: ScriptedServer) -> tuple[_native.DeltaFIFO, list[str], list[str], BaseException | None]:
    fifo = _native.DeltaFIFO()
    opened: list[str] = []
    progress: list[str] = []
    err: BaseException | None = None
    try:
        Wire(Config.for_url(srv.url)).watch("/api/v1/pods", WATCH).run_into_fifo(
            fifo, lambda: opened.append("opened"), progress.append)
    except errors.KfastError as e:
        err = e
    return fifo, opened, progress, err


def test_run_into_fifo_queues_every_event_in_order_and_reports_progress() -> None:
    many = [chunk(event("MODIFIED", f"p{i % 7}", str(10 + i))) for i in range(3000)]
    with ScriptedServer(lambda r: [watch_head(), *many, chunk(event("ADDED", "z", "9999")), chunk(b"")]) as srv:
        fifo, opened, progress, err = _run_into_fifo(srv)
    assert err is None and opened == ["opened"]
    assert progress[-1] == "9999" and progress == sorted(progress, key=int)
    assert sorted(fifo.list_keys()) == sorted({f"default/p{i}" for i in range(7)} | {"default/z"})
    rvs = [d.object.resource_version for d in fifo.get_by_key("default/p3") or []]
    assert rvs == [str(10 + i) for i in range(3000) if i % 7 == 3]
    fifo.check_invariants()


def test_run_into_fifo_returns_at_the_last_chunk_on_a_kept_alive_connection() -> None:
    with ScriptedServer(lambda r: [watch_head(), chunk(event("ADDED", "a", "6")), chunk(b"")], hold=True) as srv:
        t0 = time.monotonic()
        fifo, _, progress, err = _run_into_fifo(srv)
        assert err is None and progress == ["6"] and len(fifo) == 1
        assert time.monotonic() - t0 < 2


def test_run_into_fifo_malformed_line_on_a_quiet_stream() -> None:
    script = [watch_head(), chunk(event("ADDED", "a", "6") + b"{not json\n"), 5.0]
    with ScriptedServer(lambda r: script) as srv:
        t0 = time.monotonic()
        fifo, _, progress, err = _run_into_fifo(srv)
        assert isinstance(err, errors.DecodeError), err
        assert progress == ["6"] and fifo.list_keys() == ["default/a"]
        assert time.monotonic() - t0 < 2


def test_run_into_fifo_error_event_and_truncation() -> None:
    gone = event("ERROR", "x", "0").replace(b'"object":', b'"object":' + json.dumps(
        status(410, "Expired", "too old")).encode() + b',"ignored":')
    with ScriptedServer(lambda r: [watch_head(), chunk(event("ADDED", "a", "6") + gone)]) as srv:
        fifo, _, progress, err = _run_into_fifo(srv)
        assert isinstance(err, errors.Gone) and progress == ["6"] and len(fifo) == 1
    with ScriptedServer(lambda r: [watch_head(), chunk(event("ADDED", "a", "6")), b"5\r\n{\"ty"]) as srv:
        fifo, _, progress, err = _run_into_fifo(srv)
        assert isinstance(err, errors.StreamTruncated) and progress == ["6"] and len(fifo) == 1
    with ScriptedServer(lambda r: [json_response(403, status(403, "Forbidden", "no"))]) as srv:
        fifo, opened, _, err = _run_into_fifo(srv)
        assert isinstance(err, errors.Forbidden) and not opened and len(fifo) == 0
