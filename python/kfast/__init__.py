"""kfast: a Kubernetes client for Python whose hot path is Rust.

::

    import kfast

    cfg = kfast.load_config()
    inf = kfast.SharedIndexInformer(cfg, "pods", indexers={"node": kfast.index.by_field("spec.nodeName")})
    inf.add_event_handler(on_add=lambda pod: print(pod.key))
    inf.start()
    inf.wait_for_sync(30)
    inf.lister.by_index("node", "node-1")

    with kfast.Client(cfg) as k:                  # REST: sync; kfast.AsyncClient for asyncio
        k.get("/api/v1/namespaces/default/configmaps")
"""

from __future__ import annotations

from typing import Any

from kfast import errors, index
from kfast._client import AsyncClient, Client
from kfast._config import Config, load_config, load_incluster_config
from kfast._core import RetryPolicy
from kfast._warnings import LogOnceWarningHandler
from kfast._native import DeletedFinalStateUnknown, StoredObject, __version__
from kfast._view import ObjectView

__all__ = [
    "Config",
    "load_config",
    "load_incluster_config",
    "Client",
    "AsyncClient",
    "ResourceClient",
    "AsyncResourceClient",
    "ALL_NAMESPACES",
    "WatchEvent",
    "Watch",
    "AsyncWatch",
    "RetryPolicy",
    "LogOnceWarningHandler",
    "SharedIndexInformer",
    "EventHandlerRegistration",
    "SharedInformerFactory",
    "GroupVersionResource",
    "GroupVersionKind",
    "APIResource",
    "DiscoveryClient",
    "AsyncDiscoveryClient",
    "RESTMapper",
    "AsyncRESTMapper",
    "DynamicClient",
    "AsyncDynamicClient",
    "MetadataClient",
    "AsyncMetadataClient",
    "ScaleClient",
    "AsyncScaleClient",
    "InformerMetrics",
    "InformerEvent",
    "Lister",
    "Indexer",
    "DeltaFIFO",
    "IndexFunc",
    "ObjectView",
    "StoredObject",
    "DeletedFinalStateUnknown",
    "index",
    "transforms",
    "errors",
    "__version__",
]

# Names that need the native store classes resolve on first use, so `import kfast` works
# against any build of the extension (and stays cheap).
_LAZY = {
    "SharedIndexInformer": ("kfast.informer", "SharedIndexInformer"),
    "EventHandlerRegistration": ("kfast.informer", "EventHandlerRegistration"),
    "SharedInformerFactory": ("kfast._factory", "SharedInformerFactory"),
    "GroupVersionResource": ("kfast._gvk", "GroupVersionResource"),
    "GroupVersionKind": ("kfast._gvk", "GroupVersionKind"),
    "APIResource": ("kfast._gvk", "APIResource"),
    "DiscoveryClient": ("kfast.discovery", "DiscoveryClient"),
    "AsyncDiscoveryClient": ("kfast.discovery", "AsyncDiscoveryClient"),
    "RESTMapper": ("kfast._restmapper", "RESTMapper"),
    "AsyncRESTMapper": ("kfast._restmapper", "AsyncRESTMapper"),
    "DynamicClient": ("kfast._dynamic", "DynamicClient"),
    "AsyncDynamicClient": ("kfast._dynamic", "AsyncDynamicClient"),
    "MetadataClient": ("kfast._dynamic", "MetadataClient"),
    "AsyncMetadataClient": ("kfast._dynamic", "AsyncMetadataClient"),
    "ScaleClient": ("kfast._dynamic", "ScaleClient"),
    "AsyncScaleClient": ("kfast._dynamic", "AsyncScaleClient"),
    "InformerMetrics": ("kfast._metrics", "InformerMetrics"),
    "InformerEvent": ("kfast._aio", "Event"),
    "Lister": ("kfast._lister", "Lister"),
    "Indexer": ("kfast._native", "Indexer"),
    "DeltaFIFO": ("kfast._native", "DeltaFIFO"),
    "IndexFunc": ("kfast._native", "IndexFunc"),
    "ResourceClient": ("kfast._resource", "ResourceClient"),
    "AsyncResourceClient": ("kfast._resource_async", "AsyncResourceClient"),
    "ALL_NAMESPACES": ("kfast._rest_core", "ALL_NAMESPACES"),
    "WatchEvent": ("kfast._watch", "WatchEvent"),
    "Watch": ("kfast._watch", "Watch"),
    "AsyncWatch": ("kfast._watch", "AsyncWatch"),
    "transforms": ("kfast.transforms", ""),  # the module itself
}


def __getattr__(name: str) -> Any:
    try:
        mod, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'kfast' has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(mod)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
