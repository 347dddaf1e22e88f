"""Name lookup over one discovery snapshot (no I/O): the RESTMapper's rules.

Names are accepted as kubectl accepts them, case-insensitively:

* ``deployments`` (plural), ``deployment`` (singular), ``deploy`` (short name),
  ``Deployment`` (kind);
* ``deployments.apps`` (``<name>.<group>``); the group may be given by its first labels
  when no group has exactly that name (``storageclasses.storage`` -> ``storage.k8s.io``);
* ``deployments.v1.apps`` (``<name>.<version>.<group>``) and ``pods.v1`` (the core group),
  the forms ``str(GroupVersionResource)`` produces.

Rules, in order:

1. A plural match beats a singular or kind match, which beats a short-name match: a full name
   is never shadowed by another resource's alias (a CRD whose plural is ``deploy`` is what
   ``deploy`` means; the short name of deployments then needs ``deploy.apps``).
2. Within a group the preferred version serves the name; if it does not serve that resource,
   the most preferred version that does (the server lists versions in order of preference).
3. When the name matches resources in several groups, the core group (``""``) wins: kubectl
   and client-go always rank core ``v1`` first (kubernetes/kubernetes#42275), which is why
   ``events`` means core ``events`` and not ``events.events.k8s.io``.
4. Next, the other built-in groups (no dot in the name, or ``*.k8s.io``) win over
   third-party ones (CRDs, aggregated APIs), as kubectl decides a clash such as a CRD
   ``deployments.acme.io`` with the short name ``deploy``: ``deploy`` stays apps'
   deployments, and a warning names the shadowed candidates (kubectl: "short name "deploy"
   could also match lower priority resource deployments.acme.io"), logged once per name on
   the ``kfast.discovery`` logger.
5. A match in several groups of the same rank (two third-party groups, two built-in non-core
   groups) or several resources of one group raises
   :class:`~kfast.errors.AmbiguousResourceError` listing those candidates as
   ``resource.version.group``. kubectl would silently take the group the server lists
   first; that order comes from APIService priorities, so installing a CRD or an aggregated
   API could change what a name means under a running program (CRD short names are not
   reserved and do clash: kubernetes/kubernetes#94860). kfast asks the caller to qualify the
   name (``widgets.example.com``) instead.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable

from kfast import errors
from kfast._discovery_core import DiscoveryData, _preferred_first
from kfast._gvk import APIResource, GroupVersionKind, GroupVersionResource, is_builtin_group

__all__ = ["MapperIndex", "parse_name"]

log = logging.getLogger("kfast.discovery")

VERSION = re.compile(r"^v\d+((alpha|beta)\d+)?$")
Query = tuple[str, str | None, str | None]  # (name, version or None, group or None = any)


def parse_name(name: str) -> list[Query]:
    """The readings of a name, most specific first."""
    parts = name.strip().lower().split(".")
    head, rest = parts[0], parts[1:]
    if not rest:
        return [(head, None, None)]
    out: list[Query] = []
    if VERSION.match(rest[0]):
        out.append((head, rest[0], ".".join(rest[1:])))
    out.append((head, None, ".".join(rest)))
    return out


class MapperIndex:
    """Lookups over one :class:`DiscoveryData`; raises NoMatchError/AmbiguousResourceError."""

    def __init__(self, data: DiscoveryData) -> None:
        self.data = data
        self.group_names = [g.name for g in data.groups]
        self._warn = _ShadowWarnings()
        # group -> resource -> the APIResource at the version that serves it (rule 2)
        self.chosen: dict[str, dict[str, APIResource]] = {}
        for g in data.groups:
            per: dict[str, APIResource] = {}
            for gv in _preferred_first(g):
                for r in data.resources.get(gv, ()):
                    per.setdefault(r.resource, r)
            self.chosen[g.name] = per

    # -- the public lookups ------------------------------------------------------------

    def resource_for(self, name: str) -> APIResource:
        if not name.strip():
            raise errors.NoMatchError("an empty resource name matches nothing", name)
        searched: set[str] = set()
        for res, version, group in parse_name(name):
            groups = self._groups(group)
            searched.update(groups)
            found = self._match(name, res, version, groups, _NAME_TIERS)
            if found is not None:
                return found
        raise errors.NoMatchError(f"the server doesn't have a resource type {name!r}"
                                  f"{self._failed_hint(searched)}", name)

    def resource_for_gvr(self, gvr: GroupVersionResource) -> APIResource:
        """An exact group; the version when given (else rule 2); the resource by any name."""
        found = self._match(str(gvr), gvr.resource.lower(), gvr.version or None, [gvr.group], _NAME_TIERS)
        if found is None:
            raise errors.NoMatchError(f"the server doesn't serve {str(gvr)!r}{self._failed_hint({gvr.group})}",
                                      str(gvr))
        return found

    def resource_for_kind(self, gvk: GroupVersionKind) -> APIResource:
        """An exact group; the version when given (else rule 2); the kind exactly, else
        case-insensitively."""
        version = gvk.version or None
        found = (self._match(str(gvk), gvk.kind, version, [gvk.group], [_by_kind_exact])
                 or self._match(str(gvk), gvk.kind.lower(), version, [gvk.group], [_by_kind]))
        if found is None:
            raise errors.NoMatchError(f"no resource of kind {str(gvk)!r} is served{self._failed_hint({gvk.group})}",
                                      str(gvk))
        return found

    def resources_for_category(self, category: str) -> list[APIResource]:
        """Every resource in ``category`` (``all``: what ``kubectl get all`` lists), one per
        group and resource, in server order."""
        return [r for g in self.group_names for r in self.chosen[g].values() if category in r.categories]

    # -- matching ----------------------------------------------------------------------

    def _failed_hint(self, groups: set[str]) -> str:
        """Why a miss may not be one: the group-versions searched whose discovery failed (an
        aggregated API that is down serves nothing kfast can see)."""
        failed = self.data.failed
        gvs = [gv for gv in failed if gv.rpartition("/")[0] in groups]
        if not gvs:
            return ""
        said = "; ".join(f"{gv}: {failed[gv]}" for gv in gvs)
        return f" (discovery of {', '.join(gvs)} failed, the resource may be served there: {said})"

    def _groups(self, spec: str | None) -> list[str]:
        if spec is None:
            return self.group_names
        if spec in self.chosen:
            return [spec]
        return [g for g in self.group_names if g and g.startswith(spec + ".")] if spec else []

    def _pool(self, group: str, version: str | None) -> Iterable[APIResource]:
        if version is None:
            return self.chosen.get(group, {}).values()
        return self.data.resources.get(f"{group}/{version}" if group else version, ())

    def _match(self, name: str, key: str, version: str | None, groups: list[str],
               tiers: list[Callable[[APIResource, str], bool]]) -> APIResource | None:
        for tier in tiers:
            cands = [r for g in groups for r in self._pool(g, version) if tier(r, key)]
            if cands:
                return _pick(name, cands, self._warn)
        return None


def _by_plural(r: APIResource, key: str) -> bool:
    return r.resource == key


def _by_singular(r: APIResource, key: str) -> bool:
    return r.singular == key or r.kind.lower() == key


def _by_short(r: APIResource, key: str) -> bool:
    return key in r.short_names


def _by_kind_exact(r: APIResource, key: str) -> bool:
    return r.kind == key


def _by_kind(r: APIResource, key: str) -> bool:
    return r.kind.lower() == key


_NAME_TIERS: list[Callable[[APIResource, str], bool]] = [_by_plural, _by_singular, _by_short]


class _ShadowWarnings:
    """Warns once per (name, choice, shadowed) and snapshot: a lookup in a loop must not
    flood the log."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, tuple[str, ...]]] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str, chosen: APIResource, shadowed: list[APIResource]) -> None:
        lower = tuple(str(r.gvr) for r in shadowed if not is_builtin_group(r.group))
        if not lower:
            return  # core over another built-in group (events): the documented rule, no news
        key = (name, str(chosen.gvr), lower)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        _log_shadowed(name, chosen, lower)


def _log_shadowed(name: str, chosen: APIResource, lower: tuple[str, ...]) -> None:
    log.warning("%r means %s; it could also match lower priority resource%s %s (qualify the name "
                "as <resource>.<group> to choose)", name, chosen.gvr, "s" if len(lower) > 1 else "",
                ", ".join(lower))


def _pick(name: str, cands: list[APIResource], warn: _ShadowWarnings) -> APIResource:
    if len(cands) == 1:
        return cands[0]
    # Rules 3 and 4: the first rank with any candidate decides; one candidate there wins.
    for rank in (lambda r: r.group == "", lambda r: is_builtin_group(r.group)):
        top = [r for r in cands if rank(r)]
        if len(top) == 1:
            warn(name, top[0], [r for r in cands if r is not top[0]])
            return top[0]
        if top:
            cands = top
            break
    listed = tuple(str(r.gvr) for r in cands)
    raise errors.AmbiguousResourceError(
        f"{name!r} matches {len(cands)} resources: {', '.join(listed)}; qualify it as <resource>.<group>",
        name, listed)

