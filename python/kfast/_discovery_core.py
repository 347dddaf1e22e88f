"""The I/O-free core of discovery: what to fetch, how to read it, what to cache.

:meth:`DiscoveryCore.load` is a generator. It yields a batch of :class:`Fetch` (GET these
paths with this ``Accept``; the batch may be fetched concurrently) and is answered with one
outcome per fetch, in order: the ``httpx.Response`` or the :class:`kfast.errors.KfastError`
the client raised. It returns a :class:`DiscoveryData`. :class:`kfast.DiscoveryClient` drives
it with blocking calls, :class:`kfast.AsyncDiscoveryClient` with ``await``; memory cache, disk
cache, TTL, the aggregated/legacy choice and failure handling live here once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from kfast import errors
from kfast._discovery_cache import DEFAULT_TTL, DiskCache, host_cache_dir
from kfast._discovery_docs import (
    AGGREGATED_ACCEPT, JSON_ACCEPT, APIGroupDiscoveryList, APIGroupInfo, APIGroupList,
    APIResourceList, APIVersions, Normalized, TypeMeta, api_resources, group_list,
    group_version_path, groups_from_list, normalize_aggregated, normalize_legacy_core)
from kfast._gvk import APIResource

__all__ = ["DiscoveryCore", "DiscoveryData", "Fetch", "Outcome", "Batch"]

log = logging.getLogger("kfast.discovery")

S = TypeVar("S", bound=msgspec.Struct)


@dataclass(frozen=True)
class Fetch:
    path: str
    accept: str


Outcome = httpx.Response | errors.KfastError
Batch = list[Fetch]


@dataclass(frozen=True)
class DiscoveryData:
    """One snapshot of what a server serves.

    ``groups`` are in the server's order (the core group, named ``""``, first); ``resources``
    maps each group-version that answered (``"v1"``, ``"apps/v1"``) to its resources;
    ``failed`` maps each group-version that did not (an aggregated API that is down, a
    ``Stale`` aggregated entry) to the reason. ``documents`` are the same resources as
    kubectl's cache stores them (APIResourceList). ``from_server`` is False when the snapshot
    was read from the disk cache; ``aggregated`` says which protocol the server spoke.
    """

    groups: tuple[APIGroupInfo, ...]
    resources: Mapping[str, tuple[APIResource, ...]]
    failed: Mapping[str, str]
    documents: Mapping[str, APIResourceList] = field(repr=False)
    from_server: bool
    aggregated: bool
    fetched_at: float  # time.time() when read from the server, or the groups file's mtime

    def group(self, name: str) -> APIGroupInfo | None:
        return next((g for g in self.groups if g.name == name), None)

    def all_resources(self) -> list[APIResource]:
        """Every resource of every group-version that answered, in server order."""
        return [r for g in self.groups for gv in g.group_versions for r in self.resources.get(gv, ())]

    def preferred_resources(self) -> list[APIResource]:
        """Each group's resources at its preferred version; a resource the preferred version
        does not serve comes from the most preferred version that does (as kubectl)."""
        out: list[APIResource] = []
        for g in self.groups:
            seen: set[str] = set()
            for gv in _preferred_first(g):
                for r in self.resources.get(gv, ()):
                    if r.resource not in seen:
                        seen.add(r.resource)
                        out.append(r)
        return out


def _preferred_first(g: APIGroupInfo) -> list[str]:
    gvs = list(g.group_versions)
    pref = g.group_versions[g.versions.index(g.preferred_version)] if g.preferred_version in g.versions else None
    return [pref, *(x for x in gvs if x != pref)] if pref else gvs


class DiscoveryCore:
    """Discovery state for one server: the memory snapshot and the disk cache."""

    def __init__(self, server: str, *, cache_dir: str | os.PathLike[str] | None, ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.ttl = ttl
        self._clock = clock
        self.disk: DiskCache | None = (
            DiskCache(host_cache_dir(cache_dir, server), ttl, clock) if cache_dir is not None else None)
        self._data: DiscoveryData | None = None
        self._loaded_at = 0.0
        # After invalidate(), files this process did not write are not trusted (kubectl's rule).
        self._invalidated = False

    @property
    def cache_path(self) -> Path | None:
        return self.disk.directory if self.disk else None

    def cached(self) -> DiscoveryData | None:
        """The memory snapshot while it is within the TTL."""
        if self._data is not None and self._clock() - self._loaded_at <= self.ttl:
            return self._data
        return None

    def invalidate(self) -> None:
        """Forget the memory snapshot; the next load goes to the server (not the disk)."""
        self._data = None
        self._invalidated = True

    def load(self, *, refresh: bool = False) -> Generator[Batch, list[Outcome], DiscoveryData]:
        if refresh:
            self.invalidate()
        data = self.cached()
        if data is not None:
            return data
        if self.disk is not None and not self._invalidated:
            data = yield from self._from_disk(self.disk)
        if data is None:
            data = yield from self._from_server()
        self._data, self._loaded_at, self._invalidated = data, self._clock(), False
        return data

    def _from_disk(self, disk: DiskCache) -> Generator[Batch, list[Outcome], DiscoveryData | None]:
        doc = disk.read_groups()
        if doc is None:
            return None
        norm = Normalized(groups=groups_from_list(doc))
        missing = []
        for g in norm.groups:
            for gv in g.group_versions:
                lst = disk.read_resources(gv)
                if lst is None:
                    missing.append(gv)
                else:
                    norm.lists[gv] = lst
        if missing:
            # kubectl refetches just these; a group-version that was down when the cache was
            # written has no file and is asked again (and reported if still down).
            outcomes = yield [Fetch(group_version_path(gv), JSON_ACCEPT) for gv in missing]
            self._read_resource_lists(norm, missing, outcomes)
            for gv in missing:
                if gv in norm.lists:
                    disk.write_resources(norm.lists[gv])
        log.debug("discovery for %s read from %s (%d group-versions refetched)", self.server,
                  disk.directory, len(missing))
        mtime = _mtime(disk.groups_path())
        return _snapshot(norm, from_server=False, aggregated=False, fetched_at=mtime)

    def _from_server(self) -> Generator[Batch, list[Outcome], DiscoveryData]:
        norm = Normalized()
        aggregated = False
        walk: list[str] = []
        # One after the other, as client-go does: the group-version walk is what needs concurrency.
        for path in ("/api", "/apis"):
            (outcome,) = yield [Fetch(path, AGGREGATED_ACCEPT)]
            if isinstance(outcome, errors.NotFound) and path == "/api":
                continue  # a server without the legacy core API (some aggregated servers)
            if isinstance(outcome, BaseException):
                raise outcome
            body = outcome.content
            meta = _decode(path, body, TypeMeta)
            if meta.kind == "APIGroupDiscoveryList":
                aggregated = True
                norm.extend(normalize_aggregated(_decode(path, body, APIGroupDiscoveryList)))
                continue
            groups = (normalize_legacy_core(_decode(path, body, APIVersions)) if path == "/api"
                      else groups_from_list(_decode(path, body, APIGroupList)))
            norm.groups.extend(groups)
            walk.extend(gv for g in groups for gv in g.group_versions)
        if walk:
            outcomes = yield [Fetch(group_version_path(gv), JSON_ACCEPT) for gv in walk]
            self._read_resource_lists(norm, walk, outcomes)
        for gv, why in norm.failed.items():
            log.warning("discovery of %s on %s failed: %s", gv, self.server, why)
        if self.disk is not None:
            self.disk.write_groups(group_list(norm.groups))
            for lst in norm.lists.values():
                self.disk.write_resources(lst)
        return _snapshot(norm, from_server=True, aggregated=aggregated, fetched_at=self._clock())

    @staticmethod
    def _read_resource_lists(norm: Normalized, gvs: list[str], outcomes: list[Outcome]) -> None:
        for gv, outcome in zip(gvs, outcomes):
            if isinstance(outcome, BaseException):
                norm.failed[gv] = f"{type(outcome).__name__}: {outcome}"
                continue
            try:
                lst = msgspec.json.decode(outcome.content, type=APIResourceList)
            except msgspec.DecodeError as e:
                norm.failed[gv] = f"DecodeError: {e}"
                continue
            if lst.group_version != gv:
                norm.failed[gv] = f"the server answered with the resources of {lst.group_version!r}"
                continue
            norm.lists[gv] = lst


def _decode(path: str, body: bytes, kind: type[S]) -> S:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.DecodeError as e:
        raise errors.DecodeError(f"GET {path}: not a discovery document: {e}") from e


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _snapshot(norm: Normalized, *, from_server: bool, aggregated: bool, fetched_at: float) -> DiscoveryData:
    # The core group first, whatever order the documents came in (kubectl ranks it first too).
    groups = sorted(norm.groups, key=lambda g: g.name != "")
    resources = {gv: api_resources(lst) for gv, lst in norm.lists.items()}
    failed = {gv: why for gv, why in norm.failed.items() if gv not in norm.lists}
    return DiscoveryData(groups=tuple(groups), resources=resources, failed=failed, documents=dict(norm.lists),
                         from_server=from_server, aggregated=aggregated, fetched_at=fetched_at)


def drive_sync(steps: Generator[Batch, list[Outcome], Any], fetch: Callable[[Batch], list[Outcome]]) -> Any:
    """Run a core generator with a blocking batch fetcher."""
    reply: list[Outcome] = []
    first = True
    while True:
        try:
            batch = next(steps) if first else steps.send(reply)
        except StopIteration as stop:
            return stop.value
        first = False
        reply = fetch(batch)
