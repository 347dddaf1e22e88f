"""``AsyncResourceClient``: :class:`kfast.ResourceClient` for asyncio, over :class:`kfast.AsyncClient`.

::

    cms = kfast.AsyncResourceClient(client, APIResource("", "v1", "configmaps", "ConfigMap", namespaced=True))
    await cms.create({"metadata": {"name": "a"}})
    async for item in cms.iter_list(page_size=100): ...
    async with cms.watch(timeout_seconds=60) as w:
        async for ev in w: ...

The same requests, rules and decisions as the sync client (shared, I/O-free); only the
waiting differs. See :mod:`kfast._resource` for the namespace rule and each verb.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from kfast._gvk import APIResource, check_name
from kfast._list import ListPager, Merged, list_steps, unseen
from kfast._logs import LogStream
from kfast._resource import ResourceBase
from kfast._rest_core import Body
from kfast._stream import AsyncStreamIterator, adrive
from kfast._watch import AsyncWatch

if TYPE_CHECKING:
    from kfast._client import AsyncClient, PatchType

__all__ = ["AsyncResourceClient"]

Obj = dict[str, Any]


class AsyncResourceClient(ResourceBase):
    """The verbs of one resource over a :class:`kfast.AsyncClient`: the methods of
    :class:`kfast.ResourceClient`, awaited; iter_list, watch and logs are async iterators."""

    def __init__(self, client: AsyncClient, resource: APIResource, *, metadata_only: bool = False) -> None:
        super().__init__(client, resource, metadata_only=metadata_only)
        self._client = client

    async def _call(self, request: Any) -> Obj:
        out: Obj = await self._client._drive(self._client._core.call(request))
        return out

    # -- reads ---------------------------------------------------------------------------

    async def get(self, name: str, *, namespace: str | None = None, resource_version: str | None = None) -> Obj:
        """The object (PartialObjectMetadata when ``metadata_only``). ``resource_version``
        "0" lets the server answer from its cache."""
        return await self._call(self._rq.get(name, namespace=namespace, resource_version=resource_version))

    async def list(self, *, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, page_size: int | None = 500,
             resource_version: str | None = None, resource_version_match: str | None = None,
             timeout_seconds: int | None = None) -> Obj:
        """The whole collection as one list object (kind, apiVersion, metadata with the
        list's resourceVersion, items): every page, fetched ``page_size`` objects per request
        (None or 0: one unpaged request). All pages belong to one snapshot; if a continue
        token expires while paging, the result is that of one full unpaged list instead
        (client-go). For one page of at most N objects (client-go's ``Limit``), use
        :meth:`list_page`."""
        pager = self._pager(namespace, page_size, label_selector=label_selector, field_selector=field_selector,
                            resource_version=resource_version, resource_version_match=resource_version_match,
                            timeout_seconds=timeout_seconds)
        merged = Merged()
        async for page in adrive(self._client, list_steps(self._client._core, pager)):
            merged.add(page)
        return merged.result()

    def iter_list(self, *, namespace: str | None = None, label_selector: str | None = None,
                  field_selector: str | None = None, page_size: int | None = 500,
                  resource_version: str | None = None, resource_version_match: str | None = None,
                  timeout_seconds: int | None = None) -> AsyncIterator[Obj]:
        """The items of the collection, ``page_size`` per request, one page in memory at a
        time (stop iterating to stop fetching).

        Guarantee: each object key (namespace/name) is yielded at most once, in key order.
        Normally all items come from one snapshot. If a continue token expires mid-way
        (410 Expired), the rest comes from one full unpaged list at the resourceVersion
        first asked for (a newer snapshot), skipping the keys up to the last one already
        yielded: an object created meanwhile with a key before that point is not yielded,
        and one deleted meanwhile after it is not yielded either."""
        pager = self._pager(namespace, page_size, label_selector=label_selector, field_selector=field_selector,
                            resource_version=resource_version, resource_version_match=resource_version_match,
                            timeout_seconds=timeout_seconds)
        return self._iter_items(pager)

    async def _iter_items(self, pager: ListPager) -> AsyncIterator[Obj]:
        async for page in adrive(self._client, list_steps(self._client._core, pager)):
            for item in unseen(page, pager.skip_through if page.restart else None):
                yield item

    async def list_page(self, *, limit: int, continue_token: str | None = None, namespace: str | None = None,
                        label_selector: str | None = None, field_selector: str | None = None,
                        resource_version: str | None = None, resource_version_match: str | None = None,
                        timeout_seconds: int | None = None) -> Obj:
        """ONE LIST request, answered as the server sent it; see :meth:`ResourceClient.list_page`."""
        req = self._list_page_request(namespace, limit, continue_token, label_selector=label_selector,
                                      field_selector=field_selector, resource_version=resource_version,
                                      resource_version_match=resource_version_match,
                                      timeout_seconds=timeout_seconds)
        return await self._call(req)

    def watch(self, *, namespace: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, resource_version: str | None = None,
              timeout_seconds: int | None = None, allow_bookmarks: bool = True,
              send_initial_events: bool = False, server_timeout_seconds: int | None = None,
              yield_bookmarks: bool = False) -> AsyncWatch:
        """An :class:`~kfast._watch.AsyncWatch`: ``async for`` it for :class:`WatchEvent` values. It
        resumes by itself when the server ends a request, until ``timeout_seconds`` (None:
        until stopped) or :meth:`Watch.stop`/``close``; see :mod:`kfast._watch`.

        Bookmarks are asked for (``allow_bookmarks``) and move :attr:`Watch.resource_version`
        on, but are only yielded with ``yield_bookmarks=True`` (as ``BOOKMARK`` events whose
        object has only kind, apiVersion and metadata.resourceVersion; with
        ``send_initial_events``, the one annotated ``k8s.io/initial-events-end`` marks the end
        of the initial ADDED events)."""
        state = self._watch_state(namespace, label_selector=label_selector, field_selector=field_selector,
                                  resource_version=resource_version, timeout_seconds=timeout_seconds,
                                  allow_bookmarks=allow_bookmarks, send_initial_events=send_initial_events,
                                  server_timeout_seconds=server_timeout_seconds,
                                  yield_bookmarks=yield_bookmarks)
        return AsyncWatch(self._client, state)

    # -- writes --------------------------------------------------------------------------

    async def create(self, obj: Body, *, namespace: str | None = None, dry_run: bool = False,
               field_manager: str | None = None, field_validation: str | None = None) -> Obj:
        """POST the object; returns it as stored (as it would be, with ``dry_run``)."""
        return await self._call(self._rq.create(obj, namespace=namespace, dry_run=dry_run, field_manager=field_manager,
                                          field_validation=field_validation))

    async def replace(self, obj: Body, *, namespace: str | None = None, dry_run: bool = False,
                field_manager: str | None = None, field_validation: str | None = None) -> Obj:
        """PUT the object (named by its metadata.name). With metadata.resourceVersion set,
        a concurrent change raises :class:`kfast.errors.Conflict`."""
        return await self._call(self._rq.replace(obj, namespace=namespace, dry_run=dry_run, field_manager=field_manager,
                                           field_validation=field_validation))

    async def patch(self, name: str, body: Any, *, namespace: str | None = None,
                    patch_type: PatchType | None = None,
              field_manager: str | None = None, force: bool | None = None, dry_run: bool = False,
              field_validation: str | None = None, subresource: str | None = None) -> Obj:
        """PATCH with ``patch_type`` "strategic" (built-in kinds only), "merge" (RFC 7386),
        "json" (RFC 6902, a list of operations) or "apply" (server-side apply: needs
        ``field_manager``; ``force`` takes over conflicting fields). None (the default) is
        "strategic" for the built-in groups (core, groups without a dot, ``*.k8s.io``) and
        "merge" for the others (custom resources refuse strategic merge with 415)."""
        return await self._call(self._rq.patch(name, body, patch_type=patch_type, namespace=namespace,
                                         field_manager=field_manager, force=force, dry_run=dry_run,
                                         field_validation=field_validation, subresource=subresource))

    async def apply(self, obj: Body, *, field_manager: str, namespace: str | None = None, force: bool = False,
              dry_run: bool = False, field_validation: str | None = None, subresource: str | None = None) -> Obj:
        """Server-side apply of ``obj`` (apiVersion, kind and metadata.name required). A
        field owned by another manager raises :class:`kfast.errors.Conflict` unless ``force``."""
        return await self._call(self._rq.apply(obj, field_manager=field_manager, namespace=namespace, force=force,
                                         dry_run=dry_run, field_validation=field_validation,
                                         subresource=subresource))

    async def delete(self, name: str, *, namespace: str | None = None, propagation_policy: str | None = None,
               grace_period_seconds: int | None = None, preconditions: Mapping[str, str] | None = None,
               dry_run: bool = False) -> Obj:
        """DELETE. Returns what the server answers: the object (still present, with a
        deletionTimestamp, when finalizers or a grace period hold it; or as it was) or a
        ``Status`` (kind "Status", status "Success") for some resources. ``preconditions``
        ({"uid": ..., "resourceVersion": ...}) that do not hold raise Conflict."""
        return await self._call(self._rq.delete(name, namespace=namespace, propagation_policy=propagation_policy,
                                          grace_period_seconds=grace_period_seconds,
                                          preconditions=preconditions, dry_run=dry_run))

    async def delete_collection(self, *, namespace: str | None = None, label_selector: str | None = None,
                          field_selector: str | None = None, propagation_policy: str | None = None,
                          grace_period_seconds: int | None = None, dry_run: bool = False) -> Obj:
        """DELETE the matching objects; returns the server's answer (a list or a Status)."""
        return await self._call(self._rq.delete_collection(
            namespace=namespace, label_selector=label_selector, field_selector=field_selector,
            propagation_policy=propagation_policy, grace_period_seconds=grace_period_seconds, dry_run=dry_run))

    # -- subresources ----------------------------------------------------------------------

    async def get_status(self, name: str, *, namespace: str | None = None) -> Obj:
        return await self._call(self._rq.get(name, namespace=namespace, subresource="status"))

    async def replace_status(self, obj: Body, *, namespace: str | None = None, dry_run: bool = False,
                       field_manager: str | None = None, field_validation: str | None = None) -> Obj:
        """PUT to ``<name>/status``: only the status is changed."""
        return await self._call(self._rq.replace(obj, namespace=namespace, subresource="status", dry_run=dry_run,
                                           field_manager=field_manager, field_validation=field_validation))

    async def patch_status(self, name: str, body: Any, *, namespace: str | None = None,
                           patch_type: PatchType | None = "merge",
                     field_manager: str | None = None, force: bool | None = None, dry_run: bool = False,
                     field_validation: str | None = None) -> Obj:
        """PATCH ``<name>/status`` (default "merge", which custom resources accept too)."""
        return await self.patch(name, body, namespace=namespace, patch_type=patch_type, field_manager=field_manager,
                          force=force, dry_run=dry_run, field_validation=field_validation, subresource="status")

    async def get_scale(self, name: str, *, namespace: str | None = None) -> Obj:
        """The autoscaling/v1 ``Scale`` of the object (spec.replicas, status.replicas/selector)."""
        return await self._call(self._rq.get(name, namespace=namespace, subresource="scale"))

    async def replace_scale(self, name: str, scale: Body, *, namespace: str | None = None, dry_run: bool = False,
                      field_manager: str | None = None, field_validation: str | None = None) -> Obj:
        """PUT a ``Scale`` (as read by :meth:`get_scale`, with spec.replicas changed)."""
        check_name(name)  # else None would mean the Scale's own metadata.name
        return await self._call(self._rq.replace(scale, namespace=namespace, name=name, subresource="scale",
                                           dry_run=dry_run, field_manager=field_manager,
                                           field_validation=field_validation))

    async def patch_scale(self, name: str, body: Any, *, namespace: str | None = None,
                          patch_type: PatchType | None = "merge",
                    field_manager: str | None = None, force: bool | None = None, dry_run: bool = False) -> Obj:
        """PATCH the ``Scale``, e.g. ``{"spec": {"replicas": 3}}``."""
        return await self.patch(name, body, namespace=namespace, patch_type=patch_type, field_manager=field_manager,
                          force=force, dry_run=dry_run, subresource="scale")

    async def evict(self, name: str, *, namespace: str | None = None,
              delete_options: Mapping[str, Any] | None = None) -> Obj:
        """POST a policy/v1 Eviction for a pod (honours PodDisruptionBudgets: a refused
        eviction raises TooManyRequests). Returns the server's Status."""
        return await self._call(self._rq.evict(name, namespace=namespace, delete_options=delete_options))

    def logs(self, name: str, *, namespace: str | None = None, container: str | None = None,
             follow: bool = False, tail_lines: int | None = None, since_seconds: int | None = None,
             since_time: datetime | str | None = None, timestamps: bool = False, previous: bool = False,
             limit_bytes: int | None = None) -> AsyncStreamIterator[str]:
        """The pod's log, streamed: lines (without ``\\n``) as they arrive; with ``follow``,
        until the container ends, or the iterator is closed or stopped (``stop()`` works from
        any task or thread and wakes a pending read). Also an async context manager."""
        req = self._logs_request(name, namespace, container=container, follow=follow, tail_lines=tail_lines,
                                 since_seconds=since_seconds, since_time=since_time, timestamps=timestamps,
                                 previous=previous, limit_bytes=limit_bytes)
        return AsyncStreamIterator(self._client, LogStream(req))

    async def read_logs(self, name: str, *, namespace: str | None = None, container: str | None = None,
                  tail_lines: int | None = None, since_seconds: int | None = None,
                  since_time: datetime | str | None = None, timestamps: bool = False, previous: bool = False,
                  limit_bytes: int | None = None) -> str:
        """The pod's log as one string (not followed)."""
        req = self._logs_request(name, namespace, container=container, tail_lines=tail_lines,
                                 since_seconds=since_seconds, since_time=since_time, timestamps=timestamps,
                                 previous=previous, limit_bytes=limit_bytes)
        resp: httpx.Response = await self._client._drive(self._client._core.call(req, decode=False))
        return resp.content.decode("utf-8", "replace")

