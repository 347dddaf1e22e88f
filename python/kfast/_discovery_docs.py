"""The discovery documents a kube-apiserver serves, and how kfast reads them (no I/O).

Three shapes reach a client:

* aggregated discovery (``/api`` and ``/apis`` as ``apidiscovery.k8s.io/v2``
  ``APIGroupDiscoveryList``, or the older ``v2beta1``, which has the same fields): every
  group, version and resource in one document per prefix;
* the legacy answers: ``APIVersions`` (``/api``) and ``APIGroupList`` (``/apis``), after which
  each group-version's ``APIResourceList`` (``/api/v1``, ``/apis/<group>/<version>``) is fetched;
* kubectl's disk cache, which holds ``servergroups.json`` (an ``APIGroupList`` that also lists
  the core group, named ``""``) and one ``APIResourceList`` per group-version.

Everything is normalised to the last form, as client-go does: an aggregated document becomes
an ``APIGroupList`` plus one ``APIResourceList`` per group-version, subresources becoming
``"<resource>/<sub>"`` entries. The cache then stores exactly what kubectl stores, and one
function (:func:`api_resources`) turns a list into :class:`~kfast._gvk.APIResource` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from kfast._gvk import APIResource, group_version

__all__ = [
    "AGGREGATED_ACCEPT", "JSON_ACCEPT", "APIGroupDiscoveryList", "APIGroupDoc", "APIGroupInfo", "APIGroupList",
    "APIResourceList", "APIVersions", "GroupVersionForDiscovery", "Normalized", "ResourceEntry", "TypeMeta",
    "api_resources", "group_list", "group_version_path", "groups_from_list", "normalize_aggregated",
    "normalize_legacy_core", "split_group_version",
]

# v2 first; v2beta1 serves 1.26-1.29 servers (same fields); plain JSON makes older servers
# answer with APIVersions/APIGroupList instead of 406.
AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
JSON_ACCEPT = "application/json"


# -- the legacy / kubectl-cache shapes (k8s.io/apimachinery meta/v1) ---------------------

class GroupVersionForDiscovery(msgspec.Struct, rename="camel"):
    group_version: str
    version: str


class APIGroupDoc(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str
    versions: list[GroupVersionForDiscovery] = []
    preferred_version: GroupVersionForDiscovery | None = None


class APIGroupList(msgspec.Struct, rename="camel"):
    kind: str = "APIGroupList"
    api_version: str = "v1"
    groups: list[APIGroupDoc] = []


class APIVersions(msgspec.Struct):
    versions: list[str] = []


class ResourceEntry(msgspec.Struct, rename="camel", omit_defaults=True):
    """One entry of an APIResourceList: a resource, or ``"<resource>/<sub>"`` for a
    subresource. ``group``/``version`` name the response kind's when it differs (a
    ``deployments/scale`` answers with ``autoscaling/v1`` ``Scale``). ``namespaced`` is None
    only when a document leaves it out (read as False); a bool is always written, as
    kubectl writes ``"namespaced": false``."""

    name: str
    singular_name: str = ""
    namespaced: bool | None = None
    group: str = ""
    version: str = ""
    kind: str = ""
    verbs: list[str] = []
    short_names: list[str] = []
    categories: list[str] = []
    storage_version_hash: str = ""


class APIResourceList(msgspec.Struct, rename="camel"):
    group_version: str
    kind: str = "APIResourceList"
    api_version: str = "v1"
    resources: list[ResourceEntry] = []


# -- the aggregated shape (apidiscovery.k8s.io/v2, v2beta1) -----------------------------

class _ResponseKind(msgspec.Struct):
    group: str = ""
    version: str = ""
    kind: str = ""


class _Subresource(msgspec.Struct, rename="camel"):
    subresource: str
    response_kind: _ResponseKind | None = None
    verbs: list[str] = []


class _Resource(msgspec.Struct, rename="camel"):
    resource: str
    response_kind: _ResponseKind | None = None
    scope: str = ""
    singular_resource: str = ""
    verbs: list[str] = []
    short_names: list[str] = []
    categories: list[str] = []
    subresources: list[_Subresource] = []


class _VersionDiscovery(msgspec.Struct):
    version: str
    resources: list[_Resource] = []
    freshness: str = ""


class _ObjectMeta(msgspec.Struct):
    name: str = ""


class _GroupDiscovery(msgspec.Struct):
    metadata: _ObjectMeta = msgspec.field(default_factory=_ObjectMeta)
    versions: list[_VersionDiscovery] = []


class APIGroupDiscoveryList(msgspec.Struct):
    items: list[_GroupDiscovery] = []


class TypeMeta(msgspec.Struct, rename="camel"):
    kind: str = ""
    api_version: str = ""


# -- kfast's view ------------------------------------------------------------------------

@dataclass(frozen=True)
class APIGroupInfo:
    """A served API group: its versions in the server's order of preference.
    ``preferred_version`` is the server's preferred one (the first listed)."""

    name: str
    versions: tuple[str, ...]
    preferred_version: str

    @property
    def group_versions(self) -> tuple[str, ...]:
        return tuple(group_version(self.name, v) for v in self.versions)


