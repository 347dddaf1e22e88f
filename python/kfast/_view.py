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


_UNSET: Any = msgspec.UNSET


class _ObjectMeta(msgspec.Struct, forbid_unknown_fields=True):
    """ObjectMeta's fields, for decoding ``metadata`` alone. managedFields stays raw JSON
    until read: it is often the larger half of the metadata and handlers rarely look at it.
    An unknown field (a newer API) fails the decode and the caller falls back to a plain
    dict decode, so nothing is ever dropped."""

    name: Any = _UNSET
    generateName: Any = _UNSET
    namespace: Any = _UNSET
    selfLink: Any = _UNSET
    uid: Any = _UNSET
    resourceVersion: Any = _UNSET
    generation: Any = _UNSET
    creationTimestamp: Any = _UNSET
    deletionTimestamp: Any = _UNSET
    deletionGracePeriodSeconds: Any = _UNSET
    labels: Any = _UNSET
    annotations: Any = _UNSET
    ownerReferences: Any = _UNSET
    finalizers: Any = _UNSET
    managedFields: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _MetadataOnly(msgspec.Struct):
    metadata: _ObjectMeta | None = None


_metadata_decoder = msgspec.json.Decoder(_MetadataOnly)
_META_FIELDS = tuple(f for f in _ObjectMeta.__struct_fields__ if f != "managedFields")


class _MetadataView(ReadOnlyMapping):
    """``obj["metadata"]`` decoded without the rest of the object (the common handler
    access: name, labels, ownerReferences). managedFields is decoded when first read."""

    __slots__ = ("_raw_managed",)

    def __init__(self, d: dict[str, Any], raw_managed: msgspec.Raw) -> None:
        super().__init__(d)
        self._raw_managed = raw_managed

    def _materialize(self) -> None:
        if self._raw_managed:
            self._d["managedFields"] = msgspec.json.decode(self._raw_managed)
            self._raw_managed = msgspec.Raw()

    def __getitem__(self, k: str) -> Any:
        if k == "managedFields":
            self._materialize()
        return super().__getitem__(k)

    def __repr__(self) -> str:
        self._materialize()
        return super().__repr__()

    def to_dict(self) -> dict[str, Any]:
        self._materialize()
        return super().to_dict()


def _decode_metadata(stored: _native.StoredObject) -> _MetadataView | None:
    try:
        meta = _metadata_decoder.decode(stored).metadata
    except msgspec.ValidationError:
        return None
    if meta is None:
        return None
    d = {f: v for f in _META_FIELDS if (v := getattr(meta, f)) is not _UNSET}
    raw = meta.managedFields
    if raw:
        d["managedFields"] = None  # placeholder keeps key order and membership exact
    return _MetadataView(d, raw)


class ObjectView(Mapping[str, Any]):
    """A Kubernetes object from the cache, read-only, decoded on first item access.

    ``key``, ``name``, ``namespace``, ``uid``, ``resource_version`` and ``labels`` come from
    the metadata Rust already extracted and never trigger a decode. ``stored`` is the
    underlying :class:`kfast._native.StoredObject`; ``to_dict()`` gives a mutable deep copy.
    """

    __slots__ = ("_stored", "_data", "_meta")

    def __init__(self, stored: _native.StoredObject) -> None:
        self._stored = stored
        self._data: dict[str, Any] | None = None
        self._meta: _MetadataView | None = None

    def _decoded(self) -> dict[str, Any]:
        d = self._data
        if d is None:
            d = self._data = msgspec.json.decode(self._stored)
        return d

    def __getitem__(self, k: str) -> Any:
        if k == "metadata" and self._data is None:
            m = self._meta
            if m is None:
                m = self._meta = _decode_metadata(self._stored)
            if m is not None:
                return m
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
