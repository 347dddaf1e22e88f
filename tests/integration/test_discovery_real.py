"""Discovery and the RESTMapper against a real kube-apiserver (sync and asyncio): what the
server serves, short names and categories, the disk cache shared by a second client, and a
CustomResourceDefinition created at run time found by the automatic refresh."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import kfast
from kfast._discovery_docs import AGGREGATED_ACCEPT
from kfast._transport import AsyncTransport, SyncTransport
from kfast.discovery import host_cache_dir
from kfast.testing import ADMIN, Cluster

pytestmark = pytest.mark.integration
modes = pytest.mark.parametrize("mode", ["sync", "async"])


@pytest.fixture(scope="module")
def cfg(cluster: Cluster) -> kfast.Config:
    return kfast.load_config(cluster.kubeconfig, context=cluster.context(ADMIN))


class Counting(httpx.BaseTransport):
    """The real transport, recording each request's path."""

    def __init__(self, cfg: kfast.Config) -> None:
        self.inner = SyncTransport(cfg)
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncCounting(httpx.AsyncBaseTransport):
    def __init__(self, cfg: kfast.Config) -> None:
        self.inner = AsyncTransport(cfg)
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def with_mapper(mode: str, cfg: kfast.Config, use: Callable[[Any, Any], Any], *,
                cache_dir: Path | None = None) -> tuple[Any, list[str]]:
    """``use(mapper, discovery)`` (awaited when async) over a client that counts requests;
    returns the result and the request paths."""
    if mode == "sync":
        t = Counting(cfg)
        with kfast.Client(cfg, transport=t) as c:
            d = kfast.DiscoveryClient(c, cache_dir=cache_dir)
            return use(kfast.RESTMapper(d), d), t.paths

    async def go() -> Any:
        at = AsyncCounting(cfg)
        async with kfast.AsyncClient(cfg, transport=at) as c:
            d = kfast.AsyncDiscoveryClient(c, cache_dir=cache_dir)
            return await use(kfast.AsyncRESTMapper(d), d), at.paths

    result: tuple[Any, list[str]] = asyncio.run(go())
    return result


def call(mode: str, *calls: Callable[[], Any]) -> Any:
    """Run ``calls`` (each a thunk returning a value or a coroutine) in order."""
    if mode == "sync":
        return [c() for c in calls]

    async def go() -> list[Any]:
        return [await c() for c in calls]

    return go()


def served_by_walk(admin: httpx.Client) -> set[tuple[Any, ...]]:
    """Every resource, walked by hand with the plain JSON Accept header."""
    out: set[tuple[Any, ...]] = set()
    gvs = [*admin.get("/api").json()["versions"]]
    gvs += [v["groupVersion"] for g in admin.get("/apis").json()["groups"] for v in g["versions"]]
    for gv in gvs:
        lst = admin.get(f"/api/{gv}" if "/" not in gv else f"/apis/{gv}", headers={"Accept": "application/json"}).json()
        group, _, version = gv.rpartition("/")
        subs: dict[str, list[str]] = {}
        for e in lst["resources"]:
            if "/" in e["name"]:
                parent, sub = e["name"].split("/", 1)
                subs.setdefault(parent, []).append(sub)
        for e in lst["resources"]:
            if "/" not in e["name"]:
                out.add((group, version, e["name"], e["kind"], e["namespaced"], e.get("singularName") or "",
                         tuple(sorted(e["verbs"])), tuple(e.get("shortNames", [])), tuple(e.get("categories", [])),
                         tuple(sorted(subs.get(e["name"], [])))))
    return out


def as_rows(resources: list[kfast.APIResource]) -> set[tuple[Any, ...]]:
    return {(r.group, r.version, r.resource, r.kind, r.namespaced, r.singular, tuple(sorted(r.verbs)),
             r.short_names, r.categories, tuple(sorted(r.subresources))) for r in resources}


@modes
def test_discovery_equals_what_the_server_serves(mode: str, cfg: kfast.Config, admin: httpx.Client) -> None:
    def use(m: Any, d: Any) -> Any:
        return call(mode, lambda: d.discover(), lambda: d.server_version())

    (data, version), paths = with_mapper(mode, cfg, use)
    assert paths == ["/api", "/apis", "/version"]  # aggregated: two requests
    assert data.aggregated and data.from_server and data.failed == {}
    assert version["gitVersion"] == admin.get("/version").json()["gitVersion"] == "v1.37.2"
    assert as_rows(data.all_resources()) == served_by_walk(admin)
    groups = admin.get("/apis").json()["groups"]
    assert [(g.name, g.preferred_version) for g in data.groups] == [("", "v1")] + [
        (g["name"], g["preferredVersion"]["version"]) for g in groups]


