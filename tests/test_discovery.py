"""DiscoveryClient and AsyncDiscoveryClient against documents captured from kube-apiserver
v1.37.2: aggregated discovery, the legacy walk, failures of one group-version, v2beta1."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _discovery_server import CAPTURED, FakeDiscoveryServer

from kfast import AsyncClient, Client, Config, RetryPolicy, errors
from kfast._discovery_docs import AGGREGATED_ACCEPT
from kfast._gvk import APIResource
from kfast.discovery import AsyncDiscoveryClient, DiscoveryClient, DiscoveryData

ROOT = Path(__file__).resolve().parents[1]
SERVER = "http://k8s.test:6443"
ONCE = RetryPolicy(max_attempts=1)
modes = pytest.mark.parametrize("mode", ["sync", "async"])


def with_discovery(mode: str, server: Callable[[httpx.Request], httpx.Response],
                   use: Callable[[Any], Any], **kw: Any) -> Any:
    """Build a (sync or async) discovery client over ``server`` and return ``use(d)``
    (awaited for async). ``use`` calls the same method names on both."""
    kw.setdefault("cache_dir", None)
    cfg = Config.for_url(SERVER, token="t")
    if mode == "sync":
        with Client(cfg, transport=httpx.MockTransport(server), retry=ONCE) as c:
            return use(DiscoveryClient(c, **kw))

    async def go() -> Any:
        async with AsyncClient(cfg, transport=httpx.MockTransport(server), retry=ONCE) as c:
            out = use(AsyncDiscoveryClient(c, **kw))
            return await out if asyncio.iscoroutine(out) else out

    return asyncio.run(go())


def by_gvr(resources: list[APIResource]) -> dict[str, APIResource]:
    return {str(r.gvr): r for r in resources}


def normalized(r: APIResource) -> APIResource:
    """Aggregated and legacy documents may list subresources and verbs in different orders."""
    return APIResource(r.group, r.version, r.resource, r.kind, r.namespaced, r.singular, r.short_names,
                       r.categories, tuple(sorted(r.verbs)), tuple(sorted(r.subresources)))


@modes
def test_aggregated_discovery_is_two_requests_with_the_aggregated_accept_header(mode: str) -> None:
    server = FakeDiscoveryServer("aggregated")
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover())
    assert server.paths() == ["/api", "/apis"]
    assert [r.headers["accept"] for r in server.requests] == [AGGREGATED_ACCEPT] * 2
    assert AGGREGATED_ACCEPT.startswith(
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,")
    assert AGGREGATED_ACCEPT.endswith(",application/json")
    assert data.aggregated and data.from_server and data.failed == {}
    assert data.groups[0].name == "" and data.groups[0].versions == ("v1",)
    assert len(data.groups) == 22 and len(data.resources) == 23


@modes
def test_aggregated_resources_carry_every_discovery_field(mode: str) -> None:
    res = by_gvr(with_discovery(mode, FakeDiscoveryServer(), lambda d: d.server_resources()))
    deploy = res["deployments.v1.apps"]
    assert deploy == APIResource(
        group="apps", version="v1", resource="deployments", kind="Deployment", namespaced=True,
        singular="deployment", short_names=("deploy",), categories=("all",),
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        subresources=deploy.subresources)
    assert sorted(deploy.subresources) == ["scale", "status"]
    pods = res["pods.v1"]
    assert pods.short_names == ("po",) and pods.categories == ("all",) and pods.namespaced is True
    assert {"log", "exec", "eviction", "binding", "status", "ephemeralcontainers"} <= set(pods.subresources)
    assert res["nodes.v1"].namespaced is False and res["nodes.v1"].short_names == ("no",)
    assert res["customresourcedefinitions.v1.apiextensions.k8s.io"].short_names == ("crd", "crds")
    assert res["horizontalpodautoscalers.v2.autoscaling"].kind == "HorizontalPodAutoscaler"
    # subresources are not resources of their own
    assert "pods/status.v1" not in res and not any("/" in r.resource for r in res.values())


@modes
def test_groups_keep_server_order_and_preferred_version(mode: str) -> None:
    groups = with_discovery(mode, FakeDiscoveryServer(), lambda d: d.server_groups())
    autoscaling = next(g for g in groups if g.name == "autoscaling")
    assert autoscaling.versions == ("v2", "v1") and autoscaling.preferred_version == "v2"
    assert autoscaling.group_versions == ("autoscaling/v2", "autoscaling/v1")
    served = [item["metadata"].get("name", "") for item in CAPTURED["responses"]["/apis v2"]["body"]["items"]]
    assert [g.name for g in groups] == ["", *served]


@modes
def test_legacy_server_gets_the_group_version_walk_with_the_same_result(mode: str) -> None:
    legacy = FakeDiscoveryServer("legacy")
    walked: DiscoveryData = with_discovery(mode, legacy, lambda d: d.discover())
    assert not walked.aggregated and walked.failed == {}
    gv_paths = sorted(p for p in legacy.paths() if p not in ("/api", "/apis"))
    expected = sorted(k for k in CAPTURED["responses"] if k.startswith("/api") and " " not in k
                      and k not in ("/api", "/apis"))
    assert gv_paths == expected and len(gv_paths) == 23
    assert all(r.headers["accept"] == "application/json" for r in legacy.requests[2:])
    agg: DiscoveryData = with_discovery(mode, FakeDiscoveryServer("aggregated"), lambda d: d.discover())
    assert [g for g in walked.groups] == [g for g in agg.groups]
    assert sorted(map(normalized, walked.all_resources()), key=str) == sorted(
        map(normalized, agg.all_resources()), key=str)
    assert len(agg.all_resources()) == 72  # counted in the captured APIResourceLists


@modes
def test_v2beta1_documents_are_read_like_v2(mode: str) -> None:
    server = FakeDiscoveryServer("aggregated", v2beta1=True)
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover())
    assert data.aggregated and server.paths() == ["/api", "/apis"]
    assert "deployments.v1.apps" in by_gvr(data.all_resources())


@modes
def test_a_stale_aggregated_group_version_is_reported_not_raised(mode: str) -> None:
    server = FakeDiscoveryServer()
    server.stale("autoscaling", "v2")
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover())
    assert list(data.failed) == ["autoscaling/v2"] and "stale" in data.failed["autoscaling/v2"]
    assert "autoscaling/v2" not in data.resources
    assert [r.resource for r in data.resources["autoscaling/v1"]] == ["horizontalpodautoscalers"]
    # the preferred version is down: the mapper's per-resource fallback still finds v1
    assert [r.gvr.version for r in data.preferred_resources() if r.group == "autoscaling"] == ["v1"]
    with pytest.raises(errors.NoMatchError, match="autoscaling/v2 could not be discovered: stale"):
        with_discovery(mode, server, lambda d: d.server_resources_for_group_version("autoscaling/v2"))


@modes
def test_a_failing_group_version_in_the_legacy_walk_is_reported(mode: str) -> None:
    server = FakeDiscoveryServer("legacy")
    server.fail("/apis/batch/v1", 503)
    failed = with_discovery(mode, server, lambda d: d.failed_group_versions())
    assert list(failed) == ["batch/v1"] and failed["batch/v1"].startswith("ServiceUnavailable: 503")
    got = with_discovery(mode, server, lambda d: d.server_resources_for_group_version("apps/v1"))
    assert "deployments" in [r.resource for r in got]


@modes
def test_failures_of_the_root_documents_raise_typed_errors(mode: str) -> None:
    server = FakeDiscoveryServer()
    server.fail("/apis", 503)
    with pytest.raises(errors.ServiceUnavailable):
        with_discovery(mode, server, lambda d: d.discover())

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"groups": 7}', headers={"Content-Type": "application/json"})

    with pytest.raises(errors.DecodeError, match="GET /api"):
        with_discovery(mode, garbage, lambda d: d.discover())


@modes
def test_unknown_group_version_and_server_version(mode: str) -> None:
    server = FakeDiscoveryServer()
    with pytest.raises(errors.NoMatchError, match="does not serve example.com/v1") as ei:
        with_discovery(mode, server, lambda d: d.server_resources_for_group_version("example.com/v1"))
    assert ei.value.name == "example.com/v1"
    assert with_discovery(mode, server, lambda d: d.server_version())["gitVersion"] == "v1.37.2"


@modes
def test_memory_cache_serves_repeat_calls_and_refresh_refetches(mode: str) -> None:
    server = FakeDiscoveryServer()

    def use(d: Any) -> Any:
        if mode == "sync":
            first = d.discover()
            assert d.discover() is first and d.fresh
            second = d.refresh()
            return first, second

        async def go() -> Any:
            first = await d.discover()
            assert await d.discover() is first and d.fresh
            return first, await d.refresh()

        return go()

    first, second = with_discovery(mode, server, use)
    assert server.paths() == ["/api", "/apis", "/api", "/apis"] and first is not second
    assert first.groups == second.groups


@modes
def test_memory_snapshot_expires_after_the_ttl(mode: str) -> None:
    server = FakeDiscoveryServer()

    def use(d: Any) -> Any:
        clock = [1000.0]
        d._core._clock = lambda: clock[0]
        if mode == "sync":
            d.discover()
            clock[0] += 59
            d.discover()
            clock[0] += 2
            return d.discover()

        async def go() -> Any:
            await d.discover()
            clock[0] += 59
            await d.discover()
            clock[0] += 2
            return await d.discover()

        return go()

    with_discovery(mode, server, use, ttl=60)
    assert server.paths() == ["/api", "/apis"] * 2


def test_discovery_modules_are_mypy_strict_clean() -> None:
    mods = ["_discovery_docs", "_discovery_cache", "_discovery_core", "discovery", "_mapper_index",
            "_restmapper", "_dynamic"]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           *(str(ROOT / "python" / "kfast" / f"{m}.py") for m in mods)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_concurrent_sync_callers_share_one_fetch() -> None:
    import threading

    server = FakeDiscoveryServer()
    results: list[DiscoveryData] = []
    with Client(Config.for_url(SERVER, token="t"), transport=httpx.MockTransport(server)) as c:
        d = DiscoveryClient(c, cache_dir=None)
        threads = [threading.Thread(target=lambda: results.append(d.discover())) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert len(results) == 6 and all(r is results[0] for r in results)
    assert server.paths() == ["/api", "/apis"]


def test_concurrent_async_callers_share_one_fetch() -> None:
    server = FakeDiscoveryServer()

    async def go() -> list[DiscoveryData]:
        async with AsyncClient(Config.for_url(SERVER, token="t"), transport=httpx.MockTransport(server)) as c:
            d = AsyncDiscoveryClient(c, cache_dir=None)
            return list(await asyncio.gather(*(d.discover() for _ in range(6))))

    results = asyncio.run(go())
    assert all(r is results[0] for r in results) and server.paths() == ["/api", "/apis"]


def test_async_legacy_walk_is_concurrent_but_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import kfast.discovery as disc

    monkeypatch.setattr(disc, "MAX_CONCURRENT_FETCHES", 3)
    in_flight = [0, 0]  # now, highest

    class Slow(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.server = FakeDiscoveryServer("legacy")

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            await asyncio.sleep(0.01)
            in_flight[0] -= 1
            resp = self.server(request)
            return httpx.Response(resp.status_code, content=resp.content, headers=resp.headers)

    async def go() -> DiscoveryData:
        async with AsyncClient(Config.for_url(SERVER, token="t"), transport=Slow()) as c:
            return await AsyncDiscoveryClient(c, cache_dir=None).discover()

    data = asyncio.run(go())
    assert len(data.resources) == 23 and in_flight[1] == 3


@modes
def test_a_server_without_the_core_api_and_a_failing_core_api(mode: str) -> None:
    server = FakeDiscoveryServer()
    server.fail("/api", 404)
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover())
    assert data.groups[0].name == "apiregistration.k8s.io" and "v1" not in data.resources
    assert "apps/v1" in data.resources
    down = FakeDiscoveryServer()
    down.fail("/api", 503)
    with pytest.raises(errors.ServiceUnavailable):
        with_discovery(mode, down, lambda d: d.discover())
    assert down.paths() == ["/api"]  # no point asking for /apis


@modes
def test_an_unknown_group_version_refreshes_once(mode: str) -> None:
    from _discovery_server import widget_resource

    server = FakeDiscoveryServer()

    def use(d: Any) -> Any:
        if mode == "sync":
            d.discover()
            server.add_group("stable.example.com", ["v1"], [widget_resource()])
            return d.server_resources_for_group_version("stable.example.com/v1")

        async def go() -> Any:
            await d.discover()
            server.add_group("stable.example.com", ["v1"], [widget_resource()])
            return await d.server_resources_for_group_version("stable.example.com/v1")

        return go()

    got = with_discovery(mode, server, use)
    assert [r.resource for r in got] == ["widgets"] and server.paths() == ["/api", "/apis"] * 2
