"""What the API server serves: groups, versions and resources (``kubectl api-resources``).

::

    with kfast.Client() as k:
        d = kfast.DiscoveryClient(k)
        d.server_version()["gitVersion"]
        [r.resource for r in d.server_preferred_resources() if "list" in r.verbs]
        d.failed_group_versions()          # {"metrics.k8s.io/v1beta1": "ServiceUnavailable: ..."}

    async with kfast.AsyncClient() as k:
        d = kfast.AsyncDiscoveryClient(k)
        await d.server_groups()

The client asks for aggregated discovery (two requests: ``/api`` and ``/apis``); a server that
does not serve it answers with the legacy documents and gets the per-group-version walk. One
group-version that fails (an aggregated API that is down) is reported, not raised.

Results are kept in memory and in kubectl's disk cache (``~/.kube/cache/discovery/<host>``,
shared with kubectl, 6 hour TTL); :meth:`DiscoveryClient.invalidate` drops both. Pass
``cache_dir=None`` for memory only. The :class:`~kfast.RESTMapper` refreshes discovery once
when a name is not found, so resources created at run time (CRDs) are picked up.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kfast import errors
from kfast._client import AsyncClient, Client
from kfast._discovery_cache import DEFAULT_TTL, default_cache_dir, host_cache_dir
from kfast._discovery_core import Batch, DiscoveryCore, DiscoveryData, Fetch, Outcome, drive_sync
from kfast._discovery_docs import AGGREGATED_ACCEPT, APIGroupInfo
from kfast._gvk import APIResource

__all__ = [
    "DiscoveryClient", "AsyncDiscoveryClient", "DiscoveryData", "APIGroupInfo", "AGGREGATED_ACCEPT",
    "DEFAULT_TTL", "DEFAULT_CACHE_DIR", "default_cache_dir", "host_cache_dir",
]

# A walk of a legacy server fetches every group-version; kubectl does it concurrently too.
MAX_CONCURRENT_FETCHES = 8


class _Default:
    """The marker for "kubectl's cache directory" (None means no disk cache)."""

    def __repr__(self) -> str:
        return "<kubectl's cache dir>"


DEFAULT_CACHE_DIR = _Default()
CacheDir = str | os.PathLike[str] | None | _Default


def _core(client: Client | AsyncClient, cache_dir: CacheDir, ttl: float) -> DiscoveryCore:
    parent = (default_cache_dir() if isinstance(cache_dir, _Default)
              else None if cache_dir is None else Path(cache_dir).expanduser())
    return DiscoveryCore(client.config.server, cache_dir=parent, ttl=ttl)


class _Queries:
    """The read side both clients share, over a snapshot."""

    _core: DiscoveryCore

    @property
    def cache_path(self) -> Path | None:
        """This server's directory in the disk cache (None without a disk cache)."""
        return self._core.cache_path

    @property
    def fresh(self) -> bool:
        """True when the snapshot in memory was read from the server (not the disk cache)."""
        data = self._core.cached()
        return data is not None and data.from_server

    def invalidate(self) -> None:
        """Drop the memory snapshot and distrust the disk cache: the next call asks the
        server (and rewrites the cache)."""
        self._core.invalidate()


