"""DynamicClient, MetadataClient, ScaleClient and their asyncio twins over a fake server that
answers discovery with captured kube-apiserver documents and records object requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _discovery_server import FakeDiscoveryServer, widget_resource

from kfast import AsyncClient, Client, Config, RetryPolicy, errors
from kfast._dynamic import (AsyncDynamicClient, AsyncMetadataClient, AsyncScaleClient, DynamicClient,
                            MetadataClient, ScaleClient)
from kfast._gvk import APIResource, GroupVersionKind, GroupVersionResource
from kfast._resource import ResourceClient
from kfast._resource_async import AsyncResourceClient
from kfast.discovery import DiscoveryClient

modes = pytest.mark.parametrize("mode", ["sync", "async"])
CFG = Config.for_url("http://k8s.test:6443", token="t", namespace="team-a")
DISCOVERY = ("/api", "/apis")


class Server(FakeDiscoveryServer):
    """Discovery as captured; any other path answers with a small object echoing the request."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in DISCOVERY or path.count("/") <= 3 or path in self.failures:
            return super().__call__(request)
        self.requests.append(request)
        body: dict[str, Any] = {"kind": "Scale" if path.endswith("/scale") else "Thing",
                                "path": path, "method": request.method}
        if request.content:
            body["sent"] = json.loads(request.content)
        return httpx.Response(200, json=body)

    def object_requests(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests if r.url.path not in DISCOVERY]


def run(mode: str, server: Server, use: Callable[[Any, Any], Any], front: str = "dynamic") -> Any:
    """``use(front_client, mode)`` with a sync or an async front-end over ``server``."""
    sync_cls = {"dynamic": DynamicClient, "metadata": MetadataClient, "scale": ScaleClient}[front]
    async_cls = {"dynamic": AsyncDynamicClient, "metadata": AsyncMetadataClient, "scale": AsyncScaleClient}[front]
    transport = httpx.MockTransport(server)
    if mode == "sync":
        with Client(CFG, transport=transport, retry=RetryPolicy(max_attempts=1)) as c:
            return use(sync_cls(c, DiscoveryClient(c, cache_dir=None)), mode)

    async def go() -> Any:
        from kfast.discovery import AsyncDiscoveryClient

        async with AsyncClient(CFG, transport=transport, retry=RetryPolicy(max_attempts=1)) as c:
            return await use(async_cls(c, AsyncDiscoveryClient(c, cache_dir=None)), mode)

    return asyncio.run(go())


def get_resource(ref: Any, then: Callable[[Any], Any] | None = None) -> Callable[[Any, str], Any]:
    """A ``use`` that resolves ``ref`` and optionally calls ``then(resource_client)``."""
    def use(front: Any, mode: str) -> Any:
        if mode == "sync":
            rc = front.resource(ref)
            return rc, (then(rc) if then else None)

        async def go() -> Any:
            rc = await front.resource(ref)
            out = then(rc) if then else None
            return rc, (await out if asyncio.iscoroutine(out) else out)

        return go()

    return use


@modes
@pytest.mark.parametrize("ref", ["deploy", "Deployment.apps", GroupVersionResource("apps", "v1", "deployments"),
                                 GroupVersionKind("apps", "v1", "Deployment"), ("apps", "v1", "deployments"),
                                 GroupVersionResource("apps", "", "deployments")])
def test_every_kind_of_reference_resolves_through_discovery(mode: str, ref: Any) -> None:
    server = Server()
    rc, got = run(mode, server, get_resource(ref, lambda rc: rc.get("web", namespace="ns")))
    assert isinstance(rc, ResourceClient if mode == "sync" else AsyncResourceClient)
    assert rc.resource.gvr == GroupVersionResource("apps", "v1", "deployments")
    assert rc.resource.namespaced is True and "scale" in rc.resource.subresources
    assert rc.metadata_only is False
    assert got["path"] == "/apis/apps/v1/namespaces/ns/deployments/web"
    assert server.paths()[:2] == ["/api", "/apis"]


@modes
def test_an_api_resource_is_used_as_given_without_discovery(mode: str) -> None:
    server = Server()
    given = APIResource("example.com", "v1", "things", kind="Thing", namespaced=False)
    rc, got = run(mode, server, get_resource(given, lambda rc: rc.get("x")))
    assert rc.resource is given and server.paths() == ["/apis/example.com/v1/things/x"]


@modes
def test_a_gvr_discovery_does_not_know_gets_an_unknown_scope(mode: str) -> None:
    server = Server()
    rc, got = run(mode, server, get_resource(GroupVersionResource("example.com", "v1", "things"),
                                             lambda rc: rc.get("x", namespace="ns")))
    assert rc.resource == APIResource("example.com", "v1", "things", namespaced=None)
    assert server.paths() == ["/api", "/apis", "/api", "/apis", "/apis/example.com/v1/namespaces/ns/things/x"]
    with pytest.raises(errors.NoMatchError):  # no version: nothing to build a path from
        run(mode, Server(), get_resource(GroupVersionResource("example.com", "", "things")))


@modes
def test_names_unknown_or_ambiguous_raise(mode: str) -> None:
    with pytest.raises(errors.NoMatchError):
        run(mode, Server(), get_resource("nosuch"))
    server = Server()
    server.add_group("a.example.com", ["v1"], [widget_resource()])
    server.add_group("b.example.com", ["v1"], [widget_resource()])
    with pytest.raises(errors.AmbiguousResourceError) as ei:
        run(mode, server, get_resource("widgets"))
    assert ei.value.candidates == ("widgets.v1.a.example.com", "widgets.v1.b.example.com")


