"""The names of API resources: GroupVersionResource, GroupVersionKind and APIResource.

These are I/O-free value types shared by the REST resource client, discovery, the
RESTMapper, the dynamic client and the informer factory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote

__all__ = ["GroupVersionResource", "GroupVersionKind", "APIResource", "group_version", "check_name",
           "check_namespace", "is_builtin_group"]

# RFC 1123 DNS label: what a namespace name must be (apimachinery ValidateNamespaceName).
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Path characters a segment may keep as they are (RFC 3986 pchar, as Go's url.URL leaves
# them); everything else, "?" and "#" included, is percent-encoded.
_SEGMENT_SAFE = ":@!$&'()*+,;="


def check_name(name: object, what: str = "object name") -> str:
    """``name`` if it can be one path segment naming an object, else TypeError (not a str)
    or ValueError. client-go's rule (IsValidPathSegmentName): not empty, not "." or "..",
    no "/" or "%". Without it ``get(None)`` would address the collection, and a name with
    "/" or ".." a different URL."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError(f"{what} must not be empty")
    if name in (".", ".."):
        raise ValueError(f"{what} may not be {name!r}")
    for bad in ("/", "%"):
        if bad in name:
            raise ValueError(f"{what} {name!r} may not contain {bad!r}")
    return name


def check_namespace(namespace: object) -> str:
    """``namespace`` if it is a valid namespace name (an RFC 1123 DNS label: at most 63
    lower-case letters, digits and "-", starting and ending alphanumeric), else TypeError
    or ValueError."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
    if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        raise ValueError(f"invalid namespace {namespace!r}: a namespace is an RFC 1123 DNS label "
                         "(lower-case letters, digits and '-', at most 63)")
    return namespace


def is_builtin_group(group: str) -> bool:
    """True for the groups Kubernetes itself defines: core (""), groups without a dot
    (``apps``, ``batch``) and ``*.k8s.io``. kubectl ranks them above third-party groups when
    a name matches both; strategic merge patch only works for their kinds."""
    return group == "" or "." not in group or group.endswith(".k8s.io")


def _segment(s: str) -> str:
    return quote(s, safe=_SEGMENT_SAFE)


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
        means all namespaces (valid for list, watch and deletecollection only). The name
        and namespace are checked (:func:`check_name`, :func:`check_namespace`: ValueError)
        and every segment is percent-encoded, so no argument can change which URL is meant."""
        seg = _segment
        prefix = (f"/apis/{seg(self.group)}/{seg(self.version)}" if self.group
                  else f"/api/{seg(self.version)}")
        parts = [prefix]
        if namespace and self.namespaced is not False:
            parts.append(f"/namespaces/{seg(check_namespace(namespace))}")
        parts.append(f"/{seg(check_name(self.resource, 'resource'))}")
        if name is not None:
            parts.append(f"/{seg(check_name(name))}")
        if subresource:
            if name is None:
                raise ValueError("a subresource needs an object name")
            parts.append(f"/{seg(check_name(subresource, 'subresource'))}")
        return "".join(parts)
