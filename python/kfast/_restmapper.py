"""RESTMapper: any name a user may write -> the one resource the server serves.

::

    mapper = kfast.RESTMapper(kfast.DiscoveryClient(client))
    mapper.resource_for("deploy")                  # APIResource apps/v1 deployments, namespaced
    mapper.kind_for(GroupVersionResource("apps", "", "deployments"))  # apps/v1, Kind=Deployment
    mapper.resources_for_category("all")           # what `kubectl get all` lists
    factory = kfast.SharedInformerFactory(cfg, resolver=mapper.resolver)

    amapper = kfast.AsyncRESTMapper(kfast.AsyncDiscoveryClient(aclient))
    await amapper.resource_for("Deployment.apps")

The naming rules (plural, singular, short name, kind; ``.group`` and ``.version.group``
suffixes; the core group first, then the other built-in groups, with a logged warning when a
third-party resource is shadowed; ambiguity errors among groups of equal rank) are in
:mod:`kfast._mapper_index`.

A name that is not found refreshes discovery from the server once and is looked up again,
so a CustomResourceDefinition created while the program runs is found; only then does
:class:`~kfast.errors.NoMatchError` reach the caller. An ambiguous name is refreshed once
too when the snapshot came from the disk cache (the clashing CRD may be gone since the cache
was written); one read from the server in this process is believed. Concurrent refreshes
share one request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from kfast import errors
from kfast._discovery_core import DiscoveryData
from kfast._gvk import APIResource, GroupVersionKind, GroupVersionResource
from kfast._mapper_index import MapperIndex
from kfast.discovery import AsyncDiscoveryClient, DiscoveryClient

__all__ = ["RESTMapper", "AsyncRESTMapper"]

T = TypeVar("T")


class _IndexCache:
    """The index of the latest snapshot, rebuilt only when discovery hands out a new one."""

    def __init__(self) -> None:
        self._index: MapperIndex | None = None

    def index(self, data: DiscoveryData) -> MapperIndex:
        idx = self._index
        if idx is None or idx.data is not data:
            idx = self._index = MapperIndex(data)
        return idx


def _category_or_miss(category: str) -> Callable[[MapperIndex], list[APIResource]]:
    def look(idx: MapperIndex) -> list[APIResource]:
        found = idx.resources_for_category(category)
        if not found:
            raise errors.NoMatchError(f"no served resource is in category {category!r}", category)
        return found

    return look


def _retry_or_raise(err: errors.ResourceLookupError, data: DiscoveryData) -> None:
    """Return when the lookup deserves a refresh of discovery: a miss always; an ambiguity
    only when the snapshot is not the server's answer to this process (a disk cache up to
    6 hours old may still list a CRD deleted since)."""
    if isinstance(err, errors.AmbiguousResourceError) and data.from_server:
        raise err


class RESTMapper:
    """Lookups over a :class:`~kfast.DiscoveryClient` (blocking; thread-safe)."""

    def __init__(self, discovery: DiscoveryClient) -> None:
        self.discovery = discovery
        self._indexes = _IndexCache()
        self._refresh_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RESTMapper({self.discovery!r})"

    def resource_for(self, name: str) -> APIResource:
        """The resource ``name`` means: ``"deploy"``, ``"Deployment"``, ``"deployments.apps"``,
        ``"deployments.v1.apps"`` ..."""
        return self._lookup(lambda idx: idx.resource_for(name))

    def resource_for_gvr(self, gvr: GroupVersionResource) -> APIResource:
        """The served resource for ``gvr`` (version "" means the preferred one)."""
        return self._lookup(lambda idx: idx.resource_for_gvr(GroupVersionResource(*gvr)))

    def kind_for(self, gvr: GroupVersionResource) -> GroupVersionKind:
        """The kind of the objects ``gvr`` serves."""
        return self.resource_for_gvr(gvr).gvk

    def resource_for_kind(self, gvk: GroupVersionKind) -> APIResource:
        """The resource that serves ``gvk`` (version "" means the preferred one)."""
        return self._lookup(lambda idx: idx.resource_for_kind(GroupVersionKind(*gvk)))

    def resources_for_category(self, category: str) -> list[APIResource]:
        """The resources in ``category`` (``"all"``); an empty list if none is, after one
        refresh."""
        try:
            return self._lookup(_category_or_miss(category))
        except errors.NoMatchError:
            return []

    def resolver(self, name: str) -> GroupVersionResource:
        """``SharedInformerFactory(config, resolver=mapper.resolver)``: names to GVRs."""
        return self.resource_for(name).gvr

    def reset(self) -> None:
        """Forget what discovery knows; the next lookup asks the server."""
        self.discovery.invalidate()

    def _lookup(self, look: Callable[[MapperIndex], T]) -> T:
        data = self.discovery.discover()
        try:
            return look(self._indexes.index(data))
        except errors.ResourceLookupError as e:
            _retry_or_raise(e, data)
        with self._refresh_lock:
            current = self.discovery.discover()
            # Another thread refreshed while this one waited: its snapshot is new enough.
            if current is data or not current.from_server:
                current = self.discovery.refresh()
        return look(self._indexes.index(current))


class AsyncRESTMapper:
    """The asyncio twin of :class:`RESTMapper`: the same lookups, awaited. ``lookup`` answers
    from the snapshot already loaded, without I/O (after a first ``await load()``)."""

    def __init__(self, discovery: AsyncDiscoveryClient) -> None:
        self.discovery = discovery
        self._indexes = _IndexCache()
        self._refresh_lock: asyncio.Lock | None = None
        self._data: DiscoveryData | None = None

    def __repr__(self) -> str:
        return f"AsyncRESTMapper({self.discovery!r})"

    async def load(self) -> None:
        """Load discovery (memory, disk cache or server) so that :meth:`lookup` can answer."""
        self._data = await self.discovery.discover()

    def lookup(self, name: str) -> APIResource:
        """:meth:`resource_for` without I/O and without the refresh on a miss."""
        if self._data is None:
            raise RuntimeError("AsyncRESTMapper.lookup() needs `await mapper.load()` first")
        return self._indexes.index(self._data).resource_for(name)

    async def resource_for(self, name: str) -> APIResource:
        return await self._lookup(lambda idx: idx.resource_for(name))

    async def resource_for_gvr(self, gvr: GroupVersionResource) -> APIResource:
        return await self._lookup(lambda idx: idx.resource_for_gvr(GroupVersionResource(*gvr)))

    async def kind_for(self, gvr: GroupVersionResource) -> GroupVersionKind:
        return (await self.resource_for_gvr(gvr)).gvk

    async def resource_for_kind(self, gvk: GroupVersionKind) -> APIResource:
        return await self._lookup(lambda idx: idx.resource_for_kind(GroupVersionKind(*gvk)))

    async def resources_for_category(self, category: str) -> list[APIResource]:
        try:
            return await self._lookup(_category_or_miss(category))
        except errors.NoMatchError:
            return []

    def reset(self) -> None:
        self.discovery.invalidate()
        self._data = None

    async def _lookup(self, look: Callable[[MapperIndex], T]) -> T:
        data = self._data = await self.discovery.discover()
        try:
            return look(self._indexes.index(data))
        except errors.ResourceLookupError as e:
            _retry_or_raise(e, data)
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            current = await self.discovery.discover()
            if current is data or not current.from_server:
                current = await self.discovery.refresh()
            self._data = current
        return look(self._indexes.index(current))