@modes
def test_short_names_kinds_and_category_all(mode: str, cfg: kfast.Config) -> None:
    names = ["po", "cm", "deploy", "svc", "ns", "Deployment", "events", "hpa", "deployments.v1.apps", "crd"]

    def use(m: Any, d: Any) -> Any:
        return call(mode, *(lambda n=n: m.resource_for(n) for n in names),
                    lambda: m.resources_for_category("all"))

    (*found, everything), _ = with_mapper(mode, cfg, use)
    assert [str(r.gvr) for r in found] == [
        "pods.v1", "configmaps.v1", "deployments.v1.apps", "services.v1", "namespaces.v1", "deployments.v1.apps",
        "events.v1", "horizontalpodautoscalers.v2.autoscaling", "deployments.v1.apps",
        "customresourcedefinitions.v1.apiextensions.k8s.io"]
    assert [r.namespaced for r in found[:5]] == [True, True, True, True, False]
    # CRDs other tests created may join "all"; the built-in members are exactly these:
    assert {str(r.gvr) for r in everything if not r.group.endswith(".example")} == {
        "pods.v1", "replicationcontrollers.v1", "services.v1", "daemonsets.v1.apps", "deployments.v1.apps",
        "replicasets.v1.apps", "statefulsets.v1.apps", "horizontalpodautoscalers.v2.autoscaling",
        "cronjobs.v1.batch", "jobs.v1.batch"}


@modes
def test_the_disk_cache_is_written_and_reused_by_a_second_client(mode: str, cfg: kfast.Config,
                                                                 tmp_path: Path) -> None:
    def use(m: Any, d: Any) -> Any:
        return call(mode, lambda: m.resource_for("deploy"), lambda: d.server_preferred_resources())

    (first, prefs1), paths1 = with_mapper(mode, cfg, use, cache_dir=tmp_path)
    assert paths1 == ["/api", "/apis"]
    host = host_cache_dir(tmp_path, cfg.server)
    assert host.parent == tmp_path and host.name == cfg.server.split("://")[1].replace(":", "_")
    assert host.name.startswith("127.0.0.1_")
    assert (host / "servergroups.json").is_file() and (host / "apps/v1/serverresources.json").is_file()
    (second, prefs2), paths2 = with_mapper(mode, cfg, use, cache_dir=tmp_path)
    assert paths2 == []  # nothing asked: not /api, not /apis, not a group-version
    assert second == first and prefs2 == prefs1


def crd(group: str, plural: str, kind: str, *, scope: str = "Namespaced", short: str = "",
        scale: bool = False) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": "v1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    if scale:
        version["subresources"] = {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                           "statusReplicasPath": ".status.replicas"}}
    names: dict[str, Any] = {"plural": plural, "singular": kind.lower(), "kind": kind, "categories": ["kfast"]}
    if short:
        names["shortNames"] = [short]
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope, "names": names, "versions": [version]}}


def until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.1)


