"""Front-ends that reach any resource by the name a user writes: dynamic, metadata, scale.

::

    dyn = kfast.DynamicClient(client)
    widgets = dyn.resource("widgets.example.com")      # a ResourceClient
    widgets.create({"apiVersion": "example.com/v1", "kind": "Widget", ...}, namespace="ns")
    kfast.MetadataClient(client).resource("deploy").list(namespace="ns")  # PartialObjectMetadataList
    kfast.ScaleClient(client).update("deploy", "web", 3, namespace="ns")

    adyn = kfast.AsyncDynamicClient(aclient)
    pods = await adyn.resource("po")                   # an AsyncResourceClient

A resource is named by a string (every form :class:`~kfast.RESTMapper` accepts), a
:class:`GroupVersionResource`, a :class:`GroupVersionKind` or an :class:`APIResource` (used
as given, no discovery). A GroupVersionResource is looked up in discovery to learn its scope
and subresources; only when discovery cannot tell (the resource is not listed, or discovery
is forbidden to this user) is it used with ``namespaced=None``, and the server has the last
word. Lookups refresh discovery once on a miss, so CRDs created at run time are reachable.
"""

from __future__ import annotations

import logging
from typing import Any

from kfast import errors
from kfast._client import AsyncClient, Client
from kfast._gvk import APIResource, GroupVersionKind, GroupVersionResource, check_name
from kfast._resource import ResourceClient
from kfast._resource_async import AsyncResourceClient
from kfast._restmapper import AsyncRESTMapper, RESTMapper
from kfast.discovery import AsyncDiscoveryClient, DiscoveryClient

__all__ = ["DynamicClient", "AsyncDynamicClient", "MetadataClient", "AsyncMetadataClient", "ScaleClient",
           "AsyncScaleClient", "ResourceRef"]

log = logging.getLogger("kfast.discovery")

ResourceRef = str | GroupVersionResource | GroupVersionKind | APIResource | tuple[str, str, str]
Scale = dict[str, Any]


def _unknown_scope(gvr: GroupVersionResource, why: BaseException) -> APIResource:
    if not gvr.version:
        raise why
    # A warning, not debug: with the scope unknown, calls without namespace= go to the
    # cluster-wide path (a list of every namespace, a create without a namespace).
    log.warning("discovery cannot tell the scope of %s (%s): a namespace goes in the path "
                "only when given explicitly", gvr, why)
    return APIResource(gvr.group, gvr.version, gvr.resource)


def _check_ref(ref: object) -> None:
    """TypeError for anything that is not a :data:`ResourceRef` (before discovery is asked)."""
    if isinstance(ref, (str, APIResource, GroupVersionResource, GroupVersionKind)):
        return
    if isinstance(ref, tuple) and len(ref) == 3 and all(isinstance(p, str) for p in ref):
        return
    raise TypeError(
        "a resource is named by a str ('deploy', 'deployments.apps'), a GroupVersionResource, "
        "a GroupVersionKind, an APIResource or a (group, version, resource) tuple of str, "
        f"not {type(ref).__name__} {ref!r:.60}")


def resolve(mapper: RESTMapper, ref: ResourceRef) -> APIResource:
    """The APIResource ``ref`` names (see the module docstring)."""
    _check_ref(ref)
    if isinstance(ref, APIResource):
        return ref
    if isinstance(ref, str):
        return mapper.resource_for(ref)
    if isinstance(ref, GroupVersionKind):
        return mapper.resource_for_kind(ref)
    gvr = GroupVersionResource(*ref)
    try:
        return mapper.resource_for_gvr(gvr)
    except (errors.NoMatchError, errors.ApiError) as e:
        return _unknown_scope(gvr, e)


async def aresolve(mapper: AsyncRESTMapper, ref: ResourceRef) -> APIResource:
    """The asyncio twin of :func:`resolve`."""
    _check_ref(ref)
    if isinstance(ref, APIResource):
        return ref
    if isinstance(ref, str):
        return await mapper.resource_for(ref)
    if isinstance(ref, GroupVersionKind):
        return await mapper.resource_for_kind(ref)
    gvr = GroupVersionResource(*ref)
    try:
        return await mapper.resource_for_gvr(gvr)
    except (errors.NoMatchError, errors.ApiError) as e:
        return _unknown_scope(gvr, e)


def _mapper(client: Client, discovery: DiscoveryClient | RESTMapper | None) -> RESTMapper:
    if isinstance(discovery, RESTMapper):
        return discovery
    return RESTMapper(discovery if discovery is not None else DiscoveryClient(client))


def _amapper(client: AsyncClient, discovery: AsyncDiscoveryClient | AsyncRESTMapper | None) -> AsyncRESTMapper:
    if isinstance(discovery, AsyncRESTMapper):
        return discovery
    return AsyncRESTMapper(discovery if discovery is not None else AsyncDiscoveryClient(client))


