"""RESTMapper and AsyncRESTMapper over a discovery client: one refresh on a miss (so resources
created at run time are found), none on a hit or an ambiguity, shared refreshes, the
factory resolver."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _discovery_server import FakeDiscoveryServer, widget_resource

from kfast import AsyncClient, Client, Config, RetryPolicy, SharedInformerFactory, errors
from kfast._gvk import GroupVersionKind, GroupVersionResource
from kfast._restmapper import AsyncRESTMapper, RESTMapper
from kfast.discovery import AsyncDiscoveryClient, DiscoveryClient

modes = pytest.mark.parametrize("mode", ["sync", "async"])
CFG = Config.for_url("http://k8s.test:6443", token="t")


class Mapper:
    """The same calls on a RESTMapper or an AsyncRESTMapper (each call its own event loop
    would break the async client, so async calls run on one loop kept for the test)."""

    def __init__(self, mode: str, server: FakeDiscoveryServer, cache_dir: Path | None = None) -> None:
        self.mode = mode
        transport = httpx.MockTransport(server)
        if mode == "sync":
            self.client: Any = Client(CFG, transport=transport, retry=RetryPolicy(max_attempts=1))
            self.mapper: Any = RESTMapper(DiscoveryClient(self.client, cache_dir=cache_dir))
        else:
            self.loop = asyncio.new_event_loop()
            self.client = AsyncClient(CFG, transport=transport, retry=RetryPolicy(max_attempts=1))
            self.mapper = AsyncRESTMapper(AsyncDiscoveryClient(self.client, cache_dir=cache_dir))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.mapper, name)
        if self.mode == "sync":
            return fn  # type: ignore[no-any-return]
        return lambda *a: self.loop.run_until_complete(fn(*a))

    def close(self) -> None:
        if self.mode == "sync":
            self.client.close()
        else:
            self.loop.run_until_complete(self.client.close())
            self.loop.close()


@pytest.fixture
def mk() -> Any:
    made: list[Mapper] = []

    def make(mode: str, server: FakeDiscoveryServer, cache_dir: Path | None = None) -> Mapper:
        made.append(Mapper(mode, server, cache_dir))
        return made[-1]

    yield make
    for m in made:
        m.close()


@modes
def test_a_resource_created_later_is_found_after_one_refresh(mode: str, mk: Any) -> None:
    server = FakeDiscoveryServer()
    m = mk(mode, server)
    assert m.resource_for("deploy").resource == "deployments"
    assert m.resource_for("po").resource == "pods"  # hits: no more requests
    assert server.paths() == ["/api", "/apis"]
    server.add_group("stable.example.com", ["v1"], [widget_resource(short_names=("wd",), categories=("all",))])
    w = m.resource_for("wd")
    assert str(w.gvr) == "widgets.v1.stable.example.com" and w.namespaced is True
    assert server.paths() == ["/api", "/apis"] * 2
    assert m.kind_for(GroupVersionResource("stable.example.com", "v1", "widgets")) == GroupVersionKind(
        "stable.example.com", "v1", "Widget")
    assert "widgets" in [r.resource for r in m.resources_for_category("all")]
    assert server.paths() == ["/api", "/apis"] * 2


@modes
def test_an_unknown_name_costs_one_refresh_then_no_match(mode: str, mk: Any) -> None:
    server = FakeDiscoveryServer()
    m = mk(mode, server)
    with pytest.raises(errors.NoMatchError, match="nosuch"):
        m.resource_for("nosuch")
    assert server.paths() == ["/api", "/apis"] * 2
    with pytest.raises(errors.NoMatchError):
        m.resource_for_kind(GroupVersionKind("apps", "v1", "Nope"))
    assert len(server.requests) == 6
    assert m.resources_for_category("nope") == []
    assert len(server.requests) == 8


@modes
def test_an_ambiguous_name_does_not_refresh(mode: str, mk: Any) -> None:
    server = FakeDiscoveryServer()
    server.add_group("a.example.com", ["v1"], [widget_resource()])
    server.add_group("b.example.com", ["v1"], [widget_resource()])
    m = mk(mode, server)
    with pytest.raises(errors.AmbiguousResourceError):
        m.resource_for("widgets")
    assert server.paths() == ["/api", "/apis"]


@modes
def test_an_ambiguity_read_from_the_disk_cache_is_checked_with_the_server(mode: str, mk: Any,
                                                                          tmp_path: Path) -> None:
    clash = FakeDiscoveryServer()
    clash.add_group("a.example.com", ["v1"], [widget_resource(short_names=("wd",))])
    clash.add_group("b.example.com", ["v1"], [widget_resource(short_names=("wd",))])
    with pytest.raises(errors.AmbiguousResourceError):
        mk(mode, clash, tmp_path).resource_for("wd")  # writes the cache with both groups
    # b.example.com's CRD was deleted since; the cache (6 h TTL) still lists it.
    server = FakeDiscoveryServer()
    server.add_group("a.example.com", ["v1"], [widget_resource(short_names=("wd",))])
    m = mk(mode, server, tmp_path)
    assert str(m.resource_for("wd").gvr) == "widgets.v1.a.example.com"
    assert server.paths() == ["/api", "/apis"]  # one refresh
    assert str(m.resource_for("widgets").gvr) == "widgets.v1.a.example.com"
    assert server.paths() == ["/api", "/apis"]


@modes
def test_an_ambiguity_the_server_confirms_is_raised_after_one_refresh(mode: str, mk: Any,
                                                                      tmp_path: Path) -> None:
    clash = FakeDiscoveryServer()
    clash.add_group("a.example.com", ["v1"], [widget_resource()])
    clash.add_group("b.example.com", ["v1"], [widget_resource()])
    with pytest.raises(errors.AmbiguousResourceError):
        mk(mode, clash, tmp_path).resource_for("widgets")
    m = mk(mode, clash, tmp_path)
    clash.requests.clear()
    for _ in range(2):
        with pytest.raises(errors.AmbiguousResourceError) as ei:
            m.resource_for("widgets")
        assert ei.value.candidates == ("widgets.v1.a.example.com", "widgets.v1.b.example.com")
    assert clash.paths() == ["/api", "/apis"]  # the disk snapshot once, then believed


@modes
def test_a_miss_bypasses_a_fresh_disk_cache(mode: str, mk: Any, tmp_path: Path) -> None:
    mk(mode, FakeDiscoveryServer(), tmp_path).resource_for("po")  # writes the cache
    server = FakeDiscoveryServer()
    server.add_group("stable.example.com", ["v1"], [widget_resource()])
    m = mk(mode, server, tmp_path)
    assert m.resource_for("deploy").resource == "deployments" and server.requests == []
    assert m.resource_for("widgets").group == "stable.example.com"
    assert server.paths() == ["/api", "/apis"]
    # the refresh rewrote the cache: a third mapper knows widgets without asking
    third = FakeDiscoveryServer()
    assert mk(mode, third, tmp_path).resource_for("widgets").group == "stable.example.com"
    assert third.requests == []


def test_concurrent_misses_share_one_refresh() -> None:
    server = FakeDiscoveryServer()
    gate = threading.Event()
    inner = server.__call__

    def slow(request: httpx.Request) -> httpx.Response:
        if len(server.requests) >= 2:
            gate.wait(5)
        return inner(request)

    with Client(CFG, transport=httpx.MockTransport(slow)) as c:
        m = RESTMapper(DiscoveryClient(c, cache_dir=None))
        m.resource_for("po")
        server.add_group("stable.example.com", ["v1"], [widget_resource()])
        found: list[str] = []
        threads = [threading.Thread(target=lambda: found.append(str(m.resource_for("widgets").gvr)))
                   for _ in range(4)]
        for t in threads:
            t.start()
        gate.set()
        for t in threads:
            t.join(10)
    assert found == ["widgets.v1.stable.example.com"] * 4
    assert server.paths() == ["/api", "/apis"] * 2


def test_resolver_for_the_informer_factory() -> None:
    server = FakeDiscoveryServer()
    with Client(CFG, transport=httpx.MockTransport(server)) as c:
        m = RESTMapper(DiscoveryClient(c, cache_dir=None))
        assert m.resolver("deploy") == GroupVersionResource("apps", "v1", "deployments")
        with SharedInformerFactory(CFG, resolver=m.resolver) as f:
            assert f.resolve("Deployment.apps") == GroupVersionResource("apps", "v1", "deployments")
            assert f.resolve("hpa") == GroupVersionResource("autoscaling", "v2", "horizontalpodautoscalers")
            with pytest.raises(LookupError):
                f.resolve("nosuch")


def test_reset_forgets_discovery() -> None:
    server = FakeDiscoveryServer()
    with Client(CFG, transport=httpx.MockTransport(server)) as c:
        m = RESTMapper(DiscoveryClient(c, cache_dir=None))
        m.resource_for("po")
        m.reset()
        m.resource_for("po")
    assert server.paths() == ["/api", "/apis"] * 2


def test_concurrent_async_misses_share_one_refresh() -> None:
    server = FakeDiscoveryServer()

    async def go() -> list[str]:
        async with AsyncClient(CFG, transport=httpx.MockTransport(server)) as c:
            m = AsyncRESTMapper(AsyncDiscoveryClient(c, cache_dir=None))
            await m.resource_for("po")
            server.add_group("stable.example.com", ["v1"], [widget_resource()])
            found = await asyncio.gather(*(m.resource_for("widgets") for _ in range(5)))
            assert str(m.lookup("widgets").gvr) == "widgets.v1.stable.example.com"  # no I/O
            return [str(r.gvr) for r in found]

    assert asyncio.run(go()) == ["widgets.v1.stable.example.com"] * 5
    assert server.paths() == ["/api", "/apis"] * 2


@modes
def test_a_miss_in_a_group_version_whose_discovery_failed_says_so(mode: str, mk: Any) -> None:
    server = FakeDiscoveryServer()
    server.add_group("metrics.example.com", ["v1"], [widget_resource("podmetrics", "PodMetrics")])
    server.stale("metrics.example.com", "v1")  # its APIService is down
    m = mk(mode, server)
    for name in ("podmetrics", "podmetrics.metrics.example.com"):
        with pytest.raises(errors.NoMatchError) as ei:
            m.resource_for(name)
        assert f"the server doesn't have a resource type {name!r} (discovery of metrics.example.com/v1 " \
               "failed, the resource may be served there: metrics.example.com/v1: stale" in str(ei.value)
    with pytest.raises(errors.NoMatchError, match="discovery of metrics.example.com/v1 failed"):
        m.resource_for_gvr(GroupVersionResource("metrics.example.com", "v1", "podmetrics"))
    with pytest.raises(errors.NoMatchError, match="discovery of metrics.example.com/v1 failed"):
        m.resource_for_kind(GroupVersionKind("metrics.example.com", "v1", "PodMetrics"))
    # A miss elsewhere does not blame it.
    with pytest.raises(errors.NoMatchError) as ei:
        m.resource_for("nosuch.apps")
    assert "discovery of" not in str(ei.value)