class DiscoveryClient(_Queries):
    """Discovery over a :class:`kfast.Client`. Thread-safe: concurrent callers share one fetch."""

    def __init__(self, client: Client, *, cache_dir: CacheDir = DEFAULT_CACHE_DIR,
                 ttl: float = DEFAULT_TTL) -> None:
        """``cache_dir`` is the directory that holds one subdirectory per server, named after
        the server's host and port (``<cache_dir>/127.0.0.1_6443/servergroups.json``): the
        equivalent of kubectl's ``<--cache-dir>/discovery``, not of ``--cache-dir`` itself.
        The default is kubectl's, ``$KUBECACHEDIR/discovery`` or ``~/.kube/cache/discovery``,
        so the cache is shared with kubectl; ``~`` is expanded; None keeps discovery in
        memory only. :attr:`cache_path` is the server's own directory. ``ttl`` (seconds,
        6 hours by default, as kubectl) is how long cached files and the memory snapshot
        are trusted."""
        self.client = client
        self._core = _core(client, cache_dir, ttl)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiscoveryClient({self.client.config.server!r}, cache={self.cache_path})"

    def discover(self, *, refresh: bool = False) -> DiscoveryData:
        """The snapshot: from memory, else the disk cache, else the server."""
        with self._lock:
            return self._run(self._core.load(refresh=refresh))

    def refresh(self) -> DiscoveryData:
        """Fetch from the server now (``invalidate()`` then ``discover()``)."""
        return self.discover(refresh=True)

    def server_version(self) -> dict[str, Any]:
        """``/version``: gitVersion, major, minor, platform ... (never cached)."""
        return self.client.version()

    def server_groups(self) -> list[APIGroupInfo]:
        return list(self.discover().groups)

    def server_resources(self) -> list[APIResource]:
        """Every resource of every served group-version."""
        return self.discover().all_resources()

    def server_preferred_resources(self) -> list[APIResource]:
        """Each group's resources at its preferred version (``kubectl api-resources``)."""
        return self.discover().preferred_resources()

    def server_resources_for_group_version(self, group_version: str) -> list[APIResource]:
        """The resources of ``"v1"``, ``"apps/v1"`` ...; :class:`~kfast.errors.NoMatchError`
        when that group-version is not served or its discovery failed (the reason is in the
        message). A group-version not known refreshes discovery once (a CRD added since)."""
        data = self.discover()
        if group_version not in data.resources and group_version not in data.failed:
            data = self.refresh()
        return _for_group_version(data, group_version)

    def failed_group_versions(self) -> dict[str, str]:
        """Group-versions the server lists but whose resources could not be read, and why."""
        return dict(self.discover().failed)

    def _run(self, steps: Generator[Batch, list[Outcome], DiscoveryData]) -> DiscoveryData:
        result: DiscoveryData = drive_sync(steps, self._fetch_batch)
        return result

    def _fetch(self, f: Fetch) -> Outcome:
        req = self.client.build_request("GET", f.path, headers={"Accept": f.accept})
        try:
            return self.client.send(req)
        except errors.KfastError as e:
            return e

    def _fetch_batch(self, batch: Batch) -> list[Outcome]:
        if len(batch) <= 1:
            return [self._fetch(f) for f in batch]
        with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_FETCHES, len(batch)),
                                thread_name_prefix="kfast-discovery") as pool:
            return list(pool.map(self._fetch, batch))


class AsyncDiscoveryClient(_Queries):
    """The asyncio twin of :class:`DiscoveryClient`: the same methods, awaited."""

    def __init__(self, client: AsyncClient, *, cache_dir: CacheDir = DEFAULT_CACHE_DIR,
                 ttl: float = DEFAULT_TTL) -> None:
        """``cache_dir`` and ``ttl`` as for :class:`DiscoveryClient`."""
        self.client = client
        self._core = _core(client, cache_dir, ttl)
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"AsyncDiscoveryClient({self.client.config.server!r}, cache={self.cache_path})"

    async def discover(self, *, refresh: bool = False) -> DiscoveryData:
        if self._lock is None:  # created lazily: bound to the loop that first uses it
            self._lock = asyncio.Lock()
        async with self._lock:
            steps = self._core.load(refresh=refresh)
            reply: list[Outcome] | None = None
            while True:
                try:
                    batch = steps.send(reply)  # type: ignore[arg-type]
                except StopIteration as stop:
                    data: DiscoveryData = stop.value
                    return data
                reply = await self._fetch_batch(batch)

    async def refresh(self) -> DiscoveryData:
        return await self.discover(refresh=True)

    async def server_version(self) -> dict[str, Any]:
        return await self.client.version()

    async def server_groups(self) -> list[APIGroupInfo]:
        return list((await self.discover()).groups)

    async def server_resources(self) -> list[APIResource]:
        return (await self.discover()).all_resources()

    async def server_preferred_resources(self) -> list[APIResource]:
        return (await self.discover()).preferred_resources()

    async def server_resources_for_group_version(self, group_version: str) -> list[APIResource]:
        data = await self.discover()
        if group_version not in data.resources and group_version not in data.failed:
            data = await self.refresh()
        return _for_group_version(data, group_version)

    async def failed_group_versions(self) -> dict[str, str]:
        return dict((await self.discover()).failed)

    async def _fetch(self, f: Fetch, gate: asyncio.Semaphore) -> Outcome:
        async with gate:
            req = self.client.build_request("GET", f.path, headers={"Accept": f.accept})
            try:
                return await self.client.send(req)
            except errors.KfastError as e:
                return e

    async def _fetch_batch(self, batch: Batch) -> list[Outcome]:
        gate = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)
        return list(await asyncio.gather(*(self._fetch(f, gate) for f in batch)))


def _for_group_version(data: DiscoveryData, gv: str) -> list[APIResource]:
    if gv in data.resources:
        return list(data.resources[gv])
    if gv in data.failed:
        raise errors.NoMatchError(f"the resources of {gv} could not be discovered: {data.failed[gv]}", gv)
    raise errors.NoMatchError(f"the server does not serve {gv}", gv)
