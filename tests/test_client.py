"""Client and AsyncClient over httpx.MockTransport: the same behaviour through both drivers
(retries, Retry-After, rate limiting, warnings, typed errors, redaction)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import ssl

import httpx
import pytest

from kfast import AsyncClient, Client, Config, RetryPolicy, errors

Handler = Callable[[httpx.Request], httpx.Response]
FAST = RetryPolicy(max_attempts=4, backoff_base=0.001, backoff_max=0.01)


def status(code: int, reason: str, message: str = "m", **extra: Any) -> httpx.Response:
    return httpx.Response(code, json={"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                                      "reason": reason, "message": message, **extra})


def call(mode: str, handler: Handler, method: str = "GET", path: str = "/api/v1/pods", *,
         config: Config | None = None, retry: RetryPolicy = FAST, warnings: list[str] | None = None,
         **kw: Any) -> Any:
    """One request through Client (sync) or AsyncClient (async) with the same arguments."""
    cfg = config or Config.for_url("http://k8s.test", token="s3cr3t-token")
    handler_kw: dict[str, Any] = {"retry": retry}
    if warnings is not None:
        handler_kw["warning_handler"] = warnings.append
    if mode == "sync":
        with Client(cfg, transport=httpx.MockTransport(handler), **handler_kw) as c:
            return c.request(method, path, **kw)

    async def run() -> Any:
        async with AsyncClient(cfg, transport=httpx.MockTransport(handler), **handler_kw) as c:
            return await c.request(method, path, **kw)

    return asyncio.run(run())


modes = pytest.mark.parametrize("mode", ["sync", "async"])


@modes
def test_request_builds_and_decodes(mode: str) -> None:
    seen: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(201, json={"kind": "ConfigMap", "metadata": {"name": "x"}})

    out = call(mode, handler, "POST", "/api/v1/namespaces/ns/configmaps", params={"dryRun": "All", "pretty": True},
               json={"metadata": {"name": "x"}}, headers={"X-Extra": "1"})
    assert out == {"kind": "ConfigMap", "metadata": {"name": "x"}}
    r = seen[0]
    assert r.url == httpx.URL("http://k8s.test/api/v1/namespaces/ns/configmaps?dryRun=All&pretty=true")
    assert r.headers["Authorization"] == "Bearer s3cr3t-token" and r.headers["X-Extra"] == "1"
    assert r.headers["Content-Type"] == "application/json" and r.content == b'{"metadata":{"name":"x"}}'


@modes
@pytest.mark.parametrize(("resp", "cls"), [
    (status(404, "NotFound"), errors.NotFound),
    (status(403, "Forbidden"), errors.Forbidden),
    (status(401, "Unauthorized"), errors.Unauthorized),
    (status(409, "AlreadyExists"), errors.AlreadyExists),
    (status(409, "Conflict"), errors.Conflict),
    (status(410, "Expired"), errors.Expired),
    (status(422, "Invalid", details={"causes": [{"field": "spec.x", "reason": "FieldValueRequired"}]}), errors.Invalid),
    (status(500, "InternalError"), errors.InternalError),
    (status(500, "ServerTimeout"), errors.ServerTimeout),
    (status(415, "UnsupportedMediaType"), errors.UnsupportedMediaType),
    (httpx.Response(502, text="<html>bad gateway</html>"), errors.ApiError),
])
def test_typed_errors(mode: str, resp: httpx.Response, cls: type[errors.ApiError]) -> None:
    with pytest.raises(errors.ApiError) as ei:
        call(mode, lambda r: httpx.Response(resp.status_code, headers=resp.headers, content=resp.content), "POST")
    e = ei.value
    assert type(e) is cls and e.code == resp.status_code and e.attempts == 1
    if isinstance(e, errors.Invalid):
        assert e.causes[0]["field"] == "spec.x"
    if cls is errors.ApiError:
        assert "bad gateway" in e.message


@modes
def test_429_retry_after_is_honoured_then_reported(mode: str) -> None:
    times: list[float] = []

    def handler(r: httpx.Request) -> httpx.Response:
        times.append(time.monotonic())
        return httpx.Response(429, headers={"Retry-After": "0.2"},
                              json={"kind": "Status", "code": 429, "reason": "TooManyRequests"})

    with pytest.raises(errors.TooManyRequests) as ei:
        call(mode, handler, retry=RetryPolicy(max_attempts=3))
    assert ei.value.retry_after == 0.2 and ei.value.attempts == 3 and len(times) == 3
    assert all(b - a >= 0.19 for a, b in zip(times, times[1:]))


@modes
@pytest.mark.parametrize("header", ["3600", "1e12", "inf"])
def test_retry_after_beyond_max_retry_after_fails_at_once(mode: str, header: str) -> None:
    sends = [0]

    def handler(r: httpx.Request) -> httpx.Response:
        sends[0] += 1
        return httpx.Response(429, headers={"Retry-After": header},
                              json={"kind": "Status", "code": 429, "reason": "TooManyRequests"})

    start = time.monotonic()
    with pytest.raises(errors.TooManyRequests) as ei:
        call(mode, handler, retry=RetryPolicy(max_attempts=5, max_retry_after=60))
    # Not four waits of the cap: the first answer is reported, with what the server asked.
    assert time.monotonic() - start < 2 and sends[0] == 1 and ei.value.attempts == 1
    assert ei.value.retry_after == float(header)


@modes
def test_retry_after_up_to_the_cap_is_waited_for(mode: str) -> None:
    times: list[float] = []

    def handler(r: httpx.Request) -> httpx.Response:
        times.append(time.monotonic())
        code = 503 if len(times) == 1 else 200
        return httpx.Response(code, headers={"Retry-After": "0.3"}, json={"kind": "Status", "code": code})

    assert call(mode, handler, retry=RetryPolicy(max_retry_after=0.3)) == {"kind": "Status", "code": 200}
    assert len(times) == 2 and times[1] - times[0] >= 0.29
    times.clear()
    with pytest.raises(errors.ServiceUnavailable) as ei:
        call(mode, handler, retry=RetryPolicy(max_retry_after=0.29))
    assert len(times) == 1 and ei.value.retry_after == 0.3


@modes
def test_429_then_success_even_for_post(mode: str) -> None:
    n = [0]

    def handler(r: httpx.Request) -> httpx.Response:
        n[0] += 1
        return httpx.Response(429, headers={"Retry-After": "0"}) if n[0] < 3 else httpx.Response(200, json={"ok": 1})

    assert call(mode, handler, "POST", json={}) == {"ok": 1} and n[0] == 3


@modes
@pytest.mark.parametrize(("method", "retry_after", "sends"), [
    ("GET", "0", 4), ("PUT", "0", 4), ("GET", None, 1), ("POST", "0", 1), ("PATCH", "0", 1)])
def test_5xx_retried_only_when_idempotent_and_told(mode: str, method: str, retry_after: str | None, sends: int) -> None:
    n = [0]

    def handler(r: httpx.Request) -> httpx.Response:
        n[0] += 1
        return httpx.Response(503, headers={"Retry-After": retry_after} if retry_after else {})

    with pytest.raises(errors.ServiceUnavailable) as ei:
        call(mode, handler, method)
    assert n[0] == sends and ei.value.attempts == sends


@modes
@pytest.mark.parametrize(("method", "exc", "sends", "cls"), [
    ("GET", httpx.ReadError("connection reset"), 4, errors.StreamTruncated),
    ("POST", httpx.ReadError("connection reset"), 1, errors.StreamTruncated),  # may have reached the server
    ("POST", httpx.ConnectError("connection refused"), 4, errors.ConnectError),  # never sent
    ("DELETE", httpx.ReadTimeout("slow"), 4, errors.ReadTimeout),
    ("GET", httpx.ProxyError("407"), 4, errors.ProxyError),
])
def test_transport_errors_mapped_chained_and_retried_when_safe(
    mode: str, method: str, exc: Exception, sends: int, cls: type[errors.TransportError]
) -> None:
    n = [0]

    def handler(r: httpx.Request) -> httpx.Response:
        n[0] += 1
        raise exc

    with pytest.raises(errors.TransportError) as ei:
        call(mode, handler, method)
    assert type(ei.value) is cls and ei.value.__cause__ is exc and n[0] == sends and ei.value.attempts == sends
    assert "s3cr3t" not in str(ei.value)


@modes
def test_connection_error_then_success(mode: str) -> None:
    n = [0]

    def handler(r: httpx.Request) -> httpx.Response:
        n[0] += 1
        if n[0] == 1:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=[1])

    assert call(mode, handler) == [1]


@modes
def test_warnings_reach_the_handler(mode: str) -> None:
    got: list[str] = []

    def handler(r: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={}, headers=[
            ("Warning", '299 - "v1beta1 Foo is deprecated; use v1"'),
            ("Warning", '299 - "first, with comma", 299 - "second \\"quoted\\""')])

    call(mode, handler, warnings=got)
    assert got == ["v1beta1 Foo is deprecated; use v1", "first, with comma", 'second "quoted"']


def test_default_warning_handler_logs_each_text_once(caplog: pytest.LogCaptureFixture) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={}, headers={"Warning": '299 - "deprecated thing"'})

    caplog.set_level(logging.WARNING, "kfast.warnings")
    with Client(Config.for_url("http://k"), transport=httpx.MockTransport(handler)) as c:
        c.get("/a")
        c.get("/b")
    assert [r.getMessage() for r in caplog.records] == ["server warning: deprecated thing"]


@modes
def test_rate_limiter_spaces_requests(mode: str) -> None:
    cfg = Config(server="http://k", qps=20.0, burst=2)
    start = time.monotonic()
    for _ in range(6):
        call(mode, lambda r: httpx.Response(200, json={}), config=cfg)
    # 2 free from the burst, then 4 at 20/s: at least 0.2 s
    assert time.monotonic() - start >= 0.18


def test_rate_limiter_off_and_shared() -> None:
    assert Config(server="http://k", qps=None).rate_limiter is None
    cfg = Config(server="http://k")
    assert cfg.rate_limiter is cfg.with_namespace("x").rate_limiter  # one bucket per config
    assert cfg.rate_limiter is not None and (cfg.rate_limiter.qps, cfg.rate_limiter.burst) == (50.0, 100)


def test_retry_logs_do_not_leak_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    n = [0]

    def handler(r: httpx.Request) -> httpx.Response:
        n[0] += 1
        return httpx.Response(429, headers={"Retry-After": "0"}) if n[0] == 1 else httpx.Response(200, json={})

    call("sync", handler)
    assert any("retrying GET /api/v1/pods after 429" in r.getMessage() for r in caplog.records)
    assert all("s3cr3t" not in r.getMessage() for r in caplog.records)


def test_patch_types_and_helpers() -> None:
    seen: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(200, json={"gitVersion": "v1.37.2"} if r.url.path == "/version" else {})

    with Client(Config.for_url("http://k"), transport=httpx.MockTransport(handler)) as c:
        assert c.version()["gitVersion"] == "v1.37.2"
        c.patch("/p", {"a": 1})
        c.patch("/p", [{"op": "remove", "path": "/a"}], patch_type="json")
        c.patch("/p", {"a": 1}, patch_type="apply", params={"fieldManager": "me"})
        c.put("/p", {})
        c.delete("/p")
        with pytest.raises(ValueError):
            c.patch("/p", {}, patch_type="bogus")  # type: ignore[arg-type]
    assert [r.headers.get("Content-Type") for r in seen[1:4]] == [
        "application/merge-patch+json", "application/json-patch+json", "application/apply-patch+yaml"]
    assert [r.method for r in seen] == ["GET", "PATCH", "PATCH", "PATCH", "PUT", "DELETE"]


def test_repr_redacts() -> None:
    c = Client(Config.for_url("http://k", token="s3cr3t-token"))
    assert "s3cr3t" not in repr(c) and "REDACTED" in repr(c)
    c.close()


def test_backoff_has_jitter_and_cap() -> None:
    p = RetryPolicy(backoff_base=1.0, backoff_max=4.0)
    assert p.backoff(1, lambda: 1.0) == 1.0 and p.backoff(3, lambda: 1.0) == 4.0 and p.backoff(10, lambda: 0.5) == 2.0
    assert p.backoff(2, lambda: 0.0) == 0.0


def test_watch_starts_draw_from_the_same_bucket_as_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    from kfast._ratelimit import TokenBucket
    from kfast._wire import Wire

    now = [0.0]
    bucket = TokenBucket(qps=1.0, burst=2, clock=lambda: now[0])
    cfg = Config(server="http://127.0.0.1:1")
    monkeypatch.setattr(cfg._rt, "limiter", bucket)
    monkeypatch.setattr(cfg._rt, "limiter_built", True)
    slept: list[float] = []
    monkeypatch.setattr("kfast._ratelimit.time.sleep", slept.append)
    monkeypatch.setattr("kfast._client.time.sleep", slept.append)
    wire = Wire(cfg)
    wire.watch("/api/v1/pods", {"watch": "1"})  # a watch start takes a token (no I/O yet)
    with Client(cfg, transport=httpx.MockTransport(lambda r: httpx.Response(200, json={}))) as c:
        c.get("/api/v1/pods")  # the second token of the burst
        c.get("/api/v1/pods")  # must wait a second
    wire.close()
    assert slept == [1.0]


def test_token_bucket_rate_and_burst() -> None:
    from kfast._ratelimit import TokenBucket

    now = [0.0]
    b = TokenBucket(qps=10.0, burst=3, clock=lambda: now[0])
    assert [b.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.reserve() == pytest.approx(0.1) and b.reserve() == pytest.approx(0.2)  # queued behind
    now[0] = 10.0
    assert b.reserve() == 0.0  # refilled, but never above the burst
    with pytest.raises(ValueError):
        TokenBucket(qps=0, burst=1)


def test_replace_builds_fresh_credentials_with_namespace_shares_them() -> None:
    import dataclasses

    cfg = Config.for_url("http://k", token="one")
    auth = cfg.auth()
    assert cfg.with_namespace("x").auth() is auth
    for other in (cfg.replace(token="two"), dataclasses.replace(cfg, token="two")):
        assert other.auth() is not auth
    assert cfg.replace(qps=None).rate_limiter is None and cfg.rate_limiter is not None


def test_token_with_control_characters_is_refused_without_leaking() -> None:
    import kfast

    secret = "s3cr3t-VALUE-abc"
    cfg = kfast.Config.for_url("http://127.0.0.1:9").replace(token=secret + "\r")
    with pytest.raises(kfast.errors.AuthError) as ei:
        kfast.Client(cfg).version()
    text = str(ei.value) + repr(ei.value) + repr(ei.value.__cause__)
    assert secret not in text
    assert "bearer token" in str(ei.value)


def test_transport_messages_are_scrubbed() -> None:
    from kfast._transport import map_transport_error

    err = map_transport_error(httpx.LocalProtocolError("Illegal header value b'Bearer s3cr3t-x\\r'"))
    assert "s3cr3t" not in str(err) and "[REDACTED]" in str(err)


def test_plain_http_builds_no_tls_context() -> None:
    """An http:// server never does TLS, so no default SSLContext (certifi loading, ~30 ms)
    is built for it; an https proxy keeps its own verifying context."""
    from kfast._transport import _Pools

    assert _Pools(Config.for_url("http://10.0.0.1:8080")).verify(None) is False
    assert _Pools(Config.for_url("http://10.0.0.1:8080").replace(proxy_url="http://p:3128")).verify(None) is False
    via_https = _Pools(Config.for_url("http://10.0.0.1:8080").replace(proxy_url="https://p:3128"))
    assert via_https.verify(None) is False
    assert via_https.proxy is not None and via_https.proxy.ssl_context is not None
    assert via_https.proxy.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_proxy_failures_are_told_apart_from_api_server_failures() -> None:
    import ssl

    from kfast._tls import ProxyTLSFailure
    from kfast._transport import SyncTransport, map_transport_error

    def chained(outer: Exception, inner: BaseException) -> Exception:
        outer.__cause__ = inner
        return outer

    req = httpx.Request("GET", "https://10.0.0.1/api")
    proxied = SyncTransport(Config(server="https://10.0.0.1", proxy_url="https://user:pw@proxy.test:3129"))._p
    direct = SyncTransport(Config(server="https://10.0.0.1"))._p
    refused = chained(httpx.ConnectError("[Errno 111] Connection refused"), ConnectionRefusedError(111, "refused"))
    timeout = httpx.ConnectTimeout("timed out")
    bad_proxy_cert = chained(httpx.ConnectError("handshake"), chained(
        ProxyTLSFailure(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        ssl.SSLCertVerificationError(1, "certificate verify failed")))
    bad_server_cert = chained(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
                              ssl.SSLCertVerificationError(1, "certificate verify failed"))
    expect = {
        refused: "cannot connect to the proxy https://proxy.test:3129: [Errno 111] Connection refused",
        timeout: "timed out connecting to (or through) the proxy https://proxy.test:3129",
        bad_proxy_cert: "TLS handshake with the proxy https://proxy.test:3129 failed: [SSL: CERTIFICATE_VERIFY_FAILED]",
    }
    for e, message in expect.items():
        failure = proxied.proxy_failure(e, req)  # type: ignore[arg-type]
        assert failure is not None and str(failure).startswith(message) and "pw" not in str(failure)
        mapped = map_transport_error(failure)
        assert type(mapped) is errors.ProxyError and isinstance(mapped, errors.ConnectError)
    assert proxied.proxy_failure(bad_server_cert, req) is None  # the API server's, inside the tunnel
    assert type(map_transport_error(bad_server_cert)) is errors.TLSError
    for e in (refused, timeout, bad_server_cert):
        assert direct.proxy_failure(e, req) is None  # no proxy: nothing to blame it on
