"""SharedInformerFactory: one informer per resource and options, shared by every caller.

Controllers in one process usually watch the same resources (every controller wants pods);
each watch costs the server a connection and the client a copy of the cache, so callers ask
the factory, which hands the same :class:`SharedIndexInformer` to everyone asking for the same
(group, version, resource, namespace, label selector, field selector).

Resources are named by :class:`GroupVersionResource` or by any name the RESTMapper accepts
(``"deploy"``, ``"Deployment"``, ``"deployments.apps"``, a CRD's plural). Without a
``resolver=`` the factory resolves strings through discovery (a :class:`~kfast.RESTMapper`
over a client made on first use); the fully qualified ``"deployments.v1.apps"`` form needs no
discovery, and when the server has no discovery to offer (the embedded simulator) a plain
lower-case word is taken as a core/v1 plural.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from kfast import errors
from kfast._config import Config
from kfast._feed import Transform
from kfast._gvk import GroupVersionResource
from kfast._wire import Wire
from kfast.informer import SharedIndexInformer

__all__ = ["GroupVersionResource", "InformerKey", "SharedInformerFactory", "Resolver", "DiscoveryResolver"]

log = logging.getLogger("kfast.informer")


class InformerKey(NamedTuple):
    """What makes two informers the same informer."""

    gvr: GroupVersionResource
    namespace: str | None
    label_selector: str | None
    field_selector: str | None
    metadata_only: bool = False


# The RESTMapper hook: a resolver maps any name a user may write (kind, plural, short name,
# "resource.group") to a GroupVersionResource, raising LookupError when it cannot.
Resolver = Callable[[str], GroupVersionResource]

_VERSION = re.compile(r"^v\d+((alpha|beta)\d+)?$")


def parse_resource(name: str) -> GroupVersionResource:
    """The resolver used without a RESTMapper: ``"pods"`` (core/v1) or
    ``"resource.version.group"`` such as ``"deployments.v1.apps"``."""
    parts = name.split(".")
    if len(parts) == 1 and name and name == name.lower():
        return GroupVersionResource("", "v1", name)
    if len(parts) >= 2 and _VERSION.match(parts[1]):
        return GroupVersionResource(".".join(parts[2:]), parts[1], parts[0])
    raise LookupError(
        f"cannot resolve {name!r} without discovery: pass a GroupVersionResource, a "
        f"'resource.version.group' name, or give the factory a resolver (RESTMapper)")


class DiscoveryResolver:
    """The factory's default resolver: ``resource.version.group`` as written, anything else
    through a RESTMapper over a :class:`~kfast.Client` for ``config`` (made on first use)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._client: Any = None

    def __call__(self, name: str) -> GroupVersionResource:
        parts = name.split(".")
        if len(parts) >= 2 and _VERSION.match(parts[1]):
            return parse_resource(name)
        with self._lock:
            if self._client is None:
                from kfast._client import Client

                self._client = Client(self._config)
            client = self._client
        try:
            gvr: GroupVersionResource = client.mapper.resolver(name)
            return gvr
        except (errors.ApiError, errors.TransportError) as e:
            # No discovery here (a bare test server, discovery forbidden): a lower-case word
            # can still be a core/v1 plural; anything else cannot be resolved.
            log.debug("discovery unavailable (%s); resolving %r without it", e, name)
            try:
                return parse_resource(name)
            except LookupError:
                raise errors.NoMatchError(f"cannot resolve {name!r}: discovery failed ({e})", name) from e

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class SharedInformerFactory:
    """Creates and shares informers; ``start()`` runs them, ``shutdown()`` stops them all.

    Factory-wide ``namespace``, ``label_selector``, ``field_selector`` and ``transform``
    (e.g. ``transforms.drop_managed_fields()``) apply to every informer unless a call
    overrides them. Informers asked for after :meth:`start` start at
    once. One :class:`Wire` (one connection pool, one credential cache) serves them all.
    """

    def __init__(
        self,
        config: Config,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float = 0,
        page_size: int = 500,
        watch_list: bool = True,
        resolver: Resolver | None = None,
        wire: Wire | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.config = config
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_list = watch_list
        # Applied by every informer this factory creates unless the call gives its own.
        self.transform = transform
        self._default_resolver: DiscoveryResolver | None = None
        if resolver is None:
            resolver = self._default_resolver = DiscoveryResolver(config)
        self.resolver: Resolver = resolver
        self._wire = wire or Wire(config)
        self._owns_wire = wire is None
        self._lock = threading.Lock()
        self._informers: dict[InformerKey, SharedIndexInformer] = {}
        self._started = False
        self._shut = False

    def resolve(self, resource: GroupVersionResource | tuple[str, str, str] | str) -> GroupVersionResource:
        if isinstance(resource, str):
            return self.resolver(resource)
        return GroupVersionResource(*resource)

    def for_resource(
        self,
        resource: GroupVersionResource | tuple[str, str, str] | str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, Any] | None = None,
        metadata_only: bool = False,
        transform: Transform | None = None,
    ) -> SharedIndexInformer:
        """The shared informer for ``resource`` with these options (created on first ask).
        ``indexers`` are added to an existing informer's; a name it already has is kept as
        it is (the first caller's index function wins). ``metadata_only`` informers cache
        PartialObjectMetadata and are separate from whole-object ones. ``transform`` only
        applies when this call creates the informer (the cache is shared: one transform)."""
        gvr = self.resolve(resource)
        key = InformerKey(gvr, namespace if namespace is not None else self.namespace,
                          label_selector if label_selector is not None else self.label_selector,
                          field_selector if field_selector is not None else self.field_selector,
                          metadata_only)
        with self._lock:
            if self._shut:
                raise RuntimeError("the factory was shut down")
            inf = self._informers.get(key)
            if inf is None:
                inf = SharedIndexInformer(
                    self.config, gvr.resource, group=gvr.group, version=gvr.version,
                    namespace=key.namespace, label_selector=key.label_selector,
                    field_selector=key.field_selector, indexers=indexers,
                    resync_period=self.resync_period, page_size=self.page_size,
                    watch_list=self.watch_list, metadata_only=metadata_only,
                    transform=transform if transform is not None else self.transform,
                    wire=self._wire)
                self._informers[key] = inf
                if self._started:
                    inf.start()
                return inf
        if indexers:
            new = {k: v for k, v in indexers.items() if k not in inf.index_names}
            if new:
                inf.add_indexers(new)
        return inf

    informer = for_resource

    def informers(self) -> dict[InformerKey, SharedIndexInformer]:
        with self._lock:
            return dict(self._informers)

    def start(self) -> None:
        """Start every informer created so far (and, from now on, each new one)."""
        with self._lock:
            if self._shut:
                raise RuntimeError("the factory was shut down")
            self._started = True
            pending = list(self._informers.values())
        for inf in pending:
            inf.start()

    def wait_for_cache_sync(self, timeout: float | None = None) -> dict[InformerKey, bool]:
        """Wait until every started informer has synced, and every event handler registered
        on it before this call has been told about its initial list (as
        :meth:`SharedIndexInformer.wait_for_sync`; client-go's factory waits for the stores
        only), or ``timeout`` (seconds, for all of them together) passes; say which synced."""
        end = None if timeout is None else time.monotonic() + timeout
        out: dict[InformerKey, bool] = {}
        for key, inf in self.informers().items():
            left = None if end is None else max(0.0, end - time.monotonic())
            out[key] = inf.wait_for_sync(left) if inf.started else False
        return out

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every informer (each drains what reached its FIFO) and wait for threads."""
        with self._lock:
            self._shut = True
            infs = list(self._informers.values())
        for inf in infs:
            inf.stop(timeout)
        if self._owns_wire:
            self._wire.close()
        if self._default_resolver is not None:
            self._default_resolver.close()

    def __enter__(self) -> SharedInformerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