@dataclass
class Normalized:
    """Discovery in kubectl's cache shape: groups in server order, one APIResourceList per
    group-version that answered, and the group-versions that did not (with the reason)."""

    groups: list[APIGroupInfo] = field(default_factory=list)
    lists: dict[str, APIResourceList] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def extend(self, other: Normalized) -> None:
        self.groups.extend(other.groups)
        self.lists.update(other.lists)
        self.failed.update(other.failed)


def split_group_version(gv: str) -> tuple[str, str]:
    """``"apps/v1"`` -> ``("apps", "v1")``; ``"v1"`` -> ``("", "v1")``."""
    group, sep, version = gv.rpartition("/")
    if not version or (sep and not group):
        raise ValueError(f"invalid group version {gv!r}")
    return group, version


def group_version_path(gv: str) -> str:
    """Where a group-version's APIResourceList is served."""
    group, version = split_group_version(gv)
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def normalize_aggregated(doc: APIGroupDiscoveryList) -> Normalized:
    """An APIGroupDiscoveryList as groups and APIResourceLists. A version whose freshness is
    ``Stale`` (its aggregated server did not answer) is listed in ``failed`` and contributes no
    resources, so one broken APIService never hides the rest."""
    out = Normalized()
    for item in doc.items:
        name = item.metadata.name
        versions = tuple(v.version for v in item.versions)
        if not versions:
            continue
        out.groups.append(APIGroupInfo(name, versions, versions[0]))
        for ver in item.versions:
            gv = group_version(name, ver.version)
            if ver.freshness == "Stale":
                out.failed[gv] = "stale: the server's discovery document for this group-version is out of date"
                continue
            entries: list[ResourceEntry] = []
            for r in ver.resources:
                namespaced = r.scope == "Namespaced"
                rk = r.response_kind or _ResponseKind()
                entries.append(ResourceEntry(
                    name=r.resource, singular_name=r.singular_resource, namespaced=namespaced,
                    group=rk.group, version=rk.version, kind=rk.kind, verbs=list(r.verbs),
                    short_names=list(r.short_names), categories=list(r.categories)))
                for s in r.subresources:
                    sk = s.response_kind or _ResponseKind()
                    # client-go gives a subresource its parent's singular name.
                    entries.append(ResourceEntry(
                        name=f"{r.resource}/{s.subresource}", singular_name=r.singular_resource,
                        namespaced=namespaced,
                        group=sk.group, version=sk.version, kind=sk.kind, verbs=list(s.verbs)))
            out.lists[gv] = APIResourceList(group_version=gv, resources=entries)
    return out


def normalize_legacy_core(doc: APIVersions) -> list[APIGroupInfo]:
    """``/api``'s APIVersions as the core group (named ``""``)."""
    return [APIGroupInfo("", tuple(doc.versions), doc.versions[0])] if doc.versions else []


def groups_from_list(doc: APIGroupList) -> list[APIGroupInfo]:
    """An APIGroupList (``/apis`` or the cache's ``servergroups.json``) as groups. The
    preferred version is the document's, else the first listed."""
    out = []
    for g in doc.groups:
        versions = tuple(v.version for v in g.versions)
        if not versions:
            continue
        preferred = g.preferred_version.version if g.preferred_version else versions[0]
        out.append(APIGroupInfo(g.name, versions, preferred))
    return out


def group_list(groups: list[APIGroupInfo]) -> APIGroupList:
    """Groups as the ``servergroups.json`` kubectl writes (the core group included)."""
    docs = []
    for g in groups:
        gvs = [GroupVersionForDiscovery(group_version(g.name, v), v) for v in g.versions]
        docs.append(APIGroupDoc(g.name, gvs, GroupVersionForDiscovery(
            group_version(g.name, g.preferred_version), g.preferred_version)))
    return APIGroupList(groups=docs)


def api_resources(doc: APIResourceList) -> tuple[APIResource, ...]:
    """The resources of one group-version; ``"<resource>/<sub>"`` entries become the
    parent's ``subresources``. A missing singular name is the lower-cased kind, as kubectl
    assumes for servers that predate ``singularName``."""
    group, version = split_group_version(doc.group_version)
    subs: dict[str, list[str]] = {}
    for e in doc.resources:
        parent, sep, sub = e.name.partition("/")
        if sep:
            subs.setdefault(parent, []).append(sub)
    return tuple(
        APIResource(
            group=group, version=version, resource=e.name, kind=e.kind, namespaced=bool(e.namespaced),
            singular=e.singular_name or e.kind.lower(), short_names=tuple(e.short_names),
            categories=tuple(e.categories), verbs=tuple(e.verbs),
            subresources=tuple(subs.get(e.name, ())))
        for e in doc.resources if "/" not in e.name
    )