class _Front:
    _metadata_only = False

    def __init__(self, client: Client, discovery: DiscoveryClient | RESTMapper | None = None) -> None:
        self.client = client
        self.mapper = _mapper(client, discovery)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client.config.server!r})"

    def resource(self, ref: ResourceRef) -> ResourceClient:
        """The resource client for ``ref`` (discovery is consulted unless it is an APIResource)."""
        return ResourceClient(self.client, resolve(self.mapper, ref), metadata_only=self._metadata_only)


class DynamicClient(_Front):
    """Whole objects of any resource, as dicts."""


class MetadataClient(_Front):
    """Only the metadata of any resource's objects (``PartialObjectMetadata``): cheap lists
    and watches of big objects."""

    _metadata_only = True


class _AsyncFront:
    _metadata_only = False

    def __init__(self, client: AsyncClient,
                 discovery: AsyncDiscoveryClient | AsyncRESTMapper | None = None) -> None:
        self.client = client
        self.mapper = _amapper(client, discovery)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client.config.server!r})"

    async def resource(self, ref: ResourceRef) -> AsyncResourceClient:
        """The async resource client for ``ref`` (awaited: it may consult discovery)."""
        res = await aresolve(self.mapper, ref)
        return AsyncResourceClient(self.client, res, metadata_only=self._metadata_only)


class AsyncDynamicClient(_AsyncFront):
    """The asyncio twin of :class:`DynamicClient`."""


class AsyncMetadataClient(_AsyncFront):
    """The asyncio twin of :class:`MetadataClient`."""

    _metadata_only = True


def _scalable(res: APIResource) -> APIResource:
    # A resource given without discovery (namespaced None, no subresources listed) is tried.
    known = res.namespaced is not None or bool(res.subresources)
    if known and "scale" not in res.subresources:
        listed = ", ".join(res.subresources) or "none"
        raise errors.NoMatchError(
            f"{res.gvr} has no scale subresource (its subresources: {listed})", str(res.gvr))
    return res


def _scale_path(res: APIResource, name: str, namespace: str | None, default_ns: str) -> str:
    # The resource clients' rule: the default namespace only when the scope is known.
    ns = (namespace or default_ns) if res.namespaced else namespace
    return res.path(ns, name, "scale")


def _scale_patch(replicas: int) -> dict[str, Any]:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ValueError(f"replicas must be a non-negative int, not {replicas!r}")
    return {"spec": {"replicas": replicas}}


class ScaleClient:
    """``/scale`` of any resource whose discovery lists a scale subresource (Deployments,
    ReplicaSets, StatefulSets, ReplicationControllers, CRDs with ``subresources.scale``).
    Objects are ``autoscaling/v1`` ``Scale``. A namespaced resource without ``namespace``
    uses the client's default namespace."""

    def __init__(self, client: Client, discovery: DiscoveryClient | RESTMapper | None = None) -> None:
        self.client = client
        self.mapper = _mapper(client, discovery)

    def get(self, resource: ResourceRef, name: str, namespace: str | None = None) -> Scale:
        check_name(name)  # before discovery is asked
        res = _scalable(resolve(self.mapper, resource))
        out: Scale = self.client.get(_scale_path(res, name, namespace, self.client.namespace))
        return out

    def update(self, resource: ResourceRef, name: str, replicas: int, namespace: str | None = None) -> Scale:
        """Set ``spec.replicas`` (a merge patch of the scale subresource, so it never
        conflicts with a concurrent writer of other fields); returns the new Scale."""
        check_name(name)
        body = _scale_patch(replicas)
        res = _scalable(resolve(self.mapper, resource))
        out: Scale = self.client.patch(_scale_path(res, name, namespace, self.client.namespace), body)
        return out


class AsyncScaleClient:
    """The asyncio twin of :class:`ScaleClient`."""

    def __init__(self, client: AsyncClient,
                 discovery: AsyncDiscoveryClient | AsyncRESTMapper | None = None) -> None:
        self.client = client
        self.mapper = _amapper(client, discovery)

    async def get(self, resource: ResourceRef, name: str, namespace: str | None = None) -> Scale:
        check_name(name)
        res = _scalable(await aresolve(self.mapper, resource))
        out: Scale = await self.client.get(_scale_path(res, name, namespace, self.client.namespace))
        return out

    async def update(self, resource: ResourceRef, name: str, replicas: int,
                     namespace: str | None = None) -> Scale:
        check_name(name)
        body = _scale_patch(replicas)
        res = _scalable(await aresolve(self.mapper, resource))
        out: Scale = await self.client.patch(_scale_path(res, name, namespace, self.client.namespace), body)
        return out
