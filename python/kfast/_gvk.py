"""The names of API resources: GroupVersionResource, GroupVersionKind and APIResource.

These are I/O-free value types shared by the REST resource client, discovery, the
RESTMapper, the dynamic client and the informer factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["GroupVersionResource", "GroupVersionKind", "APIResource", "group_version"]


def group_version(group: str, version: str) -> str:
    """``"apps/v1"``, or ``"v1"`` for the core group (the form ``apiVersion`` uses)."""
    return f"{group}/{version}" if group else version


class GroupVersionResource(NamedTuple):
    """A resource as the API paths name it: ``("apps", "v1", "deployments")``; the core
    group is ``""``."""

    group: str
    version: str
    resource: str

    def __str__(self) -> str:
        return ".".join(p for p in (self.resource, self.version, self.group) if p)

    @property
    def group_version(self) -> str:
        return group_version(self.group, self.version)


class GroupVersionKind(NamedTuple):
    """A kind as objects name it: ``("apps", "v1", "Deployment")``."""

    group: str
    version: str
    kind: str

    def __str__(self) -> str:
        return f"{self.group_version}, Kind={self.kind}"

    @property
    def group_version(self) -> str:
        return group_version(self.group, self.version)

    @property
    def api_version(self) -> str:
        """The object's ``apiVersion`` field."""
        return self.group_version


@dataclass(frozen=True)
class APIResource:
    """One resource a server serves in one group/version, as discovery describes it.

    ``namespaced`` is None when the scope is unknown (a GroupVersionResource given without
    discovery): the client then puts a namespace in the path only when the caller gives one.
    ``subresources`` names what discovery lists as ``<resource>/<sub>`` (``status``,
    ``scale``, ``log``, ``eviction`` ...).
    """

    group: str
    version: str
    resource: str  # plural, lower case: the path segment
    kind: str = ""
    namespaced: bool | None = None
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def gvr(self) -> GroupVersionResource:
        return GroupVersionResource(self.group, self.version, self.resource)

    @property
    def gvk(self) -> GroupVersionKind:
        return GroupVersionKind(self.group, self.version, self.kind)

    @property
    def group_version(self) -> str:
        return group_version(self.group, self.version)

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The API path: ``/api/v1/namespaces/ns/pods/name/status``, ``/apis/apps/v1/deployments``.

        ``namespace`` is ignored for cluster-scoped resources; for namespaced ones None
        means all namespaces (valid for list, watch and deletecollection only)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if namespace and self.namespaced is not False:
            parts.append(f"/namespaces/{namespace}")
        parts.append(f"/{self.resource}")
        if name is not None:
            if not name or "/" in name or name in (".", ".."):
                raise ValueError(f"invalid object name {name!r}")
            parts.append(f"/{name}")
        if subresource:
            if name is None:
                raise ValueError("a subresource needs an object name")
            parts.append(f"/{subresource}")
        return "".join(parts)
