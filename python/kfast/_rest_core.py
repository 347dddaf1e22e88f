"""Request building for the resource clients, without I/O.

:class:`RestRequests` turns the arguments of a :class:`~kfast.ResourceClient` method into an
``httpx.Request`` (path, query, headers, body), applying the namespace rule and checking
option values; both the sync and the asyncio client send what it builds, so every decision
about what goes on the wire is made (and tested) once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import httpx
import msgspec

from kfast._client import PATCH_CONTENT_TYPES, PatchType, _Common
from kfast import errors
from kfast._gvk import APIResource, check_name, check_namespace, is_builtin_group

__all__ = ["ALL_NAMESPACES", "RestRequests", "Body", "PropagationPolicy", "FieldValidation",
           "METADATA_ACCEPT", "METADATA_LIST_ACCEPT", "check_choice"]

ALL_NAMESPACES = "*"
"""Pass as ``namespace`` to list, watch or delete a collection across every namespace."""

# Metadata-only answers, with plain JSON as the fallback for servers (aggregated APIs) that
# cannot transform (protocol.md, Discovery).
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

Body: TypeAlias = Mapping[str, Any]
PropagationPolicy = Literal["Orphan", "Background", "Foreground"]
FieldValidation = Literal["Ignore", "Warn", "Strict"]
ResourceVersionMatch = Literal["Exact", "NotOlderThan"]

_PROPAGATION = ("Orphan", "Background", "Foreground")
_FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
_RV_MATCH = ("Exact", "NotOlderThan")
_PRECONDITION_KEYS = {"uid": "uid", "resourceVersion": "resourceVersion",
                      "resource_version": "resourceVersion"}


def check_choice(option: str, value: object, choices: Sequence[str]) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def _metadata(obj: Body) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected an object (a mapping), got {type(obj).__name__}")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise ValueError("the object's metadata is not a mapping")
    return meta


def _name_of(obj: Body) -> str:
    name = _metadata(obj).get("name")
    if not name:
        raise ValueError("the object has no metadata.name")
    return check_name(name, "metadata.name")


class RestRequests:
    """Builds the requests of one resource for one client (sync or async)."""

    def __init__(self, client: _Common, resource: APIResource, *, metadata_only: bool = False) -> None:
        self.client = client
        self.resource = resource
        self.metadata_only = metadata_only

    # -- the namespace rule ---------------------------------------------------------------

    def namespace(self, namespace: str | None, *, collection: bool = False,
                  obj: Body | None = None) -> str | None:
        """The namespace that goes in the path (None: none does).

        Namespaced resources: None means the object's ``metadata.namespace`` when there is an
        object that sets one, else the client's default namespace; :data:`ALL_NAMESPACES`
        means every namespace (collections only). Cluster-scoped: always None. Unknown
        scope: only a namespace the caller gave (as an argument or in the object)."""
        scope = self.resource.namespaced
        if scope is False:
            return None
        if namespace == ALL_NAMESPACES:
            if not collection:
                raise ValueError("ALL_NAMESPACES is only valid for list, iter_list, watch and "
                                 "delete_collection")
            return None
        if namespace is not None:
            check_namespace(namespace)
        own = _metadata(obj).get("namespace") if obj is not None else None
        if own is not None:
            check_namespace(own)
        if own is not None and namespace is not None and own != namespace:
            raise ValueError(f"the object's metadata.namespace {own!r} contradicts "
                             f"namespace={namespace!r}")
        chosen = namespace or own or None
        if chosen is None and scope is True:
            chosen = self.client.namespace
        return chosen

    # -- building -----------------------------------------------------------------------

    def _request(self, method: str, namespace: str | None, name: str | None = None,
                 subresource: str | None = None, *, params: dict[str, Any] | None = None,
                 body: Any = None, content_type: str | None = None,
                 accept: str | None = None) -> httpx.Request:
        path = self.resource.path(namespace, name, subresource)
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type
        content = msgspec.json.encode(body) if body is not None else None
        if content is not None and not content_type:
            headers["Content-Type"] = "application/json"
        return self.client.build_request(method, path, params=params, content=content, headers=headers)

    def _read_accept(self, subresource: str | None, *, collection: bool = False) -> str | None:
        if not self.metadata_only or subresource:
            return None
        return METADATA_LIST_ACCEPT if collection else METADATA_ACCEPT

    def get(self, name: str, *, namespace: str | None = None, resource_version: str | None = None,
            subresource: str | None = None) -> httpx.Request:
        check_name(name)
        self.check_subresource(subresource)
        ns = self.namespace(namespace)
        params = {"resourceVersion": resource_version} if resource_version is not None else None
        return self._request("GET", ns, name, subresource, params=params,
                             accept=self._read_accept(subresource))

    def list_params(self, *, label_selector: str | None = None, field_selector: str | None = None,
                    limit: int | None = None, resource_version: str | None = None,
                    resource_version_match: str | None = None,
                    timeout_seconds: int | None = None) -> dict[str, Any]:
        check_choice("resource_version_match", resource_version_match, _RV_MATCH)
        if resource_version_match is not None and resource_version is None:
            raise ValueError("resource_version_match needs a resource_version")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative int (0 or None: no paging), not {limit!r}")
        _check_seconds("timeout_seconds", timeout_seconds)
        return {k: v for k, v in {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit or None,
            "resourceVersion": resource_version,
            "resourceVersionMatch": resource_version_match,
            "timeoutSeconds": timeout_seconds,
        }.items() if v is not None}

    def list_page(self, namespace: str | None, params: Mapping[str, Any]) -> httpx.Request:
        """One LIST request; ``namespace`` is already resolved (see :meth:`namespace`)."""
        return self._request("GET", namespace, params=dict(params),
                             accept=self._read_accept(None, collection=True))

    def watch(self, namespace: str | None, params: Mapping[str, Any]) -> httpx.Request:
        # Metadata-only watch events carry PartialObjectMetadata objects (not a List).
        return self._request("GET", namespace, params={**params, "watch": True},
                             accept=self._read_accept(None))

    @staticmethod
    def write_params(*, dry_run: bool = False, field_manager: str | None = None,
                     field_validation: str | None = None, force: bool | None = None) -> dict[str, Any]:
        check_choice("field_validation", field_validation, _FIELD_VALIDATION)
        if field_manager is not None and (not isinstance(field_manager, str) or not field_manager):
            raise ValueError("field_manager must be a non-empty string")
        params: dict[str, Any] = {}
        if dry_run:
            params["dryRun"] = "All"
        if field_manager is not None:
            params["fieldManager"] = field_manager
        if field_validation is not None:
            params["fieldValidation"] = field_validation
        if force is not None:
            params["force"] = force
        return params

    def create(self, obj: Body, *, namespace: str | None = None, subresource: str | None = None,
               name: str | None = None, **write: Any) -> httpx.Request:
        _metadata(obj)  # None or a non-mapping is a TypeError, not an empty body
        if name is not None:
            check_name(name)
        self.check_subresource(subresource)
        ns = self.namespace(namespace, obj=obj)
        return self._request("POST", ns, name, subresource, params=self.write_params(**write), body=obj)

    def replace(self, obj: Body, *, namespace: str | None = None, subresource: str | None = None,
                name: str | None = None, **write: Any) -> httpx.Request:
        target = check_name(name) if name is not None else _name_of(obj)
        self.check_subresource(subresource)
        ns = self.namespace(namespace, obj=obj)
        return self._request("PUT", ns, target, subresource,
                             params=self.write_params(**write), body=obj)

    def default_patch_type(self) -> PatchType:
        """"strategic" for the kinds Kubernetes defines (the built-in groups), "merge" for
        the others: custom resources answer a strategic merge patch with 415."""
        return "strategic" if is_builtin_group(self.resource.group) else "merge"

    def check_subresource(self, subresource: str | None) -> None:
        """NoMatchError before any request when discovery lists this resource's
        subresources and ``subresource`` is not one of them. A resource whose
        subresources are unknown (built by hand: none listed and ``namespaced=None``) is
        left to the server, as :class:`kfast.ScaleClient` does."""
        res = self.resource
        if subresource is None or subresource in res.subresources:
            return
        if res.namespaced is None and not res.subresources:
            return
        listed = ", ".join(res.subresources) or "none"
        raise errors.NoMatchError(
            f"{res.gvr} has no {subresource} subresource (its subresources: {listed})", str(res.gvr))

    def patch(self, name: str, body: Any, *, patch_type: PatchType | None = None,
              namespace: str | None = None, field_manager: str | None = None,
              force: bool | None = None, dry_run: bool = False, field_validation: str | None = None,
              subresource: str | None = None) -> httpx.Request:
        check_name(name)
        if patch_type is None:
            patch_type = self.default_patch_type()
        check_choice("patch_type", patch_type, tuple(PATCH_CONTENT_TYPES))
        self.check_subresource(subresource)
        if patch_type == "apply":
            if field_manager is None:
                raise ValueError("a server-side apply patch needs a field_manager")
            if not isinstance(body, Mapping):
                raise TypeError("an apply patch is a whole object (a mapping)")
        elif force is not None:
            raise ValueError("force is only valid for server-side apply (patch_type='apply')")
        if patch_type == "json" and not isinstance(body, (list, tuple)):
            raise TypeError("a JSON patch is a list of operations")
        if patch_type in ("merge", "strategic") and not isinstance(body, Mapping):
            raise TypeError(f"a {patch_type} patch is a mapping")
        obj = body if isinstance(body, Mapping) else None
        ns = self.namespace(namespace, obj=obj if patch_type == "apply" else None)
        params = self.write_params(dry_run=dry_run, field_manager=field_manager,
                                   field_validation=field_validation, force=force)
        payload = list(body) if isinstance(body, tuple) else body
        return self._request("PATCH", ns, name, subresource, params=params, body=payload,
                             content_type=PATCH_CONTENT_TYPES[patch_type])

    def apply(self, obj: Body, *, field_manager: str, namespace: str | None = None,
              force: bool = False, dry_run: bool = False, field_validation: str | None = None,
              subresource: str | None = None) -> httpx.Request:
        if not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        _metadata(obj)
        if not obj.get("apiVersion") or not obj.get("kind"):
            raise ValueError("an applied object needs apiVersion and kind")
        return self.patch(_name_of(obj), obj, patch_type="apply", namespace=namespace,
                          field_manager=field_manager, force=force or None, dry_run=dry_run,
                          field_validation=field_validation, subresource=subresource)

    @staticmethod
    def delete_options(*, propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                       preconditions: Mapping[str, str] | None = None,
                       dry_run: bool = False) -> dict[str, Any] | None:
        check_choice("propagation_policy", propagation_policy, _PROPAGATION)
        _check_seconds("grace_period_seconds", grace_period_seconds)
        opts: dict[str, Any] = {}
        if propagation_policy is not None:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            pre: dict[str, str] = {}
            for k, v in preconditions.items():
                if k not in _PRECONDITION_KEYS:
                    raise ValueError(f"unknown precondition {k!r}: use 'uid' and/or 'resourceVersion'")
                pre[_PRECONDITION_KEYS[k]] = str(v)
            opts["preconditions"] = pre
        if dry_run:
            opts["dryRun"] = ["All"]
        if not opts:
            return None
        return {"apiVersion": "v1", "kind": "DeleteOptions", **opts}

    def delete(self, name: str, *, namespace: str | None = None, **options: Any) -> httpx.Request:
        check_name(name)
        ns = self.namespace(namespace)
        return self._request("DELETE", ns, name, body=self.delete_options(**options))

    def delete_collection(self, *, namespace: str | None = None, label_selector: str | None = None,
                          field_selector: str | None = None, **options: Any) -> httpx.Request:
        ns = self.namespace(namespace, collection=True)
        params = {k: v for k, v in (("labelSelector", label_selector),
                                    ("fieldSelector", field_selector)) if v is not None}
        return self._request("DELETE", ns, params=params, body=self.delete_options(**options))

    def logs(self, name: str, *, namespace: str | None = None,
             params: Mapping[str, Any] | None = None) -> httpx.Request:
        check_name(name)
        if self.resource.group or self.resource.resource != "pods":
            raise ValueError(f"logs are a subresource of core/v1 pods, not of {self.resource.gvr}")
        return self._request("GET", self.namespace(namespace), name, "log",
                             params=dict(params or {}), accept="text/plain, */*")

    def evict(self, name: str, *, namespace: str | None = None,
              delete_options: Mapping[str, Any] | None = None) -> httpx.Request:
        check_name(name)
        if self.resource.group or self.resource.resource != "pods":
            raise ValueError(f"eviction is a subresource of core/v1 pods, not of {self.resource.gvr}")
        ns = self.namespace(namespace)
        eviction: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                    "metadata": {"name": name, **({"namespace": ns} if ns else {})}}
        if delete_options is not None:
            eviction["deleteOptions"] = {"apiVersion": "v1", "kind": "DeleteOptions", **delete_options}
        return self._request("POST", ns, name, "eviction", body=eviction)


def _check_seconds(option: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{option} must be a non-negative int, not {value!r}")