def create_crd(admin: httpx.Client, body: dict[str, Any]) -> str:
    """Create a CRD and wait until it is Established and listed by aggregated discovery."""
    name, group = body["metadata"]["name"], body["spec"]["group"]
    r = admin.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=body)
    assert r.status_code == 201, r.text

    def established() -> bool:
        got = admin.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
        conds = (got.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    def listed() -> bool:
        doc = admin.get("/apis", headers={"Accept": AGGREGATED_ACCEPT}).json()
        return any(i["metadata"]["name"] == group for i in doc["items"])

    until(established)
    until(listed)
    return name


@pytest.fixture
def group() -> Iterator[str]:
    yield f"g{uuid.uuid4().hex[:8]}.kfast.example"


@modes
def test_a_crd_created_at_run_time_is_found_after_the_automatic_refresh(
        mode: str, cfg: kfast.Config, admin: httpx.Client, tmp_path: Path, group: str) -> None:
    # Names unique to this test: another test's CRD with the same short name would make it
    # ambiguous (or found before it is created).
    tag = group[1:9]
    plural, kind, short = f"gizmo{tag}s", f"Gizmo{tag}", f"gz{tag}"

    def use(m: Any, d: Any) -> Any:
        def create() -> Any:
            create_crd(admin, crd(group, plural, kind, short=short, scope="Cluster"))
            return asyncio.sleep(0) if mode == "async" else None

        return call(mode, lambda: m.resource_for("deploy"), create, lambda: m.resource_for(short),
                    lambda: m.resource_for(plural), lambda: m.resource_for(kind),
                    lambda: m.resources_for_category("kfast"))

    (_, _, by_short, by_plural, by_kind, category), paths = with_mapper(mode, cfg, use, cache_dir=tmp_path)
    assert paths == ["/api", "/apis", "/api", "/apis"]  # exactly one refresh, on the first miss
    assert by_short == by_plural == by_kind and str(by_short.gvr) == f"{plural}.v1.{group}"
    assert (by_short.kind, by_short.namespaced, by_short.singular, by_short.short_names) == (
        kind, False, kind.lower(), (short,))
    assert f"{plural}.v1.{group}" in {str(r.gvr) for r in category}
    host = host_cache_dir(tmp_path, cfg.server)
    assert (host / group / "v1" / "serverresources.json").is_file()


def test_factory_informer_by_short_name(cfg: kfast.Config, admin: httpx.Client, namespace: str) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    r = admin.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=dep)
    assert r.status_code == 201, r.text
    with kfast.Client(cfg) as c:
        mapper = kfast.RESTMapper(kfast.DiscoveryClient(c, cache_dir=None))
        with kfast.SharedInformerFactory(cfg, namespace=namespace, resolver=mapper.resolver) as f:
            inf = f.informer("deploy")
            assert f.informer("Deployment.apps") is inf
            f.start()
            assert f.wait_for_cache_sync(30) == {k: True for k in f.informers()}
            assert [o.name for o in inf.lister.list()] == ["web"]
            assert inf.lister.get("web")["kind"] == "Deployment"  # type: ignore[index]


def delete_crd(admin: httpx.Client, name: str, group: str) -> None:
    assert admin.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").status_code == 200

    def unlisted() -> bool:
        doc = admin.get("/apis", headers={"Accept": AGGREGATED_ACCEPT}).json()
        return all(i["metadata"]["name"] != group for i in doc["items"])

    until(unlisted)


@modes
def test_a_crd_short_name_clashing_with_a_built_in_one_loses_with_a_warning(
        mode: str, cfg: kfast.Config, admin: httpx.Client, group: str,
        caplog: pytest.LogCaptureFixture) -> None:
    name = create_crd(admin, crd(group, "deployments", "Deployment", short="deploy"))
    try:
        def use(m: Any, d: Any) -> Any:
            return call(mode, lambda: m.resource_for("deploy"), lambda: m.resource_for("deploy." + group))

        with caplog.at_level("WARNING", logger="kfast.discovery"):
            (builtin, crd_res), _ = with_mapper(mode, cfg, use)
        assert str(builtin.gvr) == "deployments.v1.apps"
        assert str(crd_res.gvr) == f"deployments.v1.{group}"
        assert [r.getMessage() for r in caplog.records if "lower priority" in r.getMessage()] == [
            f"'deploy' means deployments.v1.apps; it could also match lower priority resource "
            f"deployments.v1.{group} (qualify the name as <resource>.<group> to choose)"]
    finally:
        delete_crd(admin, name, group)


@modes
def test_an_ambiguity_cached_on_disk_is_rechecked_once_the_crd_is_gone(
        mode: str, cfg: kfast.Config, admin: httpx.Client, tmp_path: Path, group: str) -> None:
    tag = group[1:9]
    other = f"h{tag}.kfast.example"
    plural, kind, short = f"clash{tag}s", f"Clash{tag}", f"cl{tag}"
    keep = create_crd(admin, crd(group, plural, kind, short=short))
    gone = create_crd(admin, crd(other, plural, kind, short=short))
    try:
        def ambiguous(m: Any, d: Any) -> Any:
            async def a() -> Any:
                with pytest.raises(kfast.errors.AmbiguousResourceError):
                    await m.resource_for(short)
            if mode == "async":
                return a()
            with pytest.raises(kfast.errors.AmbiguousResourceError):
                m.resource_for(short)

        with_mapper(mode, cfg, ambiguous, cache_dir=tmp_path)  # the disk cache lists both
    finally:
        delete_crd(admin, gone, other)
    try:
        def use(m: Any, d: Any) -> Any:
            return call(mode, lambda: m.resource_for(short))

        (found,), paths = with_mapper(mode, cfg, use, cache_dir=tmp_path)
        assert str(found.gvr) == f"{plural}.v1.{group}"
        assert paths[:2] == ["/api", "/apis"] and "/api" not in paths[2:]  # one refresh
    finally:
        delete_crd(admin, keep, group)
