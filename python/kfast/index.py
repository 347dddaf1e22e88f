"""Built-in index functions, computed in Rust (no GIL, no JSON decode in Python).

Pass them to ``SharedIndexInformer(indexers={...})`` or ``Indexer(...)``::

    informer = SharedIndexInformer(cfg, "pods", indexers={"node": index.by_field("spec.nodeName")})
    informer.lister.by_index("node", "node-1")

A plain Python callable ``f(StoredObject) -> list[str]`` works too, but it takes the GIL for
every object indexed: the documented slow path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kfast import _native

if TYPE_CHECKING:
    from kfast._native import IndexFunc

__all__ = [
    "IndexFunc",
    "by_namespace",
    "by_label",
    "by_annotation",
    "by_field",
    "by_owner_uid",
    "by_owner_kind",
    "NAMESPACE_INDEX",
]

# The index every informer gets unless told otherwise; Lister.list(namespace=...) uses it.
NAMESPACE_INDEX = "namespace"


def by_namespace() -> IndexFunc:
    """The object's namespace (cluster-scoped objects get no value)."""
    return _native.IndexFunc.namespace()


def by_label(key: str) -> IndexFunc:
    """The value of label ``key``, when set."""
    return _native.IndexFunc.label(key)


def by_annotation(key: str) -> IndexFunc:
    """The value of annotation ``key``, when set."""
    return _native.IndexFunc.annotation(key)


def by_field(path: str) -> IndexFunc:
    """The value(s) at a dotted path such as ``spec.nodeName`` (a list gives one per element)."""
    return _native.IndexFunc.field(path)


def by_owner_uid() -> IndexFunc:
    """One value per owner reference: its uid."""
    return _native.IndexFunc.owner_uid()


def by_owner_kind() -> IndexFunc:
    """One value per owner reference: ``Kind/name``."""
    return _native.IndexFunc.owner_kind()


def __getattr__(name: str) -> Any:
    # Resolved lazily so importing kfast does not require every native class at import time.
    if name == "IndexFunc":
        return _native.IndexFunc
    raise AttributeError(name)