@modes
def test_metadata_client_asks_for_partial_object_metadata(mode: str) -> None:
    server = Server()
    rc, _ = run(mode, server, get_resource("cm", lambda rc: rc.list(namespace="ns")), front="metadata")
    assert rc.metadata_only is True and rc.resource.resource == "configmaps"
    req = server.requests[-1]
    assert req.url.path == "/api/v1/namespaces/ns/configmaps"
    assert "as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" in req.headers["accept"]


def scale_use(*calls: tuple[str, tuple[Any, ...], dict[str, Any]]) -> Callable[[Any, str], Any]:
    def use(front: Any, mode: str) -> Any:
        if mode == "sync":
            return [getattr(front, m)(*a, **kw) for m, a, kw in calls]

        async def go() -> list[Any]:
            return [await getattr(front, m)(*a, **kw) for m, a, kw in calls]

        return go()

    return use


@modes
def test_scale_get_and_update(mode: str) -> None:
    server = Server()
    got, updated, sts = run(mode, server, scale_use(
        ("get", ("deploy", "web"), {"namespace": "ns"}),
        ("update", ("deployments.apps", "web", 3), {}),
        ("get", (GroupVersionResource("apps", "v1", "statefulsets"), "db"), {})), front="scale")
    assert got == {"kind": "Scale", "path": "/apis/apps/v1/namespaces/ns/deployments/web/scale", "method": "GET"}
    assert updated["path"] == "/apis/apps/v1/namespaces/team-a/deployments/web/scale"
    assert updated["method"] == "PATCH" and updated["sent"] == {"spec": {"replicas": 3}}
    patch = [r for r in server.requests if r.method == "PATCH"][0]
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert sts["path"] == "/apis/apps/v1/namespaces/team-a/statefulsets/db/scale"


@modes
def test_scale_of_a_resource_without_a_scale_subresource_is_refused(mode: str) -> None:
    server = Server()
    with pytest.raises(errors.NoMatchError, match="configmaps.v1 has no scale subresource"):
        run(mode, server, scale_use(("get", ("cm", "x"), {})), front="scale")
    with pytest.raises(errors.NoMatchError, match=r"pods.v1 has no scale subresource \(its subresources: "):
        run(mode, server, scale_use(("update", ("po", "x", 1), {})), front="scale")
    assert server.object_requests() == []
    with pytest.raises(ValueError, match="non-negative int"):
        run(mode, server, scale_use(("update", ("deploy", "x", -1), {})), front="scale")
    with pytest.raises(ValueError):
        run(mode, server, scale_use(("update", ("deploy", "x", True), {})), front="scale")


@modes
def test_scale_of_a_crd_with_a_scale_subresource(mode: str) -> None:
    server = Server()
    server.add_group("stable.example.com", ["v1"], [widget_resource(scale=True, scope="Cluster")])
    (got,) = run(mode, server, scale_use(("get", ("widgets", "w1"), {})), front="scale")
    assert got["path"] == "/apis/stable.example.com/v1/widgets/w1/scale"


def test_front_ends_share_a_given_mapper_and_default_to_their_own_discovery() -> None:
    from kfast._restmapper import RESTMapper

    server = Server()
    with Client(CFG, transport=httpx.MockTransport(server)) as c:
        mapper = RESTMapper(DiscoveryClient(c, cache_dir=None))
        dyn, meta, scale = DynamicClient(c, mapper), MetadataClient(c, mapper), ScaleClient(c, mapper)
        assert dyn.mapper is meta.mapper is scale.mapper is mapper
        dyn.resource("po")
        meta.resource("deploy")
        scale.get("deploy", "web")
        assert server.paths().count("/apis") == 1
        own = DynamicClient(c)
        assert own.mapper is not mapper and "DynamicClient('http://k8s.test:6443')" == repr(own)


@modes
def test_client_resource_by_name_uses_its_own_discovery(mode: str, tmp_path: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``Client.resource("deploy")``: discovery made on first use (disk cache under
    $KUBECACHEDIR), shared by later calls, and the resource client it returns works."""
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path))
    server = Server()
    transport = httpx.MockTransport(server)

    def check(rc: Any, again: Any, disc: Any, mapper: Any) -> None:
        assert rc.resource.gvr == GroupVersionResource("apps", "v1", "deployments")
        assert rc.resource.namespaced is True
        assert again.resource == rc.resource
        assert mapper.discovery is disc
        assert (tmp_path / "discovery" / "k8s.test_6443" / "servergroups.json").is_file()

    if mode == "sync":
        with Client(CFG, transport=transport) as c:
            rc = c.resource("deploy")
            again = c.resource("deployments.apps")
            check(rc, again, c.discovery, c.mapper)
            assert isinstance(rc, ResourceClient)
            assert c.resource("deploy", metadata_only=True).metadata_only
            assert rc.get("web")["path"] == "/apis/apps/v1/namespaces/team-a/deployments/web"
        # Discovery was fetched once for the three lookups (then served from memory).
        assert sum(1 for r in server.requests if r.url.path == "/apis") == 1
        return

    async def go() -> None:
        async with AsyncClient(CFG, transport=transport) as c:
            rc = await c.resource("deploy")
            again = await c.resource("deployments.apps")
            check(rc, again, c.discovery, c.mapper)
            assert isinstance(rc, AsyncResourceClient)
            assert (await rc.get("web"))["path"] == "/apis/apps/v1/namespaces/team-a/deployments/web"

    asyncio.run(go())
