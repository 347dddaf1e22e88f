"""The client core without sockets: drive :meth:`Core.call` by hand, as both drivers do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kfast import RetryPolicy, errors
from kfast._core import Core, Send, Sleep
from kfast._ratelimit import TokenBucket

ROOT = Path(__file__).resolve().parents[1]


def core(limiter: TokenBucket | None = None, warnings: list[str] | None = None) -> Core:
    return Core(base_url="https://k8s.test:6443/prefix", headers={"Accept": "application/json"}, limiter=limiter,
                retry=RetryPolicy(max_attempts=3, backoff_base=1.0), warning_handler=warnings.append if warnings is not None else None)


def test_steps_of_a_throttled_call_then_retry_then_success() -> None:
    now = [0.0]
    seen: list[str] = []
    c = core(TokenBucket(qps=2.0, burst=1, clock=lambda: now[0]), warnings=seen)
    c.limiter.reserve()  # type: ignore[union-attr]  # the burst is spent
    req = c.build_request("GET", "/api/v1/pods", params={"limit": 5, "watch": False})
    assert str(req.url) == "https://k8s.test:6443/prefix/api/v1/pods?limit=5&watch=false"
    steps = c.call(req)
    assert next(steps) == Sleep(0.5, "client-side rate limit")
    assert steps.send(None) == Send(req)
    now[0] = 10.0
    step = steps.send(httpx.Response(429, headers={"Retry-After": "7"}, request=req))
    assert step == Sleep(7.0, "429 Too Many Requests")
    assert steps.send(None) == Send(req)
    with pytest.raises(StopIteration) as stop:
        steps.send(httpx.Response(200, json={"items": []}, request=req,
                                  headers={"Warning": '299 - "careful"'}))
    assert stop.value.value == {"items": []}
    assert seen == ["careful"]


def test_a_non_idempotent_request_that_may_have_arrived_is_not_sent_again() -> None:
    c = core()
    req = c.build_request("POST", "/api/v1/namespaces/a/pods", json={})
    steps = c.call(req)
    assert next(steps) == Send(req)
    cause = httpx.RemoteProtocolError("server disconnected")
    with pytest.raises(errors.StreamTruncated) as ei:
        steps.send(cause)
    assert ei.value.__cause__ is cause and ei.value.attempts == 1


def test_attempts_are_bounded() -> None:
    c = core()
    req = c.build_request("GET", "/x")
    steps = c.call(req)
    sends = 0
    reply: object = None
    with pytest.raises(errors.ServiceUnavailable) as ei:
        while True:
            step = steps.send(reply)  # type: ignore[arg-type]
            if isinstance(step, Send):
                sends += 1
                reply = httpx.Response(503, headers={"Retry-After": "1"}, request=req)
            else:
                reply = None
    assert sends == 3 and ei.value.attempts == 3 and ei.value.retry_after == 1.0


def test_new_modules_are_mypy_strict_clean() -> None:
    mods = ["_auth", "_client", "_config", "_core", "_exec", "_kubeconfig", "_oidc", "_ratelimit", "_tls",
            "_transport", "_warnings", "_wire", "errors", "__init__"]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           *(str(ROOT / "python" / "kfast" / f"{m}.py") for m in mods)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
