"""DynamicClient, MetadataClient and ScaleClient (and their asyncio twins) against a real
kube-apiserver: CRUD of namespaced and cluster-scoped custom resources created at run time,
/scale of a Deployment and of a CRD, PartialObjectMetadataList from the metadata client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from test_discovery_real import cfg, create_crd, crd, group  # noqa: F401 (fixtures)

import kfast
from kfast import errors

pytestmark = pytest.mark.integration
modes = pytest.mark.parametrize("mode", ["sync", "async"])
Steps = Callable[[Any], list[Callable[[], Any]]]


def run(mode: str, config: kfast.Config, front: str, steps: Steps) -> list[Any]:
    """Build the front-end (``dynamic``, ``metadata`` or ``scale``, sync or async) and run
    ``steps(front)`` in order: each step returns a value, or a coroutine (async)."""
    if mode == "sync":
        cls = {"dynamic": kfast.DynamicClient, "metadata": kfast.MetadataClient, "scale": kfast.ScaleClient}[front]
        with kfast.Client(config) as c:
            f = cls(c, kfast.DiscoveryClient(c, cache_dir=None))
            return [s() for s in steps(f)]
    acls = {"dynamic": kfast.AsyncDynamicClient, "metadata": kfast.AsyncMetadataClient,
            "scale": kfast.AsyncScaleClient}[front]

    async def go() -> list[Any]:
        async with kfast.AsyncClient(config) as c:
            f = acls(c, kfast.AsyncDiscoveryClient(c, cache_dir=None))
            out = []
            for s in steps(f):
                v = s()
                out.append(await v if asyncio.iscoroutine(v) else v)
            return out

    return asyncio.run(go())


def resource_steps(name: str, mode: str, do: Callable[[Callable[[], Any]], list[Callable[[], Any]]]) -> Steps:
    """Resolve ``name`` first (awaited for async), then the steps of ``do(rc)``, where
    ``rc()`` is the resolved resource client."""
    def steps(front: Any) -> list[Callable[[], Any]]:
        resolved: list[Any] = []

        def resolve() -> Any:
            if mode == "sync":
                resolved.append(front.resource(name))
                return resolved[0]

            async def ares() -> Any:
                resolved.append(await front.resource(name))
                return resolved[0]

            return ares()

        return [resolve, *do(lambda: resolved[0])]

    return steps


@modes
@pytest.mark.parametrize("scope", ["Namespaced", "Cluster"])
def test_crud_of_a_crd_created_at_run_time(mode: str, scope: str, cfg: kfast.Config,  # noqa: F811
                                           admin: httpx.Client, namespace: str, group: str) -> None:  # noqa: F811
    tag = group[1:9]
    plural, kind = f"widget{tag}s", f"Widget{tag}"
    create_crd(admin, crd(group, plural, kind, scope=scope))
    ns = namespace if scope == "Namespaced" else None
    api_version = f"{group}/v1"

    def do(rc: Callable[[], Any]) -> list[Callable[[], Any]]:
        return [
            lambda: rc().create({"apiVersion": api_version, "kind": kind, "metadata": {"name": "w1"},
                                 "spec": {"size": 1}}, namespace=ns),
            lambda: rc().get("w1", namespace=ns),
            # No patch_type: merge for a custom resource (strategic would be a 415).
            lambda: rc().patch("w1", {"spec": {"size": 2}}, namespace=ns),
            lambda: rc().list(namespace=ns),
            lambda: rc().delete("w1", namespace=ns),
        ]

    rc, created, got, patched, listed, _ = run(mode, cfg, "dynamic", resource_steps(f"{plural}.{group}", mode, do))
    assert rc.resource.namespaced is (scope == "Namespaced") and rc.resource.kind == kind
    assert created["metadata"]["name"] == "w1" and created["spec"] == {"size": 1}
    assert created["metadata"].get("namespace") == ns
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert patched["spec"] == {"size": 2}
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
    path = (f"/apis/{group}/v1/namespaces/{namespace}/{plural}/w1" if ns else f"/apis/{group}/v1/{plural}/w1")
    assert admin.get(path).status_code == 404


@modes
def test_scale_client_on_a_deployment(mode: str, cfg: kfast.Config, admin: httpx.Client,  # noqa: F811
                                      namespace: str) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    assert admin.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=dep).status_code == 201

    def steps(s: Any) -> list[Callable[[], Any]]:
        return [lambda: s.get("deploy", "web", namespace), lambda: s.update("deployments.apps", "web", 3, namespace),
                lambda: s.get(kfast.GroupVersionResource("apps", "v1", "deployments"), "web", namespace)]

    before, after, again = run(mode, cfg, "scale", steps)
    assert (before["kind"], before["apiVersion"], before["spec"]["replicas"]) == ("Scale", "autoscaling/v1", 1)
    assert after["spec"]["replicas"] == 3 and again["spec"]["replicas"] == 3
    stored = admin.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web").json()
    assert stored["spec"]["replicas"] == 3
    with pytest.raises(errors.NoMatchError, match="no scale subresource"):
        run(mode, cfg, "scale", lambda s: [lambda: s.get("cm", "x", namespace)])
    with pytest.raises(errors.NotFound):
        run(mode, cfg, "scale", lambda s: [lambda: s.get("deploy", "nope", namespace)])


@modes
def test_scale_client_on_a_crd_with_a_scale_subresource(mode: str, cfg: kfast.Config,  # noqa: F811
                                                        admin: httpx.Client, namespace: str,
                                                        group: str) -> None:  # noqa: F811
    tag = group[1:9]
    plural, kind = f"scaler{tag}s", f"Scaler{tag}"
    create_crd(admin, crd(group, plural, kind, scale=True))
    r = admin.post(f"/apis/{group}/v1/namespaces/{namespace}/{plural}",
                   json={"apiVersion": f"{group}/v1", "kind": kind, "metadata": {"name": "s"}, "spec": {"replicas": 2}})
    assert r.status_code == 201, r.text

    def steps(s: Any) -> list[Callable[[], Any]]:
        return [lambda: s.get(plural, "s", namespace), lambda: s.update(kind, "s", 5, namespace)]

    before, after = run(mode, cfg, "scale", steps)
    assert before["spec"]["replicas"] == 2 and after["spec"]["replicas"] == 5
    assert admin.get(f"/apis/{group}/v1/namespaces/{namespace}/{plural}/s").json()["spec"]["replicas"] == 5


@modes
def test_metadata_client_lists_partial_object_metadata(mode: str, cfg: kfast.Config,  # noqa: F811
                                                       admin: httpx.Client, namespace: str) -> None:
    for i in range(2):
        cm = {"metadata": {"name": f"c{i}", "labels": {"n": str(i)}}, "data": {"big": "x" * 1000}}
        assert admin.post(f"/api/v1/namespaces/{namespace}/configmaps", json=cm).status_code == 201

    def do(rc: Callable[[], Any]) -> list[Callable[[], Any]]:
        return [lambda: rc().list(namespace=namespace), lambda: rc().get("c1", namespace=namespace)]

    rc, listed, one = run(mode, cfg, "metadata", resource_steps("cm", mode, do))
    assert rc.metadata_only is True
    assert (listed["kind"], listed["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["c0", "c1"]
    assert all("data" not in i and i["kind"] == "PartialObjectMetadata" for i in listed["items"])
    assert one["kind"] == "PartialObjectMetadata" and one["metadata"]["labels"] == {"n": "1"} and "data" not in one
