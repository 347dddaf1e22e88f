"""Read access to an informer's cache: lazy views, nothing decoded until read."""

from __future__ import annotations

import builtins

from collections.abc import Mapping

from kfast import _native
from kfast._selector import Selector, parse_selector
from kfast._view import ObjectView
from kfast.index import NAMESPACE_INDEX

__all__ = ["Lister"]


class Lister:
    """``get`` / ``list`` / ``by_index`` over an :class:`kfast.Indexer`, returning
    :class:`ObjectView` objects. Reads never block the informer's processor for long: the
    Indexer hands out shared references to the stored bytes."""

    __slots__ = ("_indexer", "_default_namespace")

    def __init__(self, indexer: _native.Indexer, default_namespace: str | None = None) -> None:
        self._indexer = indexer
        self._default_namespace = default_namespace

    @property
    def indexer(self) -> _native.Indexer:
        return self._indexer

    def get(self, name: str, namespace: str | None = None) -> ObjectView | None:
        """The object ``namespace/name`` (or ``name`` when cluster-scoped), or None."""
        ns = namespace if namespace is not None else self._default_namespace
        obj = self._indexer.get_by_key(f"{ns}/{name}" if ns else name)
        return None if obj is None else ObjectView(obj)

    def list(
        self,
        namespace: str | None = None,
        label_selector: str | Mapping[str, str] | Selector | None = None,
    ) -> builtins.list[ObjectView]:
        """Objects in ``namespace`` (all when None) whose labels match ``label_selector``."""
        if namespace:
            try:
                objs = self._indexer.by_index(NAMESPACE_INDEX, namespace)
            except KeyError:
                objs = [o for o in self._indexer.list() if o.namespace == namespace]
        else:
            objs = self._indexer.list()
        sel = label_selector if isinstance(label_selector, Selector) else parse_selector(label_selector)
        if sel.empty:
            return [ObjectView(o) for o in objs]
        return [ObjectView(o) for o in objs if sel.matches(o.labels)]

    def by_index(self, index_name: str, value: str) -> builtins.list[ObjectView]:
        """Objects whose index ``index_name`` has ``value``. KeyError if no such index."""
        return [ObjectView(o) for o in self._indexer.by_index(index_name, value)]

    def keys(self) -> builtins.list[str]:
        return self._indexer.list_keys()

    def __len__(self) -> int:
        return len(self._indexer)
