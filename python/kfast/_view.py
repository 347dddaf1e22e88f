"""Lazy read-only views of cached objects.

The cache holds JSON bytes (``StoredObject``); a handler or lister caller usually reads a
few fields of a few objects, so decoding happens on first access only, straight from the
stored buffer (``msgspec.json.decode`` takes the buffer protocol: no copy). Nested values are
wrapped read-only too, because the decoded dict is cached and shared by every reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import msgspec

from kfast import _native

__all__ = ["ObjectView", "ReadOnlyMapping", "ReadOnlyList", "view"]


def _wrap(v: Any) -> Any:
    if type(v) is dict:
        return ReadOnlyMapping(v)
    if type(v) is list:
        return ReadOnlyList(v)
    return v


class ReadOnlyMapping(Mapping[str, Any]):
    __slots__ = ("_d",)

    def __init__(self, d: dict[str, Any]) -> None:
        self._d = d

    def __getitem__(self, k: str) -> Any:
        return _wrap(self._d[k])

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __repr__(self) -> str:
        return f"ReadOnlyMapping({self._d!r})"

    def to_dict(self) -> dict[str, Any]:
        """A deep, mutable copy."""
        out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self._d))
        return out


class ReadOnlyList(Sequence[Any]):
    __slots__ = ("_l",)

    def __init__(self, items: list[Any]) -> None:
        self._l = items

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> ReadOnlyList: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return ReadOnlyList(self._l[i])
        return _wrap(self._l[i])

    def __len__(self) -> int:
        return len(self._l)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReadOnlyList):
            return self._l == other._l
        return isinstance(other, (list, tuple)) and list(self._l) == list(other)

    def __hash__(self) -> int:
        raise TypeError("unhashable type: 'ReadOnlyList'")

    def __repr__(self) -> str:
        return f"ReadOnlyList({self._l!r})"


class ObjectView(Mapping[str, Any]):
    """A Kubernetes object from the cache, read-only, decoded on first item access.

    ``key``, ``name``, ``namespace``, ``uid``, ``resource_version`` and ``labels`` come from
    the metadata Rust already extracted and never trigger a decode. ``stored`` is the
    underlying :class:`kfast._native.StoredObject`; ``to_dict()`` gives a mutable deep copy.
    """

    __slots__ = ("_stored", "_data")

    def __init__(self, stored: _native.StoredObject) -> None:
        self._stored = stored
        self._data: dict[str, Any] | None = None

    def _decoded(self) -> dict[str, Any]:
        d = self._data
        if d is None:
            d = self._data = msgspec.json.decode(self._stored)
        return d

    def __getitem__(self, k: str) -> Any:
        return _wrap(self._decoded()[k])

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __contains__(self, k: object) -> bool:
        return k in self._decoded()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ObjectView):
            return bytes(self._stored) == bytes(other._stored)
        return isinstance(other, Mapping) and self._decoded() == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<ObjectView {self._stored.kind or 'object'} {self._stored.key!r} rv={self._stored.resource_version!r}>"

    @property
    def stored(self) -> _native.StoredObject:
        return self._stored

    @property
    def key(self) -> str:
        return self._stored.key

    @property
    def name(self) -> str:
        return self._stored.name

    @property
    def namespace(self) -> str:
        return self._stored.namespace

    @property
    def uid(self) -> str:
        return self._stored.uid

    @property
    def resource_version(self) -> str:
        return self._stored.resource_version

    @property
    def labels(self) -> dict[str, str]:
        return self._stored.labels

    def to_dict(self) -> dict[str, Any]:
        """A fresh, mutable decode of the whole object."""
        out: dict[str, Any] = msgspec.json.decode(self._stored)
        return out


def view(obj: _native.StoredObject | None) -> ObjectView | None:
    return None if obj is None else ObjectView(obj)
