"""Run one integration scenario through the sync ResourceClient and the AsyncResourceClient.

A scenario is an ``async def`` that calls ``await v(rc.get(...))`` and ``await take(it, n)``:
``v`` awaits what the async client returns and passes the sync client's results through,
``take`` collects from a sync or an async iterator. The sync client blocks the event loop
while it works, which is harmless in a test.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

import kfast
from kfast import AsyncClient, AsyncResourceClient, Client, ResourceClient
from kfast._gvk import APIResource
from kfast.testing import ADMIN, Cluster

T = TypeVar("T")

CONFIGMAPS = APIResource("", "v1", "configmaps", "ConfigMap", namespaced=True)
SECRETS = APIResource("", "v1", "secrets", "Secret", namespaced=True)
PODS = APIResource("", "v1", "pods", "Pod", namespaced=True, subresources=("status", "log", "eviction"))
NAMESPACES = APIResource("", "v1", "namespaces", "Namespace", namespaced=False)
DEPLOYMENTS = APIResource("apps", "v1", "deployments", "Deployment", namespaced=True,
                          subresources=("status", "scale"))

modes = pytest.mark.parametrize("mode", ["sync", "async"])
Make = Callable[..., Any]


async def v(x: T | Awaitable[T]) -> T:
    if inspect.isawaitable(x):
        return await x
    return x


async def take(it: Any, n: int | None = None) -> list[Any]:
    """Up to ``n`` values (all when None) from a sync or async iterator."""
    out: list[Any] = []
    if hasattr(it, "__aiter__"):
        async for x in it:
            out.append(x)
            if n is not None and len(out) >= n:
                break
    else:
        for x in it:
            out.append(x)
            if n is not None and len(out) >= n:
                break
    return out


async def close(w: Any) -> None:
    await v(w.close())


def config(cluster: Cluster, namespace: str) -> kfast.Config:
    return kfast.load_config(cluster.kubeconfig, context=cluster.context(ADMIN)).with_namespace(namespace)


@asynccontextmanager
async def clients(mode: str, cfg: kfast.Config, **client_kw: Any) -> AsyncIterator[Make]:
    """Yields ``make(resource, metadata_only=False)`` -> a resource client of ``mode``;
    ``make.client`` is the underlying Client / AsyncClient."""
    if mode == "sync":
        with Client(cfg, **client_kw) as c:
            def make_sync(resource: APIResource, metadata_only: bool = False) -> ResourceClient:
                return ResourceClient(c, resource, metadata_only=metadata_only)
            make_sync.client = c  # type: ignore[attr-defined]
            yield make_sync
        return
    async with AsyncClient(cfg, **client_kw) as ac:
        def make_async(resource: APIResource, metadata_only: bool = False) -> AsyncResourceClient:
            return AsyncResourceClient(ac, resource, metadata_only=metadata_only)
        make_async.client = ac  # type: ignore[attr-defined]
        yield make_async


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def names(items: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> list[str]:
    return [i["metadata"]["name"] for i in items]


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, replicas: int = 1, containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": containers or [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]}},
        },
    }


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]}}


def on_response(make: Make, fn: Callable[[Any], None]) -> None:
    """Call ``fn(httpx.Response)`` for each response the client of ``make`` receives."""
    http = make.client._http  # type: ignore[attr-defined]
    if isinstance(make.client, AsyncClient):  # type: ignore[attr-defined]
        async def hook(resp: Any) -> None:
            fn(resp)
        http.event_hooks["response"].append(hook)
    else:
        http.event_hooks["response"].append(fn)
