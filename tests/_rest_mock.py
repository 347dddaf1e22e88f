"""Run ResourceClient / AsyncResourceClient calls against an ``httpx.MockTransport`` handler,
the same call through either driver, so each unit test checks both."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from kfast import AsyncClient, AsyncResourceClient, Client, Config, ResourceClient, RetryPolicy
from kfast._gvk import APIResource

Handler = Callable[[httpx.Request], httpx.Response]
FAST = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.01)

CONFIGMAPS = APIResource("", "v1", "configmaps", "ConfigMap", namespaced=True)
PODS = APIResource("", "v1", "pods", "Pod", namespaced=True)
NODES = APIResource("", "v1", "nodes", "Node", namespaced=False)
DEPLOYMENTS = APIResource("apps", "v1", "deployments", "Deployment", namespaced=True,
                          subresources=("status", "scale"))
WIDGETS = APIResource("example.com", "v1", "widgets", "Widget")  # scope unknown

modes = pytest.mark.parametrize("mode", ["sync", "async"])


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives in exactly these pieces (through either client)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c


def chunked(chunks: list[bytes], content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(200, stream=Chunks(chunks), headers={"Content-Type": content_type})


def status(code: int, reason: str, message: str = "m", **extra: Any) -> httpx.Response:
    return httpx.Response(code, json={"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "code": code, "reason": reason, "message": message, **extra})


def config(namespace: str = "team") -> Config:
    return Config.for_url("http://k8s.test", token="t0ken", namespace=namespace)


def call(mode: str, handler: Handler, method: str, *args: Any, resource: APIResource = CONFIGMAPS,
         metadata_only: bool = False, max_items: int | None = None, on_client: Callable[[Any], None] | None = None,
         **kw: Any) -> Any:
    """``rc.<method>(*args, **kw)`` through the sync or the async client. Iterators (iter_list,
    watch, logs) are collected into a list (at most ``max_items``)."""
    cfg = config()
    transport = httpx.MockTransport(handler)
    if mode == "sync":
        with Client(cfg, transport=transport, retry=FAST) as c:
            rc = ResourceClient(c, resource, metadata_only=metadata_only)
            if on_client is not None:
                on_client(rc)
            out = getattr(rc, method)(*args, **kw)
            if isinstance(out, dict) or isinstance(out, str):
                return out
            items = []
            try:
                for x in out:
                    items.append(x)
                    if max_items is not None and len(items) >= max_items:
                        break
            finally:
                close = getattr(out, "close", None)
                if close is not None:
                    close()
            return items

    async def run() -> Any:
        async with AsyncClient(cfg, transport=transport, retry=FAST) as c:
            rc = AsyncResourceClient(c, resource, metadata_only=metadata_only)
            if on_client is not None:
                on_client(rc)
            out = getattr(rc, method)(*args, **kw)
            if inspect.isawaitable(out):
                return await out
            items = []
            try:
                async for x in out:
                    items.append(x)
                    if max_items is not None and len(items) >= max_items:
                        break
            finally:
                close = getattr(out, "aclose", None) or getattr(out, "close", None)
                if close is not None:
                    res = close()
                    if inspect.isawaitable(res):
                        await res
            return items

    return asyncio.run(run())


def recorder(response: Callable[[httpx.Request], httpx.Response] | None = None,
             ) -> tuple[list[httpx.Request], Handler]:
    """A handler that records requests and answers ``response(req)`` (default: an empty object)."""
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if response is not None:
            return response(req)
        return httpx.Response(200, json={"kind": "ConfigMap", "metadata": {"name": "x"}})

    return seen, handler


def cm(name: str, rv: str, ns: str = "team", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, "data": data}


def ev(type_: str, obj: dict[str, Any]) -> bytes:
    """One watch line."""
    return json.dumps({"type": type_, "object": obj}, ensure_ascii=False).encode() + b"\n"
